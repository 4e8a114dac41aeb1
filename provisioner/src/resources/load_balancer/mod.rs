//! The Application Load Balancer (internet-facing, public subnets, its security group, idle
//! timeout), the target group (instance targets on dynamic host ports, health check on the
//! service's path, deregistration delay from stack.yaml) and the listeners (HTTP, or HTTPS with a
//! current TLS policy and HTTP -> HTTPS redirect). ALB and target group names are at most 32
//! characters: longer stack names are cut and given a short hash. A canary, linear or blue/green
//! strategy adds an alternate target group and two listener rules (`shift`).

mod balancer;
mod listener;
mod shift;
mod target_group;

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancerAttribute, Tag};
use serde::Serialize;

use crate::error::{AwsContext, Error, gone};
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::{Change, Ctx, Id, Plan, Step, tags};
use crate::resources::certificate::CertificateOutputs;
use crate::resources::log_bucket::AccessLogBucket;
use crate::resources::network::NetworkOutputs;
use crate::wait::Wait;

use crate::reconcile::Noun;
pub use balancer::{ObservedLb, desired_attributes, diff_lb};
use balancer::{apply_load_balancer, observe_lb};
pub use listener::{ListenerSpec, ObservedListener, desired_listeners, diff_listener};
use listener::{apply_listener, observe_listeners};
pub use shift::{GATE_HEADER, ObservedRule, RuleSpec, ShiftOutputs, desired_rules, diff_rule, gate_header_value};
use shift::{RuleInputs, converge_rules, delete_foreign, delete_rules, observe_rules};
pub use target_group::{ObservedTg, diff_tg};
use target_group::{apply_target_group, observe_tg};
/// The nouns of this kind's plan rows.
pub const LOAD_BALANCER: Noun = Noun::new("load-balancer");
pub const TARGET_GROUP: Noun = Noun::new("target-group");
pub const LISTENER: Noun = Noun::new("listener");
pub const LISTENER_RULE: Noun = Noun::new("listener-rule");

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
            "elasticloadbalancing:DescribeRules",
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
    // Rules: made on the stack's listeners, changed and deleted by their own ARN (a strategy's
    // two, and another hand's, which `up` deletes).
    Permission::new(&["elasticloadbalancing:CreateRule"], Scope::Own(listener_arns)),
    Permission::new(&["elasticloadbalancing:ModifyRule", "elasticloadbalancing:DeleteRule"], Scope::Own(rule_arns)),
    // Tags given in the creates too: AddTags is what Elastic Load Balancing checks for them.
    Permission::new(&["elasticloadbalancing:AddTags"], Scope::Retag(taggable_arns)),
];

fn listener_arns(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("elasticloadbalancing", &format!("listener/app/{}/*", lb_name(c.stack)))]
}

fn rule_arns(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("elasticloadbalancing", &format!("listener-rule/app/{}/*", lb_name(c.stack)))]
}

fn taggable_arns(c: &PolicyContext) -> Vec<String> {
    let mut arns = own_arns(c);
    arns.extend(rule_arns(c));
    arns
}

fn own_arns(c: &PolicyContext) -> Vec<String> {
    let (lb, tg) = (lb_name(c.stack), tg_name(c.stack));
    // The alternate group whatever the strategy: a stack back on rolling deletes it.
    vec![
        c.arn("elasticloadbalancing", &format!("loadbalancer/app/{lb}/*")),
        c.arn("elasticloadbalancing", &format!("listener/app/{lb}/*")),
        c.arn("elasticloadbalancing", &format!("targetgroup/{tg}/*")),
        c.arn("elasticloadbalancing", &format!("targetgroup/{}/*", alternate_tg_name(&c.stack.name))),
    ]
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancerOutputs {
    pub load_balancer_arn: Id,
    pub target_group_arn: Id,
    pub dns_name: Id,
    /// The load balancer's canonical hosted zone (what a Route 53 alias to it names).
    pub hosted_zone_id: Id,
    /// Where the service answers, e.g. `http://konnichiwa-alb-123.ap-northeast-1.elb.amazonaws.com`.
    pub url: Option<String>,
    /// What ECS shifts traffic with (None: a rolling stack).
    pub shift: Option<ShiftOutputs>,
}

/// The load balancer's name (adopted, or `<stack>-alb`).
pub fn lb_name(stack: &stack::Stack) -> String {
    stack.adopted.load_balancer.clone().unwrap_or_else(|| elb_name(&stack.name, "alb"))
}

/// The service's target group's name (adopted, or `<stack>-tg`).
pub fn tg_name(stack: &stack::Stack) -> String {
    stack.adopted.target_group.clone().unwrap_or_else(|| elb_name(&stack.name, "tg"))
}

/// The alternate target group's name (a canary, linear or blue/green strategy).
pub fn alternate_tg_name(stack: &str) -> String {
    elb_name(stack, "tg2")
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

/// The network the load balancer lives in, and the bucket its access logs go to.
pub struct Inputs<'a> {
    pub vpc: &'a Id,
    pub subnets: &'a [Id],
    pub security_group: &'a Id,
    pub log_bucket: Option<&'a str>,
    /// The HTTPS listener's certificate, when stack.yaml asks for HTTPS.
    pub certificate: Option<&'a Id>,
}

/// The target group and the load balancer, read by name before the network they go in is known
/// (the engine reads them at the start).
#[derive(Debug)]
pub struct Seen {
    target_group: Option<ObservedTg>,
    load_balancer: Option<ObservedLb>,
    alternate: Option<ObservedTg>,
}

/// Reads the target groups and the load balancer at once.
pub async fn see(ctx: &Ctx) -> Result<Seen, Error> {
    let (tg, lb) = (tg_name(&ctx.stack), lb_name(&ctx.stack));
    let alt = alternate_tg_name(&ctx.stack.name);
    let (target_group, load_balancer, alternate) =
        tokio::try_join!(observe_tg(ctx, &tg), observe_lb(ctx, &lb), observe_tg(ctx, &alt))?;
    Ok(Seen { target_group, load_balancer, alternate })
}

/// The target group, the load balancer and its listeners, from what `see` read.
pub async fn reconcile(
    ctx: &Ctx,
    plan: &mut Plan,
    inputs: &Inputs<'_>,
    seen: Seen,
) -> Result<LoadBalancerOutputs, Error> {
    let Seen { target_group: seen_tg, load_balancer: seen_lb, alternate } = seen;
    let (vpc, subnets, sg, log_bucket) = (inputs.vpc, inputs.subnets, inputs.security_group, inputs.log_bucket);
    let stack = &ctx.stack;
    let (lb_name, tg_name) = (lb_name(stack), tg_name(stack));

    // The target group and the load balancer at once; then the listeners, which join them.
    let (mut p_tg, mut p_lb) = (Plan::default(), Plan::default());
    let (tg_step, lb_step) = (Step::new(ctx, TARGET_GROUP, &tg_name), Step::new(ctx, LOAD_BALANCER, &lb_name));
    let (tg, lb) = tokio::try_join!(
        tg_step.converge_observed(
            &mut p_tg,
            seen_tg,
            async || observe_tg(ctx, &tg_name).await,
            |o| diff_tg(stack, &tg_name, o),
            async |c: &Change, o: Option<&ObservedTg>| apply_target_group(ctx, &tg_name, vpc, c, o).await,
        ),
        lb_step.converge_observed(
            &mut p_lb,
            seen_lb,
            async || observe_lb(ctx, &lb_name).await,
            |o| diff_lb(stack, &lb_name, subnets, sg, log_bucket, o),
            async |c: &Change, o: Option<&ObservedLb>| {
                apply_load_balancer(ctx, &lb_name, subnets, sg, log_bucket, c, o).await
            },
        ),
    )?;
    plan.extend(p_tg);
    plan.extend(p_lb);
    let tg_arn = tg.id_or(|| format!("target group {tg_name}"));
    let lb_arn = lb.id_or(|| format!("load balancer {lb_name}"));
    let named = match &lb.observed {
        Some(o) => Some((o.dns_name.clone(), o.canonical_zone.clone())),
        None if lb.applied.is_some() => observe_lb(ctx, &lb_name).await?.map(|o| (o.dns_name, o.canonical_zone)),
        None => None,
    };
    let (dns, zone) = named.unzip();
    let dns = Id::from_option(dns, || format!("DNS name of load balancer {lb_name}"));
    let hosted_zone_id = Id::from_option(zone, || format!("hosted zone of load balancer {lb_name}"));

    let listeners = converge_listeners(ctx, plan, (&lb_name, &lb_arn), (&tg_name, &tg_arn), inputs.certificate).await?;
    let shift = converge_shift(ctx, plan, (&lb_name, &listeners), &tg_arn, vpc, alternate).await?;

    let url = url(stack, dns.known());
    Ok(LoadBalancerOutputs {
        load_balancer_arn: lb_arn,
        target_group_arn: tg_arn,
        dns_name: dns,
        hosted_zone_id,
        url,
        shift,
    })
}

/// The listener that forwards to the target group: HTTPS when stack.yaml has it (validation
/// makes HTTP redirect then), else HTTP. None until it exists.
fn forwarding_listener<'l>(stack: &stack::Stack, listeners: &'l [ObservedListener]) -> Option<&'l str> {
    let port = stack.load_balancer.https.as_ref().map_or(stack.load_balancer.port, |h| h.port);
    listeners.iter().find(|l| l.spec.port == i32::from(port)).map(|l| l.arn.as_str())
}

/// The alternate target group and the rules of a shifting strategy; for a rolling stack, what an
/// earlier strategy left is deleted — unless the alternate group serves, which deleting the rules
/// would leave without traffic.
async fn converge_shift(
    ctx: &Ctx,
    plan: &mut Plan,
    (lb_name, listeners): (&str, &[ObservedListener]),
    tg_arn: &Id,
    vpc: &Id,
    alternate: Option<ObservedTg>,
) -> Result<Option<ShiftOutputs>, Error> {
    let stack = &ctx.stack;
    let alt_name = alternate_tg_name(&stack.name);
    let listener = forwarding_listener(stack, listeners);
    let (rules, elsewhere) = rules_of(ctx, listener, listeners).await?;
    if !stack.service.deployment.strategy.shifts_traffic() {
        retire_shift(ctx, plan, lb_name, &rules, alternate).await?;
        delete_foreign(ctx, plan, lb_name, &shift::foreign(stack, &rules), &elsewhere).await?;
        return Ok(None);
    }
    delete_foreign(ctx, plan, lb_name, &shift::foreign(stack, &rules), &elsewhere).await?;
    let alt = Step::new(ctx, TARGET_GROUP, &alt_name)
        .converge_observed(
            plan,
            alternate,
            async || observe_tg(ctx, &alt_name).await,
            |o| diff_tg(stack, &alt_name, o),
            async |c: &Change, o: Option<&ObservedTg>| apply_target_group(ctx, &alt_name, vpc, c, o).await,
        )
        .await?;
    let alt_arn = alt.id_or(|| format!("target group {alt_name}"));
    let (test, production) = match (listener, tg_arn.known(), alt_arn.known()) {
        (Some(listener_arn), Some(tg), Some(alt)) => {
            let i = RuleInputs { lb_name, listener_arn, groups: (tg, alt), seen: &rules };
            converge_rules(ctx, plan, &i).await?
        }
        _ => {
            // A plan before the listener or the groups exist: the rules will be created.
            for want in desired_rules(stack) {
                let c = diff_rule(&want, None, ("(target group)", "(alternate target group)"));
                plan.push(LISTENER_RULE, format!("{lb_name}:{}", want.role), None, c);
            }
            let pending = |role: &str| Id::Pending(format!("{role} listener rule of {lb_name}"));
            (pending("test"), pending("production"))
        }
    };
    Ok(Some(ShiftOutputs { alternate_target_group_arn: alt_arn, production_rule_arn: production, test_rule_arn: test }))
}

/// The forwarding listener's rules, and those of the stack's other listeners (which have none of
/// their own: the HTTP listener redirects to HTTPS).
async fn rules_of(
    ctx: &Ctx,
    forwarding: Option<&str>,
    listeners: &[ObservedListener],
) -> Result<(Vec<ObservedRule>, Vec<ObservedRule>), Error> {
    let mut ours = Vec::new();
    let mut elsewhere = Vec::new();
    for l in listeners {
        let found = observe_rules(ctx, &l.arn).await?;
        if Some(l.arn.as_str()) == forwarding { ours = found } else { elsewhere.extend(found) }
    }
    Ok((ours, elsewhere))
}

/// A rolling stack: the rules and the alternate target group an earlier strategy made go, rules
/// first (a group cannot go while a rule forwards to it).
async fn retire_shift(
    ctx: &Ctx,
    plan: &mut Plan,
    lb_name: &str,
    rules: &[ObservedRule],
    alternate: Option<ObservedTg>,
) -> Result<(), Error> {
    let ours: Vec<ObservedRule> = rules.iter().filter(|r| shift::strategys(&ctx.stack, r)).cloned().collect();
    if let Some(alt) = &alternate
        && ours.iter().any(|r| r.forwards.iter().any(|(tg, w)| *tg == alt.arn && *w > 0))
    {
        return Err(Error::Refused(format!(
            "service.deployment.strategy is rolling, but the alternate target group {} serves the service's \
             traffic (the last {} deployment moved it there): deleting its listener rules now would leave the \
             service without traffic. Deploy once more with the strategy the service has (which moves the traffic \
             back to {}), then run `up` with strategy: rolling",
            alternate_tg_name(&ctx.stack.name),
            "canary, linear or blue/green",
            tg_name(&ctx.stack),
        )));
    }
    delete_rules(ctx, plan, lb_name, &ours).await?;
    if let Some(alt) = alternate {
        let name = alternate_tg_name(&ctx.stack.name);
        if ctx.applying() {
            delete_target_group(ctx, &name, &alt.arn).await?;
        }
        plan.push(TARGET_GROUP, &name, Some(alt.arn), Change::delete());
    }
    Ok(())
}

/// The listeners: one row each, by port; ours that stack.yaml no longer wants are deleted.
async fn converge_listeners(
    ctx: &Ctx,
    plan: &mut Plan,
    (lb_name, lb_arn): (&str, &Id),
    (tg_name, tg_arn): (&str, &Id),
    certificate: Option<&Id>,
) -> Result<Vec<ObservedListener>, Error> {
    let want = desired_listeners(&ctx.stack, tg_name, certificate);
    let listing = async || match (lb_arn.known(), tg_arn.known()) {
        (Some(l), Some(t)) => observe_listeners(ctx, l, t, tg_name).await,
        _ => Ok(Vec::new()),
    };
    // One listing serves every listener's first look, and the extras when nothing changed.
    let first = listing().await?;
    let mut changed = false;
    for w in &want {
        let looked = std::cell::Cell::new(false);
        let outcome = Step::new(ctx, LISTENER, format!("{lb_name}:{}", w.port))
            .converge_one(
                plan,
                async || {
                    let all = if looked.replace(true) { listing().await? } else { first.clone() };
                    Ok(all.into_iter().filter(|l| l.spec.port == w.port).collect())
                },
                |o| diff_listener(w, o.map(|l| &l.spec)),
                async |_: &Change, o: Option<&ObservedListener>| {
                    apply_listener(ctx, lb_name, lb_arn, tg_arn, w, certificate, o).await
                },
                async |extra: &ObservedListener| {
                    let r = ctx.clients.elb.delete_listener().listener_arn(&extra.arn).send().await;
                    gone(r.ctx("delete listener of", lb_name))
                },
            )
            .await?;
        changed |= ctx.applying() && !outcome.change.is_no_op();
    }
    let now = if changed { listing().await? } else { first };
    let (kept, extras): (Vec<ObservedListener>, Vec<ObservedListener>) =
        now.into_iter().partition(|l| want.iter().any(|w| w.port == l.spec.port));
    for extra in extras {
        if ctx.applying() {
            let r = ctx.clients.elb.delete_listener().listener_arn(&extra.arn).send().await;
            gone(r.ctx("delete listener of", lb_name))?;
            ctx.progress(format!("deleted listener {lb_name}:{}", extra.spec.port));
        }
        plan.push(LISTENER, format!("{lb_name}:{}", extra.spec.port), Some(extra.arn), Change::delete());
    }
    Ok(kept)
}

/// Where the service answers (`url`), reading the load balancer only when there is no domain;
/// None when neither exists.
pub async fn locate_url(ctx: &Ctx) -> Result<Option<String>, Error> {
    if let Some(known) = url(&ctx.stack, None) {
        return Ok(Some(known));
    }
    let dns = balancer::locate(ctx, &lb_name(&ctx.stack)).await?;
    Ok(url(&ctx.stack, dns.as_deref()))
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

/// The load balancer, its target group and one listener per port.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let lb = lb_name(stack);
    let mut names = vec![(LOAD_BALANCER, lb.clone()), (TARGET_GROUP, tg_name(stack))];
    names.push((LISTENER, format!("{lb}:{}", stack.load_balancer.port)));
    if let Some(h) = &stack.load_balancer.https {
        names.push((LISTENER, format!("{lb}:{}", h.port)));
    }
    if stack.service.deployment.strategy.shifts_traffic() {
        names.push((TARGET_GROUP, alternate_tg_name(&stack.name)));
        names.extend(desired_rules(stack).iter().map(|r| (LISTENER_RULE, format!("{lb}:{}", r.role))));
    }
    names
}

/// How long a target group may stay in use after our load balancer is deleted.
const TARGET_GROUP_RELEASE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "load-balancer",
    nouns: &[LOAD_BALANCER, TARGET_GROUP, LISTENER, LISTENER_RULE],
    permissions: PERMISSIONS,
    arn_types: &[
        "elasticloadbalancing:loadbalancer",
        "elasticloadbalancing:targetgroup",
        "elasticloadbalancing:listener",
        "elasticloadbalancing:listener-rule",
    ],
    deleted_after: &["ecs-service", "dns-alias"],
    derived_names,
    name_limits: &[
        (LOAD_BALANCER, &stack::limits::LOAD_BALANCER_NAME),
        (TARGET_GROUP, &stack::limits::TARGET_GROUP_NAME),
    ],
    terraform_types: &["aws_lb", "aws_lb_target_group", "aws_lb_listener", "aws_lb_listener_rule"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<LoadBalancer>()),
};

/// The load balancer stands on the network, logs to the access-log bucket and serves HTTPS with
/// the certificate.
pub struct LoadBalancer;

impl Reconciles for LoadBalancer {
    type Needs = (NetworkOutputs, Option<CertificateOutputs>, AccessLogBucket);
    type Seen = Seen;
    type Gives = LoadBalancerOutputs;

    fn see(ctx: &Ctx) -> Making<'_, Seen> {
        Box::pin(see(ctx))
    }

    fn reconcile<'a>(
        ctx: &'a Ctx,
        plan: &'a mut Plan,
        (network, certificate, log_bucket): Self::Needs,
        seen: Seen,
    ) -> Making<'a, LoadBalancerOutputs> {
        Box::pin(async move {
            let inputs = Inputs {
                vpc: &network.vpc_id,
                subnets: &network.subnet_ids,
                security_group: &network.load_balancer_security_group_id,
                log_bucket: log_bucket.0.as_deref(),
                certificate: certificate.as_ref().map(|c| &c.certificate_arn),
            };
            reconcile(ctx, plan, &inputs, seen).await
        })
    }
}

/// Listeners, load balancer, target group (it cannot go while a listener uses it).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let (lb_name, tg_name) = (lb_name(&ctx.stack), tg_name(&ctx.stack));
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
                gone(r.ctx("delete listener of", &lb_name))?;
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
            gone(r.ctx("delete load balancer", &lb_name))?;
            ctx.progress(format!("deleted load balancer {lb_name} and its listeners"));
        }
        plan.push(LOAD_BALANCER, &lb_name, Some(lb.arn), Change::delete());
    }
    for name in [tg_name, alternate_tg_name(&ctx.stack.name)] {
        if let Some(tg) = observe_tg(ctx, &name).await? {
            if ctx.applying() {
                delete_target_group(ctx, &name, &tg.arn).await?;
            }
            plan.push(TARGET_GROUP, &name, Some(tg.arn), Change::delete());
        }
    }
    Ok(())
}

/// Deletes a target group once no listener or rule forwards to it: free within minutes of our
/// load balancer's (or rule's) deletion; held longer, another load balancer's listener or rule
/// forwards to it.
async fn delete_target_group(ctx: &Ctx, name: &str, arn: &str) -> Result<(), Error> {
    let r = ctx
        .wait(
            Wait::DependencyWithin(TARGET_GROUP_RELEASE),
            &format!("target group {name} to be free of its listeners"),
            || async {
                ctx.clients
                    .elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .ctx("delete target group", name)
            },
        )
        .await;
    gone(r)?;
    ctx.progress(format!("deleted target group {name}"));
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let mut left = Vec::new();
    if let Some(lb) = observe_lb(ctx, &lb_name(&ctx.stack)).await? {
        left.push(format!("load balancer {}", lb.arn));
    }
    for name in [tg_name(&ctx.stack), alternate_tg_name(&ctx.stack.name)] {
        if let Some(tg) = observe_tg(ctx, &name).await? {
            left.push(format!("target group {}", tg.arn));
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{Action, FieldDiff};

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
