//! The state's network, read from EC2: the VPC the stack's load balancer is in, its subnets (by
//! zone: `public[0]`, `public[1]`) and their route table associations, the internet gateway, the
//! public route table, the load balancer's and the instances' security groups, and the
//! `aws_availability_zones` data source.

use aws_sdk_ec2::types::{Filter, IpPermission, Subnet, VpcAttributeName};
use serde_json::{Value, json};

use super::state::{Built, Reading, tag_map};

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Value {
    tag_map(tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

pub async fn read(r: &Reading) -> Vec<Built> {
    let lb_name = format!("{}-alb", r.stack);
    let lbs = r.c.elb.describe_load_balancers().names(&lb_name).send().await.expect("the stack's load balancer");
    let vpc_id = lbs.load_balancers().first().and_then(|l| l.vpc_id()).expect("its VPC").to_owned();
    let mut built = vec![vpc(r, &vpc_id).await, availability_zones(r).await];
    let subnets = r.c.ec2.describe_subnets().filters(filter("vpc-id", &vpc_id)).send().await.expect("subnets");
    let mut subnets: Vec<Subnet> = subnets.subnets().to_vec();
    subnets.sort_by_key(|s| s.availability_zone().unwrap_or_default().to_owned());
    built.extend(subnets.iter().enumerate().map(|(i, s)| subnet(r, i, s)));
    built.push(internet_gateway(r, &vpc_id).await);
    built.extend(route_table(r, &vpc_id, &subnets).await);
    for (name, group) in [("alb", format!("{}-alb", r.stack)), ("instances", format!("{}-instances", r.stack))] {
        built.push(security_group(r, &vpc_id, name, &group).await);
    }
    built
}

async fn vpc(r: &Reading, id: &str) -> Built {
    let ec2 = &r.c.ec2;
    let vpcs = ec2.describe_vpcs().vpc_ids(id).send().await.expect("describe_vpcs");
    let v = vpcs.vpcs().first().expect("the VPC");
    let attribute = |a: VpcAttributeName| async move {
        let got = ec2.describe_vpc_attribute().vpc_id(id).attribute(a.clone()).send().await.expect("vpc attribute");
        let value = match a {
            VpcAttributeName::EnableDnsHostnames => got.enable_dns_hostnames(),
            _ => got.enable_dns_support(),
        };
        value.and_then(|v| v.value()).unwrap_or(false)
    };
    let main = ec2.describe_route_tables().filters(filter("vpc-id", id)).filters(filter("association.main", "true"));
    let main = main.send().await.expect("main route table");
    let main = main.route_tables().first().and_then(|t| t.route_table_id()).map(str::to_owned);
    let default_sg =
        ec2.describe_security_groups().filters(filter("vpc-id", id)).filters(filter("group-name", "default"));
    let default_sg = default_sg.send().await.expect("default security group");
    let acl = ec2.describe_network_acls().filters(filter("vpc-id", id)).filters(filter("default", "true"));
    let acl = acl.send().await.expect("default network ACL");
    Built::new(
        "aws_vpc",
        "main",
        json!({
            "arn": r.arn("ec2", &format!("vpc/{id}")),
            "assign_generated_ipv6_cidr_block": !v.ipv6_cidr_block_association_set().is_empty(),
            "cidr_block": v.cidr_block(),
            "default_network_acl_id": acl.network_acls().first().and_then(|a| a.network_acl_id()),
            "default_route_table_id": main,
            "default_security_group_id": default_sg.security_groups().first().and_then(|g| g.group_id()),
            "dhcp_options_id": v.dhcp_options_id(),
            "enable_dns_hostnames": attribute(VpcAttributeName::EnableDnsHostnames).await,
            "enable_dns_support": attribute(VpcAttributeName::EnableDnsSupport).await,
            "id": id,
            "instance_tenancy": v.instance_tenancy().map(|t| t.as_str()),
            "main_route_table_id": main,
            "owner_id": v.owner_id(),
            "tags_all": ec2_tags(v.tags()),
        }),
    )
}

/// `data.aws_availability_zones.available`: the region's zones that are available.
async fn availability_zones(r: &Reading) -> Built {
    let zones = r.c.ec2.describe_availability_zones().send().await.expect("describe_availability_zones");
    let available =
        || zones.availability_zones().iter().filter(|z| z.state().is_some_and(|s| s.as_str() == "available"));
    Built::new(
        "aws_availability_zones",
        "available",
        json!({
            "id": r.region,
            "names": available().filter_map(|z| z.zone_name()).collect::<Vec<_>>(),
            "state": "available",
            "zone_ids": available().filter_map(|z| z.zone_id()).collect::<Vec<_>>(),
        }),
    )
}

fn subnet(r: &Reading, index: usize, s: &Subnet) -> Built {
    let id = s.subnet_id().unwrap_or_default();
    Built::indexed(
        "aws_subnet",
        "public",
        index,
        json!({
            "arn": s.subnet_arn().map(str::to_owned).unwrap_or_else(|| r.arn("ec2", &format!("subnet/{id}"))),
            "assign_ipv6_address_on_creation": s.assign_ipv6_address_on_creation(),
            "availability_zone": s.availability_zone(),
            "availability_zone_id": s.availability_zone_id(),
            "cidr_block": s.cidr_block(),
            "id": id,
            "map_public_ip_on_launch": s.map_public_ip_on_launch(),
            "owner_id": s.owner_id(),
            "tags_all": ec2_tags(s.tags()),
            "vpc_id": s.vpc_id(),
        }),
    )
}

async fn internet_gateway(r: &Reading, vpc_id: &str) -> Built {
    let igws = r.c.ec2.describe_internet_gateways().filters(filter("attachment.vpc-id", vpc_id)).send().await;
    let igws = igws.expect("describe_internet_gateways");
    let g = igws.internet_gateways().first().expect("the VPC's internet gateway");
    let id = g.internet_gateway_id().unwrap_or_default();
    Built::new(
        "aws_internet_gateway",
        "main",
        json!({
            "arn": r.arn("ec2", &format!("internet-gateway/{id}")),
            "id": id,
            "owner_id": g.owner_id(),
            "tags_all": ec2_tags(g.tags()),
            "vpc_id": vpc_id,
        }),
    )
}

/// The VPC's route table that is not its main one, and its associations with the subnets
/// (indexed as the subnets are).
async fn route_table(r: &Reading, vpc_id: &str, subnets: &[Subnet]) -> Vec<Built> {
    let tables = r.c.ec2.describe_route_tables().filters(filter("vpc-id", vpc_id)).send().await.expect("route tables");
    let is_main = |t: &&aws_sdk_ec2::types::RouteTable| t.associations().iter().any(|a| a.main() == Some(true));
    let t = tables.route_tables().iter().find(|t| !is_main(t)).expect("the public route table");
    let id = t.route_table_id().unwrap_or_default();
    let routes: Vec<Value> = t
        .routes()
        .iter()
        .filter(|route| route.gateway_id() != Some("local"))
        .map(|route| {
            let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
            json!({
                "carrier_gateway_id": text(route.carrier_gateway_id()),
                "cidr_block": text(route.destination_cidr_block()),
                "core_network_arn": text(route.core_network_arn()),
                "destination_prefix_list_id": text(route.destination_prefix_list_id()),
                "egress_only_gateway_id": text(route.egress_only_internet_gateway_id()),
                "gateway_id": text(route.gateway_id()),
                "ipv6_cidr_block": text(route.destination_ipv6_cidr_block()),
                "local_gateway_id": text(route.local_gateway_id()),
                "nat_gateway_id": text(route.nat_gateway_id()),
                "network_interface_id": text(route.network_interface_id()),
                "transit_gateway_id": text(route.transit_gateway_id()),
                "vpc_endpoint_id": "",
                "vpc_peering_connection_id": text(route.vpc_peering_connection_id()),
            })
        })
        .collect();
    let vgws: Vec<&str> = t.propagating_vgws().iter().filter_map(|v| v.gateway_id()).collect();
    let mut built = vec![Built::new(
        "aws_route_table",
        "public",
        json!({
            "arn": r.arn("ec2", &format!("route-table/{id}")),
            "id": id,
            "owner_id": t.owner_id(),
            "propagating_vgws": vgws,
            "route": routes,
            "tags_all": ec2_tags(t.tags()),
            "vpc_id": vpc_id,
        }),
    )];
    for a in t.associations().iter().filter(|a| a.main() != Some(true)) {
        let Some(index) = subnets.iter().position(|s| s.subnet_id() == a.subnet_id()) else { continue };
        let attributes = json!({
            "gateway_id": "",
            "id": a.route_table_association_id(),
            "route_table_id": id,
            "subnet_id": a.subnet_id(),
        });
        built.push(Built::indexed("aws_route_table_association", "public", index, attributes));
    }
    built
}

async fn security_group(r: &Reading, vpc_id: &str, name: &'static str, group: &str) -> Built {
    let found =
        r.c.ec2.describe_security_groups().filters(filter("vpc-id", vpc_id)).filters(filter("group-name", group));
    let found = found.send().await.expect("describe_security_groups");
    let g = found.security_groups().first().unwrap_or_else(|| panic!("security group {group}"));
    let id = g.group_id().unwrap_or_default();
    Built::new(
        "aws_security_group",
        name,
        json!({
            "arn": r.arn("ec2", &format!("security-group/{id}")),
            "description": g.description(),
            "egress": g.ip_permissions_egress().iter().map(|p| rule(id, p)).collect::<Vec<_>>(),
            "id": id,
            "ingress": g.ip_permissions().iter().map(|p| rule(id, p)).collect::<Vec<_>>(),
            "name": g.group_name(),
            "name_prefix": "",
            "owner_id": g.owner_id(),
            "tags_all": ec2_tags(g.tags()),
            "vpc_id": vpc_id,
        }),
    )
}

/// One `ingress` or `egress` block of an `aws_security_group`, from one permission.
fn rule(own_id: &str, p: &IpPermission) -> Value {
    let pairs = p.user_id_group_pairs();
    let descriptions = p
        .ip_ranges()
        .iter()
        .filter_map(|x| x.description())
        .chain(p.ipv6_ranges().iter().filter_map(|x| x.description()))
        .chain(pairs.iter().filter_map(|x| x.description()));
    json!({
        "cidr_blocks": p.ip_ranges().iter().filter_map(|x| x.cidr_ip()).collect::<Vec<_>>(),
        "description": descriptions.into_iter().next().unwrap_or_default(),
        "from_port": p.from_port().unwrap_or(0),
        "ipv6_cidr_blocks": p.ipv6_ranges().iter().filter_map(|x| x.cidr_ipv6()).collect::<Vec<_>>(),
        "prefix_list_ids": p.prefix_list_ids().iter().filter_map(|x| x.prefix_list_id()).collect::<Vec<_>>(),
        "protocol": p.ip_protocol().unwrap_or("-1"),
        "security_groups": pairs.iter().filter_map(|x| x.group_id()).filter(|g| *g != own_id).collect::<Vec<_>>(),
        "self": pairs.iter().any(|x| x.group_id() == Some(own_id)),
        "to_port": p.to_port().unwrap_or(0),
    })
}
