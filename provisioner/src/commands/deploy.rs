//! `deploy --image REF`: the fast path — describe the latest task definition, register it again
//! with the new image, update the service, follow the new deployment. Nothing else is observed.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::answer::{self, Spent};
use super::{context, holding_lease};
use crate::cli::{Cli, DeployArgs, RolloutArgs};
use crate::error::Error;
use crate::reconcile::{Ctx, Mode};
use crate::resources::service;
use crate::rollout::{RolloutReport, exit_for, switch_to};

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
    let (image, follow) = (args.image.as_str(), &args.rollout);
    let started = Instant::now();
    let mut ctx = context(cli, Mode::Apply, Duration::from_secs(3600)).await?;
    let ((arn, deployment_id, rollout), lease) =
        holding_lease(&mut ctx, "deploy", follow.lock_timeout, async |ctx: &mut Ctx| {
            deploy(ctx, cli, image, follow).await
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
) -> Result<(String, Option<String>, Option<RolloutReport>), Error> {
    let family = service::family(&ctx.stack);
    let current = service::task::observe_latest(ctx, &family).await?.ok_or_else(|| {
        Error::Refused(format!("task definition family {family} has no active revision: run `provisioner up` first"))
    })?;
    let spec = service::TaskSpec { image: image.to_owned(), sources: None, ..current.spec };
    let arn = service::task::register(ctx, &family, &spec).await?;
    let (deployment_id, report) = switch_to(ctx, cli, &arn, follow).await?;
    Ok((arn, deployment_id, report))
}
