//! Builds an image: `cargo build --release -p PROGRAM` as a fully static binary (the gnu target with
//! crt-static; paths remapped so the binary does not depend on where the source sits), then the
//! layer, config and manifest. Also writes and reads an OCI image layout directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use stack::catalog::Arch;

use super::{Image, ImageError, Program, digest, layer, oci};

/// The architecture of this machine, which the image is built for.
pub fn host_arch() -> Arch {
    if std::env::consts::ARCH == "aarch64" { Arch::Arm64 } else { Arch::X86_64 }
}

/// The git revision of `dir`, with `-dirty` when the tree has changes; `unknown` without git.
pub fn revision(dir: &Path) -> String {
    let git =
        |args: &[&str]| Command::new("git").args(args).current_dir(dir).output().ok().filter(|o| o.status.success());
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else { return "unknown".into() };
    let mut rev = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.stdout.is_empty()) {
        rev.push_str("-dirty");
    }
    rev
}

/// Compiles the program's static binary in the workspace at `workspace`; returns its path.
pub fn compile(workspace: &Path, program: Program) -> Result<PathBuf, ImageError> {
    let package = program.package();
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let workspace = workspace
        .canonicalize()
        .map_err(|e| ImageError::Build(format!("cannot find the workspace {}: {e}", workspace.display())))?;
    // Static, and free of this machine's paths: the same source builds the same binary anywhere.
    let rustflags = format!(
        "-C target-feature=+crt-static --remap-path-prefix={}=/src --remap-path-prefix={}=/cargo",
        workspace.display(),
        cargo_home.display()
    );
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            package,
            "--target",
            &triple,
            "--message-format=json-render-diagnostics",
        ])
        .env("RUSTFLAGS", rustflags)
        .current_dir(&workspace)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| ImageError::Build(format!("cannot run cargo: {e} (is the Rust toolchain installed?)")))?;
    if !out.status.success() {
        return Err(ImageError::Build(format!(
            "cargo build --release -p {package} --target {triple} failed (see the messages above)"
        )));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == package
                && m["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|x| x == "bin"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| ImageError::Build(format!("cargo reported no {package} executable")))
}

/// Assembles the program's image around its binary.
pub fn assemble(program: Program, binary: &[u8], arch: Arch, revision: &str) -> Result<Image, ImageError> {
    let (raw, layer) =
        layer::build(program, binary).map_err(|e| ImageError::Io(format!("cannot build the layer: {e}")))?;
    let config = oci::config(program, &digest(&raw), arch.oci_name(), revision, env!("CARGO_PKG_VERSION"));
    let config = serde_json::to_vec(&config).map_err(|e| ImageError::Io(e.to_string()))?;
    let (config_digest, layer_digest) = (digest(&config), digest(&layer));
    let manifest = serde_json::to_vec(&oci::manifest(&config_digest, config.len(), &layer_digest, layer.len()))
        .map_err(|e| ImageError::Io(e.to_string()))?;
    let manifest_digest = digest(&manifest);
    Ok(Image {
        tag: super::tag_for(revision, &manifest_digest),
        manifest_digest,
        config,
        config_digest,
        layer,
        layer_digest,
        manifest,
        arch,
        revision: revision.to_owned(),
    })
}

/// Where a build made elsewhere left the programs' static binaries (`DIR/app`, `DIR/loadtest`):
/// CI's build job, which holds no credentials, compiles them and the deploy job, which does,
/// only assembles and pushes the image (byte for byte the same image: the layer is
/// reproducible from the binary).
pub const PREBUILT_DIR: &str = "KONNICHIWA_PREBUILT_DIR";

/// The program's static binary: from `KONNICHIWA_PREBUILT_DIR` when set, else compiled here.
fn binary(workspace: &Path, program: Program) -> Result<PathBuf, ImageError> {
    let Some(dir) = std::env::var_os(PREBUILT_DIR) else { return compile(workspace, program) };
    let path = PathBuf::from(dir).join(program.package());
    if !path.is_file() {
        return Err(ImageError::Build(format!(
            "{PREBUILT_DIR} is set but holds no {}: copy the static binary there (target/{}-unknown-linux-gnu/release/{} \
             after `provisioner image build --program {}`), or unset it to compile here",
            path.display(),
            std::env::consts::ARCH,
            program.package(),
            program.package()
        )));
    }
    Ok(path)
}

/// Compiles (or takes the prebuilt binary) and assembles the program's image from the workspace
/// at `workspace`.
pub fn build(workspace: &Path, program: Program) -> Result<Image, ImageError> {
    let binary_path = binary(workspace, program)?;
    let binary = std::fs::read(&binary_path)
        .map_err(|e| ImageError::Io(format!("cannot read {}: {e}", binary_path.display())))?;
    assemble(program, &binary, host_arch(), &revision(workspace))
}

/// The workspace whose sources `image: build` means: the cargo workspace that holds the stack
/// file (its root: the fingerprint reads Cargo.lock and the toolchain files there), wherever the
/// command is run from; for a stack file outside any cargo project, the one here.
pub fn workspace_of(stack_file: &Path) -> PathBuf {
    let dir = match stack_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(dir) = dir.canonicalize() else { return PathBuf::from(".") };
    let manifests: Vec<&Path> = dir.ancestors().filter(|a| a.join("Cargo.toml").is_file()).collect();
    // The nearest manifest that declares a workspace; else the nearest (a single package).
    let declares = |d: &Path| std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"));
    match manifests.iter().copied().find(|d| declares(d)).or(manifests.first().copied()) {
        Some(root) => root.to_path_buf(),
        None => PathBuf::from("."),
    }
}

/// `build` of the app in `workspace`, on a thread of its own (a release build takes minutes and
/// must not hold an async worker).
pub async fn build_app_in(workspace: &Path) -> Result<Image, crate::Error> {
    let workspace = workspace.to_path_buf();
    tokio::task::spawn_blocking(move || build(&workspace, Program::App))
        .await
        .map_err(|e| crate::Error::Refused(format!("the image build stopped: {e}")))?
        .map_err(Into::into)
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// Writes the image as an OCI image layout (readable by skopeo, podman, crane…).
pub fn write_layout(image: &Image, dir: &Path, tag: &str) -> Result<(), ImageError> {
    let io = |e: std::io::Error| ImageError::Io(format!("cannot write the image layout in {}: {e}", dir.display()));
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(io)?;
    for (d, bytes) in [
        (&image.config_digest, &image.config),
        (&image.layer_digest, &image.layer),
        (&image.manifest_digest, &image.manifest),
    ] {
        std::fs::write(blob_path(dir, d), bytes).map_err(io)?;
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": oci::MANIFEST_MEDIA_TYPE,
            "digest": image.manifest_digest,
            "size": image.manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
            "platform": { "os": "linux", "architecture": image.arch.oci_name() }
        }]
    });
    std::fs::write(dir.join("index.json"), index.to_string()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_build_means_the_stack_files_project_or_else_the_one_here() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace");
        assert_eq!(workspace_of(&root.join("stack.yaml")), root, "run from anywhere, the stack file's");
        // A stack file in a directory of the workspace: the workspace's root, where Cargo.lock is.
        assert_eq!(workspace_of(&root.join("provisioner/tests/stack.yaml")), root);
        let elsewhere = std::env::temp_dir().join("konnichiwa-no-project").join("stack.yaml");
        std::fs::create_dir_all(elsewhere.parent().expect("dir")).expect("dir");
        assert_eq!(workspace_of(&elsewhere), PathBuf::from("."), "outside any project: the one here");
        // A bare name is the working directory's (the tests run in provisioner/): its workspace.
        assert_eq!(workspace_of(Path::new("stack.yaml")), root);
    }

    #[test]
    fn assembly_is_reproducible_and_self_consistent() {
        let a = assemble(Program::App, b"binary", Arch::X86_64, "abc123").expect("image");
        let b = assemble(Program::App, b"binary", Arch::X86_64, "abc123").expect("image");
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(a.layer_digest, digest(&a.layer));
        let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).expect("json");
        assert_eq!(manifest["layers"][0]["digest"], a.layer_digest.as_str());
        assert_eq!(manifest["config"]["size"], a.config.len());
        let config: serde_json::Value = serde_json::from_slice(&a.config).expect("json");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["config"]["User"], "10001:10001");
        assert_eq!(config["config"]["Labels"]["org.opencontainers.image.revision"], "abc123");
        assert_ne!(
            assemble(Program::App, b"binary", Arch::X86_64, "other").expect("image").manifest_digest,
            a.manifest_digest
        );
        let l = assemble(Program::Loadtest, b"binary", Arch::X86_64, "abc123").expect("image");
        let config: serde_json::Value = serde_json::from_slice(&l.config).expect("json");
        assert_eq!(config["config"]["Entrypoint"][0], "/loadtest");
        assert_eq!(config["config"]["User"], "10001:10001");
        assert!(config["config"].get("Healthcheck").is_none() && config["config"].get("ExposedPorts").is_none());
    }
}
