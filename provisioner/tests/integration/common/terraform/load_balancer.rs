//! The state's load balancing, read from Elastic Load Balancing: the stack's load balancer (with
//! its attributes), its target group and the listener that forwards to it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::state::{Built, Reading, tag_map};

pub async fn read(r: &Reading) -> Vec<Built> {
    let lb = load_balancer(r).await;
    let tg = target_group(r).await;
    let lb_arn = lb.attributes["arn"].as_str().expect("the load balancer's ARN").to_owned();
    vec![lb, tg, listener(r, &lb_arn).await]
}

async fn tags(r: &Reading, arn: &str) -> Value {
    let got = r.c.elb.describe_tags().resource_arns(arn).send().await.expect("elbv2: describe_tags");
    let tags = got.tag_descriptions().iter().flat_map(|d| d.tags());
    tag_map(tags.map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

/// The part of an ELB ARN after `loadbalancer/` or the account (`app/NAME/ID`, `targetgroup/NAME/ID`).
fn arn_suffix(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    resource.strip_prefix("loadbalancer/").unwrap_or(resource).to_owned()
}

async fn load_balancer(r: &Reading) -> Built {
    let name = format!("{}-alb", r.stack);
    let found = r.c.elb.describe_load_balancers().names(&name).send().await.expect("describe_load_balancers");
    let lb = found.load_balancers().first().expect("the load balancer");
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let got = r.c.elb.describe_load_balancer_attributes().load_balancer_arn(arn).send().await.expect("attributes");
    let a: BTreeMap<&str, &str> =
        got.attributes().iter().filter_map(|x| Some((x.key()?, x.value().unwrap_or_default()))).collect();
    let flag = |key: &str| a.get(key).map(|v| *v == "true");
    let subnets: Vec<&str> = lb.availability_zones().iter().filter_map(|z| z.subnet_id()).collect();
    Built::new(
        "aws_lb",
        "main",
        json!({
            "access_logs": [{
                "bucket": a.get("access_logs.s3.bucket").copied().unwrap_or_default(),
                "enabled": flag("access_logs.s3.enabled").unwrap_or(false),
                "prefix": a.get("access_logs.s3.prefix").copied().unwrap_or_default(),
            }],
            "arn": arn,
            "arn_suffix": arn_suffix(arn),
            "desync_mitigation_mode": a.get("routing.http.desync_mitigation_mode"),
            "dns_name": lb.dns_name(),
            "drop_invalid_header_fields": flag("routing.http.drop_invalid_header_fields.enabled"),
            "enable_cross_zone_load_balancing": flag("load_balancing.cross_zone.enabled"),
            "enable_deletion_protection": flag("deletion_protection.enabled"),
            "enable_http2": flag("routing.http2.enabled"),
            "id": arn,
            "idle_timeout": a.get("idle_timeout.timeout_seconds").and_then(|v| v.parse::<u64>().ok()),
            "internal": lb.scheme().map(|s| s.as_str() == "internal"),
            "ip_address_type": lb.ip_address_type().map(|t| t.as_str()),
            "load_balancer_type": lb.r#type().map(|t| t.as_str()),
            "name": lb.load_balancer_name(),
            "name_prefix": "",
            "security_groups": lb.security_groups(),
            "subnet_mapping": subnets.iter().map(|s| json!({
                "allocation_id": "", "ipv6_address": "", "outpost_id": "", "private_ipv4_address": "", "subnet_id": s,
            })).collect::<Vec<_>>(),
            "subnets": subnets,
            "tags_all": tags(r, arn).await,
            "vpc_id": lb.vpc_id(),
            "zone_id": lb.canonical_hosted_zone_id(),
        }),
    )
}

async fn target_group(r: &Reading) -> Built {
    let name = format!("{}-tg", r.stack);
    let found = r.c.elb.describe_target_groups().names(&name).send().await.expect("describe_target_groups");
    let tg = found.target_groups().first().expect("the target group");
    let arn = tg.target_group_arn().unwrap_or_default();
    let got = r.c.elb.describe_target_group_attributes().target_group_arn(arn).send().await.expect("attributes");
    let a: BTreeMap<&str, &str> =
        got.attributes().iter().filter_map(|x| Some((x.key()?, x.value().unwrap_or_default()))).collect();
    let health = json!({
        "enabled": tg.health_check_enabled(),
        "healthy_threshold": tg.healthy_threshold_count(),
        "interval": tg.health_check_interval_seconds(),
        "matcher": tg.matcher().and_then(|m| m.http_code()),
        "path": tg.health_check_path(),
        "port": tg.health_check_port(),
        "protocol": tg.health_check_protocol().map(|p| p.as_str()),
        "timeout": tg.health_check_timeout_seconds(),
        "unhealthy_threshold": tg.unhealthy_threshold_count(),
    });
    let stickiness = json!({
        "cookie_duration": a.get("stickiness.lb_cookie.duration_seconds").and_then(|v| v.parse::<u64>().ok()),
        "cookie_name": a.get("stickiness.app_cookie.cookie_name").copied().unwrap_or_default(),
        "enabled": a.get("stickiness.enabled").map(|v| *v == "true"),
        "type": a.get("stickiness.type"),
    });
    Built::new(
        "aws_lb_target_group",
        "app",
        json!({
            "arn": arn,
            "arn_suffix": arn_suffix(arn),
            "deregistration_delay": a.get("deregistration_delay.timeout_seconds"),
            "health_check": [health],
            "id": arn,
            "ip_address_type": tg.ip_address_type().map(|t| t.as_str()),
            "load_balancer_arns": tg.load_balancer_arns(),
            "load_balancing_algorithm_type": a.get("load_balancing.algorithm.type"),
            "load_balancing_cross_zone_enabled": a.get("load_balancing.cross_zone.enabled"),
            "name": tg.target_group_name(),
            "name_prefix": "",
            "port": tg.port(),
            "protocol": tg.protocol().map(|p| p.as_str()),
            "protocol_version": tg.protocol_version(),
            "slow_start": a.get("slow_start.duration_seconds").and_then(|v| v.parse::<u64>().ok()),
            "stickiness": [stickiness],
            "tags_all": tags(r, arn).await,
            "target_type": tg.target_type().map(|t| t.as_str()),
            "vpc_id": tg.vpc_id(),
        }),
    )
}

/// The load balancer's listener (the stack's HTTP one).
async fn listener(r: &Reading, lb_arn: &str) -> Built {
    let found = r.c.elb.describe_listeners().load_balancer_arn(lb_arn).send().await.expect("describe_listeners");
    let l = found.listeners().first().expect("the listener");
    let arn = l.listener_arn().unwrap_or_default();
    let actions: Vec<Value> = l
        .default_actions()
        .iter()
        .map(|a| {
            json!({
                "authenticate_cognito": [],
                "authenticate_oidc": [],
                "fixed_response": [],
                "forward": [],
                "order": a.order(),
                "redirect": [],
                "target_group_arn": a.target_group_arn().unwrap_or_default(),
                "type": a.r#type().map(|t| t.as_str()),
            })
        })
        .collect();
    Built::new(
        "aws_lb_listener",
        "http",
        json!({
            "arn": arn,
            "certificate_arn": l.certificates().first().and_then(|c| c.certificate_arn()),
            "default_action": actions,
            "id": arn,
            "load_balancer_arn": lb_arn,
            "mutual_authentication": [],
            "port": l.port(),
            "protocol": l.protocol().map(|p| p.as_str()),
            "ssl_policy": l.ssl_policy().unwrap_or_default(),
            "tags_all": tags(r, arn).await,
        }),
    )
}
