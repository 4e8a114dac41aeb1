//! The service's deployment strategy as ECS takes it (`deploymentConfiguration.strategy`, its
//! canary or linear settings, the bake time, and the gate's PAUSE hook at POST_TEST_TRAFFIC_SHIFT
//! whose timeout rolls back), its load balancer's traffic-shifting settings
//! (`advancedConfiguration`: the alternate target group, the production and test listener rules,
//! the role ECS changes them with), and both as the text a plan compares.

use aws_sdk_ecs::types::{
    AdvancedConfiguration, CanaryConfiguration, DeploymentConfiguration, DeploymentLifecycleHook,
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType,
    DeploymentLifecycleHookTimeoutConfiguration, DeploymentStrategy, LinearConfiguration, LoadBalancer,
};

use crate::error::Error;
use crate::reconcile::Id;
use crate::resources::load_balancer::ShiftOutputs;

use super::ecs_service::ServiceInputs;

/// The stage the gate's hook holds a deployment at: the new revision takes the test traffic,
/// no production traffic has moved.
pub const GATE_STAGE: DeploymentLifecycleHookStage = DeploymentLifecycleHookStage::PostTestTrafficShift;

/// What ECS shifts traffic with: the load balancer's alternate group and rules, and the role.
#[derive(Debug, Clone, Copy)]
pub struct Shift<'a> {
    pub outputs: &'a ShiftOutputs,
    pub role: &'a Id,
}

fn minutes(d: &stack::HumanDuration) -> i32 {
    i32::try_from(d.get().as_secs() / 60).unwrap_or(i32::MAX)
}

pub fn ecs_strategy(stack: &stack::Stack) -> DeploymentStrategy {
    match stack.service.deployment.strategy {
        stack::Strategy::Rolling => DeploymentStrategy::Rolling,
        stack::Strategy::Canary => DeploymentStrategy::Canary,
        stack::Strategy::Linear => DeploymentStrategy::Linear,
        stack::Strategy::BlueGreen => DeploymentStrategy::BlueGreen,
    }
}

/// How long the old revision stays after all traffic moved (None: rolling).
pub fn bake_minutes(stack: &stack::Stack) -> Option<i32> {
    let d = &stack.service.deployment;
    d.strategy.shifts_traffic().then(|| minutes(&d.blue_green.bake))
}

pub fn canary(stack: &stack::Stack) -> Option<CanaryConfiguration> {
    let d = &stack.service.deployment;
    (d.strategy == stack::Strategy::Canary).then(|| {
        CanaryConfiguration::builder()
            .canary_percent(d.canary.percent.get())
            .canary_bake_time_in_minutes(minutes(&d.canary.bake))
            .build()
    })
}

pub fn linear(stack: &stack::Stack) -> Option<LinearConfiguration> {
    let d = &stack.service.deployment;
    (d.strategy == stack::Strategy::Linear).then(|| {
        LinearConfiguration::builder()
            .step_percent(d.linear.step.get())
            .step_bake_time_in_minutes(minutes(&d.linear.step_bake))
            .build()
    })
}

/// The gate's hook: ECS pauses once the new revision takes the test traffic, until `deploy`
/// answers (ContinueServiceDeployment) or `gate.timeout` passes, which rolls back.
pub fn gate_hook(stack: &stack::Stack) -> Option<DeploymentLifecycleHook> {
    let d = &stack.service.deployment;
    d.strategy.shifts_traffic().then(|| {
        DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::Pause)
            .lifecycle_stages(GATE_STAGE)
            .timeout_configuration(
                DeploymentLifecycleHookTimeoutConfiguration::builder()
                    .timeout_in_minutes(minutes(&d.gate.timeout))
                    .action(DeploymentLifecycleHookAction::Rollback)
                    .build(),
            )
            .build()
    })
}

/// A deployment configuration's strategy as a plan shows it: `rolling`, or e.g.
/// `canary 5% for 10m, bake 10m; PAUSE at POST_TEST_TRAFFIC_SHIFT for 30m, then ROLLBACK`.
pub fn text(dc: &DeploymentConfiguration) -> String {
    let strategy = dc.strategy().cloned().unwrap_or(DeploymentStrategy::Rolling);
    let mut s = match &strategy {
        DeploymentStrategy::Canary => {
            let c = dc.canary_configuration();
            format!(
                "canary {}% for {}m",
                c.and_then(CanaryConfiguration::canary_percent).unwrap_or(5.0),
                c.and_then(CanaryConfiguration::canary_bake_time_in_minutes).unwrap_or(10)
            )
        }
        DeploymentStrategy::Linear => {
            let l = dc.linear_configuration();
            format!(
                "linear {}% every {}m",
                l.and_then(LinearConfiguration::step_percent).unwrap_or(10.0),
                l.and_then(LinearConfiguration::step_bake_time_in_minutes).unwrap_or(6)
            )
        }
        other => other.as_str().to_lowercase(),
    };
    if strategy != DeploymentStrategy::Rolling {
        s.push_str(&format!(", bake {}m", dc.bake_time_in_minutes().unwrap_or(0)));
    }
    for h in dc.lifecycle_hooks() {
        let stages: Vec<&str> = h.lifecycle_stages().iter().map(DeploymentLifecycleHookStage::as_str).collect();
        let timeout = h.timeout_configuration();
        s.push_str(&format!(
            "; {} at {} for {}m, then {}",
            // A hook reported without its type is a PAUSE when it names no target.
            h.target_type().map_or(
                if h.hook_target_arn().is_none() { "PAUSE" } else { "AWS_LAMBDA" },
                DeploymentLifecycleHookTargetType::as_str
            ),
            stages.join("+"),
            timeout.and_then(DeploymentLifecycleHookTimeoutConfiguration::timeout_in_minutes).unwrap_or(1440),
            timeout.and_then(|t| t.action()).map_or("ROLLBACK", DeploymentLifecycleHookAction::as_str),
        ));
    }
    s
}

fn shift_text(groups: [&str; 2], production: &str, test: &str, role: &str) -> String {
    let mut groups = groups;
    groups.sort_unstable();
    format!("target groups {} + {}, production rule {production}, test rule {test}, role {role}", groups[0], groups[1])
}

/// What the stack wants of the load balancer's shifting settings (`none` for a rolling stack).
pub fn wanted_shift_text(target_group: &Id, shift: Option<&Shift<'_>>) -> String {
    match shift {
        None => "none".into(),
        Some(s) => shift_text(
            [&target_group.to_string(), &s.outputs.alternate_target_group_arn.to_string()],
            &s.outputs.production_rule_arn.to_string(),
            &s.outputs.test_rule_arn.to_string(),
            &s.role.to_string(),
        ),
    }
}

/// The service's shifting settings as ECS reports them (None: none).
pub fn observed_shift_text(lbs: &[LoadBalancer]) -> Option<String> {
    let lb = lbs.first()?;
    let a = lb.advanced_configuration()?;
    Some(shift_text(
        [lb.target_group_arn().unwrap_or_default(), a.alternate_target_group_arn().unwrap_or_default()],
        a.production_listener_rule().unwrap_or_default(),
        a.test_listener_rule().unwrap_or_default(),
        a.role_arn().unwrap_or_default(),
    ))
}

/// The service's load balancer: the target group, and with a shifting strategy the alternate
/// one, the rules and the role. The two groups are sent the way the service has them now (`seen`:
/// ECS swaps them at each deployment), so that an update does not move traffic.
pub fn load_balancer(
    i: &ServiceInputs<'_>,
    seen: Option<&[String]>,
    container: &str,
    stack: &stack::Stack,
) -> Result<LoadBalancer, Error> {
    let tg = i.target_group.get()?;
    let mut lb =
        LoadBalancer::builder().container_name(container).container_port(i32::from(stack.service.container_port));
    let Some(s) = &i.shift else { return Ok(lb.target_group_arn(tg).build()) };
    let alt = s.outputs.alternate_target_group_arn.get()?;
    let (main, alternate) = if seen == Some(&[alt.to_owned()][..]) { (alt, tg) } else { (tg, alt) };
    lb = lb.target_group_arn(main).advanced_configuration(
        AdvancedConfiguration::builder()
            .alternate_target_group_arn(alternate)
            .production_listener_rule(s.outputs.production_rule_arn.get()?)
            .test_listener_rule(s.outputs.test_rule_arn.get()?)
            .role_arn(s.role.get()?)
            .build(),
    );
    Ok(lb.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(strategy: &str) -> stack::Stack {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack.yaml")).expect("example");
        let text = text.replace("slo_alarms: true }", &format!("slo_alarms: true, {strategy} }}"));
        stack::Stack::from_yaml(&text, std::path::Path::new("stack.yaml")).expect("valid")
    }

    #[test]
    fn each_strategy_is_sent_as_ecs_takes_it_and_shown_as_compared() {
        let rolling = with("strategy: rolling");
        assert_eq!(
            (bake_minutes(&rolling), gate_hook(&rolling).is_none()),
            (None, true),
            "rolling sends no bake or hook"
        );
        let canaried = with("strategy: canary, canary: { percent: 10%, bake: 5m }, gate: { timeout: 20m }");
        let c = super::canary(&canaried).expect("canary");
        assert_eq!((c.canary_percent(), c.canary_bake_time_in_minutes()), (Some(10.0), Some(5)));
        let hook = gate_hook(&canaried).expect("hook");
        assert_eq!(hook.target_type(), Some(&DeploymentLifecycleHookTargetType::Pause));
        assert_eq!(hook.lifecycle_stages(), [GATE_STAGE]);
        assert!(hook.hook_target_arn().is_none(), "a PAUSE hook names no target");
        let timeout = hook.timeout_configuration().expect("timeout");
        assert_eq!(
            (timeout.timeout_in_minutes(), timeout.action()),
            (Some(20), Some(&DeploymentLifecycleHookAction::Rollback))
        );
        let dc = DeploymentConfiguration::builder()
            .strategy(ecs_strategy(&canaried))
            .set_bake_time_in_minutes(bake_minutes(&canaried))
            .set_canary_configuration(super::canary(&canaried))
            .set_lifecycle_hooks(gate_hook(&canaried).map(|h| vec![h]))
            .build();
        assert_eq!(text(&dc), "canary 10% for 5m, bake 10m; PAUSE at POST_TEST_TRAFFIC_SHIFT for 20m, then ROLLBACK");
        let linear = with("strategy: linear, linear: { step: 25%, step_bake: 2m }");
        let l = super::linear(&linear).expect("linear");
        assert_eq!((l.step_percent(), l.step_bake_time_in_minutes()), (Some(25.0), Some(2)));
        assert!(super::canary(&linear).is_none() && super::linear(&canaried).is_none());
        let bg = with("strategy: blue_green, blue_green: { bake: 15m }");
        assert_eq!((ecs_strategy(&bg), bake_minutes(&bg)), (DeploymentStrategy::BlueGreen, Some(15)));
        assert_eq!(text(&DeploymentConfiguration::builder().build()), "rolling", "ECS's default");
    }
}
