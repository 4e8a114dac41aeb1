//! The app's OCI image without a Docker daemon, the way ko and Jib do it: a static release build
//! of `app`, one reproducible layer (the binary and a non-root user), an OCI config and manifest,
//! written as an OCI image layout and pushed over the distribution API.

pub mod build;
pub mod layer;
pub mod oci;
pub mod registry;

use serde::Serialize;

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
