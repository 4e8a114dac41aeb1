//! The Application Load Balancer (internet-facing, public subnets, its security group, idle
//! timeout), the target group (instance targets on dynamic host ports, health check on the
//! service's path, deregistration delay from stack.yaml) and the listeners (HTTP, or HTTPS with a
//! current TLS policy and HTTP -> HTTPS redirect). ALB and target group names are at most 32
//! characters: longer stack names are cut and given a short hash.

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, Certificate, IpAddressType, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, Matcher, ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, Tag,
    TargetGroupAttribute, TargetTypeEnum,
};
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Plan, compare, tags};

/// A current TLS policy (TLS 1.3 and 1.2).
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadBalancerOutputs {
    pub load_balancer_arn: Option<String>,
    pub target_group_arn: Option<String>,
    pub dns_name: Option<String>,
    /// Where the service answers, e.g. `http://konnichiwa-alb-123.ap-northeast-1.elb.amazonaws.com`.
    pub url: Option<String>,
}

/// `stack-suffix`, cut to 32 characters with a stable hash when longer.
pub fn elb_name(stack: &str, suffix: &str) -> String {
    let name = format!("{stack}-{suffix}");
    if name.len() <= 32 {
        return name;
    }
    let hash = &crate::image::digest(name.as_bytes())[7..13];
    let keep = 32 - suffix.len() - hash.len() - 2;
    format!("{}-{hash}-{suffix}", stack[..keep].trim_end_matches('-'))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedLb {
    pub arn: String,
    pub dns_name: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub idle_timeout: Option<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTg {
    pub arn: String,
    pub port: i32,
    pub health_path: String,
    pub deregistration_delay: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// One listener as (port, protocol, what it does) — the "what" normalized to text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenerSpec {
    pub port: i32,
    pub protocol: String,
    pub action: String,
    pub certificate: Option<String>,
}

pub fn desired_listeners(stack: &stack::Stack, target_group: &str) -> Vec<ListenerSpec> {
    let lb = &stack.load_balancer;
    let forward = format!("forward to {target_group}");
    match &lb.https {
        None => {
            vec![ListenerSpec { port: i32::from(lb.port), protocol: "HTTP".into(), action: forward, certificate: None }]
        }
        Some(h) => {
            let http_action = if h.redirect_http { format!("redirect to HTTPS:{}", h.port) } else { forward.clone() };
            let mut v = vec![
                ListenerSpec {
                    port: i32::from(lb.port),
                    protocol: "HTTP".into(),
                    action: http_action,
                    certificate: None,
                },
                ListenerSpec {
                    port: i32::from(h.port),
                    protocol: "HTTPS".into(),
                    action: forward,
                    certificate: Some(h.certificate_arn.clone()),
                },
            ];
            v.sort();
            v
        }
    }
}

pub fn diff_lb(
    stack: &stack::Stack,
    name: &str,
    subnets: &[String],
    sg: Option<&str>,
    observed: Option<&ObservedLb>,
) -> Change {
    let idle = stack.load_balancer.idle_timeout.get().as_secs().to_string();
    let mut want_subnets = subnets.to_vec();
    want_subnets.sort();
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("scheme", None, Some("internet-facing".into())),
            FieldDiff::new("subnets", None, Some(want_subnets.join(","))),
            FieldDiff::new("idle_timeout", None, Some(format!("{idle}s"))),
        ]);
    };
    let mut have_subnets = o.subnets.clone();
    have_subnets.sort();
    let mut fields: Vec<FieldDiff> = [
        compare("subnets", &have_subnets.join(","), &want_subnets.join(",")),
        sg.and_then(|sg| compare("security_groups", &o.security_groups.join(","), &sg.to_owned())),
        compare("idle_timeout", &o.idle_timeout.clone().unwrap_or_else(|| "60".into()), &idle),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.extend(tags::diff(&tags::desired(stack, name), &o.tags));
    Change::update(fields)
}

pub fn diff_tg(stack: &stack::Stack, name: &str, observed: Option<&ObservedTg>) -> Change {
    let delay = stack.load_balancer.deregistration_delay.get().as_secs().to_string();
    let svc = &stack.service;
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("health_check", None, Some(format!("HTTP {} (200)", svc.health_check_path))),
            FieldDiff::new("deregistration_delay", None, Some(format!("{delay}s"))),
        ]);
    };
    if o.port != i32::from(svc.container_port) {
        return Change::replace(
            "a target group's port cannot change",
            vec![FieldDiff::new("port", Some(o.port.to_string()), Some(svc.container_port.to_string()))],
        );
    }
    let mut fields: Vec<FieldDiff> = [
        compare("health_check_path", &o.health_path, &svc.health_check_path),
        compare("deregistration_delay", &o.deregistration_delay.clone().unwrap_or_else(|| "300".into()), &delay),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.extend(tags::diff(&tags::desired(stack, name), &o.tags));
    Change::update(fields)
}

pub fn diff_listeners(want: &[ListenerSpec], have: &[ListenerSpec]) -> Change {
    let mut fields = Vec::new();
    for w in want {
        match have.iter().find(|h| h.port == w.port) {
            None => fields.push(FieldDiff::new(
                format!("listener {}", w.port),
                None,
                Some(format!("{} {}", w.protocol, w.action)),
            )),
            Some(h) if h != w => fields.push(FieldDiff::new(
                format!("listener {}", w.port),
                Some(format!("{} {}", h.protocol, h.action)),
                Some(format!("{} {}", w.protocol, w.action)),
            )),
            Some(_) => {}
        }
    }
    for h in have.iter().filter(|h| !want.iter().any(|w| w.port == h.port)) {
        fields.push(FieldDiff::new(format!("listener {}", h.port), Some(format!("{} {}", h.protocol, h.action)), None));
    }
    if have.is_empty() && !fields.is_empty() { Change::create(fields) } else { Change::update(fields) }
}

fn elb_tags(stack: &stack::Stack, name: &str) -> Vec<Tag> {
    tags::desired(stack, name).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

async fn tags_of(ctx: &Ctx, arn: &str) -> Result<Vec<(String, String)>, Error> {
    let out = ctx.clients.elb.describe_tags().resource_arns(arn).send().await.ctx("describe tags of", arn)?;
    Ok(out
        .tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect())
}

async fn observe_lb(ctx: &Ctx, name: &str) -> Result<Option<ObservedLb>, Error> {
    let elb = &ctx.clients.elb;
    let out = match elb.describe_load_balancers().names(name).send().await.ctx("describe load balancer", name) {
        Ok(o) => o,
        Err(e) if e.code() == Some("LoadBalancerNotFound") => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(lb) = out.load_balancers().first() else { return Ok(None) };
    let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
    let tags = tags_of(ctx, &arn).await?;
    tags::pick_owned(
        "load balancer",
        name,
        &ctx.stack.name,
        vec![(arn.clone(), tags.clone())],
        |l| l.0.clone(),
        |l| l.1.clone(),
    )?;
    let attrs = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(&arn)
        .send()
        .await
        .ctx("describe attributes of", name)?;
    Ok(Some(ObservedLb {
        dns_name: lb.dns_name().unwrap_or_default().to_owned(),
        subnets: lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_owned)).collect(),
        security_groups: lb.security_groups().to_vec(),
        idle_timeout: attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some("idle_timeout.timeout_seconds"))
            .and_then(|a| a.value().map(str::to_owned)),
        arn,
        tags,
    }))
}

async fn observe_tg(ctx: &Ctx, name: &str) -> Result<Option<ObservedTg>, Error> {
    let elb = &ctx.clients.elb;
    let out = match elb.describe_target_groups().names(name).send().await.ctx("describe target group", name) {
        Ok(o) => o,
        Err(e) if e.code() == Some("TargetGroupNotFound") => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(tg) = out.target_groups().first() else { return Ok(None) };
    let arn = tg.target_group_arn().unwrap_or_default().to_owned();
    let tags = tags_of(ctx, &arn).await?;
    tags::pick_owned(
        "target group",
        name,
        &ctx.stack.name,
        vec![(arn.clone(), tags.clone())],
        |t| t.0.clone(),
        |t| t.1.clone(),
    )?;
    let attrs = elb
        .describe_target_group_attributes()
        .target_group_arn(&arn)
        .send()
        .await
        .ctx("describe attributes of", name)?;
    Ok(Some(ObservedTg {
        port: tg.port().unwrap_or(0),
        health_path: tg.health_check_path().unwrap_or("/").to_owned(),
        deregistration_delay: attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value().map(str::to_owned)),
        arn,
        tags,
    }))
}

async fn observe_listeners(
    ctx: &Ctx,
    lb_arn: &str,
    tg_arn: &str,
    tg_name: &str,
) -> Result<Vec<(String, ListenerSpec)>, Error> {
    let out = ctx
        .clients
        .elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .ctx("describe listeners of", lb_arn)?;
    Ok(out
        .listeners()
        .iter()
        .map(|l| {
            let action = l.default_actions().first().map_or_else(String::new, |a| match a.r#type() {
                Some(ActionTypeEnum::Forward) if a.target_group_arn() == Some(tg_arn) => {
                    format!("forward to {tg_name}")
                }
                Some(ActionTypeEnum::Forward) => format!("forward to {}", a.target_group_arn().unwrap_or_default()),
                Some(ActionTypeEnum::Redirect) => {
                    let r = a.redirect_config();
                    format!(
                        "redirect to {}:{}",
                        r.and_then(|r| r.protocol()).unwrap_or("#{protocol}"),
                        r.and_then(|r| r.port()).unwrap_or("#{port}")
                    )
                }
                other => format!("{other:?}"),
            });
            let spec = ListenerSpec {
                port: l.port().unwrap_or(0),
                protocol: l.protocol().map(|p| p.as_str().to_owned()).unwrap_or_default(),
                action,
                certificate: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_owned),
            };
            (l.listener_arn().unwrap_or_default().to_owned(), spec)
        })
        .collect())
}

fn listener_action(spec: &ListenerSpec, tg_arn: &str, stack: &stack::Stack) -> ElbAction {
    match (&stack.load_balancer.https, spec.action.starts_with("redirect")) {
        (Some(h), true) => ElbAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port(h.port.to_string())
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
        _ => ElbAction::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg_arn).build(),
    }
}

pub async fn reconcile(
    ctx: &Ctx,
    plan: &mut Plan,
    vpc: Option<&str>,
    subnets: &[String],
    sg: Option<&str>,
) -> Result<LoadBalancerOutputs, Error> {
    let stack = &ctx.stack;
    let elb = &ctx.clients.elb;
    let (lb_name, tg_name) = (elb_name(&stack.name, "alb"), elb_name(&stack.name, "tg"));

    // Target group first: the listeners forward to it.
    let observed_tg = observe_tg(ctx, &tg_name).await?;
    let change = diff_tg(stack, &tg_name, observed_tg.as_ref());
    let mut tg_arn = observed_tg.as_ref().map(|t| t.arn.clone());
    if ctx.applying() && !change.is_no_op() {
        if change.action == Action::Replace {
            return Err(Error::Refused(format!(
                "target group {tg_name} must be replaced ({}): run `down`, then `up`",
                change.reason.clone().unwrap_or_default()
            )));
        }
        let svc = &stack.service;
        if observed_tg.is_none() {
            let out = elb
                .create_target_group()
                .name(&tg_name)
                .protocol(ProtocolEnum::Http)
                .port(i32::from(svc.container_port))
                .vpc_id(vpc.unwrap_or_default())
                .target_type(TargetTypeEnum::Instance)
                .health_check_path(&svc.health_check_path)
                .health_check_interval_seconds(10)
                .health_check_timeout_seconds(5)
                .healthy_threshold_count(2)
                .unhealthy_threshold_count(3)
                .matcher(Matcher::builder().http_code("200").build())
                .set_tags(Some(elb_tags(stack, &tg_name)))
                .send()
                .await
                .ctx("create target group", &tg_name)?;
            tg_arn = out.target_groups().first().and_then(|t| t.target_group_arn()).map(str::to_owned);
        } else if change.fields.iter().any(|f| f.field == "health_check_path") {
            elb.modify_target_group()
                .target_group_arn(tg_arn.clone().unwrap_or_default())
                .health_check_path(&svc.health_check_path)
                .send()
                .await
                .ctx("modify target group", &tg_name)?;
        }
        if observed_tg.is_none() || change.fields.iter().any(|f| f.field == "deregistration_delay") {
            elb.modify_target_group_attributes()
                .target_group_arn(tg_arn.clone().unwrap_or_default())
                .attributes(
                    TargetGroupAttribute::builder()
                        .key("deregistration_delay.timeout_seconds")
                        .value(stack.load_balancer.deregistration_delay.get().as_secs().to_string())
                        .build(),
                )
                .send()
                .await
                .ctx("set the deregistration delay of", &tg_name)?;
        }
        if observed_tg.is_some() && change.fields.iter().any(|f| f.field.starts_with("tags.")) {
            elb.add_tags()
                .resource_arns(tg_arn.clone().unwrap_or_default())
                .set_tags(Some(elb_tags(stack, &tg_name)))
                .send()
                .await
                .ctx("tag", &tg_name)?;
        }
        ctx.progress(format!("target group {tg_name} ready"));
    }
    plan.push("target-group", &tg_name, tg_arn.clone(), change);

    // Load balancer
    let observed_lb = observe_lb(ctx, &lb_name).await?;
    let change = diff_lb(stack, &lb_name, subnets, sg, observed_lb.as_ref());
    let mut lb_arn = observed_lb.as_ref().map(|l| l.arn.clone());
    let mut dns = observed_lb.as_ref().map(|l| l.dns_name.clone());
    if ctx.applying() && !change.is_no_op() {
        if observed_lb.is_none() {
            let out = elb
                .create_load_balancer()
                .name(&lb_name)
                .r#type(LoadBalancerTypeEnum::Application)
                .scheme(LoadBalancerSchemeEnum::InternetFacing)
                .ip_address_type(IpAddressType::Ipv4)
                .set_subnets(Some(subnets.to_vec()))
                .security_groups(sg.unwrap_or_default())
                .set_tags(Some(elb_tags(stack, &lb_name)))
                .send()
                .await
                .ctx("create load balancer", &lb_name)?;
            let lb = out.load_balancers().first();
            lb_arn = lb.and_then(|l| l.load_balancer_arn()).map(str::to_owned);
            dns = lb.and_then(|l| l.dns_name()).map(str::to_owned);
        } else {
            let arn = lb_arn.clone().unwrap_or_default();
            if change.fields.iter().any(|f| f.field == "subnets") {
                elb.set_subnets()
                    .load_balancer_arn(&arn)
                    .set_subnets(Some(subnets.to_vec()))
                    .send()
                    .await
                    .ctx("set subnets of", &lb_name)?;
            }
            if change.fields.iter().any(|f| f.field == "security_groups") {
                elb.set_security_groups()
                    .load_balancer_arn(&arn)
                    .security_groups(sg.unwrap_or_default())
                    .send()
                    .await
                    .ctx("set security groups of", &lb_name)?;
            }
            if change.fields.iter().any(|f| f.field.starts_with("tags.")) {
                elb.add_tags()
                    .resource_arns(&arn)
                    .set_tags(Some(elb_tags(stack, &lb_name)))
                    .send()
                    .await
                    .ctx("tag", &lb_name)?;
            }
        }
        if observed_lb.is_none() || change.fields.iter().any(|f| f.field == "idle_timeout") {
            elb.modify_load_balancer_attributes()
                .load_balancer_arn(lb_arn.clone().unwrap_or_default())
                .attributes(
                    LoadBalancerAttribute::builder()
                        .key("idle_timeout.timeout_seconds")
                        .value(stack.load_balancer.idle_timeout.get().as_secs().to_string())
                        .build(),
                )
                .send()
                .await
                .ctx("set the idle timeout of", &lb_name)?;
        }
        ctx.progress(format!("load balancer {lb_name} ready"));
    }
    plan.push("load-balancer", &lb_name, lb_arn.clone(), change);

    // Listeners
    let want = desired_listeners(stack, &tg_name);
    let have = match (&lb_arn, &tg_arn) {
        (Some(l), Some(t)) if observed_lb.is_some() => observe_listeners(ctx, l, t, &tg_name).await?,
        _ => Vec::new(),
    };
    let have_specs: Vec<ListenerSpec> = have.iter().map(|(_, s)| s.clone()).collect();
    let change = diff_listeners(&want, &have_specs);
    if ctx.applying() && !change.is_no_op() {
        let (lb, tg) = (lb_arn.clone().unwrap_or_default(), tg_arn.clone().unwrap_or_default());
        for w in &want {
            let action = listener_action(w, &tg, stack);
            match have.iter().find(|(_, h)| h.port == w.port) {
                None => {
                    let mut req = elb
                        .create_listener()
                        .load_balancer_arn(&lb)
                        .port(w.port)
                        .protocol(ProtocolEnum::from(w.protocol.as_str()))
                        .default_actions(action)
                        .set_tags(Some(elb_tags(stack, &lb_name)));
                    if let Some(cert) = &w.certificate {
                        req = req
                            .certificates(Certificate::builder().certificate_arn(cert).build())
                            .ssl_policy(TLS_POLICY);
                    }
                    req.send().await.ctx("create listener on", &lb_name)?;
                }
                Some((arn, h)) if h != w => {
                    let mut req = elb
                        .modify_listener()
                        .listener_arn(arn)
                        .port(w.port)
                        .protocol(ProtocolEnum::from(w.protocol.as_str()))
                        .default_actions(action);
                    if let Some(cert) = &w.certificate {
                        req = req
                            .certificates(Certificate::builder().certificate_arn(cert).build())
                            .ssl_policy(TLS_POLICY);
                    }
                    req.send().await.ctx("modify listener of", &lb_name)?;
                }
                Some(_) => {}
            }
        }
        for (arn, _) in have.iter().filter(|(_, h)| !want.iter().any(|w| w.port == h.port)) {
            elb.delete_listener().listener_arn(arn).send().await.ctx("delete listener of", &lb_name)?;
        }
        ctx.progress(format!("listeners of {lb_name} ready"));
    }
    plan.push("listeners", format!("{lb_name} listeners"), None, change);

    let scheme = if stack.load_balancer.https.is_some() { "https" } else { "http" };
    let url = dns.as_ref().map(|d| match &stack.load_balancer.https {
        Some(h) if h.port != 443 => format!("{scheme}://{d}:{}", h.port),
        None if stack.load_balancer.port != 80 => format!("{scheme}://{d}:{}", stack.load_balancer.port),
        _ => format!("{scheme}://{d}"),
    });
    Ok(LoadBalancerOutputs { load_balancer_arn: lb_arn, target_group_arn: tg_arn, dns_name: dns, url })
}

/// Listeners, load balancer, target group (it cannot go while a listener uses it).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let (lb_name, tg_name) = (elb_name(&ctx.stack.name, "alb"), elb_name(&ctx.stack.name, "tg"));
    let elb = &ctx.clients.elb;
    if let Some(lb) = observe_lb(ctx, &lb_name).await? {
        if ctx.applying() {
            let listeners = elb
                .describe_listeners()
                .load_balancer_arn(&lb.arn)
                .send()
                .await
                .ctx("describe listeners of", &lb_name)?;
            for l in listeners.listeners() {
                elb.delete_listener()
                    .listener_arn(l.listener_arn().unwrap_or_default())
                    .send()
                    .await
                    .ctx("delete listener of", &lb_name)?;
            }
            elb.delete_load_balancer().load_balancer_arn(&lb.arn).send().await.ctx("delete load balancer", &lb_name)?;
            ctx.progress(format!("deleted load balancer {lb_name} and its listeners"));
        }
        plan.push("load-balancer", &lb_name, Some(lb.arn), Change::delete());
    }
    if let Some(tg) = observe_tg(ctx, &tg_name).await? {
        if ctx.applying() {
            crate::retry::retry(
                ctx.deadline,
                &format!("target group {tg_name} to be free of its listeners"),
                &["ResourceInUse"],
                || async {
                    elb.delete_target_group()
                        .target_group_arn(&tg.arn)
                        .send()
                        .await
                        .ctx("delete target group", &tg_name)
                },
            )
            .await?;
            ctx.progress(format!("deleted target group {tg_name}"));
        }
        plan.push("target-group", &tg_name, Some(tg.arn), Change::delete());
    }
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let mut left = Vec::new();
    if let Some(lb) = observe_lb(ctx, &elb_name(&ctx.stack.name, "alb")).await? {
        left.push(format!("load balancer {}", lb.arn));
    }
    if let Some(tg) = observe_tg(ctx, &elb_name(&ctx.stack.name, "tg")).await? {
        left.push(format!("target group {}", tg.arn));
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_32_characters() {
        assert_eq!(elb_name("konnichiwa", "alb"), "konnichiwa-alb");
        let long = elb_name("a-very-long-stack-name-20", "alb-and-more");
        assert!(long.len() <= 32, "{long}");
        assert_eq!(long, elb_name("a-very-long-stack-name-20", "alb-and-more"), "stable");
        assert_ne!(
            elb_name("a-very-long-stack-name-20", "tg-and-something"),
            elb_name("a-very-long-stack-name-21", "tg-and-something")
        );
    }

    #[test]
    fn https_adds_a_listener_and_redirects_http() {
        let mut s = crate::resources::test_stack();
        assert_eq!(desired_listeners(&s, "tg").len(), 1);
        s.load_balancer.https = Some(stack::Https {
            certificate_arn: "arn:aws:acm:ap-northeast-1:1:certificate/x".into(),
            port: 443,
            redirect_http: true,
        });
        let l = desired_listeners(&s, "tg");
        assert_eq!(
            l.iter().map(|l| (l.port, l.action.as_str())).collect::<Vec<_>>(),
            [(80, "redirect to HTTPS:443"), (443, "forward to tg")]
        );
    }

    #[test]
    fn deregistration_delay_drift() {
        let s = crate::resources::test_stack();
        let o = ObservedTg {
            arn: "a".into(),
            port: 8080,
            health_path: "/health".into(),
            deregistration_delay: Some("300".into()),
            tags: tags::desired(&s, "konnichiwa-tg"),
        };
        assert_eq!(
            diff_tg(&s, "konnichiwa-tg", Some(&o)).fields,
            vec![FieldDiff::new("deregistration_delay", Some("300".into()), Some("30".into()))]
        );
        let moved = ObservedTg { port: 80, ..o };
        assert_eq!(diff_tg(&s, "konnichiwa-tg", Some(&moved)).action, Action::Replace);
    }
}
