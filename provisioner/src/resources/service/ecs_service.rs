//! The ECS service on our capacity provider behind the target group, with circuit breaker and
//! health-check grace. CreateService carries a client token derived from what it creates, so a
//! retry after a lost answer creates it once. Its create and updates wait out what ECS answers
//! while a new listener, role or target group propagates. Whether the tasks must roll to read a
//! new API key is read from AWS: the service's newest deployment against the date of the
//! secret's current version. A canary, linear or blue/green strategy (`strategy`) adds ECS's
//! traffic-shifting settings and the gate's PAUSE hook.

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, DeploymentAlarms, DeploymentCircuitBreaker, DeploymentConfiguration, PropagateTags,
    ServiceField,
};
use aws_smithy_types::DateTime;

use super::ECS_SERVICE;
use super::strategy::{self, Shift};
use super::task::CONTAINER;
use crate::error::{AwsContext, Error, absent};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedService {
    pub arn: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// Absent fields: moto does not keep them (see shared/testing-aws.md); they compare as sent.
    pub capacity_providers: Option<Vec<String>>,
    pub target_groups: Vec<String>,
    pub circuit_breaker: Option<(bool, bool)>,
    /// The breaker's failure threshold, (type, value) (None: not reported, as moto does not).
    pub failure_threshold: Option<(String, i32)>,
    /// The alarms that roll a deployment back (None: the answer has no deployment configuration).
    pub alarms: Option<Vec<String>>,
    /// ECS Exec on (None: not reported, as for `alarms`).
    pub exec: Option<bool>,
    pub min_healthy: Option<i32>,
    pub max_percent: Option<i32>,
    pub grace_seconds: Option<i32>,
    /// When the newest deployment started: its tasks read the secret then.
    pub newest_deployment: Option<DateTime>,
    /// The strategy, its shares, bakes and hooks, as text (None: not reported).
    pub strategy: Option<String>,
    /// The traffic-shifting settings of its load balancer, as text (`strategy::shift_text`).
    pub shift: Option<String>,
}

impl Observed for ObservedService {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// What the service runs with, from earlier kinds.
pub struct ServiceInputs<'a> {
    pub cluster: &'a str,
    pub capacity_provider: &'a str,
    pub task_definition: &'a Id,
    pub target_group: &'a Id,
    /// The SLO alarms that roll a deployment back (empty: none).
    pub alarms: &'a [String],
    /// The key changes in this run (a plan shows the roll).
    pub key_changes: bool,
    /// When the secret's current version was created.
    pub key_version_created: Option<DateTime>,
    /// What ECS shifts traffic with (a canary, linear or blue/green strategy).
    pub shift: Option<Shift<'a>>,
}

/// ECS's threshold configuration for `service.deployment.failure_threshold`.
fn failure_threshold(stack: &stack::Stack) -> Option<aws_sdk_ecs::types::ThresholdConfiguration> {
    use aws_sdk_ecs::types::{ThresholdConfiguration, ThresholdType};
    let (kind, value) = match stack.service.deployment.failure_threshold {
        stack::FailureThreshold::Count(n) => (ThresholdType::Count, n),
        stack::FailureThreshold::Percent(p) => (ThresholdType::BoundedPercent, p),
        stack::FailureThreshold::UnboundedPercent(p) => (ThresholdType::UnboundedPercent, p),
    };
    ThresholdConfiguration::builder().r#type(kind).value(i32::try_from(value).unwrap_or(i32::MAX)).build().ok()
}

/// `service.deployment.failure_threshold` as ECS answers it: (`COUNT`, 2).
pub fn failure_threshold_wanted(stack: &stack::Stack) -> Option<(String, i32)> {
    failure_threshold(stack).map(|t| (t.r#type().as_str().to_owned(), t.value()))
}

pub fn circuit_breaker(stack: &stack::Stack) -> (bool, bool) {
    match stack.service.deployment.circuit_breaker {
        stack::CircuitBreaker::Rollback => (true, true),
        stack::CircuitBreaker::Enabled => (true, false),
        stack::CircuitBreaker::Disabled => (false, false),
    }
}

/// True when the running tasks started before the current key existed (or it is being written).
pub fn key_roll_due(o: &ObservedService, key_changes: bool, key_version_created: Option<DateTime>) -> bool {
    key_changes
        || matches!((o.newest_deployment, key_version_created), (Some(d), Some(k)) if d.as_nanos() < k.as_nanos())
}

pub fn diff_service(stack: &stack::Stack, i: &ServiceInputs<'_>, o: Option<&ObservedService>) -> Change {
    let svc = &stack.service;
    let d = &svc.deployment;
    let grace = i32::try_from(svc.health_check_grace_period.get().as_secs()).unwrap_or(30);
    let td = i.task_definition.to_string();
    let Some(o) = o else {
        return Change::create(vec![
            FieldDiff::new("task_definition", None, Some(td)),
            FieldDiff::new("desired_count", None, Some(svc.desired_count.to_string())),
            FieldDiff::new("capacity_provider", None, Some(i.capacity_provider.to_owned())),
            FieldDiff::new("circuit_breaker", None, Some(format!("{:?}", d.circuit_breaker).to_lowercase())),
        ]);
    };
    let mut fields: Vec<FieldDiff> = compare("task_definition", &o.task_definition, &td).into_iter().collect();
    // With auto scaling, the desired count belongs to it.
    if svc.autoscaling.is_none() {
        fields.extend(compare("desired_count", &o.desired, &i32::try_from(svc.desired_count).unwrap_or(1)));
    }
    if let Some(cp) = o.capacity_providers.as_ref().filter(|cp| cp.as_slice() != [i.capacity_provider.to_owned()]) {
        fields.push(FieldDiff::new("capacity_provider", Some(cp.join(",")), Some(i.capacity_provider.to_owned())));
    }
    let tg = i.target_group.to_string();
    // ECS swaps the two target groups' roles at each shifting deployment: either is ours.
    let alternate = i.shift.as_ref().map(|s| s.outputs.alternate_target_group_arn.to_string());
    let ours = |t: &String| *t == tg || alternate.as_ref() == Some(t);
    if o.target_groups.len() != 1 || !o.target_groups.iter().all(ours) {
        fields.push(FieldDiff::new("target_group", Some(o.target_groups.join(",")), Some(tg)));
    }
    let want_strategy = strategy::text(&deployment_config(stack, i.alarms));
    if let Some(have) = o.strategy.as_ref().filter(|h| **h != want_strategy) {
        fields.push(FieldDiff::new("deployment_strategy", Some(have.clone()), Some(want_strategy)));
    }
    let want_shift = strategy::wanted_shift_text(i.target_group, i.shift.as_ref());
    if o.shift.as_ref().is_some_and(|h| *h != want_shift) || (o.shift.is_none() && i.shift.is_some()) {
        let have = o.shift.clone().unwrap_or_else(|| "none".into());
        fields.push(FieldDiff::new("traffic_shift", Some(have), Some(want_shift)));
    }
    let want_cb = circuit_breaker(stack);
    if let Some(cb) = o.circuit_breaker.filter(|cb| *cb != want_cb) {
        fields.push(FieldDiff::new("circuit_breaker", Some(format!("{cb:?}")), Some(format!("{want_cb:?}"))));
    }
    let want_threshold = failure_threshold_wanted(stack).filter(|_| want_cb.0);
    if let (Some(have), Some(want)) = (&o.failure_threshold, &want_threshold)
        && have != want
    {
        let show = |(t, v): &(String, i32)| format!("{t} {v}");
        fields.push(FieldDiff::new("failure_threshold", Some(show(have)), Some(show(want))));
    }
    if let Some(alarms) = o.alarms.as_ref().filter(|a| a.as_slice() != i.alarms) {
        fields.push(FieldDiff::new("rollback_alarms", Some(alarms.join(",")), Some(i.alarms.join(","))));
    }
    fields.extend(o.exec.and_then(|e| compare("enable_execute_command", &e, &svc.exec)));
    fields.extend(o.min_healthy.and_then(|v| {
        compare("minimum_healthy_percent", &v, &i32::try_from(d.minimum_healthy_percent).unwrap_or(100))
    }));
    fields.extend(
        o.max_percent.and_then(|v| compare("maximum_percent", &v, &i32::try_from(d.maximum_percent).unwrap_or(200))),
    );
    fields.extend(o.grace_seconds.and_then(|v| compare("health_check_grace_period", &v, &grace)));
    // A new secret value reaches tasks only when they start: roll them (a new task definition
    // rolls them anyway).
    if !fields.iter().any(|f| f.field == "task_definition") && key_roll_due(o, i.key_changes, i.key_version_created) {
        fields.push(FieldDiff::new(
            "tasks",
            Some("running with an older API key".into()),
            Some("restarted (new deployment) to read the current key".into()),
        ));
    }
    Change::update(fields)
}

pub async fn observe_service(ctx: &Ctx, cluster: &str, name: &str) -> Result<Option<ObservedService>, Error> {
    let described = ctx
        .clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .include(ServiceField::Tags)
        .send()
        .await
        .ctx("describe service", name);
    let Some(out) = absent(described)? else { return Ok(None) };
    let found: Vec<(ObservedService, Vec<(String, String)>)> = out
        .services()
        .iter()
        .filter(|s| s.status() == Some("ACTIVE"))
        .map(|s| {
            let dc = s.deployment_configuration();
            let observed = ObservedService {
                arn: s.service_arn().unwrap_or_default().to_owned(),
                task_definition: s.task_definition().unwrap_or_default().to_owned(),
                desired: s.desired_count(),
                running: s.running_count(),
                pending: s.pending_count(),
                capacity_providers: Some(
                    s.capacity_provider_strategy().iter().map(|c| c.capacity_provider().to_owned()).collect::<Vec<_>>(),
                )
                .filter(|v| !v.is_empty()),
                target_groups: s
                    .load_balancers()
                    .iter()
                    .filter_map(|l| l.target_group_arn().map(str::to_owned))
                    .collect(),
                circuit_breaker: dc.and_then(|d| d.deployment_circuit_breaker()).map(|c| (c.enable(), c.rollback())),
                // A breaker AWS reports without a threshold has ECS's default (BOUNDED_PERCENT 50):
                // a service made before the setting gets ours on the next `up`.
                failure_threshold: dc.and_then(|d| d.deployment_circuit_breaker()).map(|c| {
                    c.threshold_configuration()
                        .map_or(("BOUNDED_PERCENT".to_owned(), 50), |t| (t.r#type().as_str().to_owned(), t.value()))
                }),
                // AWS answers with both; an answer without a deployment configuration (moto)
                // keeps neither, so they compare as sent.
                exec: dc.map(|_| s.enable_execute_command()),
                alarms: dc.map(|d| {
                    d.alarms()
                        .filter(|a| a.enable() && a.rollback())
                        .map(|a| a.alarm_names().to_vec())
                        .unwrap_or_default()
                }),
                min_healthy: dc.and_then(|d| d.minimum_healthy_percent()),
                max_percent: dc.and_then(|d| d.maximum_percent()),
                grace_seconds: s.health_check_grace_period_seconds(),
                newest_deployment: s
                    .deployments()
                    .iter()
                    .filter_map(|d| d.created_at())
                    .max_by_key(|d| d.as_nanos())
                    .copied(),
                strategy: dc.map(strategy::text),
                shift: strategy::observed_shift_text(s.load_balancers()),
            };
            let tags = tags::ecs_pairs(s.tags());
            (observed, tags)
        })
        .collect();
    Ok(tags::pick_owned("ECS service", name, &ctx.owner(), found, |s| s.0.arn.clone(), |s| s.1.clone())?
        .map(|(s, _)| s))
}

fn deployment_config(stack: &stack::Stack, alarms: &[String]) -> DeploymentConfiguration {
    let (enable, rollback) = circuit_breaker(stack);
    let d = &stack.service.deployment;
    let alarms = DeploymentAlarms::builder()
        .set_alarm_names(Some(alarms.to_vec()))
        .enable(!alarms.is_empty())
        .rollback(!alarms.is_empty())
        .build()
        .ok();
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(enable)
                .rollback(rollback)
                .set_threshold_configuration(failure_threshold(stack).filter(|_| enable))
                .build(),
        )
        .set_alarms(alarms)
        .minimum_healthy_percent(i32::try_from(d.minimum_healthy_percent).unwrap_or(100))
        .maximum_percent(i32::try_from(d.maximum_percent).unwrap_or(200))
        .set_strategy(Some(strategy::ecs_strategy(stack)))
        .set_bake_time_in_minutes(strategy::bake_minutes(stack))
        .set_canary_configuration(strategy::canary(stack))
        .set_linear_configuration(strategy::linear(stack))
        .set_lifecycle_hooks(strategy::gate_hook(stack).map(|h| vec![h]))
        .build()
}

fn strategy(provider: &str) -> Result<CapacityProviderStrategyItem, Error> {
    CapacityProviderStrategyItem::builder()
        .capacity_provider(provider)
        .weight(1)
        .base(0)
        .build()
        .map_err(|e| Error::Refused(e.to_string()))
}

/// What an apply started: the new deployment's id (the rollout follower's handle).
pub struct Started {
    pub arn: Option<String>,
    pub deployment_id: Option<String>,
}

impl crate::reconcile::step::Made for Started {
    fn created_id(&self) -> Option<String> {
        self.arn.clone()
    }
}

async fn apply(
    ctx: &Ctx,
    name: &str,
    i: &ServiceInputs<'_>,
    change: &Change,
    observed: Option<&ObservedService>,
) -> Result<Started, Error> {
    let (ecs, stack) = (&ctx.clients.ecs, &ctx.stack);
    let td = i.task_definition.get()?;
    let grace = i32::try_from(stack.service.health_check_grace_period.get().as_secs()).unwrap_or(30);
    let lb = strategy::load_balancer(i, observed.map(|o| o.target_groups.as_slice()), CONTAINER, stack)?;
    let waiting = "the target group's listener and ECS's role to be usable";
    let service = match observed {
        None => {
            let ecs_tags = tags::ecs(stack);
            let token = tags::idempotency_token(&[&stack.name, "service", i.cluster, name, td]);
            ctx.wait(Wait::Propagation, waiting, || async {
                ecs.create_service()
                    .cluster(i.cluster)
                    .service_name(name)
                    .client_token(&token)
                    .task_definition(td)
                    .desired_count(i32::try_from(stack.service.desired_count).unwrap_or(1))
                    .capacity_provider_strategy(strategy(i.capacity_provider)?)
                    .load_balancers(lb.clone())
                    .deployment_configuration(deployment_config(stack, i.alarms))
                    .health_check_grace_period_seconds(grace)
                    .enable_execute_command(stack.service.exec)
                    .enable_ecs_managed_tags(true)
                    .propagate_tags(PropagateTags::Service)
                    .set_tags(Some(ecs_tags.clone()))
                    .send()
                    .await
                    .ctx("create service", name)
            })
            .await?
            .service
        }
        Some(_) => {
            ctx.wait(Wait::Propagation, waiting, || async {
                let mut req = ecs
                    .update_service()
                    .cluster(i.cluster)
                    .service(name)
                    .task_definition(td)
                    .capacity_provider_strategy(strategy(i.capacity_provider)?)
                    .deployment_configuration(deployment_config(stack, i.alarms))
                    .health_check_grace_period_seconds(grace)
                    .enable_execute_command(stack.service.exec)
                    .load_balancers(lb.clone());
                if stack.service.autoscaling.is_none() {
                    req = req.desired_count(i32::try_from(stack.service.desired_count).unwrap_or(1));
                }
                if change.has("tasks") {
                    req = req.force_new_deployment(true);
                }
                req.send().await.ctx("update service", name)
            })
            .await?
            .service
        }
    };
    ctx.progress(format!("service {name} now runs {td}"));
    let deployment_id = service.as_ref().and_then(|s| {
        s.deployments().iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.id().map(str::to_owned))
    });
    Ok(Started {
        arn: observed.is_none().then(|| service.and_then(|s| s.service_arn().map(str::to_owned))).flatten(),
        deployment_id,
    })
}

/// The service; its ARN and the deployment an apply started.
/// Converges the service from `observed` (read by the caller, at once with the task definition).
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    name: &str,
    i: &ServiceInputs<'_>,
    observed: Option<ObservedService>,
) -> Result<(Option<String>, Option<String>), Error> {
    let outcome = Step::new(ctx, ECS_SERVICE, name)
        .converge_observed(
            plan,
            observed,
            async || observe_service(ctx, i.cluster, name).await,
            |o| diff_service(&ctx.stack, i, o),
            async |c: &Change, o: Option<&ObservedService>| apply(ctx, name, i, c, o).await,
        )
        .await?;
    if let Some(note) = outcome.observed.as_ref().and_then(|o| count_owned_by_autoscaling(&ctx.stack, o)) {
        plan.note(note);
    }
    Ok((outcome.id(), outcome.applied.and_then(|s| s.deployment_id)))
}

/// Why a changed `service.desired_count` changes nothing: with auto scaling, the count is its
/// (stack.yaml's count is used when the service is created), and what to change instead.
fn count_owned_by_autoscaling(stack: &stack::Stack, o: &ObservedService) -> Option<String> {
    let a = stack.service.autoscaling.as_ref()?;
    let wanted = i64::from(stack.service.desired_count);
    (wanted != i64::from(o.desired)).then(|| {
        format!(
            "service.desired_count is {wanted}, but auto scaling owns the count (now {}, within service.autoscaling's \
             {}–{}): the plan leaves it; to hold more or fewer tasks, change service.autoscaling.min and max",
            o.desired, a.min, a.max
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breakers_failure_threshold_is_sent_and_its_drift_repaired() {
        let s = crate::resources::test_stack();
        let sent = deployment_config(&s, &[]);
        let t = sent.deployment_circuit_breaker().and_then(|c| c.threshold_configuration()).expect("sent");
        assert_eq!((t.r#type().as_str(), t.value()), ("COUNT", 2), "a small service's default");
        let (td, tg) = (Id::Known("td:1".into()), Id::Known("arn:tg".into()));
        let bounded = ObservedService { failure_threshold: Some(("BOUNDED_PERCENT".into(), 50)), ..observed() };
        let c = diff_service(&s, &inputs(&td, &tg, None), Some(&bounded));
        assert!(c.fields.iter().any(|f| f.field == "failure_threshold"), "{c:?}");
        let ours = ObservedService { failure_threshold: Some(("COUNT".into(), 2)), ..observed() };
        assert!(diff_service(&s, &inputs(&td, &tg, None), Some(&ours)).is_no_op());
    }

    #[test]
    fn a_count_auto_scaling_owns_is_said_not_silently_left() {
        let mut s = crate::resources::test_stack();
        s.service.desired_count = 3;
        s.service.autoscaling = None;
        assert_eq!(count_owned_by_autoscaling(&s, &observed()), None, "without auto scaling the plan changes it");
        s.service.autoscaling = Some(stack::Autoscaling {
            min: 1,
            max: 6,
            target_cpu_percent: stack::Percent::from_value(60.0),
            requests_per_target: None,
        });
        let note = count_owned_by_autoscaling(&s, &observed()).expect("a note");
        assert!(note.contains("desired_count is 3") && note.contains("now 5") && note.contains("1–6"), "{note}");
        assert!(note.contains("change service.autoscaling.min and max"), "{note}");
        s.service.desired_count = 5;
        assert_eq!(count_owned_by_autoscaling(&s, &observed()), None, "nothing to say when they agree");
    }

    fn observed() -> ObservedService {
        ObservedService {
            arn: "arn".into(),
            task_definition: "td:1".into(),
            desired: 5,
            running: 5,
            pending: 0,
            capacity_providers: None,
            target_groups: vec!["arn:tg".into()],
            circuit_breaker: None,
            failure_threshold: None,
            alarms: None,
            exec: None,
            min_healthy: None,
            max_percent: None,
            grace_seconds: None,
            newest_deployment: Some(DateTime::from_secs(1_000)),
            strategy: None,
            shift: None,
        }
    }

    fn inputs<'a>(td: &'a Id, tg: &'a Id, key: Option<DateTime>) -> ServiceInputs<'a> {
        ServiceInputs {
            cluster: "konnichiwa",
            capacity_provider: "konnichiwa-capacity",
            task_definition: td,
            target_group: tg,
            alarms: &[],
            key_changes: false,
            key_version_created: key,
            shift: None,
        }
    }

    #[test]
    fn fields_moto_drops_compare_as_sent() {
        let s = crate::resources::test_stack();
        let (td, tg) = (Id::Known("td:1".into()), Id::Known("arn:tg".into()));
        assert!(
            diff_service(&s, &inputs(&td, &tg, None), Some(&observed())).is_no_op(),
            "desired 5 belongs to autoscaling"
        );
        let broken = ObservedService { circuit_breaker: Some((false, false)), ..observed() };
        assert_eq!(diff_service(&s, &inputs(&td, &tg, None), Some(&broken)).fields[0].field, "circuit_breaker");
        // Alarms reported (as AWS does) and different from the stack's: drift.
        let alarms = ["konnichiwa-p95-latency".to_owned()];
        let wants = ServiceInputs { alarms: &alarms, ..inputs(&td, &tg, None) };
        let without = ObservedService { alarms: Some(Vec::new()), ..observed() };
        let c = diff_service(&s, &wants, Some(&without));
        assert_eq!(c.fields[0], FieldDiff::new("rollback_alarms", Some(String::new()), Some(alarms[0].clone())));
        assert!(diff_service(&s, &wants, Some(&observed())).is_no_op(), "not reported (moto): compared as sent");
    }

    #[test]
    fn tasks_older_than_the_current_key_are_rolled_whoever_wrote_it() {
        let s = crate::resources::test_stack();
        let (td, tg) = (Id::Known("td:1".into()), Id::Known("arn:tg".into()));
        // The key was written after the newest deployment (a run killed before it rolled).
        let c = diff_service(&s, &inputs(&td, &tg, Some(DateTime::from_secs(2_000))), Some(&observed()));
        assert_eq!(c.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["tasks"]);
        // The tasks started after it: nothing to do.
        assert!(diff_service(&s, &inputs(&td, &tg, Some(DateTime::from_secs(500))), Some(&observed())).is_no_op());
        // A new task definition rolls them anyway: no separate row.
        let td2 = Id::Known("td:2".into());
        let c = diff_service(&s, &inputs(&td2, &tg, Some(DateTime::from_secs(2_000))), Some(&observed()));
        assert_eq!(c.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["task_definition"]);
    }
}
