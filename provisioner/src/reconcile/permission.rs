//! What a resource kind needs from IAM, declared next to its code: the actions it calls and how
//! far each reaches. The CI deploy role's policy (`ci_role`) is built from these declarations, so
//! a kind cannot call an action the role lacks, and the role can reach nothing outside the stack:
//! - the stack's own named resources by exact ARN (`Own`), or under conditions (`Conditioned`);
//! - EC2 resources, which have ids rather than names, by the stack's tag (`Ec2Tagged`) or, when
//!   being created, by the tag the create call gives them (`Ec2Creating`);
//! - services without name-based ARNs by the stack's tag (`Tagged`, `CreatingTagged`);
//! - tag writes only with the stack's own ownership tag in the request, so nothing of ours can be
//!   made another stack's (`Retag`, `Ec2Retag`, `TagOnCreate`), and where a service cannot tell a
//!   create from a later tag write, never on what another stack owns (`TagUnowned`);
//! - IAM: changes to the stack's roles only while they carry the stack's permissions boundary
//!   (`Bounded`, `AttachManaged`), passing each role only to the service that uses it
//!   (`PassRole`);
//! - reads and actions that take no resource (`Any`), still pinned to the stack's region;
//! - and explicit denials (`Permission::deny`) of what must never be possible, whatever else is
//!   attached to the role.

use serde_json::{Map, Value, json};

use stack::OWNERSHIP_TAG;

/// Where the ARNs of a policy point.
#[derive(Debug, Clone)]
pub struct PolicyContext<'a> {
    pub partition: String,
    pub account: String,
    pub stack: &'a stack::Stack,
    /// The Route 53 zone of the stack's domain (looked up when stack.yaml sets one).
    pub hosted_zone_id: Option<String>,
    /// The name of the record ACM validates the domain's certificates with (`_<hash>.<domain>`,
    /// the same for every certificate of the domain in the account); None until ACM has named it.
    pub validation_record: Option<String>,
    /// The ids of the stack's subnets, when they exist (the Auto Scaling group is held to them);
    /// empty before the first `up`.
    pub subnets: Vec<String>,
}

impl PolicyContext<'_> {
    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.partition, self.stack.region, self.account)
    }

    /// `arn:PARTITION:iam::ACCOUNT:RESOURCE` (IAM is global).
    pub fn iam_arn(&self, resource: &str) -> String {
        format!("arn:{}:iam::{}:{resource}", self.partition, self.account)
    }

    /// The stack's permissions boundary: the most any of its roles can ever do.
    pub fn boundary_arn(&self) -> String {
        self.iam_arn(&format!("policy/{}", boundary_name(&self.stack.name)))
    }
}

/// The managed policy that bounds the stack's roles.
pub fn boundary_name(stack: &str) -> String {
    format!("{stack}-boundary")
}

/// How far a set of actions reaches.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every resource: reads, and actions that take no resource-level permission.
    Any,
    /// Exactly these resources of the stack (ARNs or ARN patterns built from its names).
    Own(fn(&PolicyContext) -> Vec<String>),
    /// These resources, only under this condition (`{operator: {key: value}}`).
    Conditioned { resources: fn(&PolicyContext) -> Vec<String>, condition: fn(&PolicyContext) -> Value },
    /// EC2 resources of these types that carry the stack's tag.
    Ec2Tagged(&'static [&'static str]),
    /// EC2 resources of these types, created with the stack's tag in the same call.
    Ec2Creating(&'static [&'static str]),
    /// Resources that carry the stack's tag (services without name-based ARNs).
    Tagged,
    /// These resources of the stack, only when they carry the tag `key` = `value` (what tells
    /// some of them apart from the rest, e.g. load generator tasks from the service's).
    TaggedWith { resources: fn(&PolicyContext) -> Vec<String>, key: &'static str, value: &'static str },
    /// Creates that tag what they create with the stack's tag.
    CreatingTagged,
    /// Tag writes on these resources, only with the stack's ownership tag in the request.
    Retag(fn(&PolicyContext) -> Vec<String>),
    /// Tag writes on EC2 resources of these types that carry the stack's tag, only with it.
    Ec2Retag(&'static [&'static str]),
    /// Tag writes of services that tag a new resource through the same action as an old one
    /// (ACM, Application Auto Scaling), so IAM cannot limit them to creation: with the stack's
    /// ownership tag, and never on a resource another stack owns.
    TagUnowned,
    /// A tagging action, allowed only as part of these creates (`KEY` is the service's
    /// `…:CreateAction` condition key) and with the stack's ownership tag.
    TagOnCreate { key: &'static str, creates: &'static [&'static str] },
    /// iam:PassRole of these roles, only to `service`.
    PassRole { roles: fn(&PolicyContext) -> Vec<String>, service: &'static str },
    /// IAM changes to these roles, only while they carry the stack's permissions boundary.
    Bounded { roles: fn(&PolicyContext) -> Vec<String> },
    /// Attaching or detaching, on the stack's bounded roles, only these managed policies.
    AttachManaged { roles: fn(&PolicyContext) -> Vec<String>, policies: fn(&PolicyContext) -> Vec<String> },
    /// iam:CreateServiceLinkedRole for these services.
    ServiceLinkedRoles(&'static [&'static str]),
    /// acm:RequestCertificate only for the stack's domain, with DNS validation and the stack's tag
    /// (the action takes no resource: `*`, with the conditions).
    RequestCertificate,
    /// Route 53 record changes in the stack's zone, only to these names (as Route 53 normalizes
    /// them) and record types.
    ZoneRecords {
        zone: fn(&PolicyContext) -> Vec<String>,
        names: fn(&PolicyContext) -> Vec<String>,
        types: &'static [&'static str],
    },
}

/// Whether a declaration grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    /// Refused whatever else the principal holds (an explicit deny wins in IAM).
    Deny,
}

/// Actions a kind calls, and how far they reach.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub actions: &'static [&'static str],
    pub scope: Scope,
    /// Granted only for stacks that use it (HTTPS on a domain, say); None: always.
    pub applies: Option<fn(&stack::Stack) -> bool>,
    pub effect: Effect,
    /// Whether the CI deploy role is granted it (false: an administrator's, as what sets a
    /// resource policy, whose content no condition can see).
    pub deploy_role: bool,
    /// The deploy policy (`ci_role::GROUPS`) that holds it, where not its kind's.
    pub group: Option<&'static str>,
}

impl Permission {
    pub const fn new(actions: &'static [&'static str], scope: Scope) -> Self {
        Self { actions, scope, applies: None, effect: Effect::Allow, deploy_role: true, group: None }
    }

    /// Refuses `actions` on `scope`, whatever other policy the role is given.
    pub const fn deny(actions: &'static [&'static str], scope: Scope) -> Self {
        Self { actions, scope, applies: None, effect: Effect::Deny, deploy_role: true, group: None }
    }

    /// Only for stacks where `applies` holds.
    pub const fn when(self, applies: fn(&stack::Stack) -> bool) -> Self {
        Self { applies: Some(applies), ..self }
    }

    /// What a kind calls but only an administrator may: not in the deploy role's policies.
    pub const fn administrators_only(self) -> Self {
        Self { deploy_role: false, ..self }
    }

    /// Held in the deploy policy `group` rather than its kind's (a kind too large for one).
    pub const fn in_group(self, group: &'static str) -> Self {
        Self { group: Some(group), ..self }
    }
}

/// True for actions of global services (no region to pin them to).
pub fn is_global(action: &str) -> bool {
    ["iam:", "sts:", "route53:"].iter().any(|service| action.starts_with(service))
}

/// `condition`, pinned to the stack's region where the resources do not pin it already: actions
/// of global services have no region to pin, and a resource ARN that names the region matches
/// no request elsewhere (IAM's size limits make every repeated condition count).
fn region_pinned(
    ctx: &PolicyContext,
    actions: &[&str],
    resources: &[String],
    mut condition: Map<String, Value>,
) -> Value {
    let in_region = |arn: &String| arn.split(':').nth(3) == Some(ctx.stack.region.as_str());
    if actions.iter().all(|a| !is_global(a)) && !resources.iter().all(in_region) {
        let equals = condition.entry("StringEquals").or_insert_with(|| json!({}));
        equals["aws:RequestedRegion"] = json!(ctx.stack.region);
    }
    Value::Object(condition)
}

/// `{operator: {key: value}}` as a condition map.
fn one(operator: &str, key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(operator.into(), json!({ key: value }));
    m
}

/// Adds `key: value` under `operator` to a condition map.
fn with(mut m: Map<String, Value>, operator: &str, key: &str, value: Value) -> Map<String, Value> {
    m.entry(operator).or_insert_with(|| json!({}))[key] = value;
    m
}

fn tag_key(kind: &str) -> String {
    format!("{kind}/{OWNERSHIP_TAG}")
}

/// The policy statements of one declaration (`sid` names it): none when it does not apply to
/// the stack or reaches none of its resources.
pub fn statements(ctx: &PolicyContext, sid: &str, p: &Permission) -> Vec<Value> {
    if p.applies.is_some_and(|applies| !applies(ctx.stack)) {
        return Vec::new();
    }
    let Some((resources, condition)) = reach(ctx, p.scope) else { return Vec::new() };
    let effect = match p.effect {
        Effect::Allow => "Allow",
        Effect::Deny => "Deny",
    };
    // A denial holds everywhere; a grant only in the stack's region.
    let condition = if p.effect == Effect::Deny {
        Value::Object(condition)
    } else {
        region_pinned(ctx, p.actions, &resources, condition)
    };
    let mut s = json!({ "Sid": sid, "Effect": effect, "Action": p.actions, "Resource": resources });
    if condition.as_object().is_some_and(|c| !c.is_empty()) {
        s["Condition"] = condition;
    }
    vec![s]
}

/// The resources a scope reaches and the condition it puts on them; None when it reaches none
/// of the stack's (a zone the stack does not have, say).
fn reach(ctx: &PolicyContext, scope: Scope) -> Option<(Vec<String>, Map<String, Value>)> {
    let stack = json!(ctx.stack.name);
    let request_tag_ours = || one("StringEquals", &tag_key("aws:RequestTag"), stack.clone());
    let resource_tag_ours = || one("StringEquals", &tag_key("aws:ResourceTag"), stack.clone());
    let ec2_types = |types: &[&str]| types.iter().map(|t| ctx.arn("ec2", &format!("{t}/*"))).collect::<Vec<_>>();
    let star = || vec!["*".to_owned()];
    let bounded = || one("ArnEquals", "iam:PermissionsBoundary", json!(ctx.boundary_arn()));
    Some(match scope {
        Scope::Any => (star(), Map::new()),
        Scope::Own(arns) => (Some(arns(ctx)).filter(|a| !a.is_empty())?, Map::new()),
        Scope::Conditioned { resources, condition } => match condition(ctx) {
            Value::Object(m) => (resources(ctx), m),
            _ => (resources(ctx), Map::new()),
        },
        Scope::Ec2Tagged(types) => (ec2_types(types), resource_tag_ours()),
        Scope::Ec2Creating(types) => (ec2_types(types), request_tag_ours()),
        Scope::Tagged => (star(), resource_tag_ours()),
        Scope::TaggedWith { resources, key, value } => {
            (resources(ctx), one("StringEquals", &format!("aws:ResourceTag/{key}"), json!(value)))
        }
        Scope::CreatingTagged => (star(), request_tag_ours()),
        Scope::Retag(resources) => (resources(ctx), request_tag_ours()),
        Scope::Ec2Retag(types) => {
            (ec2_types(types), with(request_tag_ours(), "StringEquals", &tag_key("aws:ResourceTag"), stack.clone()))
        }
        Scope::TagUnowned => {
            (star(), with(request_tag_ours(), "StringEqualsIfExists", &tag_key("aws:ResourceTag"), stack.clone()))
        }
        Scope::TagOnCreate { key, creates } => (star(), with(request_tag_ours(), "StringEquals", key, json!(creates))),
        Scope::PassRole { roles, service } => (roles(ctx), one("StringEquals", "iam:PassedToService", json!(service))),
        Scope::Bounded { roles } => (roles(ctx), bounded()),
        Scope::AttachManaged { roles, policies } => {
            (roles(ctx), with(bounded(), "ArnEquals", "iam:PolicyARN", json!(policies(ctx))))
        }
        Scope::ServiceLinkedRoles(services) => {
            (vec![ctx.iam_arn("role/aws-service-role/*")], one("StringEquals", "iam:AWSServiceName", json!(services)))
        }
        Scope::RequestCertificate => {
            let domains: Vec<&str> = ctx.stack.load_balancer.https.iter().filter_map(|h| h.domain.as_deref()).collect();
            let m = with(request_tag_ours(), "StringEquals", "acm:ValidationMethod", json!("DNS"));
            (star(), with(m, "ForAllValues:StringEquals", "acm:DomainNames", json!(domains)))
        }
        Scope::ZoneRecords { zone, names, types } => {
            let (zone, names) = (zone(ctx), names(ctx));
            if zone.is_empty() || names.is_empty() {
                return None;
            }
            let m =
                one("ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsNormalizedRecordNames", json!(names));
            (zone, with(m, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsRecordTypes", json!(types)))
        }
    })
}

/// Every IAM action the declarations grant.
pub fn actions<'a>(declarations: impl IntoIterator<Item = &'a Permission>) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = declarations
        .into_iter()
        .filter(|p| p.effect == Effect::Allow)
        .flat_map(|p| p.actions.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// A policy context of account 123456789012 for `stack`, for unit tests.
#[cfg(test)]
pub fn test_context(stack: &stack::Stack) -> PolicyContext<'_> {
    PolicyContext {
        partition: "aws".into(),
        account: "123456789012".into(),
        stack,
        hosted_zone_id: None,
        validation_record: None,
        subnets: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::reconcile::permission::test_context as ctx;

    #[test]
    fn statements_pin_the_region_except_for_iam_and_denials() {
        let stack = crate::resources::test_stack();
        let ctx = ctx(&stack);
        let ec2 = statements(&ctx, "Vpc", &Permission::new(&["ec2:DeleteVpc"], Scope::Ec2Tagged(&["vpc"])));
        assert_eq!(ec2[0]["Resource"][0], "arn:aws:ec2:ap-northeast-1:123456789012:vpc/*");
        assert_eq!(ec2[0]["Condition"]["StringEquals"]["aws:ResourceTag/konnichiwa:stack"], "konnichiwa");
        assert!(ec2[0]["Condition"]["StringEquals"].get("aws:RequestedRegion").is_none(), "the ARN names the region");
        let reads = statements(&ctx, "Read", &Permission::new(&["ec2:DescribeVpcs"], Scope::Any));
        assert_eq!(reads[0]["Condition"]["StringEquals"]["aws:RequestedRegion"], "ap-northeast-1", "`*` does not");
        let iam = statements(
            &ctx,
            "Pass",
            &Permission::new(
                &["iam:PassRole"],
                Scope::PassRole { roles: |c| vec![c.iam_arn("role/x")], service: "ecs-tasks.amazonaws.com" },
            ),
        );
        assert_eq!(iam[0]["Resource"][0], "arn:aws:iam::123456789012:role/x");
        assert!(iam[0]["Condition"]["StringEquals"].get("aws:RequestedRegion").is_none(), "IAM is global");
        let deny = statements(&ctx, "No", &Permission::deny(&["ec2:CreateVpc"], Scope::Any));
        assert_eq!(deny[0]["Effect"], "Deny");
        assert!(deny[0].get("Condition").is_none(), "a denial holds in every region");
    }

    #[test]
    fn tag_writes_carry_our_ownership_tag_and_bounded_changes_need_the_boundary() {
        let stack = crate::resources::test_stack();
        let ctx = ctx(&stack);
        let retag =
            statements(&ctx, "T", &Permission::new(&["ecr:TagResource"], Scope::Retag(|_| vec!["arn:r".into()])));
        assert_eq!(retag[0]["Condition"]["StringEquals"]["aws:RequestTag/konnichiwa:stack"], "konnichiwa");
        let unowned = statements(&ctx, "U", &Permission::new(&["acm:AddTagsToCertificate"], Scope::TagUnowned));
        assert_eq!(unowned[0]["Condition"]["StringEqualsIfExists"]["aws:ResourceTag/konnichiwa:stack"], "konnichiwa");
        let bounded = statements(
            &ctx,
            "B",
            &Permission::new(&["iam:PutRolePolicy"], Scope::Bounded { roles: |c| vec![c.iam_arn("role/x")] }),
        );
        assert_eq!(
            bounded[0]["Condition"]["ArnEquals"]["iam:PermissionsBoundary"],
            "arn:aws:iam::123456789012:policy/konnichiwa-boundary"
        );
    }
}
