//! The network: VPC (DNS support and hostnames on), one public subnet per availability zone,
//! internet gateway, public route table with the default route, and the two security groups
//! (load balancer: listener ports from anywhere; instances: the dynamic host-port range from the
//! load balancer's group only). One file per sub-resource, each through `Step`; this file walks
//! them in dependency order and tears the network down by tag, duplicates included.

mod gateway;
mod route_table;
pub(crate) mod security_group;
mod subnet;
mod vpc;

use aws_sdk_ec2::types::Filter;
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, Scope};
use crate::reconcile::{Ctx, Id, Plan};

use crate::reconcile::Noun;
pub use gateway::ObservedIgw;
pub use route_table::{DesiredRouteTable, ObservedRouteTable};
pub use security_group::{
    EPHEMERAL_PORTS, ObservedSecurityGroup, Rule, Source, all_egress, instance_ingress, lb_ingress, permission,
    rules_of,
};
pub use subnet::{DesiredSubnet, ObservedSubnet, desired_subnets};
pub use vpc::ObservedVpc;
/// The nouns of this kind's plan rows.
pub const VPC: Noun = Noun::new("vpc");
pub const SUBNET: Noun = Noun::new("subnet");
pub const INTERNET_GATEWAY: Noun = Noun::new("internet-gateway");
pub const ROUTE_TABLE: Noun = Noun::new("route-table");
pub const SECURITY_GROUP: Noun = Noun::new("security-group");

/// EC2 resource types the stack owns (all carry its tag).
pub const EC2_TYPES: &[&str] = &[
    "vpc",
    "subnet",
    "internet-gateway",
    "route-table",
    "security-group",
    "launch-template",
    "instance",
    "volume",
    "network-interface",
];

/// What the network calls; EC2 resources have ids, not names, so changes reach only what carries
/// the stack's tag, and creates only what they tag with it.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "ec2:DescribeVpcs",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeSubnets",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
        ],
        Scope::Any,
    ),
    Permission::new(&["ec2:CreateVpc"], Scope::Ec2Creating(&["vpc"])),
    Permission::new(&["ec2:CreateSubnet"], Scope::Ec2Creating(&["subnet"])),
    Permission::new(&["ec2:CreateInternetGateway"], Scope::Ec2Creating(&["internet-gateway"])),
    Permission::new(&["ec2:CreateRouteTable"], Scope::Ec2Creating(&["route-table"])),
    Permission::new(&["ec2:CreateSecurityGroup"], Scope::Ec2Creating(&["security-group"])),
    // Creates in our VPC, and every change to what is ours.
    Permission::new(
        &[
            "ec2:CreateSubnet",
            "ec2:CreateRouteTable",
            "ec2:CreateSecurityGroup",
            "ec2:ModifyVpcAttribute",
            "ec2:DeleteVpc",
            "ec2:ModifySubnetAttribute",
            "ec2:DeleteSubnet",
            "ec2:AttachInternetGateway",
            "ec2:DetachInternetGateway",
            "ec2:DeleteInternetGateway",
            "ec2:CreateRoute",
            "ec2:ReplaceRoute",
            "ec2:DeleteRoute",
            "ec2:AssociateRouteTable",
            "ec2:ReplaceRouteTableAssociation",
            "ec2:DisassociateRouteTable",
            "ec2:DeleteRouteTable",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:DeleteSecurityGroup",
        ],
        Scope::Ec2Tagged(EC2_TYPES),
    ),
    // Drifted tags repaired on what is ours, never re-tagged as another stack's.
    Permission::new(&["ec2:CreateTags"], Scope::Ec2Retag(EC2_TYPES)),
    Permission::new(
        &["ec2:CreateTags"],
        Scope::TagOnCreate {
            key: "ec2:CreateAction",
            creates: &[
                "CreateVpc",
                "CreateSubnet",
                "CreateInternetGateway",
                "CreateRouteTable",
                "CreateSecurityGroup",
                "CreateLaunchTemplate",
                "RunInstances",
            ],
        },
    ),
];

/// What later kinds need from the network.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkOutputs {
    pub vpc_id: Id,
    pub subnet_ids: Vec<Id>,
    pub availability_zones: Vec<String>,
    pub internet_gateway_id: Id,
    pub route_table_id: Id,
    pub load_balancer_security_group_id: Id,
    pub instance_security_group_id: Id,
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
    pub fn of(s: &stack::Stack) -> Self {
        let (adopted, stack) = (&s.adopted, &s.name);
        Self {
            vpc: format!("{stack}-vpc"),
            igw: format!("{stack}-igw"),
            route_table: format!("{stack}-public"),
            lb_sg: adopted.load_balancer_security_group.clone().unwrap_or_else(|| format!("{stack}-alb")),
            instance_sg: adopted.instance_security_group.clone().unwrap_or_else(|| format!("{stack}-instances")),
            stack: stack.clone(),
        }
    }

    pub fn subnet(&self, az: &str) -> String {
        format!("{}-public-{az}", self.stack)
    }
}

pub(crate) fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The filter that finds one of the network's resources: by our `Name` tag, or, while `adopt`
/// plans to take one over (it has no such tag yet), by the id the state gives it (`id_filter`).
pub(crate) fn by_name_or_adopted(name: &str, id_filter: &str, adopted: Option<&String>) -> Filter {
    match adopted {
        Some(id) => filter(id_filter, id),
        None => filter("tag:Name", name),
    }
}

/// The filter that finds everything carrying this stack's ownership tag.
pub(crate) fn owned_filter(stack: &stack::Stack) -> Filter {
    filter(&format!("tag:{}", stack::OWNERSHIP_TAG), &stack.name)
}

pub(crate) fn name_of(tags: &[(String, String)]) -> String {
    tags.iter().find(|(k, _)| k == "Name").map(|(_, v)| v.clone()).unwrap_or_default()
}

/// Tags the resource when the change says a tag differs.
pub(crate) async fn retag(ctx: &Ctx, id: &str, change: &crate::reconcile::Change, name: &str) -> Result<(), Error> {
    if !change.has_tags() {
        return Ok(());
    }
    let desired = crate::reconcile::tags::desired(&ctx.stack, name);
    ctx.clients
        .ec2
        .create_tags()
        .resources(id)
        .set_tags(Some(crate::reconcile::tags::ec2_tags(&desired)))
        .send()
        .await
        .ctx("tag", id)?;
    Ok(())
}

/// The region's available zones, sorted: the stack takes the first `network.availability_zones`.
pub(crate) async fn availability_zones(ctx: &Ctx) -> Result<Vec<String>, Error> {
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

/// The stack's VPC and the ids of its public subnets, if the VPC exists (two calls; nothing
/// compared).
pub async fn locate(ctx: &Ctx) -> Result<Option<(String, Vec<String>)>, Error> {
    let names = Names::of(&ctx.stack);
    let Some(vpc) = vpc::locate(ctx, &names).await? else { return Ok(None) };
    let subnets = subnet::locate_in(ctx, &names, &vpc).await?;
    Ok(Some((vpc, subnets)))
}

/// Observes the network, records each resource's change in `plan`, and in Apply mode makes the
/// changes in dependency order. Ids of what does not exist yet are pending in Plan mode.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<NetworkOutputs, Error> {
    let names = Names::of(&ctx.stack);
    let (vpc_id, zones) = tokio::try_join!(vpc::converge(ctx, plan, &names), availability_zones(ctx))?;
    // Then, at once: the subnets and the gateway (and the route table that joins them), and the
    // security groups. Each part's rows are added in one order whatever finished first.
    let (mut p_routes, mut p_groups) = (Plan::default(), Plan::default());
    let ((subnets, igw_id, route_table_id), (lb_sg, instance_sg)) = tokio::try_join!(
        routes(ctx, &mut p_routes, &names, &vpc_id, &zones),
        groups(ctx, &mut p_groups, &names, &vpc_id),
    )?;
    plan.extend(p_routes);
    plan.extend(p_groups);
    Ok(NetworkOutputs {
        vpc_id,
        subnet_ids: subnets.iter().map(|(id, _)| id.clone()).collect(),
        availability_zones: subnets.into_iter().map(|(_, az)| az).collect(),
        internet_gateway_id: igw_id,
        route_table_id,
        load_balancer_security_group_id: lb_sg,
        instance_security_group_id: instance_sg,
    })
}

/// The subnets and the internet gateway at once, then the route table that sends the subnets'
/// traffic through the gateway: (subnets with their zones, gateway, route table).
async fn routes(
    ctx: &Ctx,
    plan: &mut Plan,
    names: &Names,
    vpc_id: &Id,
    zones: &[String],
) -> Result<(Vec<(Id, String)>, Id, Id), Error> {
    let mut p_igw = Plan::default();
    let (subnets, igw_id) = tokio::try_join!(
        subnet::converge(ctx, plan, names, vpc_id, zones),
        gateway::converge(ctx, &mut p_igw, names, vpc_id)
    )?;
    plan.extend(p_igw);
    let subnet_ids: Vec<Id> = subnets.iter().map(|(id, _)| id.clone()).collect();
    let want_rt = DesiredRouteTable { default_target: igw_id.clone(), subnet_ids };
    let route_table_id = route_table::converge(ctx, plan, names, vpc_id, &want_rt).await?;
    Ok((subnets, igw_id, route_table_id))
}

/// The load balancer's security group, then the instances' (which refers to it): (load
/// balancer's, instances'). One listing for both.
async fn groups(ctx: &Ctx, plan: &mut Plan, names: &Names, vpc_id: &Id) -> Result<(Id, Id), Error> {
    let groups = security_group::observe_named(ctx, vpc_id, &[&names.lb_sg, &names.instance_sg]).await?;
    let lb_sg = security_group::converge(
        ctx,
        plan,
        vpc_id,
        security_group::pick(ctx, &groups, &names.lb_sg)?,
        &names.lb_sg,
        "Konnichiwa load balancer: listener ports from anywhere",
        lb_ingress(&ctx.stack),
    )
    .await?;
    let instance_sg = security_group::converge(
        ctx,
        plan,
        vpc_id,
        security_group::pick(ctx, &groups, &names.instance_sg)?,
        &names.instance_sg,
        "Konnichiwa container instances: dynamic host ports from the load balancer only",
        instance_ingress(&lb_sg),
    )
    .await?;
    Ok((lb_sg, instance_sg))
}

/// The VPC, one public subnet per availability zone (AWS names the zones), the gateway, the
/// route table and the two security groups.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let n = Names::of(stack);
    vec![
        (VPC, n.vpc.clone()),
        (SUBNET, n.subnet("<availability-zone>")),
        (INTERNET_GATEWAY, n.igw.clone()),
        (ROUTE_TABLE, n.route_table.clone()),
        (SECURITY_GROUP, n.lb_sg.clone()),
        (SECURITY_GROUP, n.instance_sg.clone()),
    ]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "network",
    nouns: &[VPC, SUBNET, INTERNET_GATEWAY, ROUTE_TABLE, SECURITY_GROUP],
    permissions: PERMISSIONS,
    arn_types: &["ec2:vpc", "ec2:subnet", "ec2:internet-gateway", "ec2:route-table", "ec2:security-group"],
    deleted_after: &["ecs-service", "load-balancer", "capacity", "loadtest"],
    derived_names,
    name_limits: &[],
    terraform_types: &[
        "aws_vpc",
        "aws_subnet",
        "aws_internet_gateway",
        "aws_route_table",
        "aws_route_table_association",
        "aws_route",
        "aws_security_group",
        "aws_vpc_security_group_ingress_rule",
        "aws_vpc_security_group_egress_rule",
    ],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Network>()),
};

/// The network needs nothing of other kinds.
pub struct Network;

impl Reconciles for Network {
    type Needs = ();
    type Seen = ();
    type Gives = NetworkOutputs;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, NetworkOutputs> {
        Box::pin(async move { reconcile(ctx, plan).await })
    }
}

/// Deletes everything of the network that carries the stack's tag — duplicates too — in
/// reverse dependency order, recording each deletion in `plan` (Plan mode only lists them).
/// Safe to repeat: what is already gone is skipped.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let names = Names::of(&ctx.stack);
    let vpcs = vpc::owned_by_tag(ctx).await?;
    // In each VPC the security groups at once with the route table and then the subnets; the
    // gateway meanwhile; the VPCs last. Rows in this order whatever finished first.
    let in_vpcs = futures_util::future::try_join_all(vpcs.iter().map(|v| async {
        let (mut groups, mut routes) = (Plan::default(), Plan::default());
        tokio::try_join!(security_group::teardown_in(ctx, &mut groups, &v.id), async {
            route_table::teardown_in(ctx, &mut routes, &v.id).await?;
            subnet::teardown_in(ctx, &mut routes, &v.id).await
        })?;
        groups.extend(routes);
        Ok::<_, Error>(groups)
    }));
    let mut p_gateway = Plan::default();
    let (in_vpcs, ()) = tokio::try_join!(in_vpcs, gateway::teardown(ctx, &mut p_gateway, &names))?;
    in_vpcs.into_iter().for_each(|p| plan.extend(p));
    plan.extend(p_gateway);
    for v in &vpcs {
        if ctx.applying() {
            vpc::delete(ctx, v).await?;
            ctx.progress(format!("deleted VPC {} ({})", names.vpc, v.id));
        }
        plan.push(VPC, &names.vpc, Some(v.id.clone()), crate::reconcile::Change::delete());
    }
    Ok(())
}

/// Everything in the account that still carries this stack's tag, for the sweep after `down`.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let ec2 = &ctx.clients.ec2;
    let owned = || owned_filter(&ctx.stack);
    let name = &ctx.stack.name;
    // Five listings at once.
    let (vpcs, subnets, igws, rts, sgs) = tokio::join!(
        ec2.describe_vpcs().filters(owned()).send(),
        ec2.describe_subnets().filters(owned()).send(),
        ec2.describe_internet_gateways().filters(owned()).send(),
        ec2.describe_route_tables().filters(owned()).send(),
        ec2.describe_security_groups().filters(owned()).send(),
    );
    let mut left = Vec::new();
    let vpcs = vpcs.ctx("sweep VPCs of", name)?;
    left.extend(vpcs.vpcs().iter().map(|v| format!("VPC {}", v.vpc_id().unwrap_or_default())));
    let subnets = subnets.ctx("sweep subnets of", name)?;
    left.extend(subnets.subnets().iter().map(|s| format!("subnet {}", s.subnet_id().unwrap_or_default())));
    let igws = igws.ctx("sweep internet gateways of", name)?;
    left.extend(
        igws.internet_gateways()
            .iter()
            .map(|g| format!("internet gateway {}", g.internet_gateway_id().unwrap_or_default())),
    );
    let rts = rts.ctx("sweep route tables of", name)?;
    left.extend(rts.route_tables().iter().map(|r| format!("route table {}", r.route_table_id().unwrap_or_default())));
    let sgs = sgs.ctx("sweep security groups of", name)?;
    left.extend(sgs.security_groups().iter().map(|g| format!("security group {}", g.group_id().unwrap_or_default())));
    Ok(left)
}
