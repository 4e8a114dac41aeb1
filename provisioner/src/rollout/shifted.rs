//! Following a deployment of a canary, linear or blue/green service: ECS's service deployment
//! (ListServiceDeployments, DescribeServiceDeployments), not the service's deployments list. The
//! follow answers the gate's PAUSE hook at POST_TEST_TRAFFIC_SHIFT — CONTINUE when the gate passed,
//! ROLLBACK when it did not — and ends when the service deployment does: SUCCESSFUL, or rolled
//! back. A service deployment still in flight when a command starts (a `deploy` killed mid-bake or
//! mid-gate) is found by `in_flight`, and finished (`deploy`) or undone (`rollback`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    DeploymentLifecycleHookStatus, ServiceDeployment, ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
    StopServiceDeploymentStopType,
};

use super::gate::{self, Gate, GateReport};
use super::report::RolloutReport;
use crate::error::{AwsContext, Error};
use crate::reconcile::Ctx;
use crate::resources::cluster;

/// How often the service deployment is described.
const POLL: Duration = Duration::from_secs(2);
/// How long a new service deployment may take to be listed after UpdateService.
const LISTED_WITHIN: Duration = Duration::from_secs(60);

/// The statuses of a service deployment that has not ended.
const IN_FLIGHT: &[ServiceDeploymentStatus] = &[
    ServiceDeploymentStatus::Pending,
    ServiceDeploymentStatus::InProgress,
    ServiceDeploymentStatus::RollbackRequested,
    ServiceDeploymentStatus::RollbackInProgress,
    ServiceDeploymentStatus::StopRequested,
];

/// The ARNs of the service's service deployments, newest first (every page).
pub async fn listed(ctx: &Ctx) -> Result<Vec<String>, Error> {
    newest_first(ctx, None).await
}

/// The service deployment in flight, if any: the newest created.
pub async fn in_flight(ctx: &Ctx) -> Result<Option<ServiceDeployment>, Error> {
    match newest_first(ctx, Some(IN_FLIGHT.to_vec())).await?.first() {
        Some(arn) => describe(ctx, arn).await,
        None => Ok(None),
    }
}

/// The ARNs of the service's service deployments in `status` (None: any), newest first: every
/// page is read and sorted by creation, as ListServiceDeployments documents no order.
async fn newest_first(ctx: &Ctx, status: Option<Vec<ServiceDeploymentStatus>>) -> Result<Vec<String>, Error> {
    let (cluster, name) = (cluster::name(&ctx.stack), crate::resources::service::name(&ctx.stack));
    let mut found: Vec<(i64, String)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .clients
            .ecs
            .list_service_deployments()
            .cluster(&cluster)
            .service(&name)
            .set_status(status.clone())
            .max_results(100)
            .set_next_token(token.take())
            .send()
            .await
            .ctx("list service deployments of", &name)?;
        found.extend(page.service_deployments().iter().filter_map(|d| {
            let created = d.created_at().map_or(0, aws_smithy_types::DateTime::secs);
            d.service_deployment_arn().map(|a| (created, a.to_owned()))
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    found.sort_by_key(|a| std::cmp::Reverse(a.0));
    Ok(found.into_iter().map(|(_, arn)| arn).collect())
}

/// One service deployment (None: ECS does not know it).
pub async fn describe(ctx: &Ctx, arn: &str) -> Result<Option<ServiceDeployment>, Error> {
    let out = ctx
        .clients
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .ctx("describe service deployment", arn)?;
    Ok(out.service_deployments().first().cloned())
}

/// The service deployment UpdateService started: the first listed that `before` lacks.
pub async fn started_after(ctx: &Ctx, before: &BTreeSet<String>) -> Result<String, Error> {
    started_within(ctx, before, LISTED_WITHIN).await?.ok_or_else(|| {
        Error::Refused(format!(
            "ECS listed no new service deployment of {} within {}s of the update: `provisioner status` shows what \
             it runs",
            crate::resources::service::name(&ctx.stack),
            LISTED_WITHIN.as_secs()
        ))
    })
}

/// The first service deployment listed that `before` lacks, if one appears within `within` (an
/// update of settings alone may start none).
pub async fn started_within(ctx: &Ctx, before: &BTreeSet<String>, within: Duration) -> Result<Option<String>, Error> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(arn) = listed(ctx).await?.into_iter().find(|a| !before.contains(a)) {
            return Ok(Some(arn));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The hook awaiting an answer at the gate's stage: its id.
fn awaiting_gate(d: &ServiceDeployment) -> Option<&str> {
    // A deployment being rolled back (StopServiceDeployment) may still show its hook waiting.
    if d.lifecycle_stage() != Some(&ServiceDeploymentLifecycleStage::PostTestTrafficShift)
        || d.status() != Some(&ServiceDeploymentStatus::InProgress)
    {
        return None;
    }
    d.lifecycle_hook_details()
        .iter()
        .find(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))
        .and_then(|h| h.hook_id())
}

/// `stage BAKE_TIME, production traffic 10% new`.
pub fn where_it_is(d: &ServiceDeployment) -> String {
    let stage = d.lifecycle_stage().map_or("-", ServiceDeploymentLifecycleStage::as_str);
    let target = d.target_service_revision();
    let production = target.and_then(|t| t.requested_production_traffic_weight()).unwrap_or(0.0);
    let test = target.and_then(|t| t.requested_test_traffic_weight()).unwrap_or(0.0);
    format!(
        "{}, stage {stage}: production traffic {production}% to the new revision, test traffic {test}%",
        d.status().map_or("UNKNOWN", ServiceDeploymentStatus::as_str)
    )
}

/// What a follow ended with.
fn ended(d: &ServiceDeployment) -> Option<(&'static str, Option<String>)> {
    let reason = d.status_reason().map(str::to_owned);
    match d.status()? {
        ServiceDeploymentStatus::Successful => Some(("completed", None)),
        ServiceDeploymentStatus::RollbackSuccessful => Some(("rolled-back", reason)),
        ServiceDeploymentStatus::RollbackFailed => Some(("failed", reason)),
        ServiceDeploymentStatus::Stopped => Some(("failed", reason.or(Some("stopped".into())))),
        _ => None,
    }
}

/// How long before the hook's timeout the gate must have answered.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);

/// Judges at the gate if there is time before the hook times out (a deployment an earlier,
/// killed run left at the gate may have little left); else a failed gate, saying why.
async fn judge_in_time(ctx: &Ctx, gate: &Gate, d: &ServiceDeployment, json: bool) -> Result<GateReport, Error> {
    let needs = match gate {
        Gate::Judge { .. } => ctx.stack.service.deployment.gate.duration.get() + ANSWER_MARGIN,
        Gate::Skip(_) => Duration::ZERO,
    };
    let expires = d
        .lifecycle_hook_details()
        .iter()
        .find(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))
        .and_then(|h| h.expires_at())
        .map(aws_smithy_types::DateTime::secs);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_secs());
    let left = expires.map(|e| e.saturating_sub(i64::try_from(now).unwrap_or(i64::MAX)));
    match left {
        Some(left) if Duration::from_secs(u64::try_from(left).unwrap_or(0)) < needs => {
            Ok(GateReport::too_late(left.max(0), needs.as_secs()))
        }
        _ => gate::judge(ctx, gate, json).await,
    }
}

/// Answers the gate's hook: CONTINUE or ROLLBACK.
async fn answer(ctx: &Ctx, arn: &str, hook: &str, pass: bool) -> Result<(), Error> {
    use aws_sdk_ecs::types::DeploymentLifecycleHookAction as Action;
    let action = if pass { Action::Continue } else { Action::Rollback };
    ctx.clients
        .ecs
        .continue_service_deployment()
        .service_deployment_arn(arn)
        .hook_id(hook)
        .action(action)
        .send()
        .await
        .ctx("answer the gate of", arn)?;
    Ok(())
}

/// How far a follow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The deployment's end.
    Ended,
    /// The gate answered (`rollback --no-wait`: a rollback left at the gate would roll back to
    /// the revision it undoes once the hook times out).
    Answered,
}

/// What a follow did at the gate: the gate's report once judged, the hook it answered, and why
/// the last answer failed (asked again while the hook waits).
#[derive(Default)]
struct AtTheGate {
    judged: Option<GateReport>,
    answered: Option<String>,
    unanswered: Option<String>,
}

impl AtTheGate {
    /// Judges (once) and answers the hook `d` waits at, unless it was answered already.
    async fn answer_hook(
        &mut self,
        ctx: &Ctx,
        (arn, d): (&str, &ServiceDeployment),
        gate: &Gate,
        until: Until,
        json: bool,
    ) -> Result<(), Error> {
        let Some(hook) = awaiting_gate(d).filter(|h| self.answered.as_deref() != Some(*h)).map(str::to_owned) else {
            return Ok(());
        };
        if self.judged.is_none() {
            match judge_in_time(ctx, gate, d, json).await {
                Ok(report) => self.judged = Some(report),
                Err(e) => {
                    // Not left at the gate: rolled back at once, then the error.
                    let _ = answer(ctx, arn, &hook, false).await;
                    return Err(e);
                }
            }
        }
        let pass = self.judged.as_ref().is_some_and(|r| r.pass);
        match answer(ctx, arn, &hook, pass).await {
            Ok(()) => (self.answered, self.unanswered) = (Some(hook), None),
            // Throttled past the retries, or refused: asked again while the hook waits.
            Err(e) if until == Until::Ended => {
                if !json {
                    eprintln!("  gate: could not answer the hook (asking again): {e}");
                }
                self.unanswered = Some(e.to_string());
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Why the deployment ended as it did: the gate's failure, else ECS's reason, with a failed
    /// answer said beside it.
    fn reason(&self, ecs: Option<String>) -> Option<String> {
        let reason = self.judged.as_ref().filter(|g| !g.pass).map(GateReport::reason).or(ecs);
        match (&self.unanswered, reason) {
            (Some(why), Some(r)) => Some(format!("{r} (the gate's answer failed: {why})")),
            (Some(why), None) => Some(format!("the gate's answer failed: {why}")),
            (None, r) => r,
        }
    }
}

/// Follows service deployment `arn` to its end (or its gate's answer) within `timeout`, judging
/// it at the gate: the report, with the gate's figures when it judged.
pub async fn follow(
    ctx: &Ctx,
    arn: &str,
    gate: &Gate,
    (timeout, until): (Duration, Until),
    json: bool,
) -> Result<RolloutReport, Error> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut at = AtTheGate::default();
    let mut said = String::new();
    let report = |result, reason, diagnostics, gate| RolloutReport {
        deployment: arn.to_owned(),
        result,
        reason,
        diagnostics,
        seconds: started.elapsed().as_secs_f64(),
        gate,
    };
    loop {
        let d = describe(ctx, arn).await?.ok_or_else(|| Error::Refused(format!("ECS no longer knows {arn}")))?;
        let line = where_it_is(&d);
        if line != said && !json {
            eprintln!("  {line}");
        }
        said = line;
        if let Some((result, reason)) = ended(&d) {
            let reason = at.reason(reason);
            if !json {
                eprintln!(
                    "Service deployment {arn}: {result}{}",
                    reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
            let diagnostics = at.judged.as_ref().map(GateReport::lines).unwrap_or_default();
            return Ok(report(result, reason, diagnostics, at.judged));
        }
        at.answer_hook(ctx, (arn, &d), gate, until, json).await?;
        if until == Until::Answered && at.answered.is_some() {
            let reason = Some("answered at the gate; the deployment goes on in ECS".to_owned());
            return Ok(report("completed", reason, Vec::new(), at.judged));
        }
        if Instant::now() >= deadline {
            let reason = format!(
                "not ended within {}s ({said}); the deployment goes on in ECS: `provisioner status` follows it, \
                 `provisioner rollback` undoes it",
                timeout.as_secs()
            );
            return Ok(report("timed-out", Some(reason), Vec::new(), at.judged));
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Rolls back the service deployment in flight (StopServiceDeployment, ROLLBACK): traffic goes
/// back to the old revision, whose tasks still run.
pub async fn stop(ctx: &Ctx, arn: &str) -> Result<(), Error> {
    ctx.clients
        .ecs
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .ctx("roll back service deployment", arn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{DeploymentLifecycleHookDetail, ServiceRevisionSummary};

    fn deployment(
        stage: ServiceDeploymentLifecycleStage,
        hook: Option<DeploymentLifecycleHookStatus>,
    ) -> ServiceDeployment {
        let mut d = ServiceDeployment::builder()
            .service_deployment_arn("arn:aws:ecs:ap-northeast-1:1:service-deployment/c/s/abc")
            .status(ServiceDeploymentStatus::InProgress)
            .lifecycle_stage(stage)
            .target_service_revision(
                ServiceRevisionSummary::builder()
                    .arn("rev")
                    .requested_production_traffic_weight(10.0)
                    .requested_test_traffic_weight(100.0)
                    .build(),
            );
        if let Some(status) = hook {
            d = d
                .lifecycle_hook_details(DeploymentLifecycleHookDetail::builder().hook_id("h-1").status(status).build());
        }
        d.build()
    }

    #[test]
    fn only_a_hook_awaiting_at_the_gates_stage_is_the_gates() {
        use ServiceDeploymentLifecycleStage as Stage;
        let waiting = deployment(Stage::PostTestTrafficShift, Some(DeploymentLifecycleHookStatus::AwaitingAction));
        assert_eq!(awaiting_gate(&waiting), Some("h-1"));
        let answered = deployment(Stage::PostTestTrafficShift, Some(DeploymentLifecycleHookStatus::Succeeded));
        assert_eq!(awaiting_gate(&answered), None);
        let elsewhere = deployment(Stage::PostScaleUp, Some(DeploymentLifecycleHookStatus::AwaitingAction));
        assert_eq!(awaiting_gate(&elsewhere), None, "another stage's hook is not the gate's to answer");
        assert_eq!(
            where_it_is(&waiting),
            "IN_PROGRESS, stage POST_TEST_TRAFFIC_SHIFT: production traffic 10% to the new revision, test traffic 100%"
        );
    }

    #[test]
    fn a_deployment_ends_successful_or_rolled_back() {
        let with = |status| ServiceDeployment::builder().status(status).status_reason("why").build();
        assert_eq!(ended(&with(ServiceDeploymentStatus::Successful)), Some(("completed", None)));
        assert_eq!(
            ended(&with(ServiceDeploymentStatus::RollbackSuccessful)),
            Some(("rolled-back", Some("why".into())))
        );
        assert_eq!(ended(&with(ServiceDeploymentStatus::RollbackFailed)).map(|e| e.0), Some("failed"));
        assert_eq!(ended(&with(ServiceDeploymentStatus::Stopped)).map(|e| e.0), Some("failed"));
        assert_eq!(ended(&with(ServiceDeploymentStatus::RollbackInProgress)), None);
        assert_eq!(ended(&with(ServiceDeploymentStatus::InProgress)), None);
    }
}
