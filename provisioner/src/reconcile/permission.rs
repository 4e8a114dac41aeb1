//! What a resource kind needs from IAM, declared next to its code: the actions it calls and how
//! far each reaches. The CI deploy role's policy (`ci_role`) is built from these declarations, so
//! a kind cannot call an action the role lacks, and the role can reach nothing outside the stack:
//! - the stack's own named resources by exact ARN (`Own`);
//! - EC2 resources, which have ids rather than names, by the stack's tag (`Ec2Tagged`) or, when
//!   being created, by the tag the create call gives them (`Ec2Creating`);
//! - services without name-based ARNs by the stack's tag (`Tagged`, `CreatingTagged`);
//! - tags written in a create call only as part of that create (`TagOnCreate`);
//! - IAM: passing the stack's own roles only to the service that uses them (`PassRole`), and
//!   attaching only the managed policies the stack uses (`AttachManaged`);
//! - reads and actions that take no resource (`Any`), still pinned to the stack's region.

use serde_json::{Value, json};

use stack::OWNERSHIP_TAG;

/// Where the ARNs of a policy point.
#[derive(Debug, Clone)]
pub struct PolicyContext<'a> {
    pub partition: String,
    pub account: String,
    pub stack: &'a stack::Stack,
    /// The Route 53 zone of the stack's domain (looked up when stack.yaml sets one).
    pub hosted_zone_id: Option<String>,
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
}

/// How far a set of actions reaches.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every resource: reads, and actions that take no resource-level permission.
    Any,
    /// Exactly these resources of the stack (ARNs or ARN patterns built from its names).
    Own(fn(&PolicyContext) -> Vec<String>),
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
    /// A tagging action, allowed only as part of these creates (`KEY` is the service's
    /// `…:CreateAction` condition key).
    TagOnCreate { key: &'static str, creates: &'static [&'static str] },
    /// iam:PassRole of these roles, only to `service`.
    PassRole { roles: fn(&PolicyContext) -> Vec<String>, service: &'static str },
    /// Attaching or detaching, on the stack's roles, only these managed policies.
    AttachManaged { roles: fn(&PolicyContext) -> Vec<String>, policies: fn(&PolicyContext) -> Vec<String> },
    /// iam:CreateServiceLinkedRole for these services.
    ServiceLinkedRoles(&'static [&'static str]),
    /// ec2:RunInstances only from a launch template (which the stack's tag scopes).
    FromLaunchTemplate,
    /// acm:RequestCertificate only for the stack's domain, with DNS validation and the stack's tag.
    RequestCertificate,
    /// Route 53 record changes in the stack's zone, only to these names (`*` patterns, as
    /// Route 53 normalizes them) and record types.
    ZoneRecords {
        zone: fn(&PolicyContext) -> Vec<String>,
        names: fn(&PolicyContext) -> Vec<String>,
        types: &'static [&'static str],
    },
}

/// Actions a kind calls, and how far they reach.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub actions: &'static [&'static str],
    pub scope: Scope,
    /// Granted only for stacks that use it (HTTPS on a domain, say); None: always.
    pub applies: Option<fn(&stack::Stack) -> bool>,
}

impl Permission {
    pub const fn new(actions: &'static [&'static str], scope: Scope) -> Self {
        Self { actions, scope, applies: None }
    }

    /// Only for stacks where `applies` holds.
    pub const fn when(self, applies: fn(&stack::Stack) -> bool) -> Self {
        Self { applies: Some(applies), ..self }
    }
}

/// True for actions of global services (no region to pin them to).
fn is_global(action: &str) -> bool {
    ["iam:", "sts:", "route53:"].iter().any(|service| action.starts_with(service))
}

fn region_pinned(ctx: &PolicyContext, actions: &[&str], mut condition: serde_json::Map<String, Value>) -> Value {
    if actions.iter().all(|a| !is_global(a)) {
        let equals = condition.entry("StringEquals").or_insert_with(|| json!({}));
        equals["aws:RequestedRegion"] = json!(ctx.stack.region);
    }
    Value::Object(condition)
}

/// The policy statements of one declaration (`sid` names it): none when it does not apply to
/// the stack or reaches none of its resources.
pub fn statements(ctx: &PolicyContext, sid: &str, p: &Permission) -> Vec<Value> {
    if p.applies.is_some_and(|applies| !applies(ctx.stack)) {
        return Vec::new();
    }
    let stack = &ctx.stack.name;
    let tag_key = |kind: &str| format!("{kind}/{OWNERSHIP_TAG}");
    let statement = |sid: String, resources: Vec<String>, condition: serde_json::Map<String, Value>| {
        let mut s = json!({ "Sid": sid, "Effect": "Allow", "Action": p.actions, "Resource": resources });
        let condition = region_pinned(ctx, p.actions, condition);
        if condition.as_object().is_some_and(|c| !c.is_empty()) {
            s["Condition"] = condition;
        }
        s
    };
    let equals = |key: String, value: Value| {
        let mut m = serde_json::Map::new();
        m.insert("StringEquals".into(), json!({ key: value }));
        m
    };
    let ec2_types = |types: &[&str]| types.iter().map(|t| ctx.arn("ec2", &format!("{t}/*"))).collect::<Vec<_>>();
    match p.scope {
        Scope::Any => vec![statement(sid.into(), vec!["*".into()], serde_json::Map::new())],
        Scope::Own(arns) => {
            let arns = arns(ctx);
            if arns.is_empty() { Vec::new() } else { vec![statement(sid.into(), arns, serde_json::Map::new())] }
        }
        Scope::Ec2Tagged(types) => {
            vec![statement(sid.into(), ec2_types(types), equals(tag_key("aws:ResourceTag"), json!(stack)))]
        }
        Scope::Ec2Creating(types) => {
            vec![statement(sid.into(), ec2_types(types), equals(tag_key("aws:RequestTag"), json!(stack)))]
        }
        Scope::Tagged => {
            vec![statement(sid.into(), vec!["*".into()], equals(tag_key("aws:ResourceTag"), json!(stack)))]
        }
        Scope::TaggedWith { resources, key, value } => {
            vec![statement(sid.into(), resources(ctx), equals(format!("aws:ResourceTag/{key}"), json!(value)))]
        }
        Scope::CreatingTagged => {
            vec![statement(sid.into(), vec!["*".into()], equals(tag_key("aws:RequestTag"), json!(stack)))]
        }
        Scope::TagOnCreate { key, creates } => {
            vec![statement(sid.into(), vec!["*".into()], equals(key.to_owned(), json!(creates)))]
        }
        Scope::PassRole { roles, service } => {
            vec![statement(sid.into(), roles(ctx), equals("iam:PassedToService".into(), json!(service)))]
        }
        Scope::AttachManaged { roles, policies } => {
            let mut m = serde_json::Map::new();
            m.insert("ArnEquals".into(), json!({ "iam:PolicyARN": policies(ctx) }));
            vec![statement(sid.into(), roles(ctx), m)]
        }
        Scope::ServiceLinkedRoles(services) => vec![statement(
            sid.into(),
            vec![ctx.iam_arn("role/aws-service-role/*")],
            equals("iam:AWSServiceName".into(), json!(services)),
        )],
        Scope::FromLaunchTemplate => {
            let mut m = serde_json::Map::new();
            m.insert("ArnLike".into(), json!({ "ec2:LaunchTemplate": ctx.arn("ec2", "launch-template/*") }));
            vec![statement(sid.into(), vec!["*".into()], m)]
        }
        Scope::RequestCertificate => {
            let mut m = equals(tag_key("aws:RequestTag"), json!(stack));
            m["StringEquals"]["acm:ValidationMethod"] = json!("DNS");
            let domains: Vec<&str> = ctx.stack.load_balancer.https.iter().filter_map(|h| h.domain.as_deref()).collect();
            m.insert("ForAllValues:StringEquals".into(), json!({ "acm:DomainNames": domains }));
            vec![statement(sid.into(), vec![ctx.arn("acm", "certificate/*")], m)]
        }
        Scope::ZoneRecords { zone, names, types } => {
            let zone = zone(ctx);
            if zone.is_empty() {
                return Vec::new();
            }
            let mut m = serde_json::Map::new();
            m.insert(
                "ForAllValues:StringLike".into(),
                json!({ "route53:ChangeResourceRecordSetsNormalizedRecordNames": names(ctx) }),
            );
            m.insert(
                "ForAllValues:StringEquals".into(),
                json!({ "route53:ChangeResourceRecordSetsRecordTypes": types }),
            );
            vec![statement(sid.into(), zone, m)]
        }
    }
}

/// Every IAM action the declarations name.
pub fn actions<'a>(declarations: impl IntoIterator<Item = &'a Permission>) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = declarations.into_iter().flat_map(|p| p.actions.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_pin_the_region_except_for_iam() {
        let stack = crate::resources::test_stack();
        let ctx = PolicyContext {
            partition: "aws".into(),
            account: "123456789012".into(),
            stack: &stack,
            hosted_zone_id: None,
        };
        let ec2 = statements(&ctx, "Vpc", &Permission::new(&["ec2:DeleteVpc"], Scope::Ec2Tagged(&["vpc"])));
        assert_eq!(ec2[0]["Resource"][0], "arn:aws:ec2:ap-northeast-1:123456789012:vpc/*");
        assert_eq!(ec2[0]["Condition"]["StringEquals"]["aws:ResourceTag/konnichiwa:stack"], "konnichiwa");
        assert_eq!(ec2[0]["Condition"]["StringEquals"]["aws:RequestedRegion"], "ap-northeast-1");
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
    }
}
