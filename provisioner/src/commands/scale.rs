//! `scale --tasks N` (ecspresso's `scale`): the service's task count set at once, without a plan,
//! and followed until the service is steady; and `wait`: until the service is steady. Both end as
//! `deploy` does: 0 steady, 3 failed, rolled back, stuck or timed out.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::answer::{self, Spent};
use super::{context, holding_lease};
use crate::cli::{Cli, RolloutArgs, ScaleArgs, WaitArgs};
use crate::error::{AwsContext, Error};
use crate::reconcile::{Ctx, Mode};
use crate::resources::cluster;
use crate::rollout::{RolloutReport, active_service, exit_for, follow_service};

/// `scale --json`.
#[derive(Serialize)]
struct Scaled<'a> {
    desired: u32,
    was: i32,
    note: Option<&'a str>,
    rollout: Option<&'a RolloutReport>,
    #[serde(flatten)]
    spent: Spent,
}

/// `wait --json`.
#[derive(Serialize)]
struct Waited<'a> {
    deployment_id: Option<&'a str>,
    rollout: Option<&'a RolloutReport>,
    #[serde(flatten)]
    spent: Spent,
}

pub async fn scale(cli: &Cli, args: &ScaleArgs) -> Result<u8, Error> {
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Apply, Duration::from_secs(3600)).await?;
    if let Some(refusal) = out_of_bounds(&ctx.stack, args.tasks) {
        return Err(Error::Usage(refusal));
    }
    let note = what_happens_next(&ctx.stack, args.tasks);
    let ((was, rollout), lease) = holding_lease(&mut ctx, "scale", args.rollout.lock_timeout, async |ctx: &mut Ctx| {
        set_count(ctx, cli, args.tasks, &args.rollout).await
    })
    .await?;
    if cli.json {
        let body = Scaled {
            desired: args.tasks,
            was,
            note: note.as_deref(),
            rollout: rollout.as_ref(),
            spent: Spent::leased(ctx.clients.calls.counts(), lease, started),
        };
        answer::print("scale", Some(&ctx.stack.name), body);
    } else {
        println!("Service {}: desired {} (was {was}).", ctx.stack.name, args.tasks);
        if let Some(note) = &note {
            println!("Note: {note}");
        }
    }
    exit_for(rollout.as_ref())
}

pub async fn wait(cli: &Cli, args: &WaitArgs) -> Result<u8, Error> {
    let ctx = context(cli, Mode::Plan, Duration::from_secs(3600)).await?;
    let follow = RolloutArgs { timeout: args.timeout, no_wait: false, lock_timeout: Duration::ZERO };
    let (deployment_id, rollout) = follow_service(&ctx, cli, &follow, None).await?;
    if cli.json {
        let body = Waited {
            deployment_id: deployment_id.as_deref(),
            rollout: rollout.as_ref(),
            spent: Spent::calls(ctx.clients.calls.counts()),
        };
        answer::print("wait", Some(&ctx.stack.name), body);
    }
    exit_for(rollout.as_ref())
}

/// Sets the desired count and follows the service: (the count before, the rollout).
async fn set_count(
    ctx: &Ctx,
    cli: &Cli,
    tasks: u32,
    follow: &RolloutArgs,
) -> Result<(i32, Option<RolloutReport>), Error> {
    let (cluster, name) = (cluster::name(&ctx.stack), crate::resources::service::name(&ctx.stack));
    let was = active_service(ctx).await?.desired_count();
    let count = i32::try_from(tasks).map_err(|_| Error::Usage(format!("--tasks {tasks} is too many")))?;
    ctx.clients
        .ecs
        .update_service()
        .cluster(&cluster)
        .service(&name)
        .desired_count(count)
        .send()
        .await
        .ctx("update service", &name)?;
    let (_, rollout) = follow_service(ctx, cli, follow, Some(count)).await?;
    Ok((was, rollout))
}

/// With auto scaling, a count outside its bounds would be moved back at once: refused, with what
/// to change instead.
fn out_of_bounds(stack: &stack::Stack, tasks: u32) -> Option<String> {
    let a = stack.service.autoscaling.as_ref()?;
    (tasks < a.min || tasks > a.max).then(|| {
        format!(
            "--tasks {tasks} is outside service.autoscaling's {}–{}, which auto scaling would restore at once: nothing \
             was changed. Pick a count within it, or change service.autoscaling.min and max in {} and run `up`",
            a.min, a.max, "stack.yaml",
        )
    })
}

/// What becomes of the count afterwards, when something will move it.
fn what_happens_next(stack: &stack::Stack, tasks: u32) -> Option<String> {
    let svc = &stack.service;
    match &svc.autoscaling {
        Some(a) => Some(format!("auto scaling moves the count within {}–{} as the load changes", a.min, a.max)),
        None if svc.desired_count != tasks => Some(format!(
            "stack.yaml says service.desired_count {}: the next `up` sets it back; change it there to keep {tasks}",
            svc.desired_count
        )),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_auto_scaling_would_undo_is_refused_and_up_undoing_it_is_said() {
        let mut s = crate::resources::test_stack();
        s.service.desired_count = 2;
        s.service.autoscaling = None;
        assert_eq!(out_of_bounds(&s, 9), None);
        assert!(what_happens_next(&s, 5).is_some_and(|n| n.contains("the next `up` sets it back")));
        assert_eq!(what_happens_next(&s, 2), None);
        s.service.autoscaling = Some(stack::Autoscaling {
            min: 1,
            max: 4,
            target_cpu_percent: stack::Percent::from_value(60.0),
            requests_per_target: None,
        });
        let refused = out_of_bounds(&s, 9).expect("refused");
        assert!(refused.contains("outside service.autoscaling's 1–4") && refused.contains("nothing was changed"));
        assert_eq!(out_of_bounds(&s, 3), None);
        assert!(what_happens_next(&s, 3).is_some_and(|n| n.contains("auto scaling moves the count within 1–4")));
    }
}
