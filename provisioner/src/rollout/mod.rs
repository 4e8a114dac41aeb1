//! Following a rollout honestly: the new deployment is tracked by its id until its rolloutState is
//! COMPLETED — not "service stable", which also holds after a circuit-breaker rollback. Progress
//! says what it waits for; a failure, rollback or timeout prints the stopped tasks' reasons and
//! exit codes, unhealthy targets and recent service events. A deployment that cannot progress
//! (nothing started and nothing said, or no instance can take a task while the capacity is at its
//! maximum) is reported as stuck once it has stood still for a while, not at the timeout.

pub mod gate;
mod report;
pub mod shifted;

pub use gate::{Gate, GateReport};
pub use report::{
    RolloutReport, active_service, exit_for, follow_and_report, follow_service, left_at_the_gate, shifted_timeout,
    strategy_words, switch_to,
};

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{Deployment, DesiredStatus, ServiceEvent};

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
    /// Nothing can move it: `reason` says why (the deployment goes on in ECS).
    Stuck {
        deployment: String,
        reason: String,
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
    /// How long no task may start, stop or fail, with tasks missing, before the follow asks
    /// whether anything can move the deployment.
    pub stall: Duration,
    /// What ends the follow, besides a failure.
    pub until: Until,
}

/// What ends a follow besides a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// This deployment's rollout COMPLETED (`up`, `deploy`, `rollback`).
    Completed,
    /// The service steady (`wait`, `scale`): its PRIMARY deployment — whichever it is by then —
    /// COMPLETED, the only one, running what it wants, and wanting `desired` when given (right
    /// after a count change, ECS may still describe the old count).
    Steady { desired: Option<i32> },
}

/// Why a deployment that has stood still may be unable to move.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stalled {
    /// ECS has said nothing since the deployment began.
    Silent,
    /// ECS's latest word: it cannot place a task (which more capacity could fix, unless there is
    /// no more to be had).
    Unplaceable(String),
}

/// Watches one deployment's counts; when running, pending and failed have not changed for
/// `after`, with tasks missing, says what ECS has said since it began.
struct StallWatch {
    after: Duration,
    counts: (i32, i32, i32),
    since: Instant,
}

impl StallWatch {
    fn new(after: Duration) -> Self {
        Self { after, counts: (-1, -1, -1), since: Instant::now() }
    }

    fn look(&mut self, d: &aws_sdk_ecs::types::Deployment, events: &[ServiceEvent]) -> Option<Stalled> {
        let counts = (d.running_count(), d.pending_count(), d.failed_tasks());
        let now = Instant::now();
        if counts != self.counts {
            (self.counts, self.since) = (counts, now);
            return None;
        }
        if now - self.since < self.after || d.running_count() >= d.desired_count() {
            return None;
        }
        // Asked again only after another quiet `after`.
        self.since = now;
        // Newest first; only what was said about this deployment.
        let said: Vec<&str> = events
            .iter()
            .filter(|e| match (d.created_at(), e.created_at()) {
                (Some(began), Some(at)) => at.secs() >= began.secs(),
                _ => true,
            })
            .filter_map(ServiceEvent::message)
            .collect();
        // Placing a task always says so ("has started 2 tasks"), and so does failing to: silence
        // for this long means nothing is being placed at all, pending counts or not (an emulator
        // counts the missing tasks as pending forever).
        match said.first() {
            None => Some(Stalled::Silent),
            Some(m) if m.contains("unable to place a task") && d.pending_count() == 0 => {
                Some(Stalled::Unplaceable((*m).to_owned()))
            }
            Some(_) => None,
        }
    }
}

/// The revision the service's PRIMARY deployment runs.
fn primary_task_definition(deployments: &[aws_sdk_ecs::types::Deployment]) -> Option<&str> {
    deployments.iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.task_definition())
}

/// Why a deployment that stood still cannot move (None: something still may move it).
async fn stuck_reason(
    stalled: Option<Stalled>,
    stall: Duration,
    capacity_full: &mut impl AsyncFnMut() -> Result<Option<String>, Error>,
) -> Result<Option<String>, Error> {
    Ok(match stalled {
        None => None,
        Some(Stalled::Silent) => Some(format!(
            "ECS has started no task of this deployment and said nothing about it for {}s: nothing is moving it \
             (an emulator starts no tasks: pass --no-wait there)",
            stall.as_secs()
        )),
        Some(Stalled::Unplaceable(event)) => {
            capacity_full().await?.map(|why| format!("ECS cannot place its tasks ({event}), and {why}"))
        }
    })
}

impl Rollout<'_> {
    /// The deployment followed among `deployments`, `id` once known.
    fn ours<'d>(&self, deployments: &'d [Deployment], id: Option<&str>) -> Option<&'d Deployment> {
        match (id, self.until) {
            // Steady is the service's: a deployment that replaced the one it began with is followed.
            (_, Until::Steady { .. }) => deployments.iter().find(|d| d.status() == Some("PRIMARY")),
            (Some(i), Until::Completed) => deployments.iter().find(|d| d.id() == Some(i)),
            (None, Until::Completed) => deployments.iter().find(|d| d.task_definition() == Some(self.task_definition)),
        }
    }
}

/// The service's five newest events not printed yet, oldest first.
fn print_new_events(
    events: &[ServiceEvent],
    seen: &mut std::collections::BTreeSet<String>,
    progress: &mut dyn FnMut(&str),
) {
    for e in events.iter().take(5).rev() {
        if let (Some(eid), Some(msg)) = (e.id(), e.message())
            && seen.insert(eid.to_owned())
        {
            progress(&format!("event: {msg}"));
        }
    }
}

impl Until {
    /// Whether `d`, COMPLETED among `deployments`, ends the follow.
    fn reached(self, d: &Deployment, deployments: &[Deployment]) -> bool {
        match self {
            Self::Completed => true,
            Self::Steady { desired } => {
                d.running_count() == d.desired_count()
                    && deployments.len() == 1
                    && desired.is_none_or(|want| want == d.desired_count())
            }
        }
    }
}

/// Polls DescribeServices until the deployment completes, fails, is stuck or the timeout passes.
/// `capacity_full` says why more capacity cannot be had (None when it can), asked only when ECS
/// cannot place a task and nothing has moved for `r.stall`.
pub async fn follow(
    ecs: &aws_sdk_ecs::Client,
    r: &Rollout<'_>,
    progress: &mut dyn FnMut(&str),
    mut capacity_full: impl AsyncFnMut() -> Result<Option<String>, Error>,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let deadline = started + r.timeout;
    let mut id = r.deployment_id.clone();
    let mut seen_events = std::collections::BTreeSet::new();
    let mut watch = StallWatch::new(r.stall);
    loop {
        let out = ecs
            .describe_services()
            .cluster(r.cluster)
            .services(r.service)
            .send()
            .await
            .ctx("describe service", r.service)?;
        let svc = out.services().first().ok_or_else(|| Error::Refused(format!("service {} is gone", r.service)))?;
        print_new_events(svc.events(), &mut seen_events, progress);
        let deployments = svc.deployments();
        match r.ours(deployments, id.as_deref()) {
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
                if matches!(r.until, Until::Steady { .. }) {
                    id = Some(did.clone());
                } else {
                    id.get_or_insert(did.clone());
                }
                let state = d.rollout_state().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "UNKNOWN".into());
                progress(&format!(
                    "deployment {did}: {state}, running {}/{} (pending {}, failed {})",
                    d.running_count(),
                    d.desired_count(),
                    d.pending_count(),
                    d.failed_tasks()
                ));
                match state.as_str() {
                    "COMPLETED" if r.until.reached(d, deployments) => {
                        return Ok(Outcome::Completed { deployment: did });
                    }
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
                if let Some(reason) = stuck_reason(watch.look(d, svc.events()), r.stall, &mut capacity_full).await? {
                    return Ok(Outcome::Stuck { deployment: did, reason });
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
            stall: Duration::from_secs(3600),
            until: Until::Completed,
        }
    }

    #[tokio::test]
    async fn steady_waits_for_the_count_as_well_as_the_rollout() {
        // A count change: the deployment stays COMPLETED while its tasks start.
        let rule = mock!(aws_sdk_ecs::Client::describe_services)
            .sequence()
            .output(|| {
                services(vec![deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::Completed, 1)])
            })
            .times(2)
            .output(|| {
                services(vec![deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::Completed, 2)])
            })
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, &[&rule]);
        let r = Rollout { until: Until::Steady { desired: None }, ..rollout(Duration::from_secs(5)) };
        let outcome = follow(&client, &r, &mut |_| {}, async || Ok(None)).await.expect("follows");
        assert_eq!(outcome, Outcome::Completed { deployment: "ecs-svc/new".into() });
        assert_eq!(rule.num_calls(), 3, "until running 2/2");

        // Right after `scale --tasks 3`, ECS may still describe the old count, steady at 2/2.
        let stale = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            services(vec![deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::Completed, 2)])
        });
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&stale]);
        let r = Rollout { until: Until::Steady { desired: Some(3) }, ..rollout(Duration::from_millis(100)) };
        let outcome = follow(&client, &r, &mut |_| {}, async || Ok(None)).await.expect("follows");
        assert!(matches!(outcome, Outcome::TimedOut { .. }), "not steady at the old count: {outcome:?}");

        // A newer deployment (CI deploying meanwhile) is followed, not reported as our failure.
        let replaced = mock!(aws_sdk_ecs::Client::describe_services)
            .sequence()
            .output(|| {
                services(vec![deployment("ecs-svc/new", "td:2", "PRIMARY", DeploymentRolloutState::InProgress, 1)])
            })
            .output(|| {
                services(vec![deployment("ecs-svc/newer", "td:3", "PRIMARY", DeploymentRolloutState::Completed, 2)])
            })
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, &[&replaced]);
        let r = Rollout { until: Until::Steady { desired: None }, ..rollout(Duration::from_secs(5)) };
        let outcome = follow(&client, &r, &mut |_| {}, async || Ok(None)).await.expect("follows");
        assert_eq!(outcome, Outcome::Completed { deployment: "ecs-svc/newer".into() });
    }

    /// Our deployment, begun at second 100, standing at 0 of 2 with nothing pending, and the
    /// service's events (newest first, as ECS lists them): one older than the deployment, and
    /// `said` (at second 200) when given.
    fn standing_still(said: Option<&str>) -> DescribeServicesOutput {
        let d = Deployment::builder()
            .id("ecs-svc/new")
            .task_definition("td:2")
            .status("PRIMARY")
            .rollout_state(DeploymentRolloutState::InProgress)
            .desired_count(2)
            .created_at(aws_smithy_types::DateTime::from_secs(100))
            .build();
        let event = |id: &str, message: &str, at: i64| {
            ServiceEvent::builder()
                .id(id)
                .message(message)
                .created_at(aws_smithy_types::DateTime::from_secs(at))
                .build()
        };
        let mut events: Vec<ServiceEvent> = said.map(|m| event("e2", m, 200)).into_iter().collect();
        events.push(event("e1", "(service konnichiwa) has reached a steady state.", 1));
        let svc = Service::builder().service_name("konnichiwa").deployments(d).set_events(Some(events)).build();
        DescribeServicesOutput::builder().services(svc).build()
    }

    const UNPLACEABLE: &str = "(service konnichiwa) was unable to place a task because no container instance met all of its requirements. The closest matching container-instance abc has insufficient memory available.";

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
        let outcome =
            follow(&client, &rollout(Duration::from_secs(5)), &mut |l| lines.push(l.to_owned()), async || Ok(None))
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
        let outcome =
            follow(&client, &rollout(Duration::from_secs(5)), &mut |_| {}, async || Ok(None)).await.expect("follows");
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
        let outcome = follow(&client, &r, &mut |_| {}, async || Ok(None)).await.expect("follows");
        let waited = started.elapsed();
        assert!(matches!(outcome, Outcome::TimedOut { .. }), "{outcome:?}");
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_millis(400), "{waited:?}");
    }

    #[tokio::test]
    async fn a_deployment_ecs_says_nothing_about_and_starts_nothing_of_is_stuck_after_the_stall() {
        let rule = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| standing_still(None));
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&rule]);
        let r = Rollout { stall: Duration::from_millis(50), ..rollout(Duration::from_secs(30)) };
        let started = Instant::now();
        let outcome = follow(&client, &r, &mut |_| {}, async || panic!("silence is not a placement problem"))
            .await
            .expect("follows");
        let Outcome::Stuck { deployment, reason } = outcome else { panic!("{outcome:?}") };
        assert_eq!(deployment, "ecs-svc/new");
        assert!(reason.contains("started no task") && reason.contains("--no-wait"), "{reason}");
        assert!(started.elapsed() < Duration::from_secs(5), "stopped at the stall, not the timeout");
    }

    #[tokio::test]
    async fn an_unplaceable_task_is_stuck_only_when_no_more_capacity_can_come() {
        let rule = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| standing_still(Some(UNPLACEABLE)));
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&rule]);
        let r = Rollout { stall: Duration::from_millis(30), ..rollout(Duration::from_secs(30)) };
        let full = async || Ok(Some("the instances are at capacity.max (4)".to_owned()));
        let outcome = follow(&client, &r, &mut |_| {}, full).await.expect("follows");
        let Outcome::Stuck { reason, .. } = outcome else { panic!("{outcome:?}") };
        assert!(reason.starts_with("ECS cannot place its tasks ((service konnichiwa) was unable to place"), "{reason}");
        assert!(reason.ends_with("and the instances are at capacity.max (4)"), "{reason}");

        // Tasks pending: something was placed, so it follows on without asking about capacity.
        let pending = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            let mut out = standing_still(Some(UNPLACEABLE));
            let svc = out.services.as_mut().and_then(|s| s.first_mut()).expect("service");
            let d = svc.deployments.as_mut().and_then(|d| d.first_mut()).expect("deployment");
            d.pending_count = 1;
            out
        });
        let with_pending = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&pending]);
        let r = Rollout {
            stall: Duration::from_millis(20),
            poll: Duration::from_millis(5),
            ..rollout(Duration::from_millis(200))
        };
        let outcome = follow(&with_pending, &r, &mut |_| {}, async || panic!("pending tasks are progress"))
            .await
            .expect("follows");
        assert!(matches!(outcome, Outcome::TimedOut { .. }), "{outcome:?}");

        // While the capacity can still grow (managed scaling is adding an instance), it waits on.
        let mut asked = 0;
        let r = Rollout {
            stall: Duration::from_millis(20),
            poll: Duration::from_millis(5),
            ..rollout(Duration::from_millis(300))
        };
        let growing = async || {
            asked += 1;
            Ok(None)
        };
        let outcome = follow(&client, &r, &mut |_| {}, growing).await.expect("follows");
        assert!(matches!(outcome, Outcome::TimedOut { .. }), "{outcome:?}");
        assert!(asked >= 2, "asked at each quiet stall: {asked}");
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
