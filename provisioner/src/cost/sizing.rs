//! What the bill depends on, as stack.yaml wants it (`wanted`) and as AWS has it now (`now`, read
//! from a plan: what it creates is not there yet; what it updates had the diff's old value).

use serde::Serialize;

use super::deployments::Window;
use crate::reconcile::{Action, Plan};
use crate::resources::{alarms, budget};

/// Alarms AWS makes for a target-tracking policy (one to scale out, one to scale in), billed to
/// the account: each service auto scaling policy and the capacity provider's managed scaling have
/// a pair.
const ALARMS_PER_TRACKING_POLICY: u32 = 2;

/// The billed parts of a stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sizing {
    /// The instances' type; None when there are no instances (no Auto Scaling group).
    pub instance_type: Option<String>,
    /// The Auto Scaling group's min / desired (at creation) / max.
    pub capacity: (u32, u32, u32),
    pub root_volume_gib: u32,
    /// One task's CPU units and MiB.
    pub task: (u32, u32),
    /// Tasks at the quietest (`autoscaling.min`, else `desired_count`) and at full scale
    /// (`autoscaling.max`); (0, 0) without a service.
    pub tasks: (u32, u32),
    pub availability_zones: u32,
    pub load_balancer: bool,
    /// Retention of the access-log bucket, when there is one.
    pub access_log_days: Option<u32>,
    /// CloudWatch alarm metrics: the stack's alarms (an error budget window bills its three
    /// metrics) and the ones AWS makes for its scaling policies.
    pub alarms: u32,
    /// CloudWatch composite alarms: the error budget's alerts.
    pub composite_alarms: u32,
    /// Retention of the service's log group, when there is one.
    pub log_days: Option<u32>,
    pub secret: bool,
    pub repository: bool,
    /// Images the repository keeps (its lifecycle policy).
    pub kept_images: u32,
    pub container_insights: bool,
    /// How long each deployment runs both revisions; None under `rolling` or without a service.
    pub deployment: Option<Window>,
}

impl Sizing {
    /// What stack.yaml describes.
    pub fn wanted(stack: &stack::Stack) -> Self {
        let svc = &stack.service;
        let c = &stack.capacity;
        let policies = svc.autoscaling.as_ref().map_or(0, |a| 1 + u32::from(a.requests_per_target.is_some()));
        let tasks = svc.autoscaling.as_ref().map_or((svc.desired_count, svc.desired_count), |a| (a.min, a.max));
        Self {
            instance_type: Some(c.instance_type.clone()),
            capacity: (c.min, c.desired, c.max),
            root_volume_gib: c.root_volume_gib,
            task: (svc.cpu, svc.memory),
            tasks,
            availability_zones: u32::from(stack.network.availability_zones),
            load_balancer: true,
            access_log_days: stack.load_balancer.access_logs.as_ref().map(|a| a.retention_days),
            alarms: count(alarms::names(stack).len())
                + ALARMS_PER_TRACKING_POLICY * (policies + 1)
                + budget::billed_metrics(stack),
            composite_alarms: count(budget::alerts(stack, None).len()),
            log_days: Some(stack.logs.retention_days),
            secret: true,
            repository: true,
            kept_images: stack.registry.keep_images,
            container_insights: c.container_insights,
            deployment: Window::of(&svc.deployment),
        }
    }

    /// What AWS has now, as far as `plan` (of `stack`) shows it: a resource the plan creates is
    /// absent; a setting it changes had the old value; anything else is as wanted.
    pub fn now(stack: &stack::Stack, plan: &Plan) -> Self {
        let wanted = Self::wanted(stack);
        let rows = Rows(plan);
        let number =
            |noun: &str, field: &str, want: u32| rows.old(noun, field).and_then(|v| v.parse().ok()).unwrap_or(want);
        let (min, desired, max) = wanted.capacity;
        let scaling_rows = rows.exists("service-autoscaling");
        let tasks = if scaling_rows {
            rows.old("service-autoscaling", "min/max")
                .and_then(|v| v.split_once('/').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))))
                .unwrap_or(wanted.tasks)
        } else if rows.exists("ecs-service") {
            // Without auto scaling (yet), the service runs its desired count.
            let d = number("ecs-service", "desired_count", wanted.tasks.0);
            (d, d)
        } else {
            (0, 0)
        };
        let policies_now = if scaling_rows {
            stack.service.autoscaling.as_ref().map_or(0, |a| 1 + u32::from(a.requests_per_target.is_some()))
        } else {
            0
        };
        let provider_pair = if rows.exists("capacity-provider") { ALARMS_PER_TRACKING_POLICY } else { 0 };
        let instances = rows.exists("auto-scaling-group");
        Self {
            instance_type: instances.then(|| {
                rows.old("launch-template", "instance_type").unwrap_or(&stack.capacity.instance_type).to_owned()
            }),
            capacity: (number("auto-scaling-group", "min", min), desired, number("auto-scaling-group", "max", max)),
            root_volume_gib: number("launch-template", "root_volume_gib", wanted.root_volume_gib),
            task: wanted.task,
            tasks,
            availability_zones: wanted.availability_zones,
            load_balancer: rows.exists("load-balancer"),
            access_log_days: rows
                .exists("log-bucket")
                .then(|| number("log-bucket", "expiration_days", crate::resources::log_bucket::retention_days(stack))),
            alarms: count(rows.count("alarm"))
                + ALARMS_PER_TRACKING_POLICY * policies_now
                + provider_pair
                + rows
                    .present("burn-alarm")
                    .map(|r| budget::Objective::of_alarm(&stack.name, &r.name).metrics_per_window())
                    .sum::<u32>(),
            composite_alarms: count(rows.count("budget-alert")),
            log_days: rows.exists("log-group").then_some(number(
                "log-group",
                "retention_days",
                stack.logs.retention_days,
            )),
            secret: rows.exists("secret"),
            repository: rows.exists("ecr-repository"),
            kept_images: wanted.kept_images,
            container_insights: wanted.container_insights,
            deployment: rows.exists("ecs-service").then(|| strategy_now(stack, &rows)).flatten(),
        }
    }
}

/// The window of the strategy the service has: the old value of the service row's `strategy`
/// when the plan changes it, else stack.yaml's.
fn strategy_now(stack: &stack::Stack, rows: &Rows) -> Option<Window> {
    let mut deployment = stack.service.deployment.clone();
    if let Some(old) = rows.old("ecs-service", "strategy") {
        deployment.strategy = serde_json::from_value(serde_json::Value::String(old.to_owned())).ok()?;
    }
    Window::of(&deployment)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A plan's rows, asked what AWS has now.
struct Rows<'a>(&'a Plan);

impl Rows<'_> {
    fn present(&self, noun: &str) -> impl Iterator<Item = &crate::reconcile::ResourceChange> {
        self.0.resources.iter().filter(move |r| r.kind == noun && r.change.action != Action::Create)
    }

    /// True when a resource of this noun is there before the plan is applied.
    fn exists(&self, noun: &str) -> bool {
        self.present(noun).next().is_some()
    }

    fn count(&self, noun: &str) -> usize {
        self.present(noun).count()
    }

    /// The value AWS has for `field` of the first such resource, when the plan changes it.
    fn old(&self, noun: &str, field: &str) -> Option<&str> {
        self.present(noun).flat_map(|r| &r.change.fields).find(|f| f.field == field).and_then(|f| f.old.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{Change, FieldDiff};
    use crate::resources::test_stack;

    fn update(field: &str, old: &str, new: &str) -> Change {
        Change::update(vec![FieldDiff::new(field, Some(old.into()), Some(new.into()))])
    }

    #[test]
    fn now_is_what_the_plan_changes_from() {
        let stack = test_stack();
        let mut plan = Plan::default();
        plan.push(
            crate::reconcile::Noun::new("launch-template"),
            "lt",
            None,
            update("instance_type", "t3.micro", "t3.small"),
        );
        plan.push(crate::reconcile::Noun::new("auto-scaling-group"), "asg", None, update("max", "3", "4"));
        plan.push(crate::reconcile::Noun::new("capacity-provider"), "cp", None, Change::no_op());
        plan.push(crate::reconcile::Noun::new("ecs-service"), "svc", None, Change::no_op());
        plan.push(crate::reconcile::Noun::new("service-autoscaling"), "sa", None, update("min/max", "2/6", "2/8"));
        plan.push(crate::reconcile::Noun::new("load-balancer"), "lb", None, Change::no_op());
        plan.push(crate::reconcile::Noun::new("alarm"), "a", None, Change::no_op());
        plan.push(crate::reconcile::Noun::new("alarm"), "b", None, Change::create(Vec::new()));
        plan.push(crate::reconcile::Noun::new("log-group"), "lg", None, update("retention_days", "14", "30"));
        let now = Sizing::now(&stack, &plan);
        assert_eq!(now.instance_type.as_deref(), Some("t3.micro"));
        assert_eq!(now.capacity, (1, 2, 3));
        assert_eq!(now.tasks, (2, 6));
        assert_eq!(now.alarms, 1 + 2 + 2, "one alarm, the service's and the provider's pairs");
        assert_eq!(now.log_days, Some(14));
        assert!(now.load_balancer && !now.secret && !now.repository && now.access_log_days.is_none());
    }

    #[test]
    fn the_strategy_now_is_the_one_the_plan_changes_from() {
        let mut stack = test_stack();
        stack.service.deployment.strategy = stack::schema::Strategy::Canary;
        let mut plan = Plan::default();
        plan.push(crate::reconcile::Noun::new("ecs-service"), "svc", None, update("strategy", "rolling", "canary"));
        assert_eq!(Sizing::now(&stack, &plan).deployment, None, "rolling before the change");
        assert_eq!(Sizing::wanted(&stack).deployment.map(|w| w.strategy), Some("canary"));
        let mut plan = Plan::default();
        plan.push(crate::reconcile::Noun::new("ecs-service"), "svc", None, Change::no_op());
        assert_eq!(Sizing::now(&stack, &plan).deployment.map(|w| w.strategy), Some("canary"), "unchanged: as wanted");
    }

    #[test]
    fn a_stack_the_plan_creates_has_nothing_now() {
        let stack = test_stack();
        let mut plan = Plan::default();
        for noun in ["launch-template", "auto-scaling-group", "ecs-service", "load-balancer", "secret", "log-bucket"] {
            plan.push(crate::reconcile::Noun::new(noun), "x", None, Change::create(Vec::new()));
        }
        let now = Sizing::now(&stack, &plan);
        assert_eq!(now.instance_type, None);
        assert_eq!((now.tasks, now.alarms, now.load_balancer, now.secret), ((0, 0), 0, false, false));
        let e = crate::cost::estimate(&now, &stack.cost, &crate::cost::PriceBook::snapshot());
        assert_eq!(e.monthly_usd, 0.0, "{:?}", e.items);
    }
}
