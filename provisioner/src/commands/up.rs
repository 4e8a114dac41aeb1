//! `up`: plan, confirm, apply in dependency order, print the outputs.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{confirm, context, print_json};
use crate::cli::Cli;
use crate::error::Error;
use crate::exit;
use crate::reconcile::{Mode, driver, render};

pub async fn run(cli: &Cli, yes: bool, timeout: Duration, image_repository: Option<&str>) -> Result<u8, Error> {
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Plan, timeout).await?;
    let (plan, mut outputs) = driver::reconcile(&ctx).await?;
    let colour = render::colour_wanted();
    if !cli.json {
        println!("Stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
        print!("{}", render::plan(&plan, colour));
    }
    let mut applied = false;
    if plan.has_changes() {
        if !confirm("Apply these changes?", yes)? {
            eprintln!("Nothing was changed.");
            return Ok(exit::ERROR);
        }
        ctx.mode = Mode::Apply;
        if !cli.json {
            eprintln!("\nApplying:");
        }
        let (_, after) = driver::reconcile(&ctx).await?;
        outputs = after;
        applied = true;
    }
    // `service.image: build`: build the app's image and push it to the stack's repository (or the
    // override), after the repository exists.
    let mut image = None;
    if ctx.stack.service.image == "build" {
        let repository = match image_repository {
            Some(r) => Some(r.to_owned()),
            None => outputs.registry.repository_uri.clone(),
        };
        if let Some(repository) = repository {
            if !cli.json {
                eprintln!("\nBuilding and pushing the app image to {repository}:");
            }
            let report =
                super::image::build_and_push(std::path::Path::new("."), &repository, None, &ctx.stack.region).await?;
            if !cli.json {
                eprintln!(
                    "  pushed {} ({} new blobs, {} bytes)",
                    report.reference, report.blobs_uploaded, report.bytes_uploaded
                );
            }
            image = Some(report);
        }
    }
    let calls = ctx.clients.calls.counts();
    if cli.json {
        print_json(&json!({
            "command": "up",
            "stack": ctx.stack.name,
            "region": ctx.stack.region,
            "plan": { "resources": plan.resources, "summary": plan.summary() },
            "applied": applied,
            "outputs": outputs,
            "image": image,
            "api_calls": calls,
            "elapsed_seconds": started.elapsed().as_secs_f64(),
        }));
    } else {
        println!(
            "\n{} in {:.1}s ({} read and {} mutating API calls).",
            if applied { "Applied" } else { "Nothing to do" },
            started.elapsed().as_secs_f64(),
            calls.read,
            calls.mutating
        );
        println!("\nOutputs:\n{}", serde_json::to_string_pretty(&outputs).unwrap_or_default());
    }
    Ok(exit::OK)
}
