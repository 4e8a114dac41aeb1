//! `adopt`'s plan: each managed `aws_*` resource of a Terraform state matched to the row `up`'s
//! plan gives it when the state's resources count as the stack's (`reconcile::adopting`), and
//! judged — taken over as it is (tags to add), taken over and changed in place, only replaceable
//! (downtime), a part of another, or left alone (why) — beside what `up` would then create.
//! `tagging` reads the tags the kinds do not compare and applies them; `record` writes the
//! names into stack.yaml.

pub mod record;
pub mod tagging;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::adopt::taken::Taken;
use crate::adopt::tfstate::{Found, State};
use crate::error::Error;
use crate::reconcile::adopting::Adopting;
use crate::reconcile::{Action, FieldDiff, Noun, Plan, ResourceChange};

/// Types a kind takes over as a part of another resource (the plan has no row of their own).
const PARTS: &[(&str, &str)] = &[
    ("aws_route_table_association", "the route table's associations"),
    ("aws_ecr_lifecycle_policy", "the repository's lifecycle policy"),
    ("aws_secretsmanager_secret_version", "the secret's value, kept as it is"),
    ("aws_iam_role_policy", "the role's inline policies"),
    ("aws_iam_role_policy_attachment", "the role's managed policies"),
    ("aws_ecs_cluster_capacity_providers", "the cluster's capacity providers"),
    ("aws_appautoscaling_policy", "the service's scaling policies (`up` keeps only the stack's)"),
    ("aws_route", "the route table's routes (`up` converges them to the stack's)"),
    ("aws_vpc_security_group_ingress_rule", "the security group's rules (`up` converges them to the stack's)"),
    ("aws_vpc_security_group_egress_rule", "the security group's rules (`up` converges them to the stack's)"),
    ("aws_security_group_rule", "the security group's rules (`up` converges them to the stack's)"),
];

/// What `adopt` makes of one resource of the state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Taken over with nothing to add: it carries the stack's tags already (or its kind keeps
    /// none, as a scalable target), and `up` changes nothing of it.
    Kept,
    /// Taken over as it is: the tags to add.
    AsIs { tags: Vec<FieldDiff> },
    /// Taken over; `up` then changes these fields in place.
    Change { tags: Vec<FieldDiff>, fields: Vec<FieldDiff> },
    /// Taken over, but `up` can only replace it: the resource is recreated (downtime).
    Replace { tags: Vec<FieldDiff>, reason: String },
    /// Taken over and then deleted by `up` (stack.yaml does not want it).
    Delete { tags: Vec<FieldDiff> },
    /// Taken over with the resource named (`what`).
    Part { what: String },
    /// Left alone, and why.
    Left { why: String },
}

impl Verdict {
    /// The tags `adopt --yes` adds.
    pub fn tags(&self) -> &[FieldDiff] {
        match self {
            Self::AsIs { tags } | Self::Change { tags, .. } | Self::Replace { tags, .. } | Self::Delete { tags } => {
                tags
            }
            _ => &[],
        }
    }
}

/// One resource of the state and what becomes of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub address: String,
    /// The plan row it is (kind and name as `plan` shows them), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Noun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// A name stack.yaml records under `adopted:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Name {
    pub key: &'static str,
    pub name: String,
    pub from: String,
}

/// `adopt`'s plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdoptPlan {
    pub entries: Vec<Entry>,
    /// Names to record in stack.yaml (none: it has them).
    pub names_to_record: Vec<Name>,
    /// What else `up` would change: what it creates, and what it changes or deletes besides the
    /// state's resources.
    pub up_also: Vec<ResourceChange>,
}

impl AdoptPlan {
    /// Something for `adopt --yes` to do: tags to add or names to record.
    pub fn has_work(&self) -> bool {
        !self.names_to_record.is_empty() || self.entries.iter().any(|e| !e.verdict.tags().is_empty())
    }
}

/// The ids and ARNs of the state's resources that lookups take as the stack's while `adopt`
/// plans: ARNs, and ids of the forms EC2 gives (`vpc-0a1b…`); never a bare name, which another
/// resource could share.
pub fn adopting(state: &State, taken: &Taken) -> Adopting {
    let mut ids = BTreeSet::new();
    for f in state.managed_aws().filter(|f| !is_part(&f.resource.kind)) {
        for value in [f.text("arn"), f.text("id")].into_iter().flatten() {
            if value.starts_with("arn:") || ec2_id(&value) {
                ids.insert(value.trim_end_matches(":*").to_owned());
                if f.resource.kind == "aws_cloudwatch_log_group" && value.starts_with("arn:") {
                    ids.insert(format!("{value}:*"));
                }
            }
        }
    }
    Adopting {
        ids,
        vpc: taken.vpc.clone(),
        subnets: taken.subnets.clone(),
        internet_gateway: taken.internet_gateway.clone(),
        route_table: taken.route_table.clone(),
    }
}

/// `vpc-0123abcd…`: an id EC2 gives the kinds that find theirs by id (at least 8 hex digits).
fn ec2_id(value: &str) -> bool {
    value.split_once('-').is_some_and(|(prefix, hex)| {
        ["vpc", "subnet", "igw", "rtb", "sg", "lt"].contains(&prefix)
            && hex.len() >= 8
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn is_part(kind: &str) -> bool {
    PARTS.iter().any(|(k, _)| *k == kind)
}

/// Refuses a state of another account or region than the credentials' and the stack's.
pub fn check_place(state: &State, region: &str, account: &str) -> Result<(), Error> {
    let arns: Vec<String> = state.managed_aws().filter_map(|f| f.text("arn")).collect();
    let parts = |i: usize| -> BTreeSet<String> {
        arns.iter().filter_map(|a| crate::adopt::stack_file::arn_part(a, i)).collect()
    };
    let (regions, accounts) = (parts(3), parts(4));
    // Resources of another region besides (a us-east-1 certificate) are left alone, not refused.
    if let (false, Some(other)) = (regions.contains(region), regions.iter().next()) {
        return Err(Error::Usage(format!(
            "the state's resources are in {other}, stack.yaml's region is {region}: adopt into a stack of that region \
             (set `region: {other}`), or give the state of the stack in {region}"
        )));
    }
    if let Some(other) = accounts.iter().find(|a| *a != account) {
        return Err(Error::Usage(format!(
            "the state's resources are in account {other}, the credentials are of account {account}: run adopt with \
             credentials of account {other} (AWS_PROFILE), or give the state of this account's stack"
        )));
    }
    Ok(())
}

/// Takes the state's names into `adopted` where stack.yaml leaves them unset; refuses one it
/// sets otherwise. Returns the names to record.
pub fn merge_names(adopted: &mut stack::Adopted, taken: &Taken) -> Result<Vec<Name>, Error> {
    let mut to_record = Vec::new();
    for (key, name) in taken.names.entries() {
        let Some(name) = name else { continue };
        let from = taken.from.get(key).cloned().unwrap_or_default();
        let Some(slot) = adopted.slot(key) else { continue };
        match slot {
            Some(have) if have != name => {
                return Err(Error::Usage(format!(
                    "stack.yaml's adopted.{key} is {have}, but the state's is {name} ({from}): correct stack.yaml, or \
                     give the state of the stack it describes"
                )));
            }
            Some(_) => {}
            None => {
                *slot = Some(name.to_owned());
                to_record.push(Name { key, name: name.to_owned(), from });
            }
        }
    }
    Ok(to_record)
}

/// Each resource of the state judged by the plan `up` would make with them taken over;
/// `attached` are the addresses the stack describes (what the service is attached to), and
/// `unseen_tags` the tags missing on a row whose kind does not compare tags (by row id).
pub fn judge(
    state: &State,
    plan: &Plan,
    attached: &[String],
    unseen_tags: &BTreeMap<String, Vec<FieldDiff>>,
) -> AdoptPlan {
    let mut matched = BTreeSet::new();
    let mut entries = Vec::new();
    for f in state.managed_aws() {
        let address = f.address();
        let Some(row) = (!is_part(&f.resource.kind)).then(|| row_of(f, plan)).flatten() else {
            let verdict = unmatched(f, attached.contains(&address));
            entries.push(Entry { address, kind: None, name: None, id: None, verdict });
            continue;
        };
        let id = row.id.clone().unwrap_or_default();
        matched.insert(normal(Some(&id)));
        let verdict = of_row(row, unseen_tags.get(&id).cloned().unwrap_or_default());
        entries.push(Entry {
            address,
            kind: Some(row.kind),
            name: Some(row.name.clone()),
            id: row.id.clone(),
            verdict,
        });
    }
    // Every other change `up` would make: creations, and what it changes or deletes of its own.
    let up_also = plan
        .resources
        .iter()
        .filter(|r| !r.change.is_no_op())
        .filter(|r| r.id.is_none() || !matched.contains(&normal(r.id.as_deref())))
        .cloned()
        .collect();
    AdoptPlan { entries, names_to_record: Vec::new(), up_also }
}

/// A resource of the state that no plan row is: a part of one, gone, or of no kind of ours.
fn unmatched(f: Found, attached: bool) -> Verdict {
    let kind = f.resource.kind.as_str();
    let takeable = crate::resources::KINDS.iter().any(|k| k.terraform_types.contains(&kind));
    match PARTS.iter().find(|(k, _)| *k == kind) {
        Some((_, what)) => Verdict::Part { what: (*what).to_owned() },
        None if attached => Verdict::Left {
            why: "not found in AWS as the state describes it: is the state current (`terraform refresh`)?".into(),
        },
        None if takeable => {
            Verdict::Left { why: "stack.yaml has no place for it (not what the service is attached to)".into() }
        }
        None => Verdict::Left { why: format!("no kind of the stack makes {kind}") },
    }
}

/// What the row of a taken-over resource says of it (`unseen`: the tags its kind does not compare).
fn of_row(row: &ResourceChange, unseen: Vec<FieldDiff>) -> Verdict {
    let (mut tags, fields): (Vec<FieldDiff>, Vec<FieldDiff>) =
        row.change.fields.iter().cloned().partition(|d| d.field.starts_with("tags."));
    tags.extend(unseen);
    let id = row.id.as_deref().unwrap_or_default();
    if row.kind == crate::resources::service::ECS_SERVICE && id.split('/').count() < 3 {
        return Verdict::Left {
            why: "an ECS service of the old ARN format (service/NAME), which ECS cannot tag: opt in to the long \
                  format (`aws ecs put-account-setting --name serviceLongArnFormat --value enabled`) and recreate \
                  it, then adopt again"
                .into(),
        };
    }
    if !tags.is_empty() && !tagging::TAGGABLE.contains(&row.kind.as_str()) {
        return Verdict::Left { why: format!("adopt cannot tag a {}: tag it by hand, then adopt again", row.kind) };
    }
    match row.change.action {
        Action::Replace => Verdict::Replace { tags, reason: row.change.reason.clone().unwrap_or_default() },
        Action::Delete => Verdict::Delete { tags },
        _ if tags.is_empty() && fields.is_empty() => Verdict::Kept,
        _ if fields.is_empty() => Verdict::AsIs { tags },
        _ => Verdict::Change { tags, fields },
    }
}

/// The plan row whose id is one of the resource's ids or ARNs; a task definition's is the row of
/// its family (its newest revision, which may be newer than the state's).
fn row_of<'p>(f: Found, plan: &'p Plan) -> Option<&'p ResourceChange> {
    let ids: Vec<String> = [f.text("arn"), f.text("id")].into_iter().flatten().map(|v| normal(Some(&v))).collect();
    let family = (f.resource.kind == "aws_ecs_task_definition").then(|| f.text("family")).flatten();
    plan.resources.iter().find(|r| {
        let Some(id) = r.id.as_deref() else { return false };
        ids.contains(&normal(Some(id)))
            || (r.kind == crate::resources::service::TASK_DEFINITION && family.as_deref() == Some(r.name.as_str()))
    })
}

/// An id as rows and states both spell it (a log group's ARN with or without `:*`).
fn normal(id: Option<&str>) -> String {
    id.unwrap_or_default().trim_end_matches(":*").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Change;

    const FIXTURE: &str = include_str!("../../tests/fixtures/terraform/konnichiwa.tfstate");
    const VPC: &str = "vpc-02044decd4be909de";
    const LB: &str =
        "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/konnichiwa-alb/73b45098efb88b9c";

    fn state() -> State {
        State::parse(FIXTURE, "konnichiwa.tfstate").expect("fixture")
    }

    fn tag(key: &str) -> FieldDiff {
        FieldDiff::new(format!("tags.{key}"), None, Some("v".into()))
    }

    #[test]
    fn each_resource_is_judged_by_its_plan_row() {
        let s = state();
        let described = crate::adopt::stack_file::describe(&s, None).expect("described");
        let noun = |n: &str| crate::engine::walk::nouns().find(|k| k.as_str() == n).expect("a noun");
        let mut plan = Plan::default();
        plan.push(noun("vpc"), "web-vpc", Some(VPC.into()), Change::update(vec![tag("Name"), tag("konnichiwa:stack")]));
        let idle = FieldDiff::new("idle_timeout", Some("60".into()), Some("30".into()));
        plan.push(noun("load-balancer"), "konnichiwa-alb", Some(LB.into()), Change::update(vec![idle, tag("x")]));
        let log_group = "arn:aws:logs:ap-northeast-1:123456789012:log-group:/ecs/konnichiwa:*";
        plan.push(noun("log-group"), "/ecs/konnichiwa", Some(log_group.into()), Change::no_op());
        plan.push(noun("iam-policy"), "web-boundary", None, Change::create(Vec::new()));
        let service = "arn:aws:ecs:ap-northeast-1:123456789012:service/konnichiwa/konnichiwa";
        plan.push(noun("ecs-service"), "konnichiwa", Some(service.into()), Change::no_op());
        // The family's newest revision, newer than the state's.
        let revision = "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/konnichiwa:7";
        plan.push(noun("task-definition"), "konnichiwa", Some(revision.into()), Change::update(vec![tag("k")]));
        // An alarm the state names (a kind adopt does not tag), and a rule `up` deletes.
        let alarm = "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:cpu";
        plan.push(noun("alarm"), "cpu", Some(alarm.into()), Change::update(vec![tag("konnichiwa:stack")]));
        plan.push(noun("listener-rule"), "host api.example.com", Some("arn:rule".into()), Change::delete());
        let unseen = BTreeMap::from([(service.to_owned(), vec![tag("konnichiwa:stack")])]);
        let mut v: serde_json::Value = serde_json::from_str(FIXTURE).expect("json");
        v["resources"].as_array_mut().expect("resources").push(serde_json::json!({"mode": "managed",
            "type": "aws_cloudwatch_metric_alarm", "name": "cpu", "instances": [{"attributes": {"arn": alarm}}]}));
        let s = State::parse(&v.to_string(), "with an alarm").expect("parses");
        let judged = judge(&s, &plan, &described.from, &unseen);
        let of = |address: &str| &judged.entries.iter().find(|e| e.address == address).expect(address).verdict;
        assert!(matches!(of("aws_vpc.main"), Verdict::AsIs { tags } if tags.len() == 2));
        assert!(matches!(of("aws_lb.main"), Verdict::Change { fields, tags } if fields.len() == 1 && tags.len() == 1));
        assert_eq!(of("aws_cloudwatch_log_group.app"), &Verdict::Kept, "an ARN with or without :*");
        assert!(matches!(of("aws_ecs_service.app"), Verdict::AsIs { .. }), "tags its kind does not compare");
        assert!(matches!(of("aws_secretsmanager_secret_version.api_key"), Verdict::Part { .. }));
        assert!(
            matches!(of("aws_ecs_cluster.main"), Verdict::Left { why } if why.contains("not found in AWS")),
            "attached, but no row: gone from AWS"
        );
        assert!(matches!(of("aws_ecs_task_definition.app"), Verdict::AsIs { .. }), "its family's newest revision");
        assert!(matches!(of("aws_cloudwatch_metric_alarm.cpu"), Verdict::Left { why } if why.contains("cannot tag")));
        let also: Vec<&str> = judged.up_also.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(also, ["web-boundary", "host api.example.com"], "creations and deletions besides");
        assert!(judged.has_work());
    }

    #[test]
    fn a_service_of_the_old_arn_format_is_left_alone_with_the_fix() {
        let row = |id: &str| ResourceChange {
            kind: crate::resources::service::ECS_SERVICE,
            name: "web".into(),
            id: Some(id.into()),
            change: Change::no_op(),
        };
        let old = of_row(&row("arn:aws:ecs:ap-northeast-1:1:service/web"), vec![tag("konnichiwa:stack")]);
        assert!(matches!(old, Verdict::Left { why } if why.contains("serviceLongArnFormat")));
        let new = of_row(&row("arn:aws:ecs:ap-northeast-1:1:service/c/web"), vec![tag("konnichiwa:stack")]);
        assert!(matches!(new, Verdict::AsIs { .. }));
    }

    #[test]
    fn the_state_must_be_of_the_credentials_account_and_the_stacks_region() {
        let s = state();
        assert!(check_place(&s, "ap-northeast-1", "123456789012").is_ok());
        let e = check_place(&s, "ap-northeast-1", "210987654321").expect_err("account").to_string();
        assert!(e.contains("account 123456789012") && e.contains("210987654321"), "{e}");
        let e = check_place(&s, "us-east-1", "123456789012").expect_err("region").to_string();
        assert!(e.contains("region: ap-northeast-1") && e.contains("us-east-1"), "{e}");
    }

    #[test]
    fn names_fill_what_stack_yaml_leaves_unset_and_a_conflict_is_refused() {
        let d = crate::adopt::stack_file::describe(&state(), None).expect("described");
        let mut adopted = stack::Adopted { service: Some("konnichiwa".into()), ..Default::default() };
        let recorded = merge_names(&mut adopted, &d.taken).expect("merged");
        assert_eq!(recorded.len(), 14, "all but the service, which stack.yaml names already");
        assert_eq!(adopted.cluster.as_deref(), Some("konnichiwa"));
        let mut other = stack::Adopted { cluster: Some("prod".into()), ..Default::default() };
        let e = merge_names(&mut other, &d.taken).expect_err("conflict").to_string();
        assert!(e.contains("adopted.cluster is prod") && e.contains("aws_ecs_cluster.main"), "{e}");
    }

    #[test]
    fn lookups_take_ids_and_arns_never_bare_names() {
        let s = state();
        let d = crate::adopt::stack_file::describe(&s, None).expect("described");
        let a = adopting(&s, &d.taken);
        assert!(a.ids.contains(VPC) && a.ids.contains(LB));
        assert!(a.ids.contains("arn:aws:logs:ap-northeast-1:123456789012:log-group:/ecs/konnichiwa:*"));
        assert!(!a.ids.contains("konnichiwa"), "a bare name could be another resource's");
        assert!(!a.ids.iter().any(|i| i.contains("terraform-")), "a secret version's id is a part's");
        assert_eq!(a.vpc.as_deref(), Some(VPC));
        assert_eq!(a.subnets.len(), 2);
    }
}
