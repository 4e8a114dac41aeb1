//! The network: VPC (DNS support and hostnames on), one public subnet per availability zone,
//! internet gateway, public route table with the default route, and the two security groups
//! (load balancer: listener ports from anywhere; instances: the dynamic host-port range from the
//! load balancer's group only). Observe by name + ownership tag, pure diffs, repeatable apply.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair,
    VpcAttributeName,
};
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::reconcile::{Change, Ctx, FieldDiff, Plan, compare, tags};
use crate::retry::retry;

/// The dynamic host-port range ECS maps `hostPort: 0` to on the instances.
pub const EPHEMERAL_PORTS: (i32, i32) = (32768, 65535);
const ANYWHERE: &str = "0.0.0.0/0";

/// What later kinds need from the network.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkOutputs {
    pub vpc_id: Option<String>,
    pub subnet_ids: Vec<String>,
    pub availability_zones: Vec<String>,
    pub internet_gateway_id: Option<String>,
    pub route_table_id: Option<String>,
    pub load_balancer_security_group_id: Option<String>,
    pub instance_security_group_id: Option<String>,
}

/// Resource names of a stack.
#[derive(Debug, Clone)]
pub struct Names {
    pub vpc: String,
    pub igw: String,
    pub route_table: String,
    pub lb_sg: String,
    pub instance_sg: String,
    stack: String,
}

impl Names {
    pub fn of(stack: &str) -> Self {
        Self {
            vpc: format!("{stack}-vpc"),
            igw: format!("{stack}-igw"),
            route_table: format!("{stack}-public"),
            lb_sg: format!("{stack}-alb"),
            instance_sg: format!("{stack}-instances"),
            stack: stack.to_owned(),
        }
    }

    pub fn subnet(&self, az: &str) -> String {
        format!("{}-public-{az}", self.stack)
    }
}

// ---------- observed state ----------

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedVpc {
    pub id: String,
    pub cidr: String,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSubnet {
    pub id: String,
    pub name: String,
    pub cidr: String,
    pub az: String,
    pub map_public_ip: bool,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedIgw {
    pub id: String,
    pub attached_to: Vec<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRouteTable {
    pub id: String,
    /// Destination -> target (gateway or other id); the VPC's `local` route is left out.
    pub routes: Vec<(String, String)>,
    /// (association id, subnet id)
    pub associations: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// One security-group rule, normalized so AWS's grouping of rules never shows as a diff.
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
    Group(String),
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
        let source = match &self.source {
            Source::Cidr(c) | Source::Cidr6(c) | Source::Group(c) | Source::PrefixList(c) => c,
        };
        write!(f, "{ports} from {source}")
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

// ---------- desired state and pure diffs ----------

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSubnet {
    pub name: String,
    pub cidr: String,
    pub az: String,
}

/// Subnets for the first `availability_zones` zones (sorted), with the stack's blocks.
pub fn desired_subnets(stack: &stack::Stack, zones: &[String]) -> Result<Vec<DesiredSubnet>, Error> {
    let names = Names::of(&stack.name);
    let wanted = usize::from(stack.network.availability_zones);
    if zones.len() < wanted {
        return Err(Error::Refused(format!(
            "{} has {} availability zones available; stack.yaml asks for {wanted}: lower network.availability_zones",
            stack.region,
            zones.len()
        )));
    }
    Ok(stack::subnet_blocks(stack)
        .into_iter()
        .zip(zones)
        .map(|(block, az)| DesiredSubnet { name: names.subnet(az), cidr: block.to_string(), az: az.clone() })
        .collect())
}

pub fn diff_vpc(stack: &stack::Stack, desired_tags: &[(String, String)], observed: Option<&ObservedVpc>) -> Change {
    let Some(vpc) = observed else {
        return Change::create(vec![
            FieldDiff::new("cidr", None, Some(stack.network.cidr.clone())),
            FieldDiff::new("dns_support", None, Some("true".into())),
            FieldDiff::new("dns_hostnames", None, Some("true".into())),
        ]);
    };
    if vpc.cidr != stack.network.cidr {
        return Change::replace(
            "a VPC's CIDR block cannot change",
            vec![FieldDiff::new("cidr", Some(vpc.cidr.clone()), Some(stack.network.cidr.clone()))],
        );
    }
    let mut fields: Vec<FieldDiff> =
        [compare("dns_support", &vpc.dns_support, &true), compare("dns_hostnames", &vpc.dns_hostnames, &true)]
            .into_iter()
            .flatten()
            .collect();
    fields.extend(tags::diff(desired_tags, &vpc.tags));
    Change::update(fields)
}

pub fn diff_subnet(
    desired: &DesiredSubnet,
    desired_tags: &[(String, String)],
    observed: Option<&ObservedSubnet>,
) -> Change {
    let Some(s) = observed else {
        return Change::create(vec![
            FieldDiff::new("cidr", None, Some(desired.cidr.clone())),
            FieldDiff::new("availability_zone", None, Some(desired.az.clone())),
            FieldDiff::new("map_public_ip_on_launch", None, Some("true".into())),
        ]);
    };
    let fixed: Vec<FieldDiff> =
        [compare("cidr", &s.cidr, &desired.cidr), compare("availability_zone", &s.az, &desired.az)]
            .into_iter()
            .flatten()
            .collect();
    if !fixed.is_empty() {
        return Change::replace("a subnet's CIDR block and zone cannot change", fixed);
    }
    let mut fields: Vec<FieldDiff> = compare("map_public_ip_on_launch", &s.map_public_ip, &true).into_iter().collect();
    fields.extend(tags::diff(desired_tags, &s.tags));
    Change::update(fields)
}

pub fn diff_igw(vpc_id: Option<&str>, desired_tags: &[(String, String)], observed: Option<&ObservedIgw>) -> Change {
    let want = vpc_id.unwrap_or("(new VPC)").to_owned();
    let Some(igw) = observed else {
        return Change::create(vec![FieldDiff::new("attached_to", None, Some(want))]);
    };
    let mut fields = Vec::new();
    let have = igw.attached_to.join(",");
    if igw.attached_to.as_slice() != [want.clone()] {
        fields.push(FieldDiff::new("attached_to", (!have.is_empty()).then_some(have), Some(want)));
    }
    fields.extend(tags::diff(desired_tags, &igw.tags));
    Change::update(fields)
}

/// Routes and associations the public route table must have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRouteTable {
    pub default_target: String,
    pub subnet_ids: Vec<String>,
}

pub fn diff_route_table(
    desired: &DesiredRouteTable,
    desired_tags: &[(String, String)],
    observed: Option<&ObservedRouteTable>,
) -> Change {
    let Some(rt) = observed else {
        let mut fields = vec![FieldDiff::new(format!("route {ANYWHERE}"), None, Some(desired.default_target.clone()))];
        fields.extend(
            desired
                .subnet_ids
                .iter()
                .map(|s| FieldDiff::new(format!("association {s}"), None, Some("associated".into()))),
        );
        return Change::create(fields);
    };
    let mut fields = Vec::new();
    let default = rt.routes.iter().find(|(d, _)| d == ANYWHERE).map(|(_, t)| t.clone());
    if default.as_deref() != Some(desired.default_target.as_str()) {
        fields.push(FieldDiff::new(format!("route {ANYWHERE}"), default, Some(desired.default_target.clone())));
    }
    for (dest, target) in rt.routes.iter().filter(|(d, _)| d != ANYWHERE) {
        fields.push(FieldDiff::new(format!("route {dest}"), Some(target.clone()), None));
    }
    for subnet in &desired.subnet_ids {
        if !rt.associations.iter().any(|(_, s)| s == subnet) {
            fields.push(FieldDiff::new(format!("association {subnet}"), None, Some("associated".into())));
        }
    }
    fields.extend(tags::diff(desired_tags, &rt.tags));
    Change::update(fields)
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
pub fn instance_ingress(lb_group: &str) -> BTreeSet<Rule> {
    let (from, to) = EPHEMERAL_PORTS;
    BTreeSet::from([Rule { protocol: "tcp".into(), from, to, source: Source::Group(lb_group.into()) }])
}

/// Both groups may reach anywhere (ECR, CloudWatch, Secrets Manager, the tasks).
pub fn all_egress() -> BTreeSet<Rule> {
    BTreeSet::from([Rule { protocol: "-1".into(), from: -1, to: -1, source: Source::Cidr(ANYWHERE.into()) }])
}

pub fn diff_security_group(
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

// ---------- observe ----------

fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn name_of(tags: &[(String, String)]) -> String {
    tags.iter().find(|(k, _)| k == "Name").map(|(_, v)| v.clone()).unwrap_or_default()
}

pub async fn observe_vpc(ctx: &Ctx, names: &Names) -> Result<Option<ObservedVpc>, Error> {
    let ec2 = &ctx.clients.ec2;
    let out =
        ec2.describe_vpcs().filters(filter("tag:Name", &names.vpc)).send().await.ctx("describe VPC", &names.vpc)?;
    let found: Vec<ObservedVpc> = out
        .vpcs()
        .iter()
        .map(|v| ObservedVpc {
            id: v.vpc_id().unwrap_or_default().to_owned(),
            cidr: v.cidr_block().unwrap_or_default().to_owned(),
            dns_support: false,
            dns_hostnames: false,
            tags: tags::pairs(v.tags()),
        })
        .collect();
    let Some(vpc) = tags::pick_owned("VPC", &names.vpc, &ctx.stack.name, found, |v| v.id.clone(), |v| v.tags.clone())?
    else {
        return Ok(None);
    };
    let id = vpc.id.clone();
    let support = ec2
        .describe_vpc_attribute()
        .vpc_id(&id)
        .attribute(VpcAttributeName::EnableDnsSupport)
        .send()
        .await
        .ctx("describe VPC attribute", &id)?;
    let hostnames = ec2
        .describe_vpc_attribute()
        .vpc_id(&id)
        .attribute(VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .ctx("describe VPC attribute", &id)?;
    Ok(Some(ObservedVpc {
        dns_support: support.enable_dns_support().and_then(|a| a.value()).unwrap_or(false),
        dns_hostnames: hostnames.enable_dns_hostnames().and_then(|a| a.value()).unwrap_or(false),
        ..vpc
    }))
}

async fn availability_zones(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_availability_zones()
        .filters(filter("state", "available"))
        .filters(filter("zone-type", "availability-zone"))
        .send()
        .await
        .ctx("list availability zones of", &ctx.clients.region)?;
    let mut zones: Vec<String> =
        out.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_owned)).collect();
    zones.sort();
    Ok(zones)
}

async fn observe_subnets(ctx: &Ctx, vpc_id: &str) -> Result<Vec<ObservedSubnet>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc_id))
        .send()
        .await
        .ctx("describe subnets of", vpc_id)?;
    Ok(out
        .subnets()
        .iter()
        .map(|s| {
            let tags = tags::pairs(s.tags());
            ObservedSubnet {
                id: s.subnet_id().unwrap_or_default().to_owned(),
                name: name_of(&tags),
                cidr: s.cidr_block().unwrap_or_default().to_owned(),
                az: s.availability_zone().unwrap_or_default().to_owned(),
                map_public_ip: s.map_public_ip_on_launch().unwrap_or(false),
                tags,
            }
        })
        .collect())
}

async fn observe_igw(ctx: &Ctx, names: &Names) -> Result<Option<ObservedIgw>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_internet_gateways()
        .filters(filter("tag:Name", &names.igw))
        .send()
        .await
        .ctx("describe internet gateway", &names.igw)?;
    let found: Vec<ObservedIgw> = out
        .internet_gateways()
        .iter()
        .map(|g| ObservedIgw {
            id: g.internet_gateway_id().unwrap_or_default().to_owned(),
            attached_to: g.attachments().iter().filter_map(|a| a.vpc_id().map(str::to_owned)).collect(),
            tags: tags::pairs(g.tags()),
        })
        .collect();
    tags::pick_owned("internet gateway", &names.igw, &ctx.stack.name, found, |g| g.id.clone(), |g| g.tags.clone())
}

async fn observe_route_table(ctx: &Ctx, names: &Names, vpc_id: &str) -> Result<Option<ObservedRouteTable>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpc_id))
        .filters(filter("tag:Name", &names.route_table))
        .send()
        .await
        .ctx("describe route table", &names.route_table)?;
    let found: Vec<ObservedRouteTable> = out
        .route_tables()
        .iter()
        .map(|rt| ObservedRouteTable {
            id: rt.route_table_id().unwrap_or_default().to_owned(),
            routes: rt
                .routes()
                .iter()
                .filter(|r| r.gateway_id() != Some("local"))
                .filter_map(|r| {
                    let dest = r.destination_cidr_block().or(r.destination_ipv6_cidr_block())?;
                    let target = r
                        .gateway_id()
                        .or(r.nat_gateway_id())
                        .or(r.network_interface_id())
                        .or(r.vpc_peering_connection_id())
                        .or(r.transit_gateway_id())
                        .or(r.instance_id())
                        .unwrap_or("unknown");
                    Some((dest.to_owned(), target.to_owned()))
                })
                .collect(),
            associations: rt
                .associations()
                .iter()
                .filter_map(|a| Some((a.route_table_association_id()?.to_owned(), a.subnet_id()?.to_owned())))
                .collect(),
            tags: tags::pairs(rt.tags()),
        })
        .collect();
    tags::pick_owned("route table", &names.route_table, &ctx.stack.name, found, |r| r.id.clone(), |r| r.tags.clone())
}

fn rules_of(perms: &[IpPermission]) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1").to_owned();
        let (from, to) =
            if protocol == "-1" { (-1, -1) } else { (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1)) };
        let rule = |source| Rule { protocol: protocol.clone(), from, to, source };
        rules.extend(p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).map(|c| rule(Source::Cidr(c.to_owned()))));
        rules.extend(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()).map(|c| rule(Source::Cidr6(c.to_owned()))));
        rules.extend(
            p.user_id_group_pairs().iter().filter_map(|g| g.group_id()).map(|g| rule(Source::Group(g.to_owned()))),
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

fn permission(rule: &Rule) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        p = p.from_port(rule.from).to_port(rule.to);
    }
    p = match &rule.source {
        Source::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).build()),
        Source::Cidr6(c) => p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
        Source::Group(g) => p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build()),
        Source::PrefixList(l) => p.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).build()),
    };
    p.build()
}

async fn observe_security_groups(
    ctx: &Ctx,
    names: &Names,
    vpc_id: &str,
) -> Result<(Option<ObservedSecurityGroup>, Option<ObservedSecurityGroup>), Error> {
    let out = ctx
        .clients
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc_id))
        .filters(Filter::builder().name("group-name").values(&names.lb_sg).values(&names.instance_sg).build())
        .send()
        .await
        .ctx("describe security groups of", vpc_id)?;
    let all: Vec<ObservedSecurityGroup> = out
        .security_groups()
        .iter()
        .map(|g| ObservedSecurityGroup {
            id: g.group_id().unwrap_or_default().to_owned(),
            name: g.group_name().unwrap_or_default().to_owned(),
            ingress: rules_of(g.ip_permissions()),
            egress: rules_of(g.ip_permissions_egress()),
            tags: tags::pairs(g.tags()),
        })
        .collect();
    let pick = |name: &str| {
        let found: Vec<ObservedSecurityGroup> = all.iter().filter(|g| g.name == name).cloned().collect();
        tags::pick_owned("security group", name, &ctx.stack.name, found, |g| g.id.clone(), |g| g.tags.clone())
    };
    Ok((pick(&names.lb_sg)?, pick(&names.instance_sg)?))
}

// ---------- apply ----------

async fn tag(ctx: &Ctx, id: &str, fields: &[FieldDiff], desired: &[(String, String)]) -> Result<(), Error> {
    if !fields.iter().any(|f| f.field.starts_with("tags.")) {
        return Ok(());
    }
    ctx.clients.ec2.create_tags().resources(id).set_tags(Some(tags::ec2_tags(desired))).send().await.ctx("tag", id)?;
    Ok(())
}

async fn set_vpc_dns(ctx: &Ctx, vpc_id: &str, support: bool, hostnames: bool) -> Result<(), Error> {
    let ec2 = &ctx.clients.ec2;
    // One attribute per call: AWS rejects both in one request.
    if support {
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_support(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .ctx("enable DNS support on", vpc_id)?;
    }
    if hostnames {
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .ctx("enable DNS hostnames on", vpc_id)?;
    }
    Ok(())
}

async fn create_subnet(ctx: &Ctx, vpc_id: &str, s: &DesiredSubnet) -> Result<String, Error> {
    let ec2 = &ctx.clients.ec2;
    let out = ec2
        .create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(&s.cidr)
        .availability_zone(&s.az)
        .tag_specifications(tags::ec2_spec(ResourceType::Subnet, &ctx.stack, &s.name))
        .send()
        .await
        .ctx("create subnet", &s.name)?;
    let id = out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_owned();
    set_public_ip(ctx, &id).await?;
    Ok(id)
}

async fn set_public_ip(ctx: &Ctx, subnet_id: &str) -> Result<(), Error> {
    ctx.clients
        .ec2
        .modify_subnet_attribute()
        .subnet_id(subnet_id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .ctx("turn on public IPs in", subnet_id)?;
    Ok(())
}

async fn delete_subnet(ctx: &Ctx, id: &str) -> Result<(), Error> {
    let deleted = retry(
        ctx.deadline,
        &format!("subnet {id} to be free of network interfaces"),
        &["DependencyViolation"],
        || async { ctx.clients.ec2.delete_subnet().subnet_id(id).send().await.ctx("delete subnet", id) },
    )
    .await;
    ignore_not_found(deleted, "InvalidSubnetID.NotFound")
}

fn ignore_not_found<T>(r: Result<T, Error>, code: &str) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(code) => Ok(()),
        Err(e) => Err(e),
    }
}

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
    let add_in: Vec<IpPermission> = ingress.difference(have_in).map(permission).collect();
    let del_in: Vec<IpPermission> = have_in.difference(ingress).map(permission).collect();
    let add_out: Vec<IpPermission> = egress.difference(have_out).map(permission).collect();
    let del_out: Vec<IpPermission> = have_out.difference(egress).map(permission).collect();
    if !del_in.is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(del_in))
            .send()
            .await
            .ctx("revoke ingress of", group_id)?;
    }
    if !add_in.is_empty() {
        ec2.authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(add_in))
            .send()
            .await
            .ctx("authorize ingress of", group_id)?;
    }
    if !del_out.is_empty() {
        ec2.revoke_security_group_egress()
            .group_id(group_id)
            .set_ip_permissions(Some(del_out))
            .send()
            .await
            .ctx("revoke egress of", group_id)?;
    }
    if !add_out.is_empty() {
        ec2.authorize_security_group_egress()
            .group_id(group_id)
            .set_ip_permissions(Some(add_out))
            .send()
            .await
            .ctx("authorize egress of", group_id)?;
    }
    Ok(())
}

async fn ensure_security_group(
    ctx: &Ctx,
    plan: &mut Plan,
    vpc_id: Option<&str>,
    name: &str,
    description: &str,
    ingress: BTreeSet<Rule>,
    observed: Option<ObservedSecurityGroup>,
) -> Result<Option<String>, Error> {
    let want_tags = tags::desired(&ctx.stack, name);
    let egress = all_egress();
    let change = diff_security_group(&ingress, &egress, &want_tags, observed.as_ref());
    let mut id = observed.as_ref().map(|o| o.id.clone());
    if ctx.applying() && !change.is_no_op() {
        let vpc_id = vpc_id.ok_or_else(|| Error::Refused(format!("security group {name} needs the VPC first")))?;
        if observed.is_none() {
            let out = ctx
                .clients
                .ec2
                .create_security_group()
                .group_name(name)
                .description(description)
                .vpc_id(vpc_id)
                .tag_specifications(tags::ec2_spec(ResourceType::SecurityGroup, &ctx.stack, name))
                .send()
                .await
                .ctx("create security group", name)?;
            let new_id = out.group_id().unwrap_or_default().to_owned();
            ctx.progress(format!("created security group {name} ({new_id})"));
            id = Some(new_id);
        }
        let gid = id.clone().unwrap_or_default();
        apply_rules(ctx, &gid, &ingress, &egress, observed.as_ref()).await?;
        if let Some(o) = &observed {
            tag(ctx, &o.id, &change.fields, &want_tags).await?;
            ctx.progress(format!("updated security group {name} ({gid})"));
        }
    }
    plan.push("security-group", name, id.clone(), change);
    Ok(id)
}

/// Observes the network, records each resource's change in `plan`, and in Apply mode makes the
/// changes in dependency order. Returns the ids later kinds need (None for what does not exist
/// yet in Plan mode).
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<NetworkOutputs, Error> {
    let stack = &ctx.stack;
    let names = Names::of(&stack.name);
    let ec2 = &ctx.clients.ec2;
    let mut out = NetworkOutputs::default();

    // VPC
    let observed_vpc = observe_vpc(ctx, &names).await?;
    let vpc_tags = tags::desired(stack, &names.vpc);
    let change = diff_vpc(stack, &vpc_tags, observed_vpc.as_ref());
    let mut vpc_id = observed_vpc.as_ref().map(|v| v.id.clone());
    if ctx.applying() {
        match change.action {
            crate::reconcile::Action::Replace => {
                return Err(Error::Refused(format!(
                    "the VPC {} must be replaced ({}), which would delete everything in it: run `provisioner down`, then `up`",
                    names.vpc,
                    change.reason.clone().unwrap_or_default()
                )));
            }
            crate::reconcile::Action::Create => {
                let created = ec2
                    .create_vpc()
                    .cidr_block(&stack.network.cidr)
                    .tag_specifications(tags::ec2_spec(ResourceType::Vpc, stack, &names.vpc))
                    .send()
                    .await
                    .ctx("create VPC", &names.vpc)?;
                let id = created.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_owned();
                ctx.progress(format!("created VPC {} ({id})", names.vpc));
                set_vpc_dns(ctx, &id, true, true).await?;
                vpc_id = Some(id);
            }
            crate::reconcile::Action::Update => {
                let id = vpc_id.clone().unwrap_or_default();
                let has = |f: &str| change.fields.iter().any(|d| d.field == f);
                set_vpc_dns(ctx, &id, has("dns_support"), has("dns_hostnames")).await?;
                tag(ctx, &id, &change.fields, &vpc_tags).await?;
                ctx.progress(format!("updated VPC {} ({id})", names.vpc));
            }
            _ => {}
        }
    }
    plan.push("vpc", &names.vpc, vpc_id.clone(), change);
    out.vpc_id = vpc_id.clone();

    // Subnets
    let zones = availability_zones(ctx).await?;
    let desired = desired_subnets(stack, &zones)?;
    let observed_subnets = match &vpc_id {
        Some(id) if observed_vpc.is_some() || ctx.applying() => observe_subnets(ctx, id).await?,
        _ => Vec::new(),
    };
    for s in &observed_subnets {
        if desired.iter().any(|d| d.name == s.name) && !tags::owned_by(&s.tags, &stack.name) {
            return Err(Error::Foreign {
                kind: "subnet",
                name: s.name.clone(),
                id: s.id.clone(),
                stack: stack.name.clone(),
            });
        }
    }
    for d in &desired {
        let want_tags = tags::desired(stack, &d.name);
        let observed = observed_subnets.iter().find(|s| s.name == d.name && tags::owned_by(&s.tags, &stack.name));
        let change = diff_subnet(d, &want_tags, observed);
        let mut id = observed.map(|s| s.id.clone());
        if ctx.applying() {
            let vpc = vpc_id.clone().unwrap_or_default();
            match change.action {
                crate::reconcile::Action::Create => {
                    let new_id = create_subnet(ctx, &vpc, d).await?;
                    ctx.progress(format!("created subnet {} ({new_id})", d.name));
                    id = Some(new_id);
                }
                crate::reconcile::Action::Replace => {
                    if let Some(old) = &id {
                        delete_subnet(ctx, old).await?;
                    }
                    let new_id = create_subnet(ctx, &vpc, d).await?;
                    ctx.progress(format!("replaced subnet {} ({new_id})", d.name));
                    id = Some(new_id);
                }
                crate::reconcile::Action::Update => {
                    let sid = id.clone().unwrap_or_default();
                    if change.fields.iter().any(|f| f.field == "map_public_ip_on_launch") {
                        set_public_ip(ctx, &sid).await?;
                    }
                    tag(ctx, &sid, &change.fields, &want_tags).await?;
                    ctx.progress(format!("updated subnet {} ({sid})", d.name));
                }
                _ => {}
            }
        }
        plan.push("subnet", &d.name, id.clone(), change);
        out.subnet_ids.extend(id);
        out.availability_zones.push(d.az.clone());
    }
    // Our subnets that stack.yaml no longer wants (fewer zones).
    for s in observed_subnets
        .iter()
        .filter(|s| tags::owned_by(&s.tags, &stack.name) && !desired.iter().any(|d| d.name == s.name))
    {
        if ctx.applying() {
            delete_subnet(ctx, &s.id).await?;
            ctx.progress(format!("deleted subnet {} ({})", s.name, s.id));
        }
        plan.push("subnet", &s.name, Some(s.id.clone()), Change::delete());
    }

    // Internet gateway
    let observed_igw = observe_igw(ctx, &names).await?;
    let igw_tags = tags::desired(stack, &names.igw);
    let change = diff_igw(vpc_id.as_deref(), &igw_tags, observed_igw.as_ref());
    let mut igw_id = observed_igw.as_ref().map(|g| g.id.clone());
    if ctx.applying() && !change.is_no_op() {
        let vpc = vpc_id.clone().unwrap_or_default();
        let id = match &observed_igw {
            Some(g) => g.id.clone(),
            None => {
                let created = ec2
                    .create_internet_gateway()
                    .tag_specifications(tags::ec2_spec(ResourceType::InternetGateway, stack, &names.igw))
                    .send()
                    .await
                    .ctx("create internet gateway", &names.igw)?;
                created.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default().to_owned()
            }
        };
        let attached = observed_igw.as_ref().map(|g| g.attached_to.clone()).unwrap_or_default();
        for other in attached.iter().filter(|v| **v != vpc) {
            ec2.detach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(other)
                .send()
                .await
                .ctx("detach internet gateway", &id)?;
        }
        if !attached.contains(&vpc) {
            ec2.attach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(&vpc)
                .send()
                .await
                .ctx("attach internet gateway", &id)?;
        }
        if let Some(g) = &observed_igw {
            tag(ctx, &g.id, &change.fields, &igw_tags).await?;
        }
        ctx.progress(format!("internet gateway {} ({id}) attached to {vpc}", names.igw));
        igw_id = Some(id);
    }
    plan.push("internet-gateway", &names.igw, igw_id.clone(), change);
    out.internet_gateway_id = igw_id.clone();

    // Route table
    let observed_rt = match &vpc_id {
        Some(id) => observe_route_table(ctx, &names, id).await?,
        None => None,
    };
    let rt_tags = tags::desired(stack, &names.route_table);
    let want_rt = DesiredRouteTable {
        default_target: igw_id.clone().unwrap_or_else(|| "(new internet gateway)".into()),
        subnet_ids: out.subnet_ids.clone(),
    };
    let change = diff_route_table(&want_rt, &rt_tags, observed_rt.as_ref());
    let mut rt_id = observed_rt.as_ref().map(|r| r.id.clone());
    if ctx.applying() && !change.is_no_op() {
        let vpc = vpc_id.clone().unwrap_or_default();
        let id = match &observed_rt {
            Some(r) => r.id.clone(),
            None => {
                let created = ec2
                    .create_route_table()
                    .vpc_id(&vpc)
                    .tag_specifications(tags::ec2_spec(ResourceType::RouteTable, stack, &names.route_table))
                    .send()
                    .await
                    .ctx("create route table", &names.route_table)?;
                created.route_table().and_then(|r| r.route_table_id()).unwrap_or_default().to_owned()
            }
        };
        let routes = observed_rt.as_ref().map(|r| r.routes.clone()).unwrap_or_default();
        match routes.iter().find(|(d, _)| d == ANYWHERE) {
            None => {
                ec2.create_route()
                    .route_table_id(&id)
                    .destination_cidr_block(ANYWHERE)
                    .gateway_id(&want_rt.default_target)
                    .send()
                    .await
                    .ctx("add the default route to", &id)?;
            }
            Some((_, target)) if *target != want_rt.default_target => {
                ec2.replace_route()
                    .route_table_id(&id)
                    .destination_cidr_block(ANYWHERE)
                    .gateway_id(&want_rt.default_target)
                    .send()
                    .await
                    .ctx("replace the default route of", &id)?;
            }
            Some(_) => {}
        }
        for (dest, _) in routes.iter().filter(|(d, _)| d != ANYWHERE) {
            let req = ec2.delete_route().route_table_id(&id);
            let req = if dest.contains(':') {
                req.destination_ipv6_cidr_block(dest)
            } else {
                req.destination_cidr_block(dest)
            };
            req.send().await.ctx("delete a route not in stack.yaml from", &id)?;
        }
        let associated: Vec<String> =
            observed_rt.as_ref().map(|r| r.associations.iter().map(|(_, s)| s.clone()).collect()).unwrap_or_default();
        for subnet in want_rt.subnet_ids.iter().filter(|s| !associated.contains(s)) {
            ec2.associate_route_table()
                .route_table_id(&id)
                .subnet_id(subnet)
                .send()
                .await
                .ctx("associate route table with", subnet)?;
        }
        if let Some(r) = &observed_rt {
            tag(ctx, &r.id, &change.fields, &rt_tags).await?;
        }
        ctx.progress(format!("route table {} ({id}) routes to {}", names.route_table, want_rt.default_target));
        rt_id = Some(id);
    }
    plan.push("route-table", &names.route_table, rt_id.clone(), change);
    out.route_table_id = rt_id;

    // Security groups: the load balancer's first (the instances' refers to it).
    let (observed_lb, observed_inst) = match &vpc_id {
        Some(id) => observe_security_groups(ctx, &names, id).await?,
        None => (None, None),
    };
    let lb_id = ensure_security_group(
        ctx,
        plan,
        vpc_id.as_deref(),
        &names.lb_sg,
        "Konnichiwa load balancer: listener ports from anywhere",
        lb_ingress(stack),
        observed_lb,
    )
    .await?;
    let lb_ref = lb_id.clone().unwrap_or_else(|| names.lb_sg.clone());
    let inst_id = ensure_security_group(
        ctx,
        plan,
        vpc_id.as_deref(),
        &names.instance_sg,
        "Konnichiwa container instances: dynamic host ports from the load balancer only",
        instance_ingress(&lb_ref),
        observed_inst,
    )
    .await?;
    out.load_balancer_security_group_id = lb_id;
    out.instance_security_group_id = inst_id;
    Ok(out)
}

/// Deletes the network in reverse dependency order, recording each deletion in `plan` (Plan
/// mode only lists them). Safe to repeat: what is already gone is skipped.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let names = Names::of(&ctx.stack.name);
    let ec2 = &ctx.clients.ec2;
    let vpc = observe_vpc(ctx, &names).await?;
    let igw = observe_igw(ctx, &names).await?;
    let Some(vpc) = vpc else {
        if let Some(g) = igw {
            if ctx.applying() {
                delete_igw(ctx, &g).await?;
            }
            plan.push("internet-gateway", &names.igw, Some(g.id.clone()), Change::delete());
        }
        return Ok(());
    };
    let (lb_sg, inst_sg) = observe_security_groups(ctx, &names, &vpc.id).await?;
    for sg in [inst_sg, lb_sg].into_iter().flatten() {
        if ctx.applying() {
            // The instances' group refers to the load balancer's: drop the rule first.
            if !sg.ingress.is_empty() {
                let perms: Vec<IpPermission> = sg.ingress.iter().map(permission).collect();
                ec2.revoke_security_group_ingress()
                    .group_id(&sg.id)
                    .set_ip_permissions(Some(perms))
                    .send()
                    .await
                    .ctx("revoke ingress of", &sg.id)?;
            }
            let r = retry(
                ctx.deadline,
                &format!("security group {} to be unused", sg.name),
                &["DependencyViolation"],
                || async {
                    ec2.delete_security_group().group_id(&sg.id).send().await.ctx("delete security group", &sg.id)
                },
            )
            .await;
            ignore_not_found(r, "InvalidGroup.NotFound")?;
            ctx.progress(format!("deleted security group {} ({})", sg.name, sg.id));
        }
        plan.push("security-group", &sg.name, Some(sg.id.clone()), Change::delete());
    }
    if let Some(rt) = observe_route_table(ctx, &names, &vpc.id).await? {
        if ctx.applying() {
            for (assoc, _) in &rt.associations {
                let r = ec2
                    .disassociate_route_table()
                    .association_id(assoc)
                    .send()
                    .await
                    .ctx("disassociate route table", assoc);
                ignore_not_found(r, "InvalidAssociationID.NotFound")?;
            }
            let r = ec2.delete_route_table().route_table_id(&rt.id).send().await.ctx("delete route table", &rt.id);
            ignore_not_found(r, "InvalidRouteTableID.NotFound")?;
            ctx.progress(format!("deleted route table {} ({})", names.route_table, rt.id));
        }
        plan.push("route-table", &names.route_table, Some(rt.id.clone()), Change::delete());
    }
    for s in observe_subnets(ctx, &vpc.id).await?.into_iter().filter(|s| tags::owned_by(&s.tags, &ctx.stack.name)) {
        if ctx.applying() {
            delete_subnet(ctx, &s.id).await?;
            ctx.progress(format!("deleted subnet {} ({})", s.name, s.id));
        }
        plan.push("subnet", &s.name, Some(s.id.clone()), Change::delete());
    }
    if let Some(g) = igw {
        if ctx.applying() {
            delete_igw(ctx, &g).await?;
        }
        plan.push("internet-gateway", &names.igw, Some(g.id.clone()), Change::delete());
    }
    if ctx.applying() {
        let r = retry(ctx.deadline, &format!("VPC {} to be empty", vpc.id), &["DependencyViolation"], || async {
            ec2.delete_vpc().vpc_id(&vpc.id).send().await.ctx("delete VPC", &vpc.id)
        })
        .await;
        ignore_not_found(r, "InvalidVpcID.NotFound")?;
        ctx.progress(format!("deleted VPC {} ({})", names.vpc, vpc.id));
    }
    plan.push("vpc", &names.vpc, Some(vpc.id.clone()), Change::delete());
    Ok(())
}

async fn delete_igw(ctx: &Ctx, g: &ObservedIgw) -> Result<(), Error> {
    let ec2 = &ctx.clients.ec2;
    for vpc in &g.attached_to {
        let r = retry(
            ctx.deadline,
            &format!("internet gateway {} to detach (public addresses still mapped)", g.id),
            &["DependencyViolation"],
            || async {
                ec2.detach_internet_gateway()
                    .internet_gateway_id(&g.id)
                    .vpc_id(vpc)
                    .send()
                    .await
                    .ctx("detach internet gateway", &g.id)
            },
        )
        .await;
        ignore_not_found(r, "Gateway.NotAttached")?;
    }
    let r = ec2.delete_internet_gateway().internet_gateway_id(&g.id).send().await.ctx("delete internet gateway", &g.id);
    ignore_not_found(r, "InvalidInternetGatewayID.NotFound")?;
    ctx.progress(format!("deleted internet gateway {}", g.id));
    Ok(())
}

/// Everything in the account that still carries this stack's tag, for the sweep after `down`.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let ec2 = &ctx.clients.ec2;
    let owned = || filter(&format!("tag:{}", stack::OWNERSHIP_TAG), &ctx.stack.name);
    let mut left = Vec::new();
    let vpcs = ec2.describe_vpcs().filters(owned()).send().await.ctx("sweep VPCs of", &ctx.stack.name)?;
    left.extend(vpcs.vpcs().iter().map(|v| format!("VPC {}", v.vpc_id().unwrap_or_default())));
    let subnets = ec2.describe_subnets().filters(owned()).send().await.ctx("sweep subnets of", &ctx.stack.name)?;
    left.extend(subnets.subnets().iter().map(|s| format!("subnet {}", s.subnet_id().unwrap_or_default())));
    let igws = ec2
        .describe_internet_gateways()
        .filters(owned())
        .send()
        .await
        .ctx("sweep internet gateways of", &ctx.stack.name)?;
    left.extend(
        igws.internet_gateways()
            .iter()
            .map(|g| format!("internet gateway {}", g.internet_gateway_id().unwrap_or_default())),
    );
    let rts =
        ec2.describe_route_tables().filters(owned()).send().await.ctx("sweep route tables of", &ctx.stack.name)?;
    left.extend(rts.route_tables().iter().map(|r| format!("route table {}", r.route_table_id().unwrap_or_default())));
    let sgs = ec2
        .describe_security_groups()
        .filters(owned())
        .send()
        .await
        .ctx("sweep security groups of", &ctx.stack.name)?;
    left.extend(sgs.security_groups().iter().map(|g| format!("security group {}", g.group_id().unwrap_or_default())));
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> stack::Stack {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
        stack::Stack::load(path).expect("example stack")
    }

    fn tags_for(s: &stack::Stack, name: &str) -> Vec<(String, String)> {
        tags::desired(s, name)
    }

    fn vpc(s: &stack::Stack) -> ObservedVpc {
        ObservedVpc {
            id: "vpc-1".into(),
            cidr: s.network.cidr.clone(),
            dns_support: true,
            dns_hostnames: true,
            tags: tags_for(s, "konnichiwa-vpc"),
        }
    }

    #[test]
    fn vpc_diffs() {
        let s = stack();
        let want = tags_for(&s, "konnichiwa-vpc");
        assert_eq!(diff_vpc(&s, &want, None).action, crate::reconcile::Action::Create);
        assert!(diff_vpc(&s, &want, Some(&vpc(&s))).is_no_op());
        let mut drifted = vpc(&s);
        drifted.dns_hostnames = false;
        let c = diff_vpc(&s, &want, Some(&drifted));
        assert_eq!(c.fields, vec![FieldDiff::new("dns_hostnames", Some("false".into()), Some("true".into()))]);
        let mut moved = vpc(&s);
        moved.cidr = "10.99.0.0/16".into();
        assert_eq!(diff_vpc(&s, &want, Some(&moved)).action, crate::reconcile::Action::Replace);
    }

    #[test]
    fn subnets_are_carved_per_zone_and_diffed() {
        let s = stack();
        let zones = vec!["ap-northeast-1a".to_owned(), "ap-northeast-1c".to_owned(), "ap-northeast-1d".to_owned()];
        let d = desired_subnets(&s, &zones).expect("enough zones");
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[1],
            DesiredSubnet {
                name: "konnichiwa-public-ap-northeast-1c".into(),
                cidr: "10.40.16.0/20".into(),
                az: "ap-northeast-1c".into()
            }
        );
        assert!(desired_subnets(&s, &zones[..1]).is_err());
        let want = tags_for(&s, &d[0].name);
        let observed = ObservedSubnet {
            id: "subnet-1".into(),
            name: d[0].name.clone(),
            cidr: d[0].cidr.clone(),
            az: d[0].az.clone(),
            map_public_ip: true,
            tags: want.clone(),
        };
        assert!(diff_subnet(&d[0], &want, Some(&observed)).is_no_op());
        let private = ObservedSubnet { map_public_ip: false, ..observed.clone() };
        assert_eq!(diff_subnet(&d[0], &want, Some(&private)).action, crate::reconcile::Action::Update);
        let moved = ObservedSubnet { cidr: "10.40.32.0/20".into(), ..observed };
        let c = diff_subnet(&d[0], &want, Some(&moved));
        assert_eq!(c.action, crate::reconcile::Action::Replace);
        assert!(c.reason.as_deref().is_some_and(|r| r.contains("cannot change")));
    }

    #[test]
    fn route_table_diffs_routes_and_associations() {
        let want = DesiredRouteTable {
            default_target: "igw-1".into(),
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
        };
        let good = ObservedRouteTable {
            id: "rtb-1".into(),
            routes: vec![(ANYWHERE.into(), "igw-1".into())],
            associations: vec![("a1".into(), "subnet-b".into()), ("a2".into(), "subnet-a".into())],
            tags: vec![],
        };
        assert!(diff_route_table(&want, &[], Some(&good)).is_no_op(), "association order does not matter");
        let no_route = ObservedRouteTable { routes: vec![("10.9.0.0/16".into(), "pcx-1".into())], ..good.clone() };
        let c = diff_route_table(&want, &[], Some(&no_route));
        assert_eq!(
            c.fields,
            vec![
                FieldDiff::new("route 0.0.0.0/0", None, Some("igw-1".into())),
                FieldDiff::new("route 10.9.0.0/16", Some("pcx-1".into()), None),
            ]
        );
        let one_assoc = ObservedRouteTable { associations: vec![("a1".into(), "subnet-b".into())], ..good };
        assert_eq!(diff_route_table(&want, &[], Some(&one_assoc)).fields[0].field, "association subnet-a");
    }

    #[test]
    fn security_group_rules_are_compared_as_sets() {
        let s = stack();
        let ingress = lb_ingress(&s);
        assert_eq!(ingress.iter().map(ToString::to_string).collect::<Vec<_>>(), ["tcp/80 from 0.0.0.0/0"]);
        let observed = ObservedSecurityGroup {
            id: "sg-1".into(),
            name: "konnichiwa-alb".into(),
            ingress: ingress.clone(),
            egress: all_egress(),
            tags: vec![],
        };
        assert!(diff_security_group(&ingress, &all_egress(), &[], Some(&observed)).is_no_op());
        let mut extra = observed.clone();
        extra.ingress.insert(Rule { protocol: "tcp".into(), from: 22, to: 22, source: Source::Cidr(ANYWHERE.into()) });
        let c = diff_security_group(&ingress, &all_egress(), &[], Some(&extra));
        assert_eq!(c.fields, vec![FieldDiff::new("ingress", Some("tcp/22 from 0.0.0.0/0".into()), None)]);
        let inst = instance_ingress("sg-alb");
        assert_eq!(inst.iter().next().map(ToString::to_string).as_deref(), Some("tcp/32768-65535 from sg-alb"));
    }

    #[test]
    fn aws_permissions_normalize_to_rules() {
        // AWS groups several sources under one permission; each becomes its own rule.
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
        for rule in lb_ingress(&stack()).iter().chain(all_egress().iter()) {
            assert_eq!(rules_of(&[permission(rule)]), BTreeSet::from([rule.clone()]), "round trip of {rule}");
        }
    }
}
