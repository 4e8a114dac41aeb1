//! The OCI image config and manifest: a non-root user, the entrypoint, and for the app its exposed
//! port, environment defaults and health check; labels (revision, version), OS and architecture.
//! Fixed `created` time, so they are reproducible.

use serde_json::{Value, json};

use super::Program;
use super::layer::UID;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const PORT: u16 = 8080;

/// The image config of `program` for a layer whose uncompressed digest is `diff_id`: both run as
/// the non-root user from their binary at the root; the app also has its port, environment
/// defaults and health check.
pub fn config(program: Program, diff_id: &str, arch: &str, revision: &str, version: &str) -> Value {
    let (title, built_by) = match program {
        Program::App => ("konnichiwa", "provisioner image build (static app binary, non-root user)"),
        Program::Loadtest => ("konnichiwa-loadtest", "provisioner loadtest (static loadtest binary, non-root user)"),
    };
    let mut config = serde_json::Map::new();
    config.insert("User".into(), json!(format!("{UID}:{UID}")));
    config.insert("Entrypoint".into(), json!([format!("/{}", program.package())]));
    if program == Program::App {
        let second = 1_000_000_000u64;
        config.insert("ExposedPorts".into(), json!({ format!("{PORT}/tcp"): {} }));
        config.insert(
            "Env".into(),
            json!([
                format!("PORT={PORT}"),
                "BIND=0.0.0.0",
                "LOG_FORMAT=json",
                "LOG_LEVEL=info",
                "SHUTDOWN_GRACE=20s",
                "HEADER_READ_TIMEOUT=75s"
            ]),
        );
        config.insert(
            "Healthcheck".into(),
            json!({
                "Test": ["CMD", "/app", "healthcheck"],
                "Interval": 10 * second,
                "Timeout": 3 * second,
                "StartPeriod": 5 * second,
                "Retries": 3
            }),
        );
    }
    config.insert(
        "Labels".into(),
        json!({
            "org.opencontainers.image.title": title,
            "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.source": "https://github.com/konnichiwa/konnichiwa"
        }),
    );
    json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": built_by }]
    })
}

pub fn manifest(config_digest: &str, config_size: usize, layer_digest: &str, layer_size: usize) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size },
        "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer_size }]
    })
}
