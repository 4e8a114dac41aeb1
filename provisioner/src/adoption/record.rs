//! Records the names `adopt` takes over in stack.yaml, under `adopted:`: appended as a block, or
//! added to the block stack.yaml has; the file is read back, and restored if it does not say
//! what was recorded. Everything else in the file (comments, order) stays as it was.

use std::path::Path;

use super::Name;
use crate::error::Error;

/// Adds `names` to the stack file at `path`; refuses (changing nothing) where it cannot.
pub fn record(path: &Path, names: &[Name]) -> Result<(), Error> {
    if names.is_empty() {
        return Ok(());
    }
    let before = std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("read {}: {e}", path.display())))?;
    let after = with_names(&before, names).map_err(|why| {
        Error::Usage(format!(
            "{}: {why}; add these lines to it yourself, then rerun:\n{}",
            path.display(),
            block(names)
        ))
    })?;
    write(path, &after)?;
    let read_back = stack::Stack::load(path);
    let says_it = read_back.as_ref().is_ok_and(|s| {
        names.iter().all(|n| s.adopted.entries().iter().any(|(k, v)| *k == n.key && *v == Some(n.name.as_str())))
    });
    if !says_it {
        write(path, &before)?;
        let why = read_back.err().map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(Error::Usage(format!(
            "{} did not read back with the names recorded{why}: it is restored; add these lines yourself:\n{}",
            path.display(),
            block(names)
        )));
    }
    Ok(())
}

/// The text with the names added: after an `adopted:` block's first line, or as a new block.
fn with_names(text: &str, names: &[Name]) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let top = lines.iter().position(|l| l.starts_with("adopted:"));
    let entries: Vec<String> = names.iter().map(entry).collect();
    let Some(at) = top else {
        let mut out = text.trim_end_matches('\n').to_owned();
        out.push_str("\n\n# The names of what `provisioner adopt` took over (AWS cannot rename these).\nadopted:\n");
        for e in &entries {
            out.push_str(e);
            out.push('\n');
        }
        return Ok(out);
    };
    let rest = lines[at].trim_start_matches("adopted:").trim();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return Err("its `adopted:` is written on one line".to_owned());
    }
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    for (i, e) in entries.into_iter().enumerate() {
        out.insert(at + 1 + i, e);
    }
    Ok(out.join("\n") + "\n")
}

fn entry(n: &Name) -> String {
    format!("  {}: {}   # {}", n.key, crate::adopt::stack_file::yaml(&n.name), n.from)
}

fn block(names: &[Name]) -> String {
    std::iter::once("adopted:".to_owned()).chain(names.iter().map(entry)).collect::<Vec<_>>().join("\n")
}

/// Replaces the file at once (a temporary beside it, renamed over it).
fn write(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("adopting.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::Usage(format!("write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(key: &'static str, name: &str) -> Name {
        Name { key, name: name.to_owned(), from: format!("aws_x.{key}") }
    }

    #[test]
    fn names_go_into_a_new_block_or_the_one_there_and_the_rest_stays() {
        let text = "name: web   # mine\nregion: ap-northeast-1\n";
        let added = with_names(text, &[name("cluster", "legacy")]).expect("added");
        assert!(added.starts_with(text.trim_end()), "{added}");
        assert!(added.ends_with("adopted:\n  cluster: legacy   # aws_x.cluster\n"), "{added}");
        let again = with_names(&added, &[name("service", "legacy-web")]).expect("added");
        assert!(again.contains("adopted:\n  service: legacy-web   # aws_x.service\n  cluster: legacy"), "{again}");
        assert!(with_names("adopted: { cluster: a }\n", &[name("service", "b")]).is_err());
    }

    #[test]
    fn a_file_that_would_not_read_back_is_restored() {
        let dir = std::env::temp_dir().join(format!("konnichiwa-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("stack.yaml");
        let broken = "name: web\n";
        std::fs::write(&path, broken).expect("write");
        let e = record(&path, &[name("cluster", "legacy")]).expect_err("does not validate");
        assert!(e.to_string().contains("is restored") && e.to_string().contains("cluster: legacy"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), broken);
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
