//! `deploy --image REF`: the fast path — describe the latest task definition, register it again
//! with the new image, update the service, follow the new deployment. Nothing else is observed.
//! A canary, linear or blue/green service is judged at the gate (`rollout::gate`); a service
//! deployment still in flight (a `deploy` killed mid-gate or mid-bake) is finished first.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::answer::{self, Spent};
use super::{context, holding_lease};
use crate::cli::{Cli, DeployArgs, RolloutArgs};
use crate::error::Error;
use crate::reconcile::{Ctx, Mode};
use crate::resources::load_balancer;
use crate::resources::service;
use crate::rollout::{Gate, RolloutReport, exit_for, shifted, switch_to};

/// `deploy --json`.
#[derive(Serialize)]
struct Deployed<'a> {
    task_definition_arn: &'a str,
    image: &'a str,
    deployment_id: Option<&'a str>,
    rollout: Option<&'a RolloutReport>,
    #[serde(flatten)]
    spent: Spent,
}

pub async fn run(cli: &Cli, args: &DeployArgs) -> Result<u8, Error> {
    let (image, follow, gate_url) = (args.image.as_str(), &args.rollout, args.gate_url.as_deref());
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Apply, Duration::from_secs(3600)).await?;
    let ((arn, deployment_id, rollout), lease) =
        holding_lease(&mut ctx, "deploy", follow.lock_timeout, async |ctx: &mut Ctx| {
            deploy(ctx, cli, image, follow, gate_url).await
        })
        .await?;
    if cli.json {
        let body = Deployed {
            task_definition_arn: &arn,
            image,
            deployment_id: deployment_id.as_deref(),
            rollout: rollout.as_ref(),
            spent: Spent::leased(ctx.clients.calls.counts(), lease, started),
        };
        answer::print("deploy", Some(&ctx.stack.name), body);
    } else {
        println!("{arn}");
    }
    exit_for(rollout.as_ref())
}

/// Registers the revision, updates the service and follows the rollout: (task definition ARN,
/// deployment id, rollout).
async fn deploy(
    ctx: &Ctx,
    cli: &Cli,
    image: &str,
    follow: &RolloutArgs,
    gate_url: Option<&str>,
) -> Result<(String, Option<String>, Option<RolloutReport>), Error> {
    let gate = gate(ctx, gate_url).await?;
    if ctx.stack.service.deployment.strategy.shifts_traffic() {
        finish_in_flight(ctx, cli, follow, &gate).await?;
    }
    let family = service::family(&ctx.stack);
    let current = service::task::observe_latest(ctx, &family).await?.ok_or_else(|| {
        Error::Refused(format!("task definition family {family} has no active revision: run `provisioner up` first"))
    })?;
    let spec = service::TaskSpec { image: image.to_owned(), sources: None, ..current.spec };
    let arn = service::task::register(ctx, &family, &spec).await?;
    let (deployment_id, report) = switch_to(ctx, cli, &arn, follow, &gate).await?;
    Ok((arn, deployment_id, report))
}

/// Where the gate sends its load: `--gate-url`, else the stack's URL (a rolling stack has no gate).
async fn gate(ctx: &Ctx, gate_url: Option<&str>) -> Result<Gate, Error> {
    if !ctx.stack.service.deployment.strategy.shifts_traffic() {
        return Ok(Gate::Skip("a rolling update has no gate".into()));
    }
    let url = match gate_url {
        Some(u) => Some(u.to_owned()),
        None => load_balancer::locate_url(ctx).await?,
    };
    // What the gate would send, checked before a deployment starts (not at the hook).
    crate::rollout::gate::mix(&ctx.stack)?;
    let url = url.ok_or_else(|| {
        Error::Refused(format!(
            "the stack has no load balancer to send the gate's load to: run `provisioner up` first (or give \
             --gate-url); {} judges each revision before production traffic moves",
            crate::rollout::strategy_words(&ctx.stack)
        ))
    })?;
    Ok(Gate::Judge { url })
}

/// A service deployment still in flight (a `deploy` killed mid-gate or mid-bake): judged at the
/// gate if it waits there, and followed to its end before the new one starts.
async fn finish_in_flight(ctx: &Ctx, cli: &Cli, follow: &RolloutArgs, gate: &Gate) -> Result<(), Error> {
    let Some(d) = shifted::in_flight(ctx).await? else { return Ok(()) };
    let arn = d.service_deployment_arn().unwrap_or_default().to_owned();
    if !cli.json {
        eprintln!("Service deployment {arn} is still in flight ({}): finishing it first.", shifted::where_it_is(&d));
    }
    let timeout = follow.timeout.unwrap_or_else(|| crate::rollout::shifted_timeout(&ctx.stack));
    let report = shifted::follow(ctx, &arn, gate, (timeout, shifted::Until::Ended), cli.json).await?;
    if report.result == "timed-out" {
        return Err(Error::DeployFailed(format!(
            "service deployment {arn} is still in flight: {} (exit 3)",
            report.reason.unwrap_or_default()
        )));
    }
    Ok(())
}
