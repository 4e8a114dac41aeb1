//! Whether the caller may make the calls the stack needs, asked of IAM's policy simulator as the
//! calls will really be made: each declaration's actions on the resources its statement names,
//! with the context the provisioner's requests carry (the region they go to, the ownership tag
//! they set or find, the service a role is passed to, the boundary a role carries). The simulator
//! evaluates a condition only with the context it is given and answers `implicitDeny` with the
//! key in `MissingContextValues` otherwise; such an answer means "not judged", never "denied".
//! An organization's SCP or the caller's permissions boundary that refuses a call is named as
//! the reason.

use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, EvaluationResult, PolicyEvaluationDecisionType};
use serde_json::Value;

use crate::error::{AwsContext, Error};
use crate::reconcile::Ctx;
use crate::reconcile::permission::{Effect, Permission, PolicyContext, is_global, statements};

/// Actions per simulation call (AWS's ActionNames takes up to 100; a statement rarely has more).
const ACTIONS_PER_CALL: usize = 50;

/// Simulations in flight at once (IAM publishes no rate; its throttling is paced like any other).
const AT_ONCE: usize = 8;

/// One question to the simulator: these actions, on these resources (none: `*`), with this
/// context.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// (key, values, type): what the requests carry.
    pub context: Vec<(String, Vec<String>, ContextKeyTypeEnum)>,
}

/// The simulator's verdict on one call of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused, and why (an SCP, the caller's boundary, an explicit deny, or no grant).
    Denied {
        action: String,
        resource: String,
        why: String,
    },
    /// Not judged: the caller's policies have conditions on keys the simulation did not carry.
    Unjudged {
        action: String,
        missing: Vec<String>,
    },
}

/// The questions for every permission the stack needs (`permissions` that apply to it), asked as
/// `principal` (its ARN): statements whose requests carry the same resources and context asked
/// together, at most `ACTIONS_PER_CALL` actions a question.
pub fn cases(ctx: &PolicyContext, principal: &str, permissions: &[&Permission]) -> Vec<Case> {
    let mut merged: Vec<Case> = Vec::new();
    for p in permissions.iter().filter(|p| p.effect == Effect::Allow) {
        for statement in statements(ctx, "", p) {
            let actions: Vec<String> = statement["Action"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            // A pattern stands for a resource of that name: the simulator takes each as a name.
            let resources: Vec<String> = statement["Resource"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .filter(|r| r != "*")
                .map(|r| r.replace(['*', '?'], "0"))
                .collect();
            for global in [true, false] {
                let part: Vec<String> = actions.iter().filter(|a| is_global(a) == global).cloned().collect();
                if part.is_empty() {
                    continue;
                }
                let region = if global { "us-east-1" } else { ctx.stack.region.as_str() };
                let context = context(statement.get("Condition"), region, principal, &ctx.account);
                match merged.iter_mut().find(|c| c.resources == resources && c.context == context) {
                    Some(c) => {
                        let new: Vec<String> = part.into_iter().filter(|a| !c.actions.contains(a)).collect();
                        c.actions.extend(new);
                    }
                    None => merged.push(Case { actions: part, resources: resources.clone(), context }),
                }
            }
        }
    }
    merged
        .into_iter()
        .flat_map(|c| {
            c.actions
                .chunks(ACTIONS_PER_CALL)
                .map(|chunk| Case {
                    actions: chunk.to_vec(),
                    resources: c.resources.clone(),
                    context: c.context.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The context a request that meets `condition` carries: the region it goes to (global services'
/// requests go to us-east-1), who sends it (`principal` of `account`, over TLS, not through
/// another service: keys an organization's SCPs often name), and the condition's keys. A key a
/// negated operator names is left out (the request does not carry it), a pattern's wildcards
/// stand for one character of a real value.
fn context(
    condition: Option<&Value>,
    region: &str,
    principal: &str,
    account: &str,
) -> Vec<(String, Vec<String>, ContextKeyTypeEnum)> {
    let one = |key: &str, value: &str, kind: ContextKeyTypeEnum| (key.to_owned(), vec![value.to_owned()], kind);
    let mut out: Vec<(String, Vec<String>, ContextKeyTypeEnum)> = vec![
        one("aws:RequestedRegion", region, ContextKeyTypeEnum::String),
        one("aws:PrincipalArn", principal, ContextKeyTypeEnum::String),
        one("aws:PrincipalAccount", account, ContextKeyTypeEnum::String),
        one("aws:SecureTransport", "true", ContextKeyTypeEnum::Boolean),
        one("aws:ViaAWSService", "false", ContextKeyTypeEnum::Boolean),
    ];
    for (operator, keys) in condition.and_then(Value::as_object).into_iter().flatten() {
        let multi = operator.starts_with("ForAllValues:") || operator.starts_with("ForAnyValue:");
        let base = operator.rsplit(':').next().unwrap_or(operator).trim_end_matches("IfExists");
        if base.contains("Not") || base == "Null" {
            continue;
        }
        for (key, expected) in keys.as_object().into_iter().flatten() {
            if out.iter().any(|(k, ..)| k.eq_ignore_ascii_case(key)) {
                continue;
            }
            let values: Vec<String> = match expected {
                Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
            let values: Vec<String> = if base.ends_with("Like") {
                values.iter().map(|v| v.replace(['*', '?'], "0")).collect()
            } else {
                values
            };
            // A single-valued key takes the first value the statement allows; a multi-valued one
            // (ForAllValues/ForAnyValue, tag keys) all of them.
            let (values, kind) = match (multi || key.eq_ignore_ascii_case("aws:TagKeys"), base) {
                (true, _) => (values, ContextKeyTypeEnum::StringList),
                (false, "Bool") => (values.into_iter().take(1).collect(), ContextKeyTypeEnum::Boolean),
                (false, b) if b.starts_with("Numeric") => {
                    (values.into_iter().take(1).collect(), ContextKeyTypeEnum::Numeric)
                }
                (false, _) => (values.into_iter().take(1).collect(), ContextKeyTypeEnum::String),
            };
            out.push((key.clone(), values, kind));
        }
    }
    out
}

/// Asks the simulator every case for `principal`, several at once; the verdicts of every call.
/// The first question the simulator does not answer ends the asking (the check is then not
/// checked, as a whole).
pub async fn simulate(ctx: &Ctx, principal: &str, cases: &[Case]) -> Result<Vec<Verdict>, Error> {
    use futures_util::StreamExt;
    let mut asked = futures_util::stream::iter(cases.iter().map(|c| ask(ctx, principal, c))).buffered(AT_ONCE);
    let mut verdicts = Vec::new();
    while let Some(answer) = asked.next().await {
        verdicts.extend(answer?);
    }
    Ok(verdicts)
}

async fn ask(ctx: &Ctx, principal: &str, case: &Case) -> Result<Vec<Verdict>, Error> {
    let entries: Vec<ContextEntry> = case
        .context
        .iter()
        .map(|(key, values, kind)| {
            ContextEntry::builder()
                .context_key_name(key)
                .set_context_key_values(Some(values.clone()))
                .context_key_type(kind.clone())
                .build()
        })
        .collect();
    let mut verdicts = Vec::new();
    let mut marker = None;
    loop {
        let out = ctx
            .clients
            .iam
            .simulate_principal_policy()
            .policy_source_arn(principal)
            .set_action_names(Some(case.actions.clone()))
            .set_resource_arns((!case.resources.is_empty()).then(|| case.resources.clone()))
            .set_context_entries(Some(entries.clone()))
            .set_marker(marker)
            .customize()
            // A check, not a step of `up`: a throttle is retried (and paced) a little, an account or
            // emulator that does not answer is not waited on for minutes.
            .config_override(
                aws_sdk_iam::config::Builder::default()
                    .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(3)),
            )
            .send()
            .await
            .ctx("simulate the policies of", principal)?;
        verdicts.extend(out.evaluation_results().iter().flat_map(verdicts_of));
        marker = out.marker().filter(|_| out.is_truncated()).map(str::to_owned);
        if marker.is_none() {
            return Ok(verdicts);
        }
    }
}

/// What one action's result says: per resource when the simulation named resources (AWS
/// answers one result per action, with a result per resource inside), else for `*`.
pub fn verdicts_of(r: &EvaluationResult) -> Vec<Verdict> {
    let action = r.eval_action_name();
    let by_organizations = r.organizations_decision_detail().is_none_or(|d| d.allowed_by_organizations());
    let by_boundary = r.permissions_boundary_decision_detail().is_none_or(|d| d.allowed_by_permissions_boundary());
    let judge = |resource: &str, decision: &PolicyEvaluationDecisionType, missing: &[String]| {
        let denied = |why: &str| Verdict::Denied { action: action.into(), resource: resource.into(), why: why.into() };
        let unjudged = || Verdict::Unjudged { action: action.into(), missing: missing.to_vec() };
        match decision {
            PolicyEvaluationDecisionType::Allowed => Verdict::Allowed,
            // An explicit deny of the caller's own policies is final, whatever else was missing.
            PolicyEvaluationDecisionType::ExplicitDeny if by_organizations && by_boundary => {
                denied("a policy of the caller denies it")
            }
            // An SCP or boundary judged without keys it names may refuse what AWS would allow.
            _ if (!by_organizations || !by_boundary) && !missing.is_empty() => unjudged(),
            _ if !by_organizations => denied("a service control policy (SCP) of the account's organization refuses it"),
            _ if !by_boundary => denied("the caller's permissions boundary refuses it"),
            _ if !missing.is_empty() => unjudged(),
            _ => denied("no policy of the caller allows it"),
        }
    };
    let per_resource = r.resource_specific_results();
    if per_resource.is_empty() {
        let resource = r.eval_resource_name().unwrap_or("*");
        return vec![judge(resource, r.eval_decision(), r.missing_context_values())];
    }
    per_resource
        .iter()
        .map(|rr| {
            // A resource's own missing keys, and those the action's result names for all of them.
            let mut missing = rr.missing_context_values().to_vec();
            for key in r.missing_context_values() {
                if !missing.contains(key) {
                    missing.push(key.clone());
                }
            }
            judge(rr.eval_resource_name(), rr.eval_resource_decision(), &missing)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::{OrganizationsDecisionDetail, ResourceSpecificResult};

    #[test]
    fn each_statement_is_asked_with_its_resources_and_the_context_its_requests_carry() {
        let stack = crate::resources::test_stack();
        let ctx = crate::reconcile::permission::test_context(&stack);
        let permissions = crate::engine::walk::permissions();
        let cases = cases(&ctx, "arn:aws:iam::123456789012:role/konnichiwa-deploy", &permissions);
        let find = |action: &str| {
            cases.iter().find(|c| c.actions.iter().any(|a| a == action)).unwrap_or_else(|| panic!("{action}"))
        };
        let key = |c: &Case, k: &str| c.context.iter().find(|(name, ..)| name == k).map(|(_, v, _)| v.clone());
        let vpc = find("ec2:DeleteVpc");
        assert!(vpc.resources.iter().any(|r| r == "arn:aws:ec2:ap-northeast-1:123456789012:vpc/0"), "{vpc:?}");
        let deploy_role = "arn:aws:iam::123456789012:role/konnichiwa-deploy".to_owned();
        assert_eq!(key(vpc, "aws:PrincipalArn"), Some(vec![deploy_role]));
        assert_eq!(key(vpc, "aws:ResourceTag/konnichiwa:stack"), Some(vec!["konnichiwa".to_owned()]));
        assert_eq!(key(vpc, "aws:RequestedRegion"), Some(vec!["ap-northeast-1".to_owned()]));
        let pass = cases
            .iter()
            .find(|c| c.actions.iter().any(|a| a == "iam:PassRole") && key(c, "iam:PassedToService").is_some())
            .expect("PassRole");
        assert_eq!(key(pass, "aws:RequestedRegion"), Some(vec!["us-east-1".to_owned()]), "IAM is global");
        let bounded = find("iam:PutRolePolicy");
        assert_eq!(
            key(bounded, "iam:PermissionsBoundary"),
            Some(vec!["arn:aws:iam::123456789012:policy/konnichiwa-boundary".to_owned()])
        );
        let reads = find("ec2:DescribeVpcs");
        assert!(reads.resources.is_empty(), "on *");
        // Every action the stack needs is asked.
        let needed = permissions.iter().copied().filter(|p| p.applies.is_none_or(|f| f(&stack)));
        for action in crate::reconcile::permission::actions(needed) {
            assert!(cases.iter().any(|c| c.actions.iter().any(|a| a == action)), "{action} is never asked");
        }
    }

    #[test]
    fn negated_keys_are_left_out_and_patterns_become_values() {
        let condition = serde_json::json!({
            "StringNotEquals": {"aws:ResourceTag/x": "y"},
            "ArnLike": {"ecs:task-definition": "arn:aws:ecs:r:1:task-definition/k:*"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]},
            "Bool": {"ecs:enable-execute-command": "false"},
            "NumericLessThanEqualsIfExists": {"autoscaling:MaxSize": "4"}
        });
        let c = context(Some(&condition), "ap-northeast-1", "arn:aws:iam::1:role/r", "1");
        assert!(!c.iter().any(|(k, ..)| k == "aws:ResourceTag/x"));
        assert!(c.contains(&(
            "ecs:task-definition".into(),
            vec!["arn:aws:ecs:r:1:task-definition/k:0".into()],
            ContextKeyTypeEnum::String
        )));
        assert!(c.contains(&("aws:TagKeys".into(), vec!["a".into(), "b".into()], ContextKeyTypeEnum::StringList)));
        assert!(c.contains(&("ecs:enable-execute-command".into(), vec!["false".into()], ContextKeyTypeEnum::Boolean)));
        assert!(c.contains(&("autoscaling:MaxSize".into(), vec!["4".into()], ContextKeyTypeEnum::Numeric)));
    }

    fn result(decision: &str) -> aws_sdk_iam::types::builders::EvaluationResultBuilder {
        EvaluationResult::builder().eval_action_name("ec2:CreateVpc").eval_decision(decision.into())
    }

    #[test]
    fn missing_context_is_unjudged_and_an_scp_is_named() {
        let missing = result("implicitDeny").missing_context_values("aws:RequestedRegion").build().expect("result");
        assert_eq!(
            verdicts_of(&missing),
            [Verdict::Unjudged { action: "ec2:CreateVpc".into(), missing: vec!["aws:RequestedRegion".into()] }]
        );
        let scp = result("explicitDeny")
            .organizations_decision_detail(
                OrganizationsDecisionDetail::builder().allowed_by_organizations(false).build(),
            )
            .build()
            .expect("result");
        assert!(matches!(&verdicts_of(&scp)[0], Verdict::Denied { why, .. } if why.contains("service control policy")));
        let per_resource = result("implicitDeny")
            .resource_specific_results(
                ResourceSpecificResult::builder()
                    .eval_resource_name("arn:vpc/a")
                    .eval_resource_decision("allowed".into())
                    .build()
                    .expect("rr"),
            )
            .resource_specific_results(
                ResourceSpecificResult::builder()
                    .eval_resource_name("arn:vpc/b")
                    .eval_resource_decision("implicitDeny".into())
                    .missing_context_values("aws:ResourceTag/konnichiwa:stack")
                    .build()
                    .expect("rr"),
            )
            .build()
            .expect("result");
        let v = verdicts_of(&per_resource);
        assert_eq!(v[0], Verdict::Allowed);
        assert!(matches!(&v[1], Verdict::Unjudged { missing, .. } if missing == &["aws:ResourceTag/konnichiwa:stack"]));
        let denied = result("implicitDeny").build().expect("result");
        assert!(matches!(&verdicts_of(&denied)[0], Verdict::Denied { why, .. } if why.contains("no policy")));
        // An SCP judged without a key it names: not judged, not denied.
        let scp_missing = result("explicitDeny")
            .missing_context_values("aws:PrincipalTag/team")
            .organizations_decision_detail(
                OrganizationsDecisionDetail::builder().allowed_by_organizations(false).build(),
            )
            .build()
            .expect("result");
        assert!(matches!(&verdicts_of(&scp_missing)[0], Verdict::Unjudged { .. }));
        // The caller's own explicit deny is final, whatever was missing.
        let own = result("explicitDeny").missing_context_values("aws:MultiFactorAuthPresent").build().expect("result");
        assert!(matches!(&verdicts_of(&own)[0], Verdict::Denied { why, .. } if why.contains("denies it")));
    }
}
