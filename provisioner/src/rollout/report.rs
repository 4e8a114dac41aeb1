//! What a rollout is reported as: following the deployment `up`, `deploy` and `rollback` start,
//! its progress on stderr, the `rollout` object of their `--json` output with the diagnostics of a
//! failure, and the exit code it gives (3 when it did not complete).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Gate, Outcome, Rollout, Until};
use crate::cli::{Cli, RolloutArgs};
use crate::error::{AwsContext, Error};
use crate::exit;
use crate::reconcile::Ctx;
use crate::resources::{cluster, load_balancer};

/// The `rollout` object of `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub deployment: String,
    /// completed | failed | rolled-back | timed-out | stuck
    pub result: &'static str,
    pub reason: Option<String>,
    pub diagnostics: Vec<String>,
    pub seconds: f64,
    /// What the gate of a canary, linear or blue/green deployment measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<super::GateReport>,
}

/// Follows the rollout of `task_definition`, printing progress (stderr) and, on failure, the
/// diagnostics.
pub async fn follow_and_report(
    ctx: &Ctx,
    task_definition: &str,
    deployment_id: Option<String>,
    timeout: Duration,
    target_group: Option<&str>,
    json: bool,
    until: Until,
) -> Result<RolloutReport, Error> {
    let started = Instant::now();
    let (cluster, name) = (cluster::name(&ctx.stack), crate::resources::service::name(&ctx.stack));
    let r = Rollout {
        cluster: &cluster,
        service: &name,
        task_definition,
        deployment_id,
        timeout,
        poll: Duration::from_secs(5),
        stall: stall_after()?,
        until,
    };
    if !json {
        eprintln!("\nFollowing the deployment of {task_definition} (up to {}):", humantime_secs(timeout));
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last = String::new();
    let mut progress = |line: &str| {
        if line.starts_with("event: ") || !terminal {
            if line != last {
                eprintln!("  {line}");
            }
        } else {
            eprint!("\r  {line}\x1b[K");
        }
        last = line.to_owned();
    };
    let outcome = super::follow(&ctx.clients.ecs, &r, &mut progress, async || capacity_full(ctx).await).await?;
    if terminal {
        eprintln!();
    }
    let (deployment, result, reason) = match &outcome {
        Outcome::Completed { deployment } => (deployment.clone(), "completed", None),
        Outcome::Failed { deployment, reason, rolled_back } => {
            (deployment.clone(), if *rolled_back { "rolled-back" } else { "failed" }, Some(reason.clone()))
        }
        // The time allowed, which the caller chose (how long it took to notice varies by a poll).
        Outcome::TimedOut { deployment, .. } => {
            (deployment.clone(), "timed-out", Some(format!("not COMPLETED within {}", humantime_secs(timeout))))
        }
        Outcome::Stuck { deployment, reason } => (
            deployment.clone(),
            "stuck",
            Some(format!("{reason}; the deployment goes on in ECS: fix the cause, or `provisioner rollback`")),
        ),
    };
    // A deployment the SLO alarms stopped: say which alarm.
    let reason = match &outcome {
        Outcome::Failed { rolled_back, .. } => {
            let firing = crate::resources::alarms::firing(ctx).await?;
            if firing.is_empty() { reason } else { Some(alarm_reason(&firing, *rolled_back)) }
        }
        _ => reason,
    };
    let mut diagnostics = Vec::new();
    if result != "completed" {
        diagnostics =
            super::diagnostics(&ctx.clients.ecs, target_group.map(|tg| (&ctx.clients.elb, tg)), &cluster, &name)
                .await?;
        eprintln!("\nDeployment {deployment} {result}: {}", reason.clone().unwrap_or_default());
        for d in &diagnostics {
            eprintln!("  {d}");
        }
    } else if !json {
        eprintln!("Deployment {deployment} completed in {:.0}s.", started.elapsed().as_secs_f64());
    }
    Ok(RolloutReport { deployment, result, reason, diagnostics, seconds: started.elapsed().as_secs_f64(), gate: None })
}

/// How long a deployment may stand still before the follow asks whether anything can move it:
/// 3 minutes (ECS starts a task or says why within seconds; an instance that managed scaling adds
/// takes a few minutes, during which ECS says it cannot place the task); `KONNICHIWA_STALL_AFTER`
/// sets another.
fn stall_after() -> Result<Duration, Error> {
    match std::env::var("KONNICHIWA_STALL_AFTER") {
        Ok(text) => stack::parse_duration(&text).map_err(|e| Error::Usage(format!("KONNICHIWA_STALL_AFTER: {e}"))),
        Err(_) => Ok(Duration::from_secs(180)),
    }
}

/// Why the service's instances cannot grow (None while they can): the Auto Scaling group is at
/// its maximum, every instance in service.
async fn capacity_full(ctx: &Ctx) -> Result<Option<String>, Error> {
    let name = crate::resources::capacity::names(&ctx.stack).asg;
    let Some(g) = crate::resources::capacity::group::observe(ctx, &name).await? else { return Ok(None) };
    let max = g.max;
    let full = g.desired >= max && g.in_service >= usize::try_from(max).unwrap_or(0);
    let service = &ctx.stack.service;
    Ok(full.then(|| {
        format!(
            "the instances are at capacity.max ({max}, all in service): raise capacity.max, or lower service.cpu \
             ({}) or service.memory ({} MiB) so that more tasks fit on one instance",
            service.cpu, service.memory
        )
    }))
}

/// `rolled back: alarm NAME in ALARM` (or `failed: …` when the deployment was not rolled back).
fn alarm_reason(firing: &[String], rolled_back: bool) -> String {
    let what = if rolled_back { "rolled back" } else { "failed" };
    let alarms = if firing.len() == 1 { "alarm" } else { "alarms" };
    format!("{what}: {alarms} {} in ALARM", firing.join(", "))
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// 0 when there was no rollout or it completed; DeployFailed (exit 3) otherwise.
pub fn exit_for(rollout: Option<&RolloutReport>) -> Result<u8, Error> {
    match rollout {
        Some(r) if r.result != "completed" => Err(Error::DeployFailed(format!(
            "deployment {} {}: {} (exit 3; the diagnostics are above)",
            r.deployment,
            r.result,
            r.reason.clone().unwrap_or_default()
        ))),
        _ => Ok(exit::OK),
    }
}

/// Points the service at the revision `arn` and follows the new deployment (unless `no_wait`):
/// (deployment id, rollout). What `deploy` and `rollback` share. A canary, linear or blue/green
/// service's deployment is followed as a service deployment, through `gate` (`shifted`).
pub async fn switch_to(
    ctx: &Ctx,
    cli: &Cli,
    arn: &str,
    follow: &RolloutArgs,
    gate: &Gate,
) -> Result<(Option<String>, Option<RolloutReport>), Error> {
    let (cluster, name) = (cluster::name(&ctx.stack), crate::resources::service::name(&ctx.stack));
    let shifting = ctx.stack.service.deployment.strategy.shifts_traffic();
    let before: BTreeSet<String> =
        if shifting { super::shifted::listed(ctx).await?.into_iter().collect() } else { BTreeSet::new() };
    let updated = ctx
        .clients
        .ecs
        .update_service()
        .cluster(&cluster)
        .service(&name)
        .task_definition(arn)
        .send()
        .await
        .ctx("update service", &name)?;
    if shifting {
        return follow_shifted(ctx, cli, &before, follow, gate).await;
    }
    let deployment_id = updated.service().and_then(|s| {
        s.deployments().iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.id().map(str::to_owned))
    });
    if !cli.json {
        eprintln!("Service {name} is deploying {arn} (deployment {}).", deployment_id.clone().unwrap_or_default());
    }
    let report = follow_deployment(ctx, cli, arn, deployment_id.as_deref(), follow, Until::Completed).await?;
    Ok((deployment_id, report))
}

/// The service deployment an update of a canary, linear or blue/green service started, followed
/// through the gate (unless --no-wait, which leaves it at the gate: the next `deploy` judges it,
/// and unanswered it rolls back once `gate.timeout` passes).
async fn follow_shifted(
    ctx: &Ctx,
    cli: &Cli,
    before: &BTreeSet<String>,
    follow: &RolloutArgs,
    gate: &Gate,
) -> Result<(Option<String>, Option<RolloutReport>), Error> {
    let started = super::shifted::started_after(ctx, before).await?;
    if !cli.json {
        eprintln!(
            "Service {} is deploying through {} (service deployment {started}).",
            crate::resources::service::name(&ctx.stack),
            strategy_words(&ctx.stack)
        );
    }
    if follow.no_wait {
        // Nothing to judge (a rollback): answered, not left at the gate to time out and undo it.
        if let Gate::Skip(_) = gate {
            let wait = (shifted_timeout(&ctx.stack), super::shifted::Until::Answered);
            let report = super::shifted::follow(ctx, &started, gate, wait, cli.json).await?;
            return Ok((Some(started), Some(report)));
        }
        if !cli.json {
            eprintln!("{}", left_at_the_gate(&ctx.stack));
        }
        return Ok((Some(started), None));
    }
    let timeout = follow.timeout.unwrap_or_else(|| shifted_timeout(&ctx.stack));
    let report = super::shifted::follow(ctx, &started, gate, (timeout, super::shifted::Until::Ended), cli.json).await?;
    Ok((Some(started), Some(report)))
}

/// `canary (5% for 10m)`, `linear (10% every 6m)`, `blue/green (bake 10m)`.
pub fn strategy_words(stack: &stack::Stack) -> String {
    let d = &stack.service.deployment;
    match d.strategy {
        stack::Strategy::Rolling => "a rolling update".into(),
        stack::Strategy::Canary => format!("canary ({} for {})", d.canary.percent.text(), d.canary.bake.text()),
        stack::Strategy::Linear => format!("linear ({} every {})", d.linear.step.text(), d.linear.step_bake.text()),
        stack::Strategy::BlueGreen => format!("blue/green (bake {})", d.blue_green.bake.text()),
    }
}

/// What --no-wait leaves a shifting deployment to.
pub fn left_at_the_gate(stack: &stack::Stack) -> String {
    format!(
        "Not followed (--no-wait): ECS holds the new revision at the gate until `provisioner deploy` judges it; \
         unanswered, it rolls back after service.deployment.gate.timeout ({}).",
        stack.service.deployment.gate.timeout.text()
    )
}

/// How long a shifting deployment may take by default: the deploy timeout, the gate, and every
/// bake its strategy holds.
pub fn shifted_timeout(stack: &stack::Stack) -> Duration {
    let d = &stack.service.deployment;
    let bakes = match d.strategy {
        stack::Strategy::Canary => d.canary.bake.get(),
        stack::Strategy::Linear => {
            let steps = (100.0 / d.linear.step.get().max(0.1)).ceil() as u32;
            d.linear.step_bake.get() * steps.saturating_sub(1)
        }
        _ => Duration::ZERO,
    };
    d.timeout.get() + d.gate.duration.get() + bakes + d.blue_green.bake.get()
}

/// The stack's service as ECS describes it; refused when it is not ACTIVE (none, or draining).
pub async fn active_service(ctx: &Ctx) -> Result<aws_sdk_ecs::types::Service, Error> {
    let (cluster, name) = (cluster::name(&ctx.stack), crate::resources::service::name(&ctx.stack));
    let out = ctx
        .clients
        .ecs
        .describe_services()
        .cluster(&cluster)
        .services(&name)
        .send()
        .await
        .ctx("describe service", &name)?;
    out.services().iter().find(|s| s.status() == Some("ACTIVE")).cloned().ok_or_else(|| {
        Error::Refused(format!("service {name} does not exist in cluster {cluster}: run `provisioner up`"))
    })
}

/// Follows the service's PRIMARY deployment until the service is steady (`wait`, `scale`, which
/// gives the count it set as `desired`): its (deployment id, rollout), the rollout None with
/// --no-wait.
pub async fn follow_service(
    ctx: &Ctx,
    cli: &Cli,
    follow: &RolloutArgs,
    desired: Option<i32>,
) -> Result<(Option<String>, Option<RolloutReport>), Error> {
    let primary = active_service(ctx).await?.deployments().iter().find(|d| d.status() == Some("PRIMARY")).cloned();
    let primary = primary.ok_or_else(|| {
        let (cluster, name) = (cluster::name(&ctx.stack), &crate::resources::service::name(&ctx.stack));
        Error::Refused(format!("service {name} does not exist in cluster {cluster}: run `provisioner up`"))
    })?;
    let (id, td) = (primary.id().map(str::to_owned), primary.task_definition().unwrap_or_default().to_owned());
    let report = follow_deployment(ctx, cli, &td, id.as_deref(), follow, Until::Steady { desired }).await?;
    Ok((id, report))
}

/// Follows deployment `deployment_id` of revision `arn` (unless --no-wait), adding the target
/// group's health to a failure's diagnostics.
async fn follow_deployment(
    ctx: &Ctx,
    cli: &Cli,
    arn: &str,
    deployment_id: Option<&str>,
    follow: &RolloutArgs,
    until: Until,
) -> Result<Option<RolloutReport>, Error> {
    let (cluster, name) = (cluster::name(&ctx.stack), crate::resources::service::name(&ctx.stack));
    if follow.no_wait {
        return Ok(None);
    }
    let timeout = follow.timeout.unwrap_or_else(|| ctx.stack.service.deployment.timeout.get());
    // The target group's health is looked up only if the rollout fails (below).
    let report = follow_and_report(ctx, arn, deployment_id.map(str::to_owned), timeout, None, cli.json, until).await?;
    if report.result == "completed" || report.diagnostics.iter().any(|d| d.starts_with("target ")) {
        return Ok(Some(report));
    }
    // Add target health to the diagnostics of a failed rollout.
    let tg_name = load_balancer::tg_name(&ctx.stack);
    let tgs = ctx.clients.elb.describe_target_groups().names(&tg_name).send().await.ok();
    let tg_arn =
        tgs.as_ref().and_then(|t| t.target_groups().first()).and_then(|t| t.target_group_arn()).map(str::to_owned);
    let Some(tg_arn) = tg_arn else { return Ok(Some(report)) };
    let extra = super::diagnostics(&ctx.clients.ecs, Some((&ctx.clients.elb, &tg_arn)), &cluster, &name).await?;
    for d in extra.iter().filter(|d| d.starts_with("target ")) {
        eprintln!("  {d}");
    }
    Ok(Some(RolloutReport { diagnostics: extra, ..report }))
}
