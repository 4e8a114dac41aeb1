//! `up`: holding the stack's lease, plan, confirm, apply in dependency order (building and pushing
//! the image for `service.image: build`), follow the new deployment, print the outputs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::answer::{self, PlanView, Spent};
use super::saved_plan::SavedPlan;
use super::{confirm, context, holding_lease};
use crate::cli::{Cli, UpArgs};
use crate::cost::{Compared, amount};
use crate::engine::{self, ImageSource, Outputs};
use crate::error::Error;
use crate::reconcile::{Ctx, Mode, Plan, render};
use crate::rollout::RolloutReport;

/// What an `up` did, before it is printed.
struct Applied {
    /// What was shown before the confirmation.
    plan: Plan,
    outputs: Outputs,
    /// What the apply found and did, when it ran: the changes may differ from the plan's when the
    /// stack moved between the two (another tool, a resource that finished provisioning).
    applied: Option<Plan>,
    rollout: Option<RolloutReport>,
    /// The monthly estimate shown with the plan (None when nothing was to change).
    cost: Option<Compared>,
}

/// `up --json`.
#[derive(Serialize)]
struct UpAnswer<'a> {
    region: &'a str,
    /// What was shown before the confirmation.
    plan: PlanView<'a>,
    applied: bool,
    /// The rows the apply pass changed (null when nothing was applied).
    applied_changes: Option<PlanView<'a>>,
    rollout: Option<&'a RolloutReport>,
    outputs: &'a Outputs,
    #[serde(flatten)]
    spent: Spent,
}

pub async fn run(cli: &Cli, args: &UpArgs) -> Result<u8, Error> {
    let UpArgs {
        yes,
        no_wait,
        update_ami,
        timeout,
        lock_timeout,
        ref image_repository,
        skip_verify,
        ref saved_plan,
        ref gate_url,
    } = *args;
    let saved = saved_plan.as_deref().map(SavedPlan::read).transpose()?;
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Plan, timeout).await?;
    ctx.stack.capacity.follow_recommended_ami |= update_ami;
    let image = super::image_source(cli, &ctx, image_repository.as_deref())?;
    if !skip_verify {
        super::verify::before_up(&ctx).await?;
    }
    let (done, lease) = holding_lease(&mut ctx, "up", lock_timeout, async |ctx: &mut Ctx| {
        converge(ctx, cli, &image, (yes, no_wait), gate_url.as_deref(), saved.as_ref()).await
    })
    .await?;
    let Some(Applied { plan, outputs, applied, rollout, cost }) = done else {
        eprintln!("Nothing was changed.");
        return Ok(crate::exit::ERROR);
    };
    let calls = ctx.clients.calls.counts();
    let extra = summary_lines(cost.as_ref(), &outputs, rollout.as_ref());
    render::github_summary(&render::markdown(
        &format!("provisioner up: stack {} ({})", ctx.stack.name, ctx.stack.region),
        &plan,
        &extra,
    ));
    if cli.json {
        let body = UpAnswer {
            region: &ctx.stack.region,
            plan: PlanView::all(&plan),
            applied: applied.is_some(),
            applied_changes: applied.as_ref().map(PlanView::changed),
            rollout: rollout.as_ref(),
            outputs: &outputs,
            spent: Spent::leased(calls, lease, started),
        };
        answer::print("up", Some(&ctx.stack.name), body);
    } else {
        println!(
            "\n{} in {:.1}s ({} read and {} mutating API calls; the lease took {} more).",
            if applied.is_some() { "Applied" } else { "Nothing to do" },
            started.elapsed().as_secs_f64(),
            calls.read,
            calls.mutating,
            lease.api_calls.read + lease.api_calls.mutating
        );
        if let Some(url) = &outputs.load_balancer.url {
            println!("URL: {url}");
            if let Some(note) = crate::sandbox::note(crate::sandbox::Topic::Url) {
                println!("  ({note})");
            }
        }
        println!("\nOutputs:\n{}", serde_json::to_string_pretty(&outputs).unwrap_or_default());
    }
    crate::rollout::exit_for(rollout.as_ref())
}

/// What the GitHub job summary says below the plan: the estimate, the URL, the image pushed, the
/// rollout.
fn summary_lines(cost: Option<&Compared>, outputs: &Outputs, rollout: Option<&RolloutReport>) -> Vec<String> {
    let mut extra = Vec::new();
    if let Some(cost) = cost {
        extra.push(format!(
            "Monthly estimate: **{} USD** (was {}; at full scale {}), prices: {}",
            amount(cost.after.monthly_usd),
            amount(cost.now.monthly_usd),
            amount(cost.after.at_full_scale_usd),
            cost.prices
        ));
    }
    if let Some(url) = &outputs.load_balancer.url {
        extra.push(format!("URL: {url}"));
    }
    if let Some(p) = &outputs.push {
        extra.push(format!(
            "Image: `{}` ({} new blobs, {} bytes uploaded)",
            p.reference, p.blobs_uploaded, p.bytes_uploaded
        ));
    }
    if let Some(r) = rollout {
        extra.push(format!(
            "Rollout {}: **{}** in {:.0}s {}",
            r.deployment,
            r.result,
            r.seconds,
            r.reason.clone().unwrap_or_default()
        ));
        extra.extend(r.diagnostics.iter().map(|d| format!("- {d}")));
    }
    extra
}

/// Run as the CI deploy role, refuses (before any change) a plan that creates roles or changes
/// their trust or the permissions boundary, or makes or changes a resource policy (the log
/// bucket's, the secret's, the topic's): the role may not, by design, and finding out half-way
/// would leave the stack half-changed.
async fn refuse_administrators_changes(ctx: &Ctx, plan: &Plan) -> Result<(), Error> {
    let pending = crate::resources::iam::needs_administrator(plan);
    if pending.is_empty() || !crate::resources::iam::run_by_deploy_role(ctx).await? {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "these changes need an administrator, and this run is the CI deploy role {}, which may not create roles, \
         change their trust or permissions boundary, write a resource policy (the log bucket's, the secret's, the \
         alarms' topic's) or make or change an error budget alert (PutCompositeAlarm takes no narrower scope than \
         `*`): {}. Nothing was changed. Run `provisioner ci-role --github-repo OWNER/NAME` for the \
         roles, and `provisioner up` for the rest, once with administrator credentials for this stack file, then \
         run the deploy again",
        crate::resources::ci_role::role_name(&ctx.stack.name),
        pending.join("; ")
    )))
}

/// Whether the apply started a service deployment: surely (the service made, given another
/// revision or its tasks rolled), perhaps (its load balancer's settings changed, which ECS
/// documents as starting one) or not (nothing of the service changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Started {
    Surely,
    Perhaps,
    No,
}

fn started(applied: &Plan) -> Started {
    let service = applied.resources.iter().find(|r| r.kind == crate::resources::service::ECS_SERVICE);
    match service.map(|r| &r.change) {
        Some(c) if c.action == crate::reconcile::Action::Create || c.has("task_definition") || c.has("tasks") => {
            Started::Surely
        }
        Some(c) if !c.is_no_op() => Started::Perhaps,
        _ => Started::No,
    }
}

/// A canary, linear or blue/green service whose plan changes it, while a service deployment is
/// in flight: refused (ECS would start a second one, or refuse a strategy change, mid-gate or
/// mid-bake). Else the service deployments there are now, to tell the one the apply starts.
async fn refuse_while_in_flight(ctx: &Ctx, plan: &Plan) -> Result<BTreeSet<String>, Error> {
    use crate::resources::load_balancer::{LISTENER_RULE, TARGET_GROUP, alternate_tg_name};
    use crate::rollout::shifted;
    let service = crate::resources::service::ECS_SERVICE;
    // A service made in this run has no deployment yet (nor its cluster, perhaps, to list them in).
    let updates_service =
        plan.resources.iter().any(|r| r.kind == service && r.change.action == crate::reconcile::Action::Update);
    // The rules ECS moves, or the alternate group, changed (or retired, back on rolling).
    let alternate = alternate_tg_name(&ctx.stack.name);
    let shifting_rows = plan.resources.iter().any(|r| {
        let strategys_rule = r.kind == LISTENER_RULE && (r.name.ends_with(":test") || r.name.ends_with(":production"));
        (strategys_rule || (r.kind == TARGET_GROUP && r.name == alternate)) && !r.change.is_no_op()
    });
    let shifting = ctx.stack.service.deployment.strategy.shifts_traffic() || shifting_rows;
    let exists =
        plan.resources.iter().any(|r| r.kind == service && r.change.action != crate::reconcile::Action::Create);
    if !exists || !shifting || !(updates_service || shifting_rows) {
        return Ok(BTreeSet::new());
    }
    if let Some(d) = shifted::in_flight(ctx).await? {
        return Err(Error::Refused(format!(
            "service deployment {} is in flight ({}): `provisioner deploy` finishes it (judging it at the gate), \
             `provisioner rollback` undoes it; then run `up`. Nothing was changed",
            d.service_deployment_arn().unwrap_or_default(),
            shifted::where_it_is(&d)
        )));
    }
    Ok(shifted::listed(ctx).await?.into_iter().collect())
}

/// Plans, confirms, applies and follows the rollout; None when the user said no.
async fn converge(
    ctx: &mut Ctx,
    cli: &Cli,
    image: &ImageSource,
    (yes, no_wait): (bool, bool),
    gate_url: Option<&str>,
    saved: Option<&SavedPlan>,
) -> Result<Option<Applied>, Error> {
    // The apply's reads, up to each service's first change, are answered as the plan's were
    // (`read_replay`); after the apply, or when nothing is applied, nothing is kept.
    let replay = Arc::clone(&ctx.clients.replay);
    let _keeping = crate::read_replay::Keeping::start(&replay);
    let (plan, outputs) = engine::reconcile(ctx, image).await?;
    if !cli.json {
        println!("Stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
        print!("{}", render::plan(&plan, render::colour_wanted()));
    }
    // A saved plan was reviewed when it was made: it is applied without asking, if it is this one.
    if let Some(saved) = saved {
        saved.check(ctx, &plan).await?;
    }
    let yes = yes || saved.is_some();
    if !plan.has_changes() {
        return Ok(Some(Applied { plan, outputs, applied: None, rollout: None, cost: None }));
    }
    let cost = Compared::of(&ctx.stack, &plan, outputs.capacity.instances_desired);
    if !cli.json {
        print!("{}", crate::cost::render_compared(&cost));
    }
    refuse_administrators_changes(ctx, &plan).await?;
    let before = refuse_while_in_flight(ctx, &plan).await?;
    if !confirm("Apply these changes?", yes)? {
        return Ok(None);
    }
    ctx.mode = Mode::Apply;
    if !cli.json {
        eprintln!("\nApplying:");
    }
    replay.replay();
    let (applied, outputs) = engine::reconcile(ctx, image).await?;
    replay.stop();
    let mut rollout = None;
    if ctx.stack.service.deployment.strategy.shifts_traffic() {
        // Never the rolling follow: it would not answer the gate.
        let url = gate_url.map(str::to_owned).or_else(|| outputs.load_balancer.url.clone());
        rollout = follow_shifted(ctx, cli, url.as_deref(), (&before, started(&applied)), no_wait).await?;
    } else if let (Some(id), Some(td), false) =
        (&outputs.service.deployment_id, outputs.service.task_definition_arn.known(), no_wait)
    {
        let deploy_timeout =
            ctx.stack.service.deployment.timeout.get().min(ctx.deadline.saturating_duration_since(Instant::now()));
        rollout = Some(
            crate::rollout::follow_and_report(
                ctx,
                td,
                Some(id.clone()),
                deploy_timeout,
                outputs.load_balancer.target_group_arn.known(),
                cli.json,
                crate::rollout::Until::Completed,
            )
            .await?,
        );
    }
    Ok(Some(Applied { plan, outputs, applied: Some(applied), rollout, cost: Some(cost) }))
}

/// The service deployment an `up` of a canary, linear or blue/green service started (one that
/// `before` lacks), followed through the gate at the stack's URL (--no-wait leaves it at the
/// gate, and says so). A change of the service's settings may start none: looked for a while.
async fn follow_shifted(
    ctx: &Ctx,
    cli: &Cli,
    url: Option<&str>,
    (before, started): (&BTreeSet<String>, Started),
    no_wait: bool,
) -> Result<Option<RolloutReport>, Error> {
    use crate::rollout::shifted;
    if no_wait {
        if started != Started::No && !cli.json {
            eprintln!("{}", crate::rollout::left_at_the_gate(&ctx.stack));
        }
        return Ok(None);
    }
    let arn = match started {
        Started::No => return Ok(None),
        Started::Surely => Some(shifted::started_after(ctx, before).await?),
        Started::Perhaps => shifted::started_within(ctx, before, std::time::Duration::from_secs(15)).await?,
    };
    let Some(arn) = arn else { return Ok(None) };
    let gate = match url {
        Some(u) => crate::rollout::Gate::Judge { url: u.to_owned() },
        None => return Err(Error::Refused("the stack has no URL for the gate to send its load to".into())),
    };
    let timeout =
        crate::rollout::shifted_timeout(&ctx.stack).min(ctx.deadline.saturating_duration_since(Instant::now()));
    Ok(Some(shifted::follow(ctx, &arn, &gate, (timeout, shifted::Until::Ended), cli.json).await?))
}
