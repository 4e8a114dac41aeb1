//! The two security groups: the load balancer's (listener ports from anywhere) and the
//! instances' (the dynamic host-port range, from the load balancer's group only). A group's name
//! is unique in its VPC: a create retried after a lost answer is told `InvalidGroup.Duplicate`, a
//! rule added twice `InvalidPermission.Duplicate`, and the step adopts either. Rules compare as
//! sets, normalized so AWS's grouping of rules never shows as a diff.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair};

use super::SECURITY_GROUP;
use super::{filter, retag};
use crate::error::{AwsContext, Error, done, gone};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, tags};
use crate::wait::Wait;

/// The dynamic host-port range ECS maps `hostPort: 0` to on the instances.
pub const EPHEMERAL_PORTS: (i32, i32) = (32768, 65535);
const ANYWHERE: &str = "0.0.0.0/0";

/// One security-group rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub protocol: String,
    pub from: i32,
    pub to: i32,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Cidr(String),
    Cidr6(String),
    /// Another group, which may not exist yet in a plan.
    Group(Id),
    PrefixList(String),
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports = if self.protocol == "-1" {
            "all".to_owned()
        } else if self.from == self.to {
            format!("{}/{}", self.protocol, self.from)
        } else {
            format!("{}/{}-{}", self.protocol, self.from, self.to)
        };
        match &self.source {
            Source::Cidr(c) | Source::Cidr6(c) | Source::PrefixList(c) => write!(f, "{ports} from {c}"),
            Source::Group(g) => write!(f, "{ports} from {g}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSecurityGroup {
    pub id: String,
    pub name: String,
    pub ingress: BTreeSet<Rule>,
    pub egress: BTreeSet<Rule>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedSecurityGroup {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Ingress rules of the load balancer's group: the listener ports from anywhere.
pub fn lb_ingress(stack: &stack::Stack) -> BTreeSet<Rule> {
    let mut ports = vec![i32::from(stack.load_balancer.port)];
    if let Some(h) = &stack.load_balancer.https {
        ports.push(i32::from(h.port));
    }
    ports
        .into_iter()
        .map(|p| Rule { protocol: "tcp".into(), from: p, to: p, source: Source::Cidr(ANYWHERE.into()) })
        .collect()
}

/// Ingress rules of the instances' group: the dynamic host ports, from the load balancer only.
pub fn instance_ingress(lb_group: &Id) -> BTreeSet<Rule> {
    let (from, to) = EPHEMERAL_PORTS;
    BTreeSet::from([Rule { protocol: "tcp".into(), from, to, source: Source::Group(lb_group.clone()) }])
}

/// Both groups may reach anywhere (ECR, CloudWatch, Secrets Manager, the tasks).
pub fn all_egress() -> BTreeSet<Rule> {
    BTreeSet::from([Rule { protocol: "-1".into(), from: -1, to: -1, source: Source::Cidr(ANYWHERE.into()) }])
}

pub fn diff(
    ingress: &BTreeSet<Rule>,
    egress: &BTreeSet<Rule>,
    desired_tags: &[(String, String)],
    observed: Option<&ObservedSecurityGroup>,
) -> Change {
    let Some(sg) = observed else {
        let fields = ingress.iter().map(|r| FieldDiff::new("ingress", None, Some(r.to_string()))).collect();
        return Change::create(fields);
    };
    let mut fields = Vec::new();
    for (direction, want, have) in [("ingress", ingress, &sg.ingress), ("egress", egress, &sg.egress)] {
        fields.extend(want.difference(have).map(|r| FieldDiff::new(direction, None, Some(r.to_string()))));
        fields.extend(have.difference(want).map(|r| FieldDiff::new(direction, Some(r.to_string()), None)));
    }
    fields.extend(tags::diff(desired_tags, &sg.tags));
    Change::update(fields)
}

/// AWS groups several sources under one permission; each becomes its own rule.
pub fn rules_of(perms: &[IpPermission]) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1").to_owned();
        let (from, to) =
            if protocol == "-1" { (-1, -1) } else { (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1)) };
        let rule = |source| Rule { protocol: protocol.clone(), from, to, source };
        rules.extend(p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).map(|c| rule(Source::Cidr(c.to_owned()))));
        rules.extend(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()).map(|c| rule(Source::Cidr6(c.to_owned()))));
        rules.extend(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|g| g.group_id())
                .map(|g| rule(Source::Group(Id::Known(g.to_owned())))),
        );
        rules.extend(
            p.prefix_list_ids()
                .iter()
                .filter_map(|l| l.prefix_list_id())
                .map(|l| rule(Source::PrefixList(l.to_owned()))),
        );
    }
    rules
}

/// The rule as AWS takes it; a group that does not exist yet refuses.
pub fn permission(rule: &Rule) -> Result<IpPermission, Error> {
    let mut p = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        p = p.from_port(rule.from).to_port(rule.to);
    }
    p = match &rule.source {
        Source::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).build()),
        Source::Cidr6(c) => p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
        Source::Group(g) => p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g.get()?).build()),
        Source::PrefixList(l) => p.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).build()),
    };
    Ok(p.build())
}

fn permissions<'a>(rules: impl Iterator<Item = &'a Rule>) -> Result<Vec<IpPermission>, Error> {
    rules.map(permission).collect()
}

fn observed_of(g: &aws_sdk_ec2::types::SecurityGroup) -> ObservedSecurityGroup {
    ObservedSecurityGroup {
        id: g.group_id().unwrap_or_default().to_owned(),
        name: g.group_name().unwrap_or_default().to_owned(),
        ingress: rules_of(g.ip_permissions()),
        egress: rules_of(g.ip_permissions_egress()),
        tags: tags::pairs(g.tags()),
    }
}

/// Which of a group's rule lists a revoke acts on.
#[derive(Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn revoking(self) -> &'static str {
        match self {
            Self::Ingress => "revoke ingress of",
            Self::Egress => "revoke egress of",
        }
    }
}

/// The VPC's groups named `names` (one call for both of the stack's groups).
pub async fn observe_named(ctx: &Ctx, vpc: &Id, names: &[&str]) -> Result<Vec<ObservedSecurityGroup>, Error> {
    let Some(vpc_id) = vpc.known() else { return Ok(Vec::new()) };
    let group_names = aws_sdk_ec2::types::Filter::builder()
        .name("group-name")
        .set_values(Some(names.iter().map(|n| (*n).to_owned()).collect()))
        .build();
    let out = ctx
        .clients
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc_id))
        .filters(group_names)
        .send()
        .await
        .ctx("describe security groups of", vpc_id)?;
    Ok(out.security_groups().iter().map(observed_of).collect())
}

/// Of the groups found, ours named `name`; refuses a foreign one with that name.
pub fn pick(ctx: &Ctx, all: &[ObservedSecurityGroup], name: &str) -> Result<Option<ObservedSecurityGroup>, Error> {
    let found: Vec<ObservedSecurityGroup> = all.iter().filter(|g| g.name == name).cloned().collect();
    tags::pick_owned("security group", name, &ctx.owner(), found, |g| g.id.clone(), |g| g.tags.clone())
}

pub async fn observe(ctx: &Ctx, vpc: &Id, name: &str) -> Result<Option<ObservedSecurityGroup>, Error> {
    pick(ctx, &observe_named(ctx, vpc, &[name]).await?, name)
}

/// Makes the group's rules the wanted ones; a group referred to that was created a moment ago
/// can still be "not found".
async fn apply_rules(
    ctx: &Ctx,
    group_id: &str,
    ingress: &BTreeSet<Rule>,
    egress: &BTreeSet<Rule>,
    observed: Option<&ObservedSecurityGroup>,
) -> Result<(), Error> {
    let ec2 = &ctx.clients.ec2;
    let empty = BTreeSet::new();
    // A new group starts with AWS's default egress rule (all traffic to anywhere).
    let default_egress = all_egress();
    let (have_in, have_out) = match observed {
        Some(o) => (&o.ingress, &o.egress),
        None => (&empty, &default_egress),
    };
    let del_in = permissions(have_in.difference(ingress))?;
    let add_in = permissions(ingress.difference(have_in))?;
    let del_out = permissions(have_out.difference(egress))?;
    let add_out = permissions(egress.difference(have_out))?;
    let waiting = format!("security group {group_id} and the groups it names to be visible");
    // One rule a call: in a VPC, EC2 revokes nothing of a request when one of its rules does not
    // match, and answers InvalidPermission.NotFound — which, for one rule, means it is gone
    // already. A group EC2 does not list yet (made a moment ago) is waited for, as for the
    // authorizations: never taken for done, or a new group would keep AWS's default egress.
    let revoke = async |direction: Direction, rule: IpPermission| {
        ctx.wait(Wait::Consistency, &waiting, || async {
            let rule = Some(vec![rule.clone()]);
            match direction {
                Direction::Ingress => {
                    let r = ec2.revoke_security_group_ingress().group_id(group_id).set_ip_permissions(rule);
                    done(r.send().await.ctx(direction.revoking(), group_id))
                }
                Direction::Egress => {
                    let r = ec2.revoke_security_group_egress().group_id(group_id).set_ip_permissions(rule);
                    done(r.send().await.ctx(direction.revoking(), group_id))
                }
            }
        })
        .await
    };
    futures_util::future::try_join_all(del_in.into_iter().map(|rule| revoke(Direction::Ingress, rule))).await?;
    if !add_in.is_empty() {
        ctx.wait(Wait::Consistency, &waiting, || async {
            ec2.authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(add_in.clone()))
                .send()
                .await
                .ctx("authorize ingress of", group_id)
        })
        .await?;
    }
    futures_util::future::try_join_all(del_out.into_iter().map(|rule| revoke(Direction::Egress, rule))).await?;
    if !add_out.is_empty() {
        ctx.wait(Wait::Consistency, &waiting, || async {
            ec2.authorize_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(Some(add_out.clone()))
                .send()
                .await
                .ctx("authorize egress of", group_id)
        })
        .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply(
    ctx: &Ctx,
    vpc: &Id,
    name: &str,
    description: &str,
    ingress: &BTreeSet<Rule>,
    egress: &BTreeSet<Rule>,
    change: &Change,
    observed: Option<&ObservedSecurityGroup>,
) -> Result<Option<String>, Error> {
    let Some(o) = observed else {
        let vpc_id = vpc.get()?;
        let out = ctx
            .wait(Wait::Consistency, &format!("VPC {vpc_id} to be visible"), || async {
                ctx.clients
                    .ec2
                    .create_security_group()
                    .group_name(name)
                    .description(description)
                    .vpc_id(vpc_id)
                    .tag_specifications(tags::ec2_spec(ResourceType::SecurityGroup, &ctx.stack, name))
                    .send()
                    .await
                    .ctx("create security group", name)
            })
            .await?;
        let id = out.group_id().unwrap_or_default().to_owned();
        ctx.progress(format!("created security group {name} ({id})"));
        apply_rules(ctx, &id, ingress, egress, None).await?;
        return Ok(Some(id));
    };
    apply_rules(ctx, &o.id, ingress, egress, Some(o)).await?;
    retag(ctx, &o.id, change, name).await?;
    ctx.progress(format!("updated security group {name} ({})", o.id));
    Ok(None)
}

/// One of the stack's groups with exactly `ingress` and all egress; its id (pending in Plan mode
/// before it exists).
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    vpc: &Id,
    observed: Option<ObservedSecurityGroup>,
    name: &str,
    description: &str,
    ingress: BTreeSet<Rule>,
) -> Result<Id, Error> {
    converge_rules(ctx, plan, vpc, observed, name, description, ingress, all_egress()).await
}

/// One of the stack's groups with exactly `ingress` and `egress`.
#[allow(clippy::too_many_arguments)]
pub async fn converge_rules(
    ctx: &Ctx,
    plan: &mut Plan,
    vpc: &Id,
    observed: Option<ObservedSecurityGroup>,
    name: &str,
    description: &str,
    ingress: BTreeSet<Rule>,
    egress: BTreeSet<Rule>,
) -> Result<Id, Error> {
    let want_tags = tags::desired(&ctx.stack, name);
    let outcome = Step::new(ctx, SECURITY_GROUP, name)
        .converge_observed(
            plan,
            observed,
            async || observe(ctx, vpc, name).await,
            |o| diff(&ingress, &egress, &want_tags, o),
            async |c: &Change, o: Option<&ObservedSecurityGroup>| {
                apply(ctx, vpc, name, description, &ingress, &egress, c, o).await
            },
        )
        .await?;
    Ok(outcome.id_or(|| format!("security group {name}")))
}

/// Deletes our groups in the VPC; ingress rules go first, since one group refers to the other.
pub async fn teardown_in(ctx: &Ctx, plan: &mut Plan, vpc_id: &str) -> Result<(), Error> {
    let ec2 = &ctx.clients.ec2;
    let out = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc_id))
        .filters(super::owned_filter(&ctx.stack))
        .send()
        .await
        .ctx("describe security groups of", vpc_id)?;
    let mut groups: Vec<ObservedSecurityGroup> = out.security_groups().iter().map(observed_of).collect();
    // The instances' group (which names the other) first.
    groups.sort_by_key(|g| g.ingress.iter().all(|r| !matches!(r.source, Source::Group(_))));
    if ctx.applying() {
        // One rule a call (EC2 revokes nothing of a request one of whose rules does not match).
        for sg in groups.iter().filter(|g| !g.ingress.is_empty()) {
            let revoking = permissions(sg.ingress.iter())?.into_iter().map(|rule| async {
                let r = ec2.revoke_security_group_ingress().group_id(&sg.id).ip_permissions(rule).send().await;
                gone(r.ctx("revoke ingress of", &sg.id))
            });
            futures_util::future::try_join_all(revoking).await?;
        }
    }
    for sg in groups {
        if ctx.applying() {
            let r = ctx
                .wait(Wait::Dependency, &format!("security group {} to be unused", sg.name), || async {
                    ec2.delete_security_group().group_id(&sg.id).send().await.ctx("delete security group", &sg.id)
                })
                .await;
            gone(r)?;
            ctx.progress(format!("deleted security group {} ({})", sg.name, sg.id));
        }
        plan.push(SECURITY_GROUP, &sg.name, Some(sg.id.clone()), Change::delete());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_group_rules_are_compared_as_sets() {
        let s = crate::resources::test_stack();
        let ingress = lb_ingress(&s);
        assert_eq!(ingress.iter().map(ToString::to_string).collect::<Vec<_>>(), ["tcp/80 from 0.0.0.0/0"]);
        let observed = ObservedSecurityGroup {
            id: "sg-1".into(),
            name: "konnichiwa-alb".into(),
            ingress: ingress.clone(),
            egress: all_egress(),
            tags: vec![],
        };
        assert!(diff(&ingress, &all_egress(), &[], Some(&observed)).is_no_op());
        let mut extra = observed.clone();
        extra.ingress.insert(Rule { protocol: "tcp".into(), from: 22, to: 22, source: Source::Cidr(ANYWHERE.into()) });
        let c = diff(&ingress, &all_egress(), &[], Some(&extra));
        assert_eq!(c.fields, vec![FieldDiff::new("ingress", Some("tcp/22 from 0.0.0.0/0".into()), None)]);
        let inst = instance_ingress(&Id::Known("sg-alb".into()));
        assert_eq!(inst.iter().next().map(ToString::to_string).as_deref(), Some("tcp/32768-65535 from sg-alb"));
    }

    #[test]
    fn a_rule_naming_a_group_not_yet_created_is_shown_but_never_sent() {
        let inst = instance_ingress(&Id::Pending("security group s-alb".into()));
        let rule = inst.iter().next().expect("rule");
        assert_eq!(rule.to_string(), "tcp/32768-65535 from (security group s-alb, once created)");
        assert!(matches!(permission(rule), Err(Error::NotYetKnown(_))));
    }

    #[test]
    fn aws_permissions_normalize_to_rules() {
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(80)
            .to_port(80)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build();
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        assert_eq!(rules_of(&[perm]).len(), 2);
        assert_eq!(rules_of(&[all]), all_egress());
        let s = crate::resources::test_stack();
        for rule in
            lb_ingress(&s).iter().chain(all_egress().iter()).chain(instance_ingress(&Id::Known("sg-1".into())).iter())
        {
            let p = permission(rule).expect("known");
            assert_eq!(rules_of(&[p]), BTreeSet::from([rule.clone()]), "round trip of {rule}");
        }
    }
}
