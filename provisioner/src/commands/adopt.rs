//! `adopt`: a Terraform state described as a stack file, written where asked (what was read, what
//! was not, and what stack.yaml cannot say); or, without a file to write, taken over
//! (`take_over`).

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::answer;
use crate::adopt::stack_file::{self, Described};
use crate::adopt::tfstate::{MAX_BYTES, State};
use crate::cli::{AdoptArgs, Cli};
use crate::error::Error;
use crate::exit;

/// `adopt --json`.
#[derive(Debug, Serialize)]
struct Adopted<'a> {
    /// Where the stack file went (`-`: standard output).
    written: String,
    region: &'a str,
    /// The state's `terraform_version`, `serial` and `lineage`.
    state: StateId<'a>,
    /// The resources the values came from, and the state's other aws_* resources.
    described_from: &'a [String],
    not_described: Vec<String>,
    notes: &'a [String],
    /// What the written file lacks to validate (none: it does).
    problems: Vec<String>,
    /// The stack file's text.
    stack_file: &'a str,
}

#[derive(Debug, Serialize)]
pub(super) struct StateId<'a> {
    terraform_version: &'a str,
    serial: u64,
    lineage: &'a str,
}

impl<'a> StateId<'a> {
    pub(super) fn of(state: &'a State) -> Self {
        Self { terraform_version: &state.terraform_version, serial: state.serial, lineage: &state.lineage }
    }
}

pub async fn run(cli: &Cli, args: &AdoptArgs) -> Result<u8, Error> {
    let (text, source) = read_state(&args.from_tfstate)?;
    let state = State::parse(&text, &source).map_err(|e| Error::Usage(e.to_string()))?;
    let described = stack_file::describe(&state, args.service.as_deref()).map_err(|e| Error::Usage(e.to_string()))?;
    match &args.write_stack_file {
        Some(out) => write_stack_file(cli, args, &state, &described, out),
        None => super::take_over::run(cli, args, &state, &source, &described).await,
    }
}

fn write_stack_file(
    cli: &Cli,
    args: &AdoptArgs,
    state: &State,
    described: &Described,
    out: &Path,
) -> Result<u8, Error> {
    let to_stdout = out.as_os_str() == "-";
    if !to_stdout {
        write_new(out, &described.text, args.force)?;
    }
    let problems = match stack::Stack::from_yaml(&described.text, out) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
    };
    let not_described: Vec<String> =
        state.managed_aws().map(|f| f.address()).filter(|a| !described.from.contains(a)).collect();
    if cli.json {
        let body = Adopted {
            written: out.display().to_string(),
            region: &described.region,
            state: StateId::of(state),
            described_from: &described.from,
            not_described,
            notes: &described.notes,
            problems: problems.clone(),
            stack_file: &described.text,
        };
        answer::print("adopt", Some(&described.name), body);
    } else if to_stdout {
        print!("{}", described.text);
        report(described, &not_described, &problems, &mut std::io::stderr());
    } else {
        println!(
            "wrote {}: stack {} in {}, from {} of the state's {} aws_* resources",
            out.display(),
            described.name,
            described.region,
            described.from.len(),
            described.from.len() + not_described.len()
        );
        report(described, &not_described, &problems, &mut std::io::stdout());
    }
    Ok(if problems.is_empty() { exit::OK } else { exit::ERROR })
}

/// What was read, what was not, the notes, the problems, and what comes next.
fn report(d: &Described, not_described: &[String], problems: &[String], w: &mut dyn std::io::Write) {
    let mut lines = vec![format!("  read: {}", d.from.join(", "))];
    if !not_described.is_empty() {
        lines.push(format!("  not described (stack.yaml derives them): {}", not_described.join(", ")));
    }
    lines.extend(d.notes.iter().map(|n| format!("  note: {n}")));
    if !problems.is_empty() {
        lines.push("  the file does not validate yet; fix these in it:".into());
        lines.extend(problems.iter().map(|p| format!("    {p}")));
    }
    lines.push(
        "  next: review it, then `provisioner adopt --from-tfstate <the state> --stack <this file>` plans taking \
         the resources over (no change), and --yes takes them over"
            .into(),
    );
    for l in lines {
        let _ = writeln!(w, "{l}");
    }
}

/// The state's text and how errors name it; at most `MAX_BYTES` (and one more, to tell).
fn read_state(path: &Path) -> Result<(String, String), Error> {
    let limit = u64::try_from(MAX_BYTES + 1).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    let source = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Usage(format!("read standard input: {e}")))?;
        "standard input".to_owned()
    } else {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::Usage(format!(
                "{}: {e}; give the path of a saved state (`terraform state pull > saved.tfstate`)",
                path.display()
            ))
        })?;
        file.take(limit).read_to_end(&mut bytes).map_err(|e| Error::Usage(format!("read {}: {e}", path.display())))?;
        path.display().to_string()
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{source} is not text (UTF-8); a Terraform state is JSON")))?;
    Ok((text, source))
}

/// Writes a file that must not exist yet (unless `force`): a stack file already there is kept.
fn write_new(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Usage(format!(
                "{} exists: it is kept; write elsewhere, or pass --force to replace it",
                path.display()
            ))
        } else {
            Error::Usage(format!("write {}: {e}", path.display()))
        }
    })?;
    file.write_all(text.as_bytes()).map_err(|e| Error::Usage(format!("write {}: {e}", path.display())))
}
