//! The Application Load Balancer (internet-facing, public subnets, its security group, idle
//! timeout), the target group (instance targets on dynamic host ports, health check on the
//! service's path, deregistration delay from stack.yaml) and the listeners (HTTP, or HTTPS with a
//! current TLS policy and HTTP -> HTTPS redirect). ALB and target group names are at most 32
//! characters: longer stack names are cut and given a short hash.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, Certificate, IpAddressType, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, Matcher, ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, Tag,
    TargetGroupAttribute, TargetTypeEnum,
};
use serde::Serialize;

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::known::all_known;
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::{InUse, Observed};
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::retry::Wait;

/// A current TLS policy (TLS 1.3 and 1.2).
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// What the load balancer calls: on the stack's load balancer, target group and listeners by name.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeTags",
        ],
        Scope::Any,
    ),
    Permission::new(
        &[
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:DeleteListener",
        ],
        Scope::Own(own_arns),
    ),
    // Tags given in the creates too: AddTags is what Elastic Load Balancing checks for them.
    Permission::new(&["elasticloadbalancing:AddTags"], Scope::Retag(own_arns)),
];

fn own_arns(c: &PolicyContext) -> Vec<String> {
    let (lb, tg) = (elb_name(&c.stack.name, "alb"), elb_name(&c.stack.name, "tg"));
    vec![
        c.arn("elasticloadbalancing", &format!("loadbalancer/app/{lb}/*")),
        c.arn("elasticloadbalancing", &format!("listener/app/{lb}/*")),
        c.arn("elasticloadbalancing", &format!("targetgroup/{tg}/*")),
    ]
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancerOutputs {
    pub load_balancer_arn: Id,
    pub target_group_arn: Id,
    pub dns_name: Option<String>,
    /// The load balancer's canonical hosted zone (what a Route 53 alias to it names).
    pub hosted_zone_id: Option<String>,
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
    pub canonical_zone: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The load balancer's attributes as AWS reports them (key -> value).
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedLb {
    fn id(&self) -> &str {
        &self.arn
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTg {
    pub arn: String,
    pub port: i32,
    pub health_path: String,
    pub deregistration_delay: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedTg {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// A listener as observed: its ARN and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedListener {
    pub arn: String,
    pub spec: ListenerSpec,
}

impl Observed for ObservedListener {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// AWS refuses a second listener on a port; an emulator may not, so a repeated create can leave
/// two: either serves, the other goes.
impl InUse for ObservedListener {
    fn in_use(&self) -> bool {
        false
    }
}

/// One listener as (port, protocol, what it does) — the "what" normalized to text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenerSpec {
    pub port: i32,
    pub protocol: String,
    pub action: String,
    pub certificate: Option<String>,
}

/// The listeners stack.yaml wants; `certificate` is the HTTPS listener's (an ARN, or what it
/// will be once requested).
pub fn desired_listeners(stack: &stack::Stack, target_group: &str, certificate: Option<&Id>) -> Vec<ListenerSpec> {
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
                    certificate: Some(
                        certificate.map_or_else(|| h.certificate_arn.clone().unwrap_or_default(), ToString::to_string),
                    ),
                },
            ];
            v.sort();
            v
        }
    }
}

/// The attributes stack.yaml sets, with AWS's default for each (what an absent one means):
/// (attribute key, wanted value, default).
pub fn desired_attributes(stack: &stack::Stack, log_bucket: Option<&str>) -> Vec<(&'static str, String, &'static str)> {
    let lb = &stack.load_balancer;
    let mut attrs = vec![
        ("idle_timeout.timeout_seconds", lb.idle_timeout.get().as_secs().to_string(), "60"),
        // Requests with header names that are not valid HTTP are dropped, not passed to the app.
        ("routing.http.drop_invalid_header_fields.enabled", "true".to_owned(), "false"),
        ("deletion_protection.enabled", lb.deletion_protection.to_string(), "false"),
        ("access_logs.s3.enabled", (lb.access_logs.is_some() && log_bucket.is_some()).to_string(), "false"),
    ];
    if let (Some(_), Some(bucket)) = (&lb.access_logs, log_bucket) {
        attrs.push(("access_logs.s3.bucket", bucket.to_owned(), ""));
        attrs.push(("access_logs.s3.prefix", stack.name.clone(), ""));
    }
    attrs
}

pub fn diff_lb(
    stack: &stack::Stack,
    name: &str,
    subnets: &[Id],
    sg: &Id,
    log_bucket: Option<&str>,
    observed: Option<&ObservedLb>,
) -> Change {
    let mut want_subnets: Vec<String> = subnets.iter().map(ToString::to_string).collect();
    want_subnets.sort();
    let attributes = desired_attributes(stack, log_bucket);
    let Some(o) = observed else {
        let mut fields = vec![
            FieldDiff::new("scheme", None, Some("internet-facing".into())),
            FieldDiff::new("subnets", None, Some(want_subnets.join(","))),
            FieldDiff::new("security_groups", None, Some(sg.to_string())),
        ];
        fields.extend(attributes.into_iter().map(|(k, v, _)| FieldDiff::new(k, None, Some(v))));
        return Change::create(fields);
    };
    let mut have_subnets = o.subnets.clone();
    have_subnets.sort();
    let mut fields: Vec<FieldDiff> = [
        compare("subnets", &have_subnets.join(","), &want_subnets.join(",")),
        compare("security_groups", &o.security_groups.join(","), &sg.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (key, want, default) in attributes {
        let have = o.attributes.get(key).cloned().unwrap_or_else(|| default.to_owned());
        fields.extend(compare(key, &have, &want));
    }
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

/// One listener: absent (create), different (modify) or as wanted.
pub fn diff_listener(want: &ListenerSpec, have: Option<&ListenerSpec>) -> Change {
    let what = |l: &ListenerSpec| format!("{} {}", l.protocol, l.action);
    match have {
        None => Change::create(vec![FieldDiff::new("listener", None, Some(what(want)))]),
        Some(h) if h != want => Change::update(vec![FieldDiff::new("listener", Some(what(h)), Some(what(want)))]),
        Some(_) => Change::no_op(),
    }
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
    let described = elb.describe_load_balancers().names(name).send().await.ctx("describe load balancer", name);
    let Some(out) = absent(described, &["LoadBalancerNotFound"])? else { return Ok(None) };
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
        canonical_zone: lb.canonical_hosted_zone_id().unwrap_or_default().to_owned(),
        subnets: lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_owned)).collect(),
        security_groups: lb.security_groups().to_vec(),
        attributes: attrs
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_owned(), a.value()?.to_owned())))
            .collect(),
        arn,
        tags,
    }))
}

async fn observe_tg(ctx: &Ctx, name: &str) -> Result<Option<ObservedTg>, Error> {
    let elb = &ctx.clients.elb;
    let described = elb.describe_target_groups().names(name).send().await.ctx("describe target group", name);
    let Some(out) = absent(described, &["TargetGroupNotFound"])? else { return Ok(None) };
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
) -> Result<Vec<ObservedListener>, Error> {
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
            ObservedListener { arn: l.listener_arn().unwrap_or_default().to_owned(), spec }
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

async fn apply_target_group(
    ctx: &Ctx,
    name: &str,
    vpc: &Id,
    change: &Change,
    observed: Option<&ObservedTg>,
) -> Result<Option<String>, Error> {
    let (elb, stack) = (&ctx.clients.elb, &ctx.stack);
    let svc = &stack.service;
    if change.action == Action::Replace {
        return Err(Error::Refused(format!(
            "target group {name} must be replaced ({}): run `down`, then `up`",
            change.reason.clone().unwrap_or_default()
        )));
    }
    let (arn, created) = match observed {
        Some(tg) => {
            if change.has("health_check_path") {
                elb.modify_target_group()
                    .target_group_arn(&tg.arn)
                    .health_check_path(&svc.health_check_path)
                    .send()
                    .await
                    .ctx("modify target group", name)?;
            }
            if change.has_tags() {
                elb.add_tags()
                    .resource_arns(&tg.arn)
                    .set_tags(Some(elb_tags(stack, name)))
                    .send()
                    .await
                    .ctx("tag", name)?;
            }
            (tg.arn.clone(), false)
        }
        None => {
            let vpc_id = vpc.get()?;
            let out = ctx
                .wait(Wait::Consistency, &format!("VPC {vpc_id} to be visible"), || async {
                    elb.create_target_group()
                        .name(name)
                        .protocol(ProtocolEnum::Http)
                        .port(i32::from(svc.container_port))
                        .vpc_id(vpc_id)
                        .target_type(TargetTypeEnum::Instance)
                        .health_check_path(&svc.health_check_path)
                        .health_check_interval_seconds(10)
                        .health_check_timeout_seconds(5)
                        .healthy_threshold_count(2)
                        .unhealthy_threshold_count(3)
                        .matcher(Matcher::builder().http_code("200").build())
                        .set_tags(Some(elb_tags(stack, name)))
                        .send()
                        .await
                        .ctx("create target group", name)
                })
                .await?;
            let arn = out.target_groups().first().and_then(|t| t.target_group_arn()).unwrap_or_default().to_owned();
            (arn, true)
        }
    };
    if created || change.has("deregistration_delay") {
        ctx.wait(Wait::Consistency, &format!("target group {name} to be visible"), || async {
            elb.modify_target_group_attributes()
                .target_group_arn(&arn)
                .attributes(
                    TargetGroupAttribute::builder()
                        .key("deregistration_delay.timeout_seconds")
                        .value(stack.load_balancer.deregistration_delay.get().as_secs().to_string())
                        .build(),
                )
                .send()
                .await
                .ctx("set the deregistration delay of", name)
        })
        .await?;
    }
    ctx.progress(format!("target group {name} ready"));
    Ok(created.then_some(arn))
}

async fn apply_load_balancer(
    ctx: &Ctx,
    name: &str,
    subnets: &[Id],
    sg: &Id,
    log_bucket: Option<&str>,
    change: &Change,
    observed: Option<&ObservedLb>,
) -> Result<Option<String>, Error> {
    let (elb, stack) = (&ctx.clients.elb, &ctx.stack);
    let subnet_ids = all_known(subnets)?;
    let (arn, created) = match observed {
        None => {
            let out = ctx
                .wait(Wait::Consistency, "the subnets and security group to be visible", || async {
                    elb.create_load_balancer()
                        .name(name)
                        .r#type(LoadBalancerTypeEnum::Application)
                        .scheme(LoadBalancerSchemeEnum::InternetFacing)
                        .ip_address_type(IpAddressType::Ipv4)
                        .set_subnets(Some(subnet_ids.clone()))
                        .security_groups(sg.get()?)
                        .set_tags(Some(elb_tags(stack, name)))
                        .send()
                        .await
                        .ctx("create load balancer", name)
                })
                .await?;
            let arn = out.load_balancers().first().and_then(|l| l.load_balancer_arn()).unwrap_or_default().to_owned();
            (arn, true)
        }
        Some(lb) => {
            if change.has("subnets") {
                elb.set_subnets()
                    .load_balancer_arn(&lb.arn)
                    .set_subnets(Some(subnet_ids.clone()))
                    .send()
                    .await
                    .ctx("set subnets of", name)?;
            }
            if change.has("security_groups") {
                elb.set_security_groups()
                    .load_balancer_arn(&lb.arn)
                    .security_groups(sg.get()?)
                    .send()
                    .await
                    .ctx("set security groups of", name)?;
            }
            if change.has_tags() {
                elb.add_tags()
                    .resource_arns(&lb.arn)
                    .set_tags(Some(elb_tags(stack, name)))
                    .send()
                    .await
                    .ctx("tag", name)?;
            }
            (lb.arn.clone(), false)
        }
    };
    let attributes: Vec<LoadBalancerAttribute> = desired_attributes(stack, log_bucket)
        .into_iter()
        .filter(|(key, _, _)| created || change.has(key))
        .map(|(key, value, _)| LoadBalancerAttribute::builder().key(key).value(value).build())
        .collect();
    if !attributes.is_empty() {
        set_attributes(ctx, name, &arn, &attributes).await?;
    }
    ctx.progress(format!("load balancer {name} ready"));
    Ok(created.then_some(arn))
}

/// Writes the load balancer's attributes once it is visible and (for access logs) the log
/// bucket's policy has reached ELB.
async fn set_attributes(ctx: &Ctx, name: &str, arn: &str, attributes: &[LoadBalancerAttribute]) -> Result<(), Error> {
    let what = format!("the log bucket's policy to reach load balancer {name}");
    ctx.wait(Wait::Propagation, &what, || async {
        ctx.wait(Wait::Consistency, &format!("load balancer {name} to be visible"), || async {
            ctx.clients
                .elb
                .modify_load_balancer_attributes()
                .load_balancer_arn(arn)
                .set_attributes(Some(attributes.to_vec()))
                .send()
                .await
                .ctx("set the attributes of", name)
        })
        .await
    })
    .await?;
    Ok(())
}

async fn apply_listener(
    ctx: &Ctx,
    lb_name: &str,
    lb: &Id,
    tg: &Id,
    want: &ListenerSpec,
    certificate: Option<&Id>,
    observed: Option<&ObservedListener>,
) -> Result<Option<String>, Error> {
    let elb = &ctx.clients.elb;
    let action = listener_action(want, tg.get()?, &ctx.stack);
    let certificate = match (&want.certificate, certificate) {
        (Some(_), Some(id)) => Some(Certificate::builder().certificate_arn(id.get()?).build()),
        (Some(arn), None) => Some(Certificate::builder().certificate_arn(arn).build()),
        (None, _) => None,
    };
    match observed {
        None => {
            let lb_arn = lb.get()?;
            let out = ctx
                .wait(Wait::Consistency, &format!("load balancer {lb_name} to be visible"), || async {
                    let mut req = elb
                        .create_listener()
                        .load_balancer_arn(lb_arn)
                        .port(want.port)
                        .protocol(ProtocolEnum::from(want.protocol.as_str()))
                        .default_actions(action.clone())
                        .set_tags(Some(elb_tags(&ctx.stack, lb_name)));
                    if let Some(cert) = &certificate {
                        req = req.certificates(cert.clone()).ssl_policy(TLS_POLICY);
                    }
                    req.send().await.ctx("create listener on", lb_name)
                })
                .await?;
            ctx.progress(format!("listener {lb_name}:{} created", want.port));
            Ok(out.listeners().first().and_then(|l| l.listener_arn()).map(str::to_owned))
        }
        Some(l) => {
            // A certificate ACM issued moments ago may not be visible to ELB yet.
            ctx.wait(
                Wait::Consistency,
                &format!("the certificate of {lb_name}:{} to be usable", want.port),
                || async {
                    let mut req = elb
                        .modify_listener()
                        .listener_arn(&l.arn)
                        .port(want.port)
                        .protocol(ProtocolEnum::from(want.protocol.as_str()))
                        .default_actions(action.clone());
                    if let Some(cert) = &certificate {
                        req = req.certificates(cert.clone()).ssl_policy(TLS_POLICY);
                    }
                    req.send().await.ctx("modify listener of", lb_name)
                },
            )
            .await?;
            ctx.progress(format!("listener {lb_name}:{} updated", want.port));
            Ok(None)
        }
    }
}

/// The network the load balancer lives in, and the bucket its access logs go to.
pub struct Inputs<'a> {
    pub vpc: &'a Id,
    pub subnets: &'a [Id],
    pub security_group: &'a Id,
    pub log_bucket: Option<&'a str>,
    /// The HTTPS listener's certificate, when stack.yaml asks for HTTPS.
    pub certificate: Option<&'a Id>,
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, inputs: &Inputs<'_>) -> Result<LoadBalancerOutputs, Error> {
    let (vpc, subnets, sg, log_bucket) = (inputs.vpc, inputs.subnets, inputs.security_group, inputs.log_bucket);
    let stack = &ctx.stack;
    let (lb_name, tg_name) = (elb_name(&stack.name, "alb"), elb_name(&stack.name, "tg"));

    // Target group first: the listeners forward to it.
    let tg = Step::new(ctx, "target-group", &tg_name)
        .converge(
            plan,
            async || observe_tg(ctx, &tg_name).await,
            |o| diff_tg(stack, &tg_name, o),
            async |c: &Change, o: Option<&ObservedTg>| apply_target_group(ctx, &tg_name, vpc, c, o).await,
        )
        .await?;
    let tg_arn = Id::from_option(tg.id(), || format!("target group {tg_name}"));

    let lb = Step::new(ctx, "load-balancer", &lb_name)
        .converge(
            plan,
            async || observe_lb(ctx, &lb_name).await,
            |o| diff_lb(stack, &lb_name, subnets, sg, log_bucket, o),
            async |c: &Change, o: Option<&ObservedLb>| {
                apply_load_balancer(ctx, &lb_name, subnets, sg, log_bucket, c, o).await
            },
        )
        .await?;
    let lb_arn = Id::from_option(lb.id(), || format!("load balancer {lb_name}"));
    let (dns, hosted_zone_id) = match &lb.observed {
        Some(o) => (Some(o.dns_name.clone()), Some(o.canonical_zone.clone())),
        None if lb.applied.is_some() => {
            observe_lb(ctx, &lb_name).await?.map_or((None, None), |o| (Some(o.dns_name), Some(o.canonical_zone)))
        }
        None => (None, None),
    };

    // Listeners: one row each, by port; ours that stack.yaml no longer wants are deleted.
    let want = desired_listeners(stack, &tg_name, inputs.certificate);
    let listing = async || match (lb_arn.known(), tg_arn.known()) {
        (Some(l), Some(t)) => observe_listeners(ctx, l, t, &tg_name).await,
        _ => Ok(Vec::new()),
    };
    for w in &want {
        Step::new(ctx, "listener", format!("{lb_name}:{}", w.port))
            .converge_one(
                plan,
                async || Ok(listing().await?.into_iter().filter(|l| l.spec.port == w.port).collect()),
                |o| diff_listener(w, o.map(|l| &l.spec)),
                async |_: &Change, o: Option<&ObservedListener>| {
                    apply_listener(ctx, &lb_name, &lb_arn, &tg_arn, w, inputs.certificate, o).await
                },
                async |extra: &ObservedListener| {
                    let r = ctx.clients.elb.delete_listener().listener_arn(&extra.arn).send().await;
                    gone(r.ctx("delete listener of", &lb_name), &["ListenerNotFound"])
                },
            )
            .await?;
    }
    for extra in listing().await?.into_iter().filter(|l| !want.iter().any(|w| w.port == l.spec.port)) {
        if ctx.applying() {
            let r = ctx.clients.elb.delete_listener().listener_arn(&extra.arn).send().await;
            gone(r.ctx("delete listener of", &lb_name), &["ListenerNotFound"])?;
            ctx.progress(format!("deleted listener {lb_name}:{}", extra.spec.port));
        }
        plan.push("listener", format!("{lb_name}:{}", extra.spec.port), Some(extra.arn), Change::delete());
    }

    let url = url(stack, dns.as_deref());
    Ok(LoadBalancerOutputs { load_balancer_arn: lb_arn, target_group_arn: tg_arn, dns_name: dns, hosted_zone_id, url })
}

/// Where the service answers: `https://<domain>` with a domain (known before the load balancer
/// exists), else the load balancer's own name, with the listener's port when not the default.
pub fn url(stack: &stack::Stack, lb_dns: Option<&str>) -> Option<String> {
    let lb = &stack.load_balancer;
    let (scheme, port, default) = match &lb.https {
        Some(h) => ("https", h.port, 443),
        None => ("http", lb.port, 80),
    };
    let host = lb.https.as_ref().and_then(|h| h.domain.as_deref()).or(lb_dns)?;
    Some(if port == default { format!("{scheme}://{host}") } else { format!("{scheme}://{host}:{port}") })
}

/// This kind in the one list of kinds (`crate::kinds`).
pub const KIND: crate::kinds::Kind = crate::kinds::Kind {
    name: "load-balancer",
    nouns: &["load-balancer", "target-group", "listener"],
    permissions: PERMISSIONS,
    arn_types: &[
        "elasticloadbalancing:loadbalancer",
        "elasticloadbalancing:targetgroup",
        "elasticloadbalancing:listener",
        "elasticloadbalancing:listener-rule",
    ],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
};

/// Listeners, load balancer, target group (it cannot go while a listener uses it).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::kinds::Down) -> Result<(), Error> {
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
                let r = elb.delete_listener().listener_arn(l.listener_arn().unwrap_or_default()).send().await;
                gone(r.ctx("delete listener of", &lb_name), &["ListenerNotFound"])?;
            }
            // Protection from deletion holds against everyone but this `down`.
            if lb.attributes.get("deletion_protection.enabled").is_some_and(|v| v == "true") {
                elb.modify_load_balancer_attributes()
                    .load_balancer_arn(&lb.arn)
                    .attributes(
                        LoadBalancerAttribute::builder().key("deletion_protection.enabled").value("false").build(),
                    )
                    .send()
                    .await
                    .ctx("switch off the deletion protection of", &lb_name)?;
            }
            let r = elb.delete_load_balancer().load_balancer_arn(&lb.arn).send().await;
            gone(r.ctx("delete load balancer", &lb_name), &["LoadBalancerNotFound"])?;
            ctx.progress(format!("deleted load balancer {lb_name} and its listeners"));
        }
        plan.push("load-balancer", &lb_name, Some(lb.arn), Change::delete());
    }
    if let Some(tg) = observe_tg(ctx, &tg_name).await? {
        if ctx.applying() {
            let r = ctx
                .wait(
                    Wait::Dependency(&["ResourceInUse"]),
                    &format!("target group {tg_name} to be free of its listeners"),
                    || async {
                        elb.delete_target_group()
                            .target_group_arn(&tg.arn)
                            .send()
                            .await
                            .ctx("delete target group", &tg_name)
                    },
                )
                .await;
            gone(r, &["TargetGroupNotFound"])?;
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
        assert_eq!(desired_listeners(&s, "tg", None).len(), 1);
        s.load_balancer.https = Some(stack::Https {
            domain: None,
            hosted_zone: None,
            certificate_arn: Some("arn:aws:acm:ap-northeast-1:1:certificate/x".into()),
            port: 443,
            redirect_http: true,
        });
        let l = desired_listeners(&s, "tg", None);
        assert_eq!(
            l.iter().map(|l| (l.port, l.action.as_str())).collect::<Vec<_>>(),
            [(80, "redirect to HTTPS:443"), (443, "forward to tg")]
        );
        assert_eq!(url(&s, Some("lb.example")).as_deref(), Some("https://lb.example"));
        s.load_balancer.https.as_mut().expect("https").domain = Some("api.example.com".into());
        assert_eq!(url(&s, None).as_deref(), Some("https://api.example.com"), "known before the load balancer");
        let pending = Id::Pending("certificate for api.example.com".into());
        let l = desired_listeners(&s, "tg", Some(&pending));
        assert_eq!(l[1].certificate.as_deref(), Some("(certificate for api.example.com, once created)"));
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
