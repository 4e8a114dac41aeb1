//! What a canary, linear or blue/green strategy needs of the load balancer: the alternate target
//! group ECS starts the new revision in, and on the forwarding listener two rules that forward to
//! both target groups by weight — the test rule (requests carrying the gate's header) and the
//! production rule (every other request). ECS moves their weights during a deployment (through
//! the role it is given); `up` makes the rules, keeps their conditions and the pair of target
//! groups they forward to, and never touches the weights.

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, ForwardActionConfig, HttpHeaderConditionConfig, PathPatternConditionConfig,
    RuleCondition, TargetGroupTuple,
};
use serde::Serialize;

use crate::error::{AwsContext, Error, gone};
use crate::reconcile::step::{InUse, Observed};
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step};

use super::{LISTENER_RULE, elb_tags};

/// The header the gate's requests carry to reach the new revision through the test rule: a
/// routing key, not a secret (anyone who sends it during a gate reaches the new tasks).
pub const GATE_HEADER: &str = "X-Konnichiwa-Gate";

/// The rules' priorities on the forwarding listener (lower is evaluated first).
const TEST_PRIORITY: i32 = 10;
const PRODUCTION_PRIORITY: i32 = 20;

/// What ECS is given to shift traffic with (`loadBalancers[].advancedConfiguration`).
#[derive(Debug, Clone, Serialize)]
pub struct ShiftOutputs {
    pub alternate_target_group_arn: Id,
    pub production_rule_arn: Id,
    pub test_rule_arn: Id,
}

/// The gate header's value for a stack: its name (one listener serves one stack).
pub fn gate_header_value(stack: &stack::Stack) -> &str {
    &stack.name
}

/// One of the two rules, as stack.yaml wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub role: &'static str,
    pub priority: i32,
    /// The condition as text: `path /*` or `header NAME: VALUE`.
    pub condition: String,
}

/// The test rule, then the production rule.
pub fn desired_rules(stack: &stack::Stack) -> [RuleSpec; 2] {
    [
        RuleSpec {
            role: "test",
            priority: TEST_PRIORITY,
            condition: format!("header {GATE_HEADER}: {}", gate_header_value(stack)),
        },
        RuleSpec { role: "production", priority: PRODUCTION_PRIORITY, condition: "path /*".into() },
    ]
}

/// A rule of the listener as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRule {
    pub arn: String,
    pub priority: i32,
    pub condition: String,
    /// The target groups it forwards to, with their weights (ECS's to move).
    pub forwards: Vec<(String, i32)>,
    /// Its actions other than the forward, by type (none of ours has any: an `authenticate-oidc`
    /// or a redirect put before the forward is drift).
    pub other_actions: Vec<String>,
    /// Its transforms (a host or URL rewrite), by type: ours have none.
    pub transforms: Vec<String>,
}

impl Observed for ObservedRule {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// A listener has one rule per priority: nothing to choose among.
impl InUse for ObservedRule {
    fn in_use(&self) -> bool {
        false
    }
}

/// One rule: absent (create), with another condition or forwarding elsewhere (modify), or as
/// wanted whatever its weights.
pub fn diff_rule(want: &RuleSpec, have: Option<&ObservedRule>, groups: (&str, &str)) -> Change {
    let pair = |f: &[(String, i32)]| {
        let mut names: Vec<&str> = f.iter().map(|(t, _)| t.as_str()).collect();
        names.sort_unstable();
        names.join(" + ")
    };
    let mut wanted = [groups.0, groups.1];
    wanted.sort_unstable();
    let wanted = wanted.join(" + ");
    let Some(h) = have else {
        return Change::create(vec![
            FieldDiff::new("condition", None, Some(want.condition.clone())),
            FieldDiff::new("forward", None, Some(wanted)),
        ]);
    };
    let mut fields = Vec::new();
    if h.condition != want.condition {
        fields.push(FieldDiff::new("condition", Some(h.condition.clone()), Some(want.condition.clone())));
    }
    if pair(&h.forwards) != wanted {
        fields.push(FieldDiff::new("forward", Some(pair(&h.forwards)), Some(wanted)));
    }
    if !h.other_actions.is_empty() {
        fields.push(FieldDiff::new("actions", Some(h.other_actions.join(", ") + " + forward"), Some("forward".into())));
    }
    if !h.transforms.is_empty() {
        fields.push(FieldDiff::new("transforms", Some(h.transforms.join(", ")), Some("none".into())));
    }
    Change::update(fields)
}

/// The listener's rules (its default rule left out).
pub(super) async fn observe_rules(ctx: &Ctx, listener_arn: &str) -> Result<Vec<ObservedRule>, Error> {
    let out = ctx
        .clients
        .elb
        .describe_rules()
        .listener_arn(listener_arn)
        .send()
        .await
        .ctx("describe rules of", listener_arn)?;
    Ok(out
        .rules()
        .iter()
        .filter(|r| !r.is_default().unwrap_or(false))
        .filter_map(|r| {
            let priority = r.priority()?.parse().ok()?;
            let forwards = r
                .actions()
                .iter()
                .filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
                .flat_map(|a| match a.forward_config() {
                    Some(f) => f
                        .target_groups()
                        .iter()
                        .map(|t| (t.target_group_arn().unwrap_or_default().to_owned(), t.weight().unwrap_or(1)))
                        .collect(),
                    None => a.target_group_arn().map(|t| (t.to_owned(), 1)).into_iter().collect::<Vec<_>>(),
                })
                .collect();
            let other_actions = r
                .actions()
                .iter()
                .filter(|a| a.r#type() != Some(&ActionTypeEnum::Forward))
                .map(|a| a.r#type().map_or_else(|| "?".to_owned(), |t| t.as_str().to_owned()))
                .collect();
            let transforms = r
                .transforms()
                .iter()
                .map(|t| t.r#type().map_or_else(|| "?".to_owned(), |k| k.as_str().to_owned()))
                .collect();
            Some(ObservedRule {
                arn: r.rule_arn().unwrap_or_default().to_owned(),
                priority,
                condition: r.conditions().iter().map(condition_text).collect::<Vec<_>>().join(" and "),
                forwards,
                other_actions,
                transforms,
            })
        })
        .collect())
}

fn condition_text(c: &RuleCondition) -> String {
    if let Some(h) = c.http_header_config() {
        return format!("header {}: {}", h.http_header_name().unwrap_or_default(), h.values().join(","));
    }
    if let Some(p) = c.path_pattern_config() {
        return format!("path {}", p.values().join(","));
    }
    format!("{} {}", c.field().unwrap_or_default(), c.values().join(","))
}

fn condition(spec: &RuleSpec, stack: &stack::Stack) -> RuleCondition {
    if spec.role == "test" {
        RuleCondition::builder()
            .field("http-header")
            .http_header_config(
                HttpHeaderConditionConfig::builder()
                    .http_header_name(GATE_HEADER)
                    .values(gate_header_value(stack))
                    .build(),
            )
            .build()
    } else {
        RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(PathPatternConditionConfig::builder().values("/*").build())
            .build()
    }
}

/// Forwards to both groups with the weights of the first of `candidates` that gives our two
/// groups any (a rule repaired, or made again, while the alternate group serves must not send
/// traffic back to an empty group); when none does, all to the first group.
fn forward(groups: (&str, &str), candidates: &[&[(String, i32)]]) -> ElbAction {
    let weight_of = |w: &[(String, i32)], tg: &str| w.iter().find(|(t, _)| t == tg).map_or(0, |(_, weight)| *weight);
    let (first, second) = candidates
        .iter()
        .map(|w| (weight_of(w, groups.0), weight_of(w, groups.1)))
        .find(|pair| *pair != (0, 0))
        .unwrap_or((100, 0));
    let tuple = |tg: &str, w: i32| TargetGroupTuple::builder().target_group_arn(tg).weight(w).build();
    ElbAction::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(tuple(groups.0, first))
                .target_groups(tuple(groups.1, second))
                .build(),
        )
        .build()
}

/// The listener, the two groups, and the rules as read (for the weights a new rule starts with).
pub(super) struct RuleInputs<'a> {
    pub lb_name: &'a str,
    pub listener_arn: &'a str,
    pub groups: (&'a str, &'a str),
    pub seen: &'a [ObservedRule],
}

async fn apply_rule(
    ctx: &Ctx,
    i: &RuleInputs<'_>,
    want: &RuleSpec,
    change: &Change,
    observed: Option<&ObservedRule>,
) -> Result<Option<String>, Error> {
    let elb = &ctx.clients.elb;
    // The production rule's weights say which group serves (the test rule's, mid-gate, point at
    // the unjudged revision); then the test rule's.
    let by_priority = |p: i32| i.seen.iter().find(|r| r.priority == p).map(|r| r.forwards.as_slice());
    let others: Vec<&[(String, i32)]> =
        [by_priority(PRODUCTION_PRIORITY), by_priority(TEST_PRIORITY)].into_iter().flatten().collect();
    match observed {
        None => {
            let out = elb
                .create_rule()
                .listener_arn(i.listener_arn)
                .priority(want.priority)
                .conditions(condition(want, &ctx.stack))
                .actions(forward(i.groups, &others))
                .set_tags(Some(elb_tags(&ctx.stack, i.lb_name)))
                .send()
                .await
                .ctx("create listener rule on", i.lb_name)?;
            ctx.progress(format!("{} listener rule of {} created", want.role, i.lb_name));
            Ok(out.rules().first().and_then(|r| r.rule_arn()).map(str::to_owned))
        }
        Some(r) => {
            let mut req = elb.modify_rule().rule_arn(&r.arn);
            if change.has("condition") {
                req = req.conditions(condition(want, &ctx.stack));
            }
            if change.has("forward") || change.has("actions") {
                let mine: Vec<&[(String, i32)]> = std::iter::once(r.forwards.as_slice()).chain(others).collect();
                req = req.actions(forward(i.groups, &mine));
            }
            if change.has("transforms") {
                req = req.reset_transforms(true);
            }
            req.send().await.ctx("modify listener rule of", i.lb_name)?;
            ctx.progress(format!("{} listener rule of {} updated", want.role, i.lb_name));
            Ok(None)
        }
    }
}

/// The test and production rules on the forwarding listener: (test rule, production rule).
pub(super) async fn converge_rules(ctx: &Ctx, plan: &mut Plan, i: &RuleInputs<'_>) -> Result<(Id, Id), Error> {
    let mut arns = Vec::new();
    for want in desired_rules(&ctx.stack) {
        let looked = std::cell::Cell::new(false);
        let outcome = Step::new(ctx, LISTENER_RULE, format!("{}:{}", i.lb_name, want.role))
            .converge_one(
                plan,
                async || {
                    let all =
                        if looked.replace(true) { observe_rules(ctx, i.listener_arn).await? } else { i.seen.to_vec() };
                    Ok(all.into_iter().filter(|r| r.priority == want.priority).collect())
                },
                |o| diff_rule(&want, o, i.groups),
                async |c: &Change, o: Option<&ObservedRule>| apply_rule(ctx, i, &want, c, o).await,
                async |extra: &ObservedRule| {
                    let r = ctx.clients.elb.delete_rule().rule_arn(&extra.arn).send().await;
                    gone(r.ctx("delete listener rule of", i.lb_name))
                },
            )
            .await?;
        arns.push(outcome.id_or(|| format!("{} listener rule of {}", want.role, i.lb_name)));
    }
    let production = arns.pop().unwrap_or_else(|| Id::Pending("production rule".into()));
    let test = arns.pop().unwrap_or_else(|| Id::Pending("test rule".into()));
    Ok((test, production))
}

/// Rules on the stack's listener that are not ours (another hand's, e.g. one sending some paths
/// elsewhere): drift, deleted. Ours are the strategy's two priorities (a stack back on rolling
/// retires them apart, once it is safe).
pub(super) fn foreign<'r>(stack: &stack::Stack, rules: &'r [ObservedRule]) -> Vec<&'r ObservedRule> {
    rules.iter().filter(|r| !strategys(stack, r)).collect()
}

/// Whether `rule` stands at one of the strategy's two priorities.
pub(super) fn strategys(stack: &stack::Stack, rule: &ObservedRule) -> bool {
    desired_rules(stack).iter().any(|d| d.priority == rule.priority)
}

/// Deletes rules of another hand: `foreign` ones on the forwarding listener, and every rule of the
/// stack's other listeners.
pub(super) async fn delete_foreign(
    ctx: &Ctx,
    plan: &mut Plan,
    lb_name: &str,
    foreign: &[&ObservedRule],
    elsewhere: &[ObservedRule],
) -> Result<(), Error> {
    for r in foreign.iter().copied().chain(elsewhere) {
        if ctx.applying() {
            let out = ctx.clients.elb.delete_rule().rule_arn(&r.arn).send().await;
            gone(out.ctx("delete listener rule of", lb_name))?;
            ctx.progress(format!("deleted listener rule {} of {lb_name}: the stack has no such rule", r.priority));
        }
        let mut change = Change::delete();
        change.reason = Some("the stack has no such rule".into());
        plan.push(LISTENER_RULE, format!("{lb_name}:priority-{}", r.priority), Some(r.arn.clone()), change);
    }
    Ok(())
}

/// Deletes the two rules (a stack that went back to rolling; `down` deletes them with their
/// listener).
pub(super) async fn delete_rules(
    ctx: &Ctx,
    plan: &mut Plan,
    lb_name: &str,
    seen: &[ObservedRule],
) -> Result<(), Error> {
    for want in desired_rules(&ctx.stack) {
        for r in seen.iter().filter(|r| r.priority == want.priority) {
            if ctx.applying() {
                let out = ctx.clients.elb.delete_rule().rule_arn(&r.arn).send().await;
                gone(out.ctx("delete listener rule of", lb_name))?;
                ctx.progress(format!("deleted the {} listener rule of {lb_name}", want.role));
            }
            plan.push(LISTENER_RULE, format!("{lb_name}:{}", want.role), Some(r.arn.clone()), Change::delete());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Action;

    fn rule(priority: i32, condition: &str, forwards: &[(&str, i32)]) -> ObservedRule {
        ObservedRule {
            arn: format!("arn:rule/{priority}"),
            priority,
            condition: condition.into(),
            forwards: forwards.iter().map(|(t, w)| ((*t).to_owned(), *w)).collect(),
            other_actions: Vec::new(),
            transforms: Vec::new(),
        }
    }

    #[test]
    fn the_weights_are_ecss_and_the_conditions_and_groups_ours() {
        let s = crate::resources::test_stack();
        let [test, production] = desired_rules(&s);
        assert_eq!(test.condition, "header X-Konnichiwa-Gate: konnichiwa");
        assert_eq!(production.condition, "path /*");
        assert!(test.priority < production.priority, "the gate's header is matched before every path");
        let groups = ("tg-a", "tg-b");
        // Mid-deployment: ECS has moved 10% to the alternate group. Nothing to change.
        let shifted = rule(20, "path /*", &[("tg-a", 90), ("tg-b", 10)]);
        assert!(diff_rule(&production, Some(&shifted), groups).is_no_op());
        let swapped = rule(20, "path /*", &[("tg-b", 100), ("tg-a", 0)]);
        assert!(diff_rule(&production, Some(&swapped), groups).is_no_op(), "after a deployment the roles swap");
        let elsewhere = rule(20, "path /*", &[("tg-a", 100), ("tg-x", 0)]);
        let c = diff_rule(&production, Some(&elsewhere), groups);
        assert_eq!(c.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["forward"]);
        let opened = rule(10, "header X-Konnichiwa-Gate: anyone", &[("tg-a", 0), ("tg-b", 100)]);
        let c = diff_rule(&test, Some(&opened), groups);
        assert_eq!(c.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["condition"]);
        assert_eq!(diff_rule(&test, None, groups).action, Action::Create);
        let intercepted = ObservedRule { other_actions: vec!["authenticate-oidc".into()], ..shifted.clone() };
        let c = diff_rule(&production, Some(&intercepted), groups);
        assert_eq!(c.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["actions"], "an action before ours");
        let rewritten = ObservedRule { transforms: vec!["host-header-rewrite".into()], ..shifted };
        let c = diff_rule(&production, Some(&rewritten), groups);
        assert_eq!(c.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["transforms"]);
    }

    #[test]
    fn a_rule_of_another_hand_on_the_listener_is_foreign() {
        let s = crate::resources::test_stack();
        let planted = rule(1, "path /admin*", &[("tg-x", 1)]);
        let ours = rule(20, "path /*", &[("tg-a", 100), ("tg-b", 0)]);
        let rules = [planted, ours];
        let found: Vec<i32> = foreign(&s, &rules).iter().map(|r| r.priority).collect();
        assert_eq!(found, [1], "the strategy's own are retired apart");
    }

    #[test]
    fn a_rule_made_again_keeps_the_weights_of_the_other() {
        let weights = vec![("tg-a".to_owned(), 0), ("tg-b".to_owned(), 100)];
        let a = forward(("tg-a", "tg-b"), &[&weights]);
        let tuples: Vec<(String, i32)> = a
            .forward_config()
            .expect("forward")
            .target_groups()
            .iter()
            .map(|t| (t.target_group_arn().unwrap_or_default().to_owned(), t.weight().unwrap_or_default()))
            .collect();
        assert_eq!(tuples, weights, "the alternate group serves: a new rule must not send traffic to the empty one");
        // A repair of a rule that forwards to a stranger and to our alternate group keeps the
        // alternate's share.
        let repaired = forward(("tg-a", "tg-b"), &[&[("tg-x".to_owned(), 100), ("tg-b".to_owned(), 100)]]);
        let w: Vec<Option<i32>> =
            repaired.forward_config().expect("forward").target_groups().iter().map(|t| t.weight()).collect();
        assert_eq!(w, [Some(0), Some(100)]);
        let fresh = forward(("tg-a", "tg-b"), &[]);
        let first = fresh.forward_config().expect("forward").target_groups()[0].weight();
        assert_eq!(first, Some(100));
        // A rule that forwards to neither group (replaced by a stranger's): the other rule's say.
        let stranger = [("tg-x".to_owned(), 1)];
        let other = [("tg-a".to_owned(), 0), ("tg-b".to_owned(), 100)];
        let w: Vec<Option<i32>> = forward(("tg-a", "tg-b"), &[&stranger, &other])
            .forward_config()
            .expect("forward")
            .target_groups()
            .iter()
            .map(|t| t.weight())
            .collect();
        assert_eq!(w, [Some(0), Some(100)]);
    }
}
