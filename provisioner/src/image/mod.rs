//! OCI images without a Docker daemon, the way ko and Jib do it: a static release build of one of
//! the workspace's programs (the app, or the load generator that `provisioner loadtest` runs on
//! ECS), one reproducible layer (the binary and a non-root user), an OCI config and manifest,
//! written as an OCI image layout and pushed over the distribution API.

pub mod build;
pub mod layer;
pub mod oci;
pub mod reference;
pub mod registry;
pub mod sources;

use serde::Serialize;

/// The workspace's programs that ship as images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// The service (`app`): listens on 8080, has a health check.
    App,
    /// The load generator (`loadtest`): a worker of `provisioner loadtest`.
    Loadtest,
}

impl Program {
    /// The cargo package, its binary, and the binary's path in the image (at the root).
    pub fn package(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Loadtest => "loadtest",
        }
    }
}

/// A built image: its blobs and their digests.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub arch: stack::catalog::Arch,
    pub revision: String,
    /// The tag to push under: the git revision of a clean tree; with `-dirty` or `unknown` the
    /// revision plus the image digest's first 12 hex digits, so that an immutable repository
    /// (which refuses a tag written twice) never meets two different builds under one tag.
    pub tag: String,
}

/// The tag of an image built from `revision` with manifest digest `digest`.
pub fn tag_for(revision: &str, digest: &str) -> String {
    if revision.ends_with("-dirty") || revision == "unknown" {
        let hex = digest.trim_start_matches("sha256:");
        format!("{revision}-{}", &hex[..hex.len().min(12)])
    } else {
        revision.to_owned()
    }
}

/// The image the service runs, and what `up` pushed of it (None when it built nothing).
#[derive(Debug, Clone)]
pub struct ImageToRun {
    pub reference: reference::ImageRef,
    pub push: Option<PushReport>,
}

/// What a push did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PushReport {
    /// `HOST/NAME@sha256:…`: what a task definition should reference.
    pub reference: String,
    pub tag: String,
    pub digest: String,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    pub manifest_uploaded: bool,
}

/// `sha256:<hex>` of bytes.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_emulators_run_pushes_to_this_machine_only() {
        use super::only_local_registries_for_an_emulator as check;
        let ecr = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com";
        let refused = check(Some("http://127.0.0.1:5000"), &format!("{ecr}/k"), ecr).expect_err("a real registry host");
        assert!(refused.to_string().contains("nothing was pushed"), "{refused}");
        assert!(check(Some("http://127.0.0.1:5000"), "127.0.0.1:5001/k", "127.0.0.1:5001").is_ok());
        assert!(check(None, &format!("{ecr}/k"), ecr).is_ok(), "real AWS, real ECR");
    }

    #[test]
    fn a_dirty_or_unknown_tree_tags_by_digest_too() {
        let d = "sha256:0123456789abcdef0123";
        assert_eq!(super::tag_for("a1b2c3d4e5f6", d), "a1b2c3d4e5f6");
        assert_eq!(super::tag_for("a1b2c3d4e5f6-dirty", d), "a1b2c3d4e5f6-dirty-0123456789ab");
        assert_eq!(super::tag_for("unknown", d), "unknown-0123456789ab");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("building the app failed: {0}")]
    Build(String),
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("{0}")]
    Io(String),
}

impl From<ImageError> for crate::Error {
    fn from(e: ImageError) -> Self {
        crate::Error::Refused(e.to_string())
    }
}

/// True for ECR registry hosts (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`).
pub fn is_ecr(host: &str) -> bool {
    host.contains(".dkr.ecr.") && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

/// ECR's basic-auth credentials (`AWS:<token>`), from GetAuthorizationToken.
pub(crate) async fn ecr_credentials(clients: &crate::aws::Clients) -> Result<String, crate::Error> {
    use crate::error::AwsContext;
    let out =
        clients.ecr.get_authorization_token().send().await.ctx("get an ECR authorization token in", &clients.region)?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or_else(|| crate::Error::Refused("ECR returned no authorization token".into()))?;
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|e| crate::Error::Refused(format!("ECR's token is not base64: {e}")))?;
    String::from_utf8(decoded).map_err(|_| crate::Error::Refused("ECR's token is not text".into()))
}

/// Pushes `image` to `repository` under `tag`; ECR repositories get credentials from
/// GetAuthorizationToken, any other registry is used anonymously.
/// The emulator's repository URIs name real registry hosts (its ECR answers as AWS would): a run
/// against an emulator on this machine pushes to a registry on this machine only.
fn only_local_registries_for_an_emulator(
    endpoint: Option<&str>,
    repository: &str,
    host: &str,
) -> Result<(), crate::Error> {
    let Some(emulator) = endpoint.filter(|e| crate::aws::is_loopback_url(e)) else { return Ok(()) };
    if crate::aws::is_loopback_url(&format!("http://{host}")) {
        return Ok(());
    }
    Err(crate::Error::Refused(format!(
        "this run is against the emulator at {emulator}, and {repository} is a registry elsewhere: nothing was \
         pushed. Push to a registry on this machine (--image-repository 127.0.0.1:PORT/NAME, or \
         KONNICHIWA_IMAGE_REPOSITORY, which `scripts/sandbox env` sets)"
    )))
}

pub async fn push_to(
    clients: &crate::aws::Clients,
    image: &Image,
    repository: &str,
    tag: &str,
) -> Result<PushReport, crate::Error> {
    let (host, _) = registry::parse_repository(repository)?;
    only_local_registries_for_an_emulator(clients.endpoint.as_deref(), repository, &host)?;
    let credentials = if is_ecr(&host) { Some(ecr_credentials(clients).await?) } else { None };
    Ok(registry::Registry::new(repository, credentials.as_deref())?.push(image, tag).await?)
}
