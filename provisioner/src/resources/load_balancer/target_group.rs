//! The service's target group: instance targets on the ECS-mapped ports, health checks and
//! the deregistration delay from stack.yaml.

use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetGroupAttribute, TargetTypeEnum};

use crate::error::{AwsContext, Error, absent};
use crate::reconcile::step::Observed;
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Id, compare, tags};
use crate::wait::Wait;

use super::{elb_tags, tags_of};

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

pub(super) async fn observe_tg(ctx: &Ctx, name: &str) -> Result<Option<ObservedTg>, Error> {
    let elb = &ctx.clients.elb;
    let described = elb.describe_target_groups().names(name).send().await.ctx("describe target group", name);
    let Some(out) = absent(described)? else { return Ok(None) };
    let Some(tg) = out.target_groups().first() else { return Ok(None) };
    let arn = tg.target_group_arn().unwrap_or_default().to_owned();
    let (tags, attrs) =
        tokio::join!(tags_of(ctx, &arn), elb.describe_target_group_attributes().target_group_arn(&arn).send());
    let tags = tags?;
    tags::pick_owned(
        "target group",
        name,
        &ctx.owner(),
        vec![(arn.clone(), tags.clone())],
        |t| t.0.clone(),
        |t| t.1.clone(),
    )?;
    let attrs = attrs.ctx("describe attributes of", name)?;
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

pub(super) async fn apply_target_group(
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
