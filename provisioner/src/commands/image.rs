//! `image build` and `image push`, and the build-and-push step `up` runs for `service.image: build`.

use std::path::Path;

use serde_json::json;

use super::print_json;
use crate::aws::Clients;
use crate::cli::{Cli, ImageCommand};
use crate::error::{AwsContext, Error};
use crate::exit;
use crate::image::{PushReport, build, registry::Registry};

pub async fn run(cli: &Cli, cmd: &ImageCommand) -> Result<u8, Error> {
    match cmd {
        ImageCommand::Build { source, output } => {
            let image = build::build(source)?;
            build::write_layout(&image, output, &image.revision)?;
            if cli.json {
                print_json(&json!({
                    "command": "image build",
                    "digest": image.manifest_digest,
                    "layer_digest": image.layer_digest,
                    "config_digest": image.config_digest,
                    "layer_bytes": image.layer.len(),
                    "architecture": image.arch.oci_name(),
                    "revision": image.revision,
                    "layout": output,
                }));
            } else {
                eprintln!(
                    "image {} ({} bytes compressed, {}) written to {}",
                    image.revision,
                    image.layer.len(),
                    image.arch.oci_name(),
                    output.display()
                );
                println!("{}", image.manifest_digest);
            }
            Ok(exit::OK)
        }
        ImageCommand::Push { repository, tag, source } => {
            let region = match &cli.region {
                Some(r) => r.clone(),
                None => stack::Stack::load(&cli.stack).map(|s| s.region).unwrap_or_else(|_| "ap-northeast-1".into()),
            };
            let report = build_and_push(source, repository, tag.as_deref(), &region).await?;
            print_report(&report, cli.json);
            Ok(exit::OK)
        }
    }
}

pub fn print_report(report: &PushReport, json: bool) {
    if json {
        print_json(&json!({ "command": "image push", "push": report }));
    } else {
        eprintln!(
            "pushed {} blobs ({} bytes), {} already there; tag {}{}",
            report.blobs_uploaded,
            report.bytes_uploaded,
            report.blobs_skipped,
            report.tag,
            if report.manifest_uploaded { "" } else { " already pointed at this image" }
        );
        println!("{}", report.reference);
    }
}

/// True for ECR registry hosts (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`).
pub fn is_ecr(host: &str) -> bool {
    host.contains(".dkr.ecr.") && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

/// ECR's basic-auth credentials (`AWS:<token>`), from GetAuthorizationToken.
async fn ecr_credentials(region: &str) -> Result<String, Error> {
    let clients = Clients::load(region).await;
    let out = clients.ecr.get_authorization_token().send().await.ctx("get an ECR authorization token in", region)?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or_else(|| Error::Refused("ECR returned no authorization token".into()))?;
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|e| Error::Refused(format!("ECR's token is not base64: {e}")))?;
    String::from_utf8(decoded).map_err(|_| Error::Refused("ECR's token is not text".into()))
}

/// Builds the image in `source` and pushes it to `repository` under `tag` (default: revision).
pub async fn build_and_push(
    source: &Path,
    repository: &str,
    tag: Option<&str>,
    region: &str,
) -> Result<PushReport, Error> {
    let (host, _) = crate::image::registry::parse_repository(repository)?;
    let image = build::build(source)?;
    let credentials = if is_ecr(&host) { Some(ecr_credentials(region).await?) } else { None };
    let registry = Registry::new(repository, credentials.as_deref())?;
    Ok(registry.push(&image, tag.unwrap_or(&image.revision)).await?)
}
