//! `image build` and `image push`, and the build-and-push step `up` runs for `service.image: build`.

use std::path::Path;

use serde::Serialize;

use super::answer;
use crate::aws::Clients;
use crate::cli::{Cli, ImageCommand};
use crate::error::Error;
use crate::exit;
use crate::image::{Program, PushReport, build};

/// `image build --json`: the image's digests and where its OCI layout was written.
#[derive(Serialize)]
struct Built<'a> {
    digest: &'a str,
    layer_digest: &'a str,
    config_digest: &'a str,
    layer_bytes: usize,
    architecture: &'a str,
    revision: &'a str,
    tag: &'a str,
    layout: &'a std::path::Path,
}

/// `image push --json`.
#[derive(Serialize)]
struct Pushed<'a> {
    push: &'a PushReport,
}

pub async fn run(cli: &Cli, cmd: &ImageCommand) -> Result<u8, Error> {
    match cmd {
        ImageCommand::Build { program, source, output } => {
            let image = build::build(source, Program::from(*program))?;
            build::write_layout(&image, output, &image.tag)?;
            if cli.json {
                let body = Built {
                    digest: &image.manifest_digest,
                    layer_digest: &image.layer_digest,
                    config_digest: &image.config_digest,
                    layer_bytes: image.layer.len(),
                    architecture: image.arch.oci_name(),
                    revision: &image.revision,
                    tag: &image.tag,
                    layout: output,
                };
                answer::print("image build", None, body);
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
        ImageCommand::Push { program, repository, tag, source } => {
            let region = match &cli.region {
                Some(r) => r.clone(),
                None => stack::Stack::load(&cli.stack).map(|s| s.region).unwrap_or_else(|_| "ap-northeast-1".into()),
            };
            let report = build_and_push(source, Program::from(*program), repository, tag.as_deref(), &region).await?;
            print_report(&report, cli.json);
            Ok(exit::OK)
        }
    }
}

pub fn print_report(report: &PushReport, json: bool) {
    if json {
        answer::print("image push", None, Pushed { push: report });
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

/// Builds the program's image in `source` and pushes it to `repository` under `tag` (default:
/// revision).
pub async fn build_and_push(
    source: &Path,
    program: Program,
    repository: &str,
    tag: Option<&str>,
    region: &str,
) -> Result<PushReport, Error> {
    crate::image::registry::parse_repository(repository)?;
    let image = build::build(source, program)?;
    let clients = Clients::load(region).await?;
    crate::image::push_to(&clients, &image, repository, tag.unwrap_or(&image.tag)).await
}
