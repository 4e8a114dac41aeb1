//! What an image built here is built from, as one digest: the program's package and the
//! workspace packages it depends on (their manifests, `build.rs` and `src/`, and the files their
//! sources `include_str!`), the workspace's Cargo.toml and Cargo.lock, the toolchain (`rustc
//! -vV`), the release profile's settings in the environment (`CARGO_PROFILE_RELEASE_*`) and this
//! provisioner's version (which assembles the image). The task definition records
//! it, so `plan` can tell whether the image would change without building it; with
//! `KONNICHIWA_PREBUILT_DIR`, the prebuilt binary is what the image is made from, and its digest
//! stands in for the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ImageError, Program, build::PREBUILT_DIR, digest};

/// The digest of everything the program's image is built from, in the workspace at `workspace`.
pub fn fingerprint(workspace: &Path, program: Program) -> Result<String, ImageError> {
    if let Some(dir) = std::env::var_os(PREBUILT_DIR) {
        let path = PathBuf::from(dir).join(program.package());
        let binary = std::fs::read(&path)
            .map_err(|e| ImageError::Build(format!("{PREBUILT_DIR}: cannot read {}: {e}", path.display())))?;
        return Ok(digest(format!("prebuilt {} {}", program.package(), digest(&binary)).as_bytes()));
    }
    let root = workspace
        .canonicalize()
        .map_err(|e| ImageError::Build(format!("cannot find the workspace {}: {e}", workspace.display())))?;
    let mut files = BTreeSet::new();
    for name in ["Cargo.toml", "Cargo.lock", "rust-toolchain", "rust-toolchain.toml", ".cargo/config.toml"] {
        files.insert(root.join(name));
    }
    for package in packages(&root, program.package())? {
        files.insert(package.join("Cargo.toml"));
        files.insert(package.join("build.rs"));
        walk(&package.join("src"), &mut files);
    }
    let included: Vec<PathBuf> =
        files.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")).flat_map(|f| included_by(f)).collect();
    files.extend(included);
    let mut text = format!(
        "program {}\nprovisioner {}\ntarget {}\n{}\n",
        program.package(),
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        toolchain()?
    );
    // The release profile's settings from the environment change the binary too.
    let mut settings: Vec<(String, String)> =
        std::env::vars().filter(|(k, _)| k.starts_with("CARGO_PROFILE_RELEASE_")).collect();
    settings.sort();
    for (k, v) in settings {
        text.push_str(&format!("{k}={v}\n"));
    }
    let mut contents = BTreeMap::new();
    for file in &files {
        // A file that is not there (no build.rs) counts as absent, which is itself a fact.
        let relative = file.strip_prefix(&root).unwrap_or(file).to_string_lossy().replace('\\', "/");
        contents.insert(relative, std::fs::read(file).ok().map(|bytes| digest(&bytes)));
    }
    for (path, digest) in contents {
        text.push_str(&format!("{path} {}\n", digest.as_deref().unwrap_or("absent")));
    }
    Ok(digest(text.as_bytes()))
}

/// `rustc -vV`: the compiler that would build the image.
fn toolchain() -> Result<String, ImageError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| ImageError::Build(format!("cannot run {rustc} -vV: {e} (is the Rust toolchain installed?)")))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The directories of `package` and of the workspace packages it depends on (not for its
/// tests), from `cargo metadata`.
fn packages(root: &Path, package: &str) -> Result<Vec<PathBuf>, ImageError> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .map_err(|e| ImageError::Build(format!("cannot run cargo metadata: {e} (is the Rust toolchain installed?)")))?;
    if !out.status.success() {
        return Err(ImageError::Build(format!(
            "cargo metadata failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| ImageError::Build(format!("cargo metadata: {e}")))?;
    let all = meta["packages"].as_array().cloned().unwrap_or_default();
    let dir_of = |p: &serde_json::Value| {
        Path::new(p["manifest_path"].as_str().unwrap_or_default()).parent().map(Path::to_path_buf)
    };
    let mut wanted =
        vec![all.iter().find(|p| p["name"] == package).and_then(dir_of).ok_or_else(|| {
            ImageError::Build(format!("the workspace at {} has no package {package}", root.display()))
        })?];
    let mut i = 0;
    while i < wanted.len() {
        let here = &wanted[i];
        let deps: Vec<PathBuf> = all
            .iter()
            .filter(|p| dir_of(p).as_ref() == Some(here))
            .flat_map(|p| p["dependencies"].as_array().cloned().unwrap_or_default())
            .filter(|d| d["kind"] != "dev")
            .filter_map(|d| d["path"].as_str().map(PathBuf::from))
            .collect();
        for d in deps {
            if !wanted.contains(&d) {
                wanted.push(d);
            }
        }
        i += 1;
    }
    Ok(wanted)
}

/// Every file under `dir`.
fn walk(dir: &Path, files: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.insert(path);
        }
    }
}

/// The files a Rust source pulls in with `include_str!("…")` or `include_bytes!("…")`.
fn included_by(source: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(source) else { return Vec::new() };
    let dir = source.parent().unwrap_or(Path::new("."));
    ["include_str!(\"", "include_bytes!(\""]
        .iter()
        .flat_map(|open| text.match_indices(open).map(move |(at, _)| at + open.len()))
        .filter_map(|from| text[from..].split('"').next().map(|p| dir.join(p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_included_file_is_an_input() {
        let dir = std::env::temp_dir().join(format!("konnichiwa-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let source = dir.join("lib.rs");
        std::fs::write(
            &source,
            "const A: &str = include_str!(\"../x.yaml\");\nconst B: &[u8] = include_bytes!(\"y.bin\");",
        )
        .expect("write");
        assert_eq!(included_by(&source), [dir.join("../x.yaml"), dir.join("y.bin")]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
