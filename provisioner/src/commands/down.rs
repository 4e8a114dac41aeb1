//! `down`: holding the stack's lease, delete everything the stack owns in reverse order, then
//! sweep by tag and fail naming anything still left.

use std::time::Instant;

use serde::Serialize;

use super::answer::{self, PlanView, Spent};
use super::{confirm, context, holding_lease};
use crate::cli::{Cli, DownArgs};
use crate::error::Error;
use crate::exit;
use crate::reconcile::{Ctx, Mode, Plan, render};

/// `down --json`.
#[derive(Serialize)]
struct DownAnswer<'a> {
    region: &'a str,
    plan: PlanView<'a>,
    applied: bool,
    /// What still carries the stack's tag after the sweep.
    leftovers: &'a [String],
    /// What `down` keeps without --purge.
    kept: &'a [String],
    #[serde(flatten)]
    spent: Spent,
    /// Only when something is left.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(cli: &Cli, &DownArgs { yes, purge, timeout, lock_timeout }: &DownArgs) -> Result<u8, Error> {
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Plan, timeout).await?;
    let (done, lease) =
        holding_lease(&mut ctx, "down", lock_timeout, async |ctx: &mut Ctx| tear_down(ctx, cli, yes, purge).await)
            .await?;
    let Some((plan, applied, leftovers, kept)) = done else {
        eprintln!("Nothing was deleted.");
        return Ok(exit::ERROR);
    };
    // What is left fails the run; with --json the one object says so (`error`), nothing more.
    let left = (!leftovers.is_empty()).then(|| {
        format!(
            "still tagged konnichiwa:stack={} after down: {} — delete them by hand or run down again",
            ctx.stack.name,
            leftovers.join(", ")
        )
    });
    if cli.json {
        let failed = left.is_some();
        let body = DownAnswer {
            region: &ctx.stack.region,
            plan: PlanView::all(&plan),
            applied,
            leftovers: &leftovers,
            kept: &kept,
            spent: Spent::leased(ctx.clients.calls.counts(), lease, started),
            error: left,
        };
        answer::print("down", Some(&ctx.stack.name), body);
        if failed {
            return Ok(exit::ERROR);
        }
    } else if let Some(error) = left {
        return Err(Error::Refused(error));
    }
    if !cli.json {
        println!(
            "\n{} in {:.1}s; nothing tagged with the stack remains{}.",
            if applied { "Deleted" } else { "Nothing to delete" },
            started.elapsed().as_secs_f64(),
            if kept.is_empty() { String::new() } else { format!(" but what down keeps: {}", kept.join(", ")) }
        );
    }
    Ok(exit::OK)
}

/// What a `down` did: its plan, whether it deleted anything, what is left, what it keeps.
type TornDown = (Plan, bool, Vec<String>, Vec<String>);

/// Lists, confirms, deletes, sweeps; None when the user said no.
async fn tear_down(ctx: &mut Ctx, cli: &Cli, yes: bool, purge: bool) -> Result<Option<TornDown>, Error> {
    // The deletions' reads, up to each service's first change, are answered as the listing's were
    // (`read_replay`); the sweep after them asks AWS.
    let replay = std::sync::Arc::clone(&ctx.clients.replay);
    let keeping = crate::read_replay::Keeping::start(&replay);
    let plan = crate::engine::walk::teardown(ctx, purge).await?;
    if !cli.json {
        println!("Stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
        print!("{}", render::plan(&plan, render::colour_wanted()));
    }
    let mut applied = false;
    if plan.has_changes() {
        if !confirm(&format!("Delete everything of stack {}?", ctx.stack.name), yes)? {
            return Ok(None);
        }
        ctx.mode = Mode::Apply;
        if !cli.json {
            eprintln!("\nDeleting:");
        }
        replay.replay();
        crate::engine::walk::teardown(ctx, purge).await?;
        applied = true;
    }
    drop(keeping);
    let leftovers = crate::engine::walk::sweep(ctx).await?;
    let mut kept: Vec<String> = crate::resources::ci_role::kept(ctx).await?.into_iter().collect();
    kept.extend(crate::resources::iam::kept(ctx).await?);
    kept.extend(crate::engine::walk::kept(ctx).await?);
    Ok(Some((plan, applied, leftovers, kept)))
}
