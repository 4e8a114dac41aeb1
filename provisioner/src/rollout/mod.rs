//! Following a rollout honestly: the new deployment is tracked by its id until its rolloutState is
//! COMPLETED — not "service stable", which also holds after a circuit-breaker rollback. Progress
//! says what it waits for; a failure, rollback or timeout prints the stopped tasks' reasons and
//! exit codes, unhealthy targets and recent service events.

mod report;

pub use report::{RolloutReport, exit_for, follow_and_report, switch_to};

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::DesiredStatus;

use crate::error::{AwsContext, Error};

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        deployment: String,
    },
    /// The deployment failed (rolloutState FAILED); `rolled_back` when the circuit breaker put the
    /// previous task definition back.
    Failed {
        deployment: String,
        reason: String,
        rolled_back: bool,
    },
    TimedOut {
        deployment: String,
        waited: Duration,
    },
}

/// What to follow.
#[derive(Debug, Clone)]
pub struct Rollout<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    /// The task definition the new deployment runs (identifies it before its id is known).
    pub task_definition: &'a str,
    pub deployment_id: Option<String>,
    pub timeout: Duration,
    pub poll: Duration,
}

/// The revision the service's PRIMARY deployment runs.
fn primary_task_definition(deployments: &[aws_sdk_ecs::types::Deployment]) -> Option<&str> {
    deployments.iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.task_definition())
}

/// Polls DescribeServices until the deployment completes, fails or the timeout passes.
pub async fn follow(
    ecs: &aws_sdk_ecs::Client,
    r: &Rollout<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let deadline = started + r.timeout;
    let mut id = r.deployment_id.clone();
    let mut seen_events = std::collections::BTreeSet::new();
    loop {
        let out = ecs
            .describe_services()
            .cluster(r.cluster)
            .services(r.service)
            .send()
            .await
            .ctx("describe service", r.service)?;
        let svc = out.services().first().ok_or_else(|| Error::Refused(format!("service {} is gone", r.service)))?;
        for e in svc.events().iter().take(5).rev() {
            if let (Some(eid), Some(msg)) = (e.id(), e.message())
                && seen_events.insert(eid.to_owned())
            {
                progress(&format!("event: {msg}"));
            }
        }
        let deployments = svc.deployments();
        let ours = match &id {
            Some(i) => deployments.iter().find(|d| d.id() == Some(i.as_str())),
            None => deployments.iter().find(|d| d.task_definition() == Some(r.task_definition)),
        };
        match ours {
            None if id.is_some() => {
                // Our deployment left the list: only a rollback removes it before completion.
                let primary = primary_task_definition(deployments).unwrap_or("?");
                return Ok(Outcome::Failed {
                    deployment: id.unwrap_or_default(),
                    reason: format!("the deployment disappeared; the service now runs {primary}"),
                    rolled_back: primary != r.task_definition,
                });
            }
            None => progress(&format!("waiting for the deployment of {}", r.task_definition)),
            Some(d) => {
                let did = d.id().unwrap_or_default().to_owned();
                id.get_or_insert(did.clone());
                let state = d.rollout_state().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "UNKNOWN".into());
                progress(&format!(
                    "deployment {did}: {state}, running {}/{} (pending {}, failed {})",
                    d.running_count(),
                    d.desired_count(),
                    d.pending_count(),
                    d.failed_tasks()
                ));
                match state.as_str() {
                    "COMPLETED" => return Ok(Outcome::Completed { deployment: did }),
                    "FAILED" => {
                        let primary = primary_task_definition(deployments).unwrap_or(r.task_definition);
                        return Ok(Outcome::Failed {
                            deployment: did,
                            reason: d.rollout_state_reason().unwrap_or("rollout failed").to_owned(),
                            rolled_back: primary != r.task_definition,
                        });
                    }
                    _ => {}
                }
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Outcome::TimedOut { deployment: id.unwrap_or_default(), waited: started.elapsed() });
        }
        tokio::time::sleep(r.poll.min(deadline - now)).await;
    }
}

/// What a user needs when a deploy fails: stopped tasks' reasons and exit codes, unhealthy
/// targets, recent service events.
pub async fn diagnostics(
    ecs: &aws_sdk_ecs::Client,
    elb: Option<(&aws_sdk_elasticloadbalancingv2::Client, &str)>,
    cluster: &str,
    service: &str,
) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    let stopped = ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .ctx("list stopped tasks of", service)?;
    if !stopped.task_arns().is_empty() {
        let tasks = ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(stopped.task_arns().iter().take(10).cloned().collect()))
            .send()
            .await
            .ctx("describe stopped tasks of", service)?;
        for t in tasks.tasks() {
            lines.push(format!(
                "stopped task {}: {}",
                t.task_arn().and_then(|a| a.rsplit('/').next()).unwrap_or("?"),
                t.stopped_reason().unwrap_or("no reason given")
            ));
            for c in t.containers() {
                lines.push(format!(
                    "  container {}: exit code {}, {}",
                    c.name().unwrap_or("?"),
                    c.exit_code().map_or("none".into(), |e| e.to_string()),
                    c.reason().unwrap_or("no reason given")
                ));
            }
        }
    }
    if let Some((elb, tg)) = elb {
        let health =
            elb.describe_target_health().target_group_arn(tg).send().await.ctx("describe target health of", tg)?;
        for d in health.target_health_descriptions() {
            let h = d.target_health();
            let state = h.and_then(|h| h.state()).map(|s| s.as_str().to_owned()).unwrap_or_default();
            if state != "healthy" {
                lines.push(format!(
                    "target {}:{} is {state}: {}",
                    d.target().and_then(|t| t.id()).unwrap_or("?"),
                    d.target().and_then(|t| t.port()).unwrap_or(0),
                    h.and_then(|h| h.description()).unwrap_or("no description")
                ));
            }
        }
    }
    let svc =
        ecs.describe_services().cluster(cluster).services(service).send().await.ctx("describe service", service)?;
    for e in svc.services().first().map(|s| s.events()).unwrap_or_default().iter().take(10) {
        lines.push(format!("event: {}", e.message().unwrap_or_default()));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
    use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
    use aws_sdk_ecs::types::{Container, Deployment, DeploymentRolloutState, Service, ServiceEvent, Task};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn deployment(id: &str, td: &str, status: &str, state: DeploymentRolloutState, running: i32) -> Deployment {
        Deployment::builder()
            .id(id)
            .task_definition(td)
            .status(status)
            .rollout_state(state)
            .running_count(running)
            .desired_count(2)
            .build()
    }

    fn services(deployments: Vec<Deployment>) -> DescribeServicesOutput {
        let svc = Service::builder()
            .service_name("konnichiwa")
            .set_deployments(Some(deployments))
            .events(
                ServiceEvent::builder()
                    .id("e1")
                    .message("(service konnichiwa) has started 1 tasks")
                    .created_at(aws_smithy_types::DateTime::from_secs(1))
                    .build(),
            )
            .build();
        DescribeServicesOutput::builder().services(svc).build()
    }

    fn rollout(timeout: Duration) -> Rollout<'static> {
        Rollout {
            cluster: "konnichiwa",
            service: "konnichiwa",
            task_definition: "td:2",
            deployment_id: Some("ecs-svc/new".into()),
            timeout,
            poll: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn completed_only_when_our_deployment_completes() {
        let rule = mock!(aws_sdk_ecs::Client::describe_services)
            .sequence()
            .output(|| {
                services(vec![
                    deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::InProgress, 0),
                    deployment("ecs-svc/old", "td:1", "ACTIVE", DeploymentRolloutState::Completed, 2),
                ])
            })
            .times(2)
            .output(|| {
                services(vec![deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::Completed, 2)])
            })
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, &[&rule]);
        let mut lines = Vec::new();
        let outcome = follow(&client, &rollout(Duration::from_secs(5)), &mut |l| lines.push(l.to_owned()))
            .await
            .expect("follows");
        assert_eq!(outcome, Outcome::Completed { deployment: "ecs-svc/new".into() });
        assert_eq!(rule.num_calls(), 3, "describes until COMPLETED, then stops");
        assert!(lines.iter().any(|l| l.contains("running 0/2")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("event: ")), "{lines:?}");
    }

    #[tokio::test]
    async fn a_rollback_is_a_failure_even_though_the_service_is_stable() {
        // The old deployment is PRIMARY and COMPLETED again ("stable"), ours FAILED.
        let rule = mock!(aws_sdk_ecs::Client::describe_services)
            .sequence()
            .output(|| {
                services(vec![deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::InProgress, 0)])
            })
            .output(|| {
                let failed = Deployment::builder()
                    .id("ecs-svc/new")
                    .task_definition("td:2")
                    .status("ACTIVE")
                    .rollout_state(DeploymentRolloutState::Failed)
                    .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
                    .build();
                services(vec![
                    deployment("ecs-svc/old", "td:1", "PRIMARY", DeploymentRolloutState::Completed, 2),
                    failed,
                ])
            })
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, &[&rule]);
        let outcome = follow(&client, &rollout(Duration::from_secs(5)), &mut |_| {}).await.expect("follows");
        assert_eq!(
            outcome,
            Outcome::Failed {
                deployment: "ecs-svc/new".into(),
                reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
                rolled_back: true
            }
        );
    }

    #[tokio::test]
    async fn the_timeout_is_honoured() {
        let rule = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            services(vec![deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::InProgress, 1)])
        });
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&rule]);
        let started = Instant::now();
        let r = Rollout { poll: Duration::from_millis(20), ..rollout(Duration::from_millis(150)) };
        let outcome = follow(&client, &r, &mut |_| {}).await.expect("follows");
        let waited = started.elapsed();
        assert!(matches!(outcome, Outcome::TimedOut { .. }), "{outcome:?}");
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_millis(400), "{waited:?}");
    }

    #[tokio::test]
    async fn diagnostics_name_stopped_tasks_and_exit_codes() {
        let list = mock!(aws_sdk_ecs::Client::list_tasks)
            .then_output(|| ListTasksOutput::builder().task_arns("arn:aws:ecs:r:1:task/konnichiwa/abc").build());
        let describe = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
            DescribeTasksOutput::builder()
                .tasks(
                    Task::builder()
                        .task_arn("arn:aws:ecs:r:1:task/konnichiwa/abc")
                        .stopped_reason("Essential container in task exited")
                        .containers(Container::builder().name("app").exit_code(2).reason("API_KEY is not set").build())
                        .build(),
                )
                .build()
        });
        let svc = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| services(vec![]));
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&list, &describe, &svc]);
        let lines = diagnostics(&client, None, "konnichiwa", "konnichiwa").await.expect("diagnostics");
        assert_eq!(lines[0], "stopped task abc: Essential container in task exited");
        assert_eq!(lines[1], "  container app: exit code 2, API_KEY is not set");
        assert!(lines.iter().any(|l| l.starts_with("event: ")));
    }
}
