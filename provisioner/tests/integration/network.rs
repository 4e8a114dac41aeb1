//! The network against moto: create, no-op (zero mutating calls), drift shown and repaired,
//! down and a repeated down, a foreign resource refused, an interrupted up adopted.

use crate::common;

use crate::common::{Account, mutations, text};
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, IpPermission, IpRange, ResourceType, Tag, TagSpecification};
use serde_json::Value;

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn owned() -> Filter {
    filter("tag:konnichiwa:stack", "konnichiwa")
}

fn has_tag(tags: &[Tag], key: &str, value: &str) -> bool {
    tags.iter().any(|t| t.key() == Some(key) && t.value() == Some(value))
}

#[tokio::test]
async fn up_creates_the_network_tagged_and_a_second_up_changes_nothing() {
    let account = Account::new();
    let first = account.json(&["up", "--yes"], 0);
    assert_eq!(first["applied"], true);
    let network_kinds = ["vpc", "subnet", "internet-gateway", "route-table", "security-group"];
    let created: Vec<&str> = first["plan"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["action"] == "create" && network_kinds.contains(&r["kind"].as_str().unwrap_or_default()))
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(created.len(), 7, "{created:?}");
    // What the apply did, beside what was planned: here the same changes, and only changes.
    let applied = &first["applied_changes"];
    assert_eq!(applied["summary"]["create"], first["plan"]["summary"]["create"], "{applied:#}");
    let rows = applied["resources"].as_array().expect("applied resources");
    assert!(!rows.is_empty() && rows.iter().all(|r| r["action"] != "no-op"), "{applied:#}");
    // Tags are given in the create calls: no separate CreateTags after a create.
    assert!(!mutations(&first).iter().any(|m| m == "EC2:CreateTags"), "{:?}", mutations(&first));

    let ec2 = account.clients().await.ec2;
    let vpcs = ec2.describe_vpcs().filters(owned()).send().await.expect("vpcs");
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    let vpc_id = vpc.vpc_id().expect("id");
    assert_eq!(vpc.cidr_block(), Some("10.40.0.0/16"));
    assert!(has_tag(vpc.tags(), "Name", "konnichiwa-vpc") && has_tag(vpc.tags(), "project", "konnichiwa"));
    for attr in [
        aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport,
        aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames,
    ] {
        let a = ec2.describe_vpc_attribute().vpc_id(vpc_id).attribute(attr.clone()).send().await.expect("attr");
        let on = a.enable_dns_support().or(a.enable_dns_hostnames()).and_then(|v| v.value());
        assert_eq!(on, Some(true), "{attr:?}");
    }
    let subnets = ec2.describe_subnets().filters(owned()).send().await.expect("subnets");
    let mut cidrs: Vec<_> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (s.cidr_block().unwrap_or_default(), s.availability_zone().unwrap_or_default(), s.map_public_ip_on_launch())
        })
        .collect();
    cidrs.sort();
    assert_eq!(
        cidrs,
        [("10.40.0.0/20", "ap-northeast-1a", Some(true)), ("10.40.16.0/20", "ap-northeast-1c", Some(true))]
    );
    let igws = ec2.describe_internet_gateways().filters(owned()).send().await.expect("igws");
    let igw = &igws.internet_gateways()[0];
    assert_eq!(igw.attachments()[0].vpc_id(), Some(vpc_id));
    let rts = ec2.describe_route_tables().filters(owned()).send().await.expect("rts");
    let rt = &rts.route_tables()[0];
    assert!(
        rt.routes()
            .iter()
            .any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id() == igw.internet_gateway_id())
    );
    assert_eq!(rt.associations().iter().filter(|a| a.subnet_id().is_some()).count(), 2);
    let sgs = ec2.describe_security_groups().filters(owned()).send().await.expect("sgs");
    let alb = sgs.security_groups().iter().find(|g| g.group_name() == Some("konnichiwa-alb")).expect("alb sg");
    let inst =
        sgs.security_groups().iter().find(|g| g.group_name() == Some("konnichiwa-instances")).expect("instances sg");
    assert_eq!(alb.ip_permissions().len(), 1);
    assert_eq!(alb.ip_permissions()[0].from_port(), Some(80));
    assert_eq!(alb.ip_permissions()[0].ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
    let p = &inst.ip_permissions()[0];
    assert_eq!((p.from_port(), p.to_port()), (Some(32768), Some(65535)));
    assert!(p.ip_ranges().is_empty(), "instances accept no CIDR sources");
    assert_eq!(p.user_id_group_pairs()[0].group_id(), alb.group_id());

    let second = account.json(&["up", "--yes"], 0);
    assert_eq!(second["applied"], false);
    assert!(second["applied_changes"].is_null(), "nothing was applied: {:#}", second["applied_changes"]);
    assert_eq!(second["api_calls"]["mutating"], 0, "{:#}", second["api_calls"]);
    let network_reads: u64 = [
        "DescribeVpcs",
        "DescribeVpcAttribute",
        "DescribeAvailabilityZones",
        "DescribeSubnets",
        "DescribeInternetGateways",
        "DescribeRouteTables",
        "DescribeSecurityGroups",
    ]
    .iter()
    .map(|op| second["api_calls"]["by_operation"][format!("EC2:{op}")].as_u64().unwrap_or(0))
    .sum();
    assert!(network_reads <= 8, "a no-op up made {network_reads} network reads: {:#}", second["api_calls"]);
    assert_eq!(account.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
}

#[tokio::test]
async fn drift_shows_in_plan_and_up_repairs_it() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let ec2 = account.clients().await.ec2;
    let vpc_id =
        ec2.describe_vpcs().filters(owned()).send().await.expect("vpc").vpcs()[0].vpc_id().expect("id").to_owned();
    let rt_id = ec2.describe_route_tables().filters(owned()).send().await.expect("rt").route_tables()[0]
        .route_table_id()
        .expect("id")
        .to_owned();
    let sgs = ec2.describe_security_groups().filters(owned()).send().await.expect("sgs");
    let alb_id = sgs
        .security_groups()
        .iter()
        .find(|g| g.group_name() == Some("konnichiwa-alb"))
        .and_then(|g| g.group_id())
        .expect("alb")
        .to_owned();
    let subnet_id = ec2.describe_subnets().filters(owned()).send().await.expect("subnets").subnets()[0]
        .subnet_id()
        .expect("id")
        .to_owned();

    // Behind the provisioner's back:
    ec2.delete_route().route_table_id(&rt_id).destination_cidr_block("0.0.0.0/0").send().await.expect("delete route");
    ec2.authorize_security_group_ingress()
        .group_id(&alb_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .expect("add ssh");
    ec2.authorize_security_group_ingress()
        .group_id(&alb_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(23)
                .to_port(23)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .expect("add telnet");
    ec2.modify_vpc_attribute()
        .vpc_id(&vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .expect("dns off");
    ec2.modify_subnet_attribute()
        .subnet_id(&subnet_id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .expect("private");
    ec2.create_tags()
        .resources(&vpc_id)
        .tags(Tag::builder().key("project").value("someone-else").build())
        .send()
        .await
        .expect("retag");

    let plan = account.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let shown = text(&plan);
    for expected in [
        "route 0.0.0.0/0: (none) -> igw-",
        "ingress: tcp/22 from 0.0.0.0/0 -> (none)",
        "dns_hostnames: false -> true",
        "map_public_ip_on_launch: false -> true",
        "tags.project: someone-else -> konnichiwa",
        "Plan: 0 to create, 4 to update",
    ] {
        assert!(shown.contains(expected), "plan lacks {expected:?}:\n{shown}");
    }

    let repaired = account.json(&["up", "--yes"], 0);
    assert_eq!(repaired["applied"], true);
    let m = mutations(&repaired);
    for op in [
        "EC2:CreateRoute",
        "EC2:RevokeSecurityGroupIngress",
        "EC2:ModifyVpcAttribute",
        "EC2:ModifySubnetAttribute",
        "EC2:CreateTags",
    ] {
        assert!(m.iter().any(|x| x == op), "{op} missing from {m:?}");
    }
    // One rule a revoke: in a VPC, EC2 revokes nothing of a request one of whose rules does not
    // match, and its "not found" would then read as done.
    assert_eq!(m.iter().filter(|x| *x == "EC2:RevokeSecurityGroupIngress").count(), 2, "{m:?}");
    assert!(!m.iter().any(|x| x.contains("Create") && (x.contains("Vpc") || x.contains("Subnet") || x.contains("SecurityGroup"))), "nothing recreated: {m:?}");
    assert_eq!(account.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0), "clean after repair");
}

#[tokio::test]
async fn down_removes_everything_and_a_second_down_is_a_no_op() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let down = account.json(&["down", "--yes"], 0);
    assert_eq!(down["applied"], true);
    assert_eq!(down["leftovers"], serde_json::json!([]));
    let order = mutations(&down);
    let pos = |op: &str| order.iter().position(|m| m == op).unwrap_or_else(|| panic!("{op} not in {order:?}"));
    assert!(pos("EC2:DeleteSecurityGroup") < pos("EC2:DeleteSubnet"));
    assert!(pos("EC2:DeleteRouteTable") < pos("EC2:DeleteSubnet"));
    assert!(pos("EC2:DetachInternetGateway") < pos("EC2:DeleteVpc"));
    // The VPC is the network's last call (IAM, deleted at the same time, may finish later).
    assert_eq!(order.iter().rfind(|m| m.starts_with("EC2:")).map(String::as_str), Some("EC2:DeleteVpc"), "{order:?}");

    let ec2 = account.clients().await.ec2;
    assert!(ec2.describe_vpcs().filters(owned()).send().await.expect("vpcs").vpcs().is_empty());
    assert!(ec2.describe_subnets().filters(owned()).send().await.expect("subnets").subnets().is_empty());
    assert!(ec2.describe_security_groups().filters(owned()).send().await.expect("sgs").security_groups().is_empty());
    assert!(
        ec2.describe_internet_gateways().filters(owned()).send().await.expect("igws").internet_gateways().is_empty()
    );

    let again = account.json(&["down", "--yes"], 0);
    assert_eq!(again["applied"], false);
    assert_eq!(again["api_calls"]["mutating"], 0);
}

#[tokio::test]
async fn a_vpc_with_our_name_but_not_our_tag_is_refused_and_left_intact() {
    let account = Account::new();
    let ec2 = account.clients().await.ec2;
    let theirs = ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(Tag::builder().key("Name").value("konnichiwa-vpc").build())
                .build(),
        )
        .send()
        .await
        .expect("foreign vpc");
    let theirs_id = theirs.vpc().and_then(|v| v.vpc_id()).expect("id").to_owned();

    for args in [&["plan"][..], &["up", "--yes"][..]] {
        let out = account.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let shown = text(&out);
        assert!(shown.contains(&theirs_id) && shown.contains("left untouched"), "{shown}");
    }
    let vpcs = ec2.describe_vpcs().filters(filter("tag:Name", "konnichiwa-vpc")).send().await.expect("vpcs");
    assert_eq!(vpcs.vpcs().len(), 1, "nothing was created next to it");
    let v = &vpcs.vpcs()[0];
    assert_eq!(v.cidr_block(), Some("10.99.0.0/16"));
    assert!(!has_tag(v.tags(), "konnichiwa:stack", "konnichiwa"), "not adopted");
}

#[tokio::test]
async fn an_up_interrupted_after_the_vpc_is_adopted_not_duplicated() {
    let account = Account::new();
    // What a run killed right after CreateVpc leaves: a VPC tagged in its create call, nothing else.
    let ec2 = account.clients().await.ec2;
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Vpc);
    for (k, v) in [("Name", "konnichiwa-vpc"), ("konnichiwa:stack", "konnichiwa"), ("project", "konnichiwa")] {
        spec = spec.tags(Tag::builder().key(k).value(v).build());
    }
    let left = ec2.create_vpc().cidr_block("10.40.0.0/16").tag_specifications(spec.build()).send().await.expect("vpc");
    let left_id = left.vpc().and_then(|v| v.vpc_id()).expect("id").to_owned();

    let up = account.json(&["up", "--yes"], 0);
    assert_eq!(up["outputs"]["network"]["vpc_id"], left_id.as_str());
    let m = mutations(&up);
    assert!(!m.iter().any(|x| x == "EC2:CreateVpc"), "{m:?}");
    let vpcs = ec2.describe_vpcs().filters(owned()).send().await.expect("vpcs");
    assert_eq!(vpcs.vpcs().len(), 1);
    assert_eq!(account.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
}

#[tokio::test]
async fn up_without_yes_off_a_terminal_changes_nothing() {
    let account = Account::new();
    let out = account.run(&["up"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("pass --yes"), "{}", text(&out));
    let ec2 = account.clients().await.ec2;
    assert!(ec2.describe_vpcs().filters(owned()).send().await.expect("vpcs").vpcs().is_empty());
}

#[tokio::test]
async fn plan_json_has_the_documented_shape() {
    let account = Account::new();
    let plan = account.json(&["plan"], 0);
    let mut keys: Vec<&str> = plan.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["api_calls", "changes_pending", "command", "cost", "notes", "region", "resources", "stack", "summary"]
    );
    assert_eq!(plan["command"], "plan");
    assert_eq!(plan["notes"], serde_json::json!([]), "a new stack has nothing to note");
    assert_eq!(plan["changes_pending"], true);
    assert_eq!(plan["api_calls"]["mutating"], 0, "plan never mutates");
    let first = &plan["resources"][0];
    assert_eq!(first["kind"], "vpc");
    assert_eq!(first["action"], "create");
    assert_eq!(first["fields"][0], serde_json::json!({"field": "cidr", "old": null, "new": "10.40.0.0/16"}));
    let mut summary_keys: Vec<&str> =
        plan["summary"].as_object().expect("summary").keys().map(String::as_str).collect();
    summary_keys.sort();
    assert_eq!(summary_keys, ["create", "delete", "replace", "unchanged", "update"]);
}

#[test]
fn validate_is_offline_and_reports_every_problem() {
    let account = Account::new();
    account.edit_stack(|t| t.replace("cidr: 10.40.0.0/16", "cidr: 10.40.0.0/33").replace("memory: 256", "memory: 8"));
    let out = std::process::Command::new(common::BIN)
        .args(["--stack"])
        .arg(account.stack_file())
        .args(["validate", "--json"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // nothing listens: validate must not call AWS
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let paths: Vec<&str> =
        v["problems"].as_array().expect("problems").iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(paths, ["network.cidr", "service.memory"]);
    assert!(v["problems"][0]["line"].as_u64().is_some_and(|l| l > 1));
}

#[test]
fn an_unknown_region_on_the_command_line_is_refused_before_any_call() {
    let account = Account::new();
    let out = std::process::Command::new(common::BIN)
        .args(["--stack"])
        .arg(account.stack_file())
        .args(["--region", "ap-tokyo-1", "plan"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // nothing listens: refused before any call
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let said = common::text(&out);
    assert!(said.contains("\"ap-tokyo-1\" is not an AWS region") && said.contains("ap-northeast-1"), "{said}");
}

#[test]
fn schema_prints_the_stack_json_schema() {
    let out = std::process::Command::new(common::BIN).arg("schema").output().expect("run");
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("json schema");
    assert!(v["properties"]["network"].is_object() && v["properties"]["service"].is_object(), "{v}");
}
