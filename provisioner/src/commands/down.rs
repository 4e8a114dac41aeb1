//! `down`: delete everything the stack owns in reverse order, then sweep by tag and fail naming
//! anything still left.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{confirm, context, print_json};
use crate::cli::Cli;
use crate::engine as driver;
use crate::error::Error;
use crate::exit;
use crate::reconcile::{Mode, render};

pub async fn run(cli: &Cli, yes: bool, purge: bool, timeout: Duration) -> Result<u8, Error> {
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Plan, timeout).await?;
    let plan = driver::teardown(&ctx, purge).await?;
    if !cli.json {
        println!("Stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
        print!("{}", render::plan(&plan, render::colour_wanted()));
    }
    let mut applied = false;
    if plan.has_changes() {
        if !confirm(&format!("Delete everything of stack {}?", ctx.stack.name), yes)? {
            eprintln!("Nothing was deleted.");
            return Ok(exit::ERROR);
        }
        ctx.mode = Mode::Apply;
        if !cli.json {
            eprintln!("\nDeleting:");
        }
        driver::teardown(&ctx, purge).await?;
        applied = true;
    }
    let leftovers = driver::sweep(&ctx).await?;
    let calls = ctx.clients.calls.counts();
    if cli.json {
        print_json(&json!({
            "command": "down",
            "stack": ctx.stack.name,
            "region": ctx.stack.region,
            "plan": { "resources": plan.resources, "summary": plan.summary() },
            "applied": applied,
            "leftovers": leftovers,
            "api_calls": calls,
            "elapsed_seconds": started.elapsed().as_secs_f64(),
        }));
    }
    if !leftovers.is_empty() {
        return Err(Error::Refused(format!(
            "still tagged konnichiwa:stack={} after down: {} — delete them by hand or run down again",
            ctx.stack.name,
            leftovers.join(", ")
        )));
    }
    if !cli.json {
        println!(
            "\n{} in {:.1}s; nothing tagged with the stack remains.",
            if applied { "Deleted" } else { "Nothing to delete" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(exit::OK)
}
