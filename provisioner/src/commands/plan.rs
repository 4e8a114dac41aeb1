//! `plan`: observe + diff + render; never mutates.

use serde::Serialize;

use super::answer::{self, Spent};
use super::context;
use crate::cli::{Cli, PlanArgs};
use crate::engine as driver;
use crate::error::Error;
use crate::exit;
use crate::reconcile::{Mode, ResourceChange, Summary, render};

/// `plan --json`.
#[derive(Serialize)]
struct Planned<'a> {
    region: &'a str,
    changes_pending: bool,
    resources: &'a [ResourceChange],
    summary: Summary,
    notes: &'a [String],
    /// The monthly estimate after the change, now, and the difference.
    cost: crate::cost::Compared,
    #[serde(flatten)]
    spent: Spent,
}

pub async fn run(cli: &Cli, args: &PlanArgs) -> Result<u8, Error> {
    let PlanArgs { detailed_exitcode, ref image_repository, update_ami, ref out } = *args;
    let mut ctx = context(cli, Mode::Plan, std::time::Duration::from_secs(600)).await?;
    ctx.stack.capacity.follow_recommended_ami |= update_ami;
    let image = super::image_source(cli, &ctx, image_repository.as_deref())?;
    let (plan, outputs) = driver::reconcile(&ctx, &image).await?;
    let cost = crate::cost::Compared::of(&ctx.stack, &plan, outputs.capacity.instances_desired);
    if let Some(path) = out {
        super::saved_plan::SavedPlan::of(&ctx, &plan).await?.write(path)?;
        eprintln!(
            "Saved the plan to {}: `provisioner up --plan {}` applies exactly it.",
            path.display(),
            path.display()
        );
    }
    if cli.json {
        let body = Planned {
            region: &ctx.stack.region,
            changes_pending: plan.has_changes(),
            resources: &plan.resources,
            summary: plan.summary(),
            notes: &plan.notes,
            cost,
            spent: Spent::calls(ctx.clients.calls.counts()),
        };
        answer::print("plan", Some(&ctx.stack.name), body);
    } else {
        println!("Stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
        print!("{}", render::plan(&plan, render::colour_wanted()));
        print!("{}", crate::cost::render_compared(&cost));
    }
    Ok(if detailed_exitcode && plan.has_changes() { exit::CHANGES_PENDING } else { exit::OK })
}
