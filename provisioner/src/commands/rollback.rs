//! `rollback [--to REVISION|IMAGE]`: puts the service back on the revision before the one it runs
//! (or the one named: a revision number, `family:N`, or an image — the newest revision running it,
//! else a new revision of the current one with that image), then follows the rollout exactly as
//! `deploy` does (same flags, same exit codes). It says what it rolled from and to. A rollback
//! lasts until the next `up` or `deploy`, which bring stack.yaml's image back; pin the image there
//! to keep it.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::answer::{self, Spent};
use super::{context, holding_lease};
use crate::cli::{Cli, RollbackArgs, RolloutArgs};
use crate::error::Error;
use crate::reconcile::{Ctx, Mode};
use crate::resources::service::task::{self, family_and_revision};
use crate::resources::{cluster, service};
use crate::rollout::{Gate, RolloutReport, exit_for, shifted, switch_to};

/// A revision and the image it runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Revision {
    pub task_definition: String,
    pub revision: i32,
    pub image: String,
}

/// What `--to` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The newest revision before the current one.
    Previous,
    Revision(i32),
    Image(String),
}

impl Target {
    /// `7`, `family:7` or an image reference.
    pub fn parse(to: Option<&str>, family: &str) -> Self {
        let Some(to) = to else { return Self::Previous };
        let number = to.strip_prefix(&format!("{family}:")).unwrap_or(to);
        match number.parse() {
            Ok(n) => Self::Revision(n),
            Err(_) => Self::Image(to.to_owned()),
        }
    }
}

/// The revision the service runs now (or is deploying): the service's task definition.
async fn current(ctx: &Ctx) -> Result<String, Error> {
    let name = service::name(&ctx.stack);
    let observed = service::observe_service(ctx, &cluster::name(&ctx.stack), &name).await?;
    observed
        .map(|s| s.task_definition)
        .ok_or_else(|| Error::Refused(format!("service {name} does not exist: nothing to roll back (run `up`)")))
}

/// The family's ACTIVE revisions with their images, newest first (at most `limit`).
pub async fn revisions(ctx: &Ctx, limit: usize) -> Result<Vec<Revision>, Error> {
    let mut out = Vec::new();
    for arn in task::active_revisions(ctx, &service::family(&ctx.stack)).await?.into_iter().take(limit) {
        out.extend(revision(ctx, &arn).await?);
    }
    Ok(out)
}

/// `arn` with its image (None when it cannot be read as ours).
async fn revision(ctx: &Ctx, arn: &str) -> Result<Option<Revision>, Error> {
    Ok(task::describe(ctx, arn).await?.map(|t| Revision {
        task_definition: arn.to_owned(),
        revision: t.revision,
        image: t.spec.image,
    }))
}

/// The revision to go to: (revision, registered now). Revision numbers come from the listed
/// ARNs; only the revisions looked at are described.
async fn choose(ctx: &Ctx, target: &Target, from: &str) -> Result<(Revision, bool), Error> {
    let family = service::family(&ctx.stack);
    let current_revision = family_and_revision(from).map_or(i32::MAX, |(_, r)| r);
    let active = task::active_revisions(ctx, &family).await?;
    let number = |arn: &str| family_and_revision(arn).map_or(0, |(_, r)| r);
    let found = match target {
        Target::Previous => match active.iter().find(|a| number(a) < current_revision) {
            Some(arn) => revision(ctx, arn).await?,
            None => None,
        }
        .ok_or_else(|| {
            Error::Refused(format!(
                "{family}:{current_revision} is the oldest active revision: there is none before it to roll back to \
                 (`rollback --to IMAGE` deploys a given image)"
            ))
        })?,
        Target::Revision(n) => match active.iter().find(|a| number(a) == *n) {
            Some(arn) => revision(ctx, arn).await?,
            None => None,
        }
        .ok_or_else(|| {
            let known: Vec<String> = active.iter().map(|a| number(a).to_string()).collect();
            Error::Refused(format!(
                "{family}:{n} is not an active revision of {family} (active: {}); `status` lists them with their images",
                known.join(", ")
            ))
        })?,
        Target::Image(image) => {
            let mut newest_with_image = None;
            for arn in &active {
                if let Some(r) = revision(ctx, arn).await?.filter(|r| r.image == *image) {
                    newest_with_image = Some(r);
                    break;
                }
            }
            match newest_with_image {
                Some(r) => r,
                None => {
                    let now = task::describe(ctx, from).await?.ok_or_else(|| {
                        Error::Refused(format!("the running revision {from} cannot be read: run `up` first"))
                    })?;
                    let spec = service::TaskSpec { image: image.clone(), sources: None, ..now.spec };
                    let arn = task::register(ctx, &family, &spec).await?;
                    let revision = number(&arn);
                    return Ok((Revision { task_definition: arn, revision, image: image.clone() }, true));
                }
            }
        }
    };
    Ok((found, false))
}

/// `rollback --json`.
#[derive(Serialize)]
struct RolledBackAnswer<'a> {
    from: &'a Revision,
    to: &'a Revision,
    /// Whether a new revision was registered (rolling back to an image, not a revision).
    registered: bool,
    deployment_id: Option<&'a str>,
    rollout: Option<&'a RolloutReport>,
    #[serde(flatten)]
    spent: Spent,
}

pub async fn run(cli: &Cli, args: &RollbackArgs) -> Result<u8, Error> {
    let (to, follow) = (args.to.as_deref(), &args.rollout);
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Apply, Duration::from_secs(3600)).await?;
    let target = Target::parse(to, &service::family(&ctx.stack));
    let ((from, to, registered, deployment_id, rollout), lease) =
        holding_lease(&mut ctx, "rollback", follow.lock_timeout, async |ctx: &mut Ctx| {
            roll_back(ctx, cli, &target, follow).await
        })
        .await?;
    if cli.json {
        let body = RolledBackAnswer {
            from: &from,
            to: &to,
            registered,
            deployment_id: deployment_id.as_deref(),
            rollout: rollout.as_ref(),
            spent: Spent::leased(ctx.clients.calls.counts(), lease, started),
        };
        answer::print("rollback", Some(&ctx.stack.name), body);
    } else {
        println!("{}", to.task_definition);
    }
    exit_for(rollout.as_ref())
}

type RolledBack = (Revision, Revision, bool, Option<String>, Option<RolloutReport>);

async fn roll_back(ctx: &Ctx, cli: &Cli, target: &Target, follow: &RolloutArgs) -> Result<RolledBack, Error> {
    if ctx.stack.service.deployment.strategy.shifts_traffic()
        && *target == Target::Previous
        && let Some(d) = shifted::in_flight(ctx).await?
    {
        return undo_in_flight(ctx, cli, &d, follow).await;
    }
    let from_arn = current(ctx).await?;
    let from = revision_or_unread(ctx, &from_arn).await?;
    let (to, registered) = choose(ctx, target, &from_arn).await?;
    if to.task_definition == from.task_definition {
        return Err(Error::Refused(format!("the service already runs {} ({})", to.task_definition, to.image)));
    }
    if !cli.json {
        eprintln!(
            "Rolling back from {} ({}) to {} ({}){}.",
            from.task_definition,
            from.image,
            to.task_definition,
            to.image,
            if registered { ", a new revision of the current one with that image" } else { "" }
        );
    }
    let gate = Gate::Skip("a rollback to a revision that ran before".into());
    let (deployment_id, rollout) = switch_to(ctx, cli, &to.task_definition, follow, &gate).await?;
    Ok((from, to, registered, deployment_id, rollout))
}

/// The service deployment in flight, rolled back at once (StopServiceDeployment): traffic goes
/// back to the old revision, whose tasks still run during a gate or a bake.
async fn undo_in_flight(
    ctx: &Ctx,
    cli: &Cli,
    d: &aws_sdk_ecs::types::ServiceDeployment,
    follow: &RolloutArgs,
) -> Result<RolledBack, Error> {
    use aws_sdk_ecs::types::ServiceDeploymentStatus as Status;
    let arn = d.service_deployment_arn().unwrap_or_default().to_owned();
    let from = revision_or_unread(ctx, &current(ctx).await?).await?;
    if !cli.json {
        eprintln!("Rolling back service deployment {arn} ({}).", shifted::where_it_is(d));
    }
    if matches!(d.status(), Some(Status::Pending | Status::InProgress)) {
        shifted::stop(ctx, &arn).await?;
    }
    let mut rollout = None;
    if !follow.no_wait {
        let timeout = follow.timeout.unwrap_or_else(|| ctx.stack.service.deployment.timeout.get());
        let gate = Gate::Skip("the deployment is being rolled back".into());
        let mut report = shifted::follow(ctx, &arn, &gate, (timeout, shifted::Until::Ended), cli.json).await?;
        // What this command asked for: the old revision serving again.
        if report.result == "rolled-back" {
            report.result = "completed";
        }
        rollout = Some(report);
    }
    let to = revision_or_unread(ctx, &current(ctx).await?).await?;
    Ok((from, to, false, Some(arn), rollout))
}

async fn revision_or_unread(ctx: &Ctx, arn: &str) -> Result<Revision, Error> {
    Ok(revision(ctx, arn).await?.unwrap_or_else(|| Revision {
        task_definition: arn.to_owned(),
        revision: 0,
        image: "(unreadable)".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_names_a_revision_or_an_image() {
        assert_eq!(Target::parse(None, "konnichiwa"), Target::Previous);
        assert_eq!(Target::parse(Some("5"), "konnichiwa"), Target::Revision(5));
        assert_eq!(Target::parse(Some("konnichiwa:5"), "konnichiwa"), Target::Revision(5));
        let image = "123.dkr.ecr.ap-northeast-1.amazonaws.com/konnichiwa@sha256:ab";
        assert_eq!(Target::parse(Some(image), "konnichiwa"), Target::Image(image.into()));
        assert_eq!(
            Target::parse(Some("registry:5000/app:5"), "konnichiwa"),
            Target::Image("registry:5000/app:5".into())
        );
    }
}
