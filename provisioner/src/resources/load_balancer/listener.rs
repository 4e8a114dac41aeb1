//! The listeners: HTTP (forwarding, or redirecting to HTTPS when the stack has a domain) and
//! HTTPS with the certificate and TLS policy; one per port, duplicates a lost answer left removed.

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, Certificate, ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum,
};

use crate::error::{AwsContext, Error};
use crate::reconcile::step::{InUse, Observed};
use crate::reconcile::{Change, Ctx, FieldDiff, Id};
use crate::wait::Wait;

use super::{TLS_POLICY, elb_tags};

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

/// One listener: absent (create), different (modify) or as wanted.
pub fn diff_listener(want: &ListenerSpec, have: Option<&ListenerSpec>) -> Change {
    let what = |l: &ListenerSpec| format!("{} {}", l.protocol, l.action);
    match have {
        None => Change::create(vec![FieldDiff::new("listener", None, Some(what(want)))]),
        Some(h) if h != want => Change::update(vec![FieldDiff::new("listener", Some(what(h)), Some(what(want)))]),
        Some(_) => Change::no_op(),
    }
}

pub(super) async fn observe_listeners(
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

pub(super) fn listener_action(spec: &ListenerSpec, tg_arn: &str, stack: &stack::Stack) -> ElbAction {
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

pub(super) async fn apply_listener(
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
