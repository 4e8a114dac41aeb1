//! Service auto scaling: the scalable target (min/max tasks) and target-tracking policies on CPU
//! and, optionally, ALB requests per target. Registering waits out a service created moments
//! ago ("ECS service doesn't exist") and Application Auto Scaling's own role; a policy waits out
//! a target registered moments ago ("No scalable target registered").

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use super::SERVICE_AUTOSCALING;
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step};
use crate::wait::Wait;

/// The scalable target and its target-tracking policies (name -> target value).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedScaling {
    pub resource_id: String,
    pub min: i32,
    pub max: i32,
    pub policies: BTreeMap<String, f64>,
}

impl Observed for ObservedScaling {
    fn id(&self) -> &str {
        &self.resource_id
    }
}

pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// `app/<lb-name>/<id>/targetgroup/<tg-name>/<id>`, the label ALBRequestCountPerTarget needs.
pub fn resource_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.rsplit_once(':')?.1;
    tg.starts_with("targetgroup/").then(|| format!("{lb}/{tg}"))
}

/// What stack.yaml's `service.autoscaling` wants: (min, max, policies).
fn wanted(stack: &stack::Stack, service: &str) -> Option<(i32, i32, BTreeMap<String, f64>)> {
    let a = stack.service.autoscaling.as_ref()?;
    let mut policies = BTreeMap::from([(format!("{service}-cpu"), a.target_cpu_percent.get())]);
    if let Some(r) = a.requests_per_target {
        policies.insert(format!("{service}-requests"), f64::from(r));
    }
    Some((i32::try_from(a.min).unwrap_or(1), i32::try_from(a.max).unwrap_or(1), policies))
}

pub fn diff(stack: &stack::Stack, service: &str, observed: Option<&ObservedScaling>) -> Change {
    let Some((min, max, want)) = wanted(stack, service) else {
        return if observed.is_some() { Change::delete() } else { Change::no_op() };
    };
    let have = observed.map(|o| &o.policies);
    let mut fields = Vec::new();
    if observed.map(|o| (o.min, o.max)) != Some((min, max)) {
        fields.push(FieldDiff::new(
            "min/max",
            observed.map(|o| format!("{}/{}", o.min, o.max)),
            Some(format!("{min}/{max}")),
        ));
    }
    for (name, target) in &want {
        let current = have.and_then(|h| h.get(name));
        if current != Some(target) {
            fields.push(FieldDiff::new(
                format!("policy {name}"),
                current.map(|v| format!("target {v}")),
                Some(format!("target {target}")),
            ));
        }
    }
    if observed.is_none() { Change::create(fields) } else { Change::update(fields) }
}

pub async fn observe(ctx: &Ctx, rid: &str) -> Result<Option<ObservedScaling>, Error> {
    let aas = &ctx.clients.app_autoscaling;
    // The target and its policies at once (the policies are ignored when there is no target).
    let (targets, policies) = tokio::join!(
        aas.describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(rid)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send(),
        aas.describe_scaling_policies().service_namespace(ServiceNamespace::Ecs).resource_id(rid).send(),
    );
    let targets = targets.ctx("describe scalable target", rid)?;
    let Some(t) = targets.scalable_targets().first() else { return Ok(None) };
    let policies = policies.ctx("describe scaling policies of", rid)?;
    Ok(Some(ObservedScaling {
        resource_id: rid.to_owned(),
        min: t.min_capacity(),
        max: t.max_capacity(),
        policies: policies
            .scaling_policies()
            .iter()
            .filter_map(|p| {
                Some((p.policy_name().to_owned(), p.target_tracking_scaling_policy_configuration()?.target_value()))
            })
            .collect(),
    }))
}

/// Deletes the policies (AWS would with the target; an emulator may not), then the target.
async fn deregister(ctx: &Ctx, rid: &str) -> Result<(), Error> {
    let aas = &ctx.clients.app_autoscaling;
    for policy in observe(ctx, rid).await?.map(|o| o.policies.into_keys().collect::<Vec<_>>()).unwrap_or_default() {
        let r = aas
            .delete_scaling_policy()
            .policy_name(&policy)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(rid)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .ctx("delete scaling policy", &policy);
        gone(r)?;
    }
    let r = ctx
        .clients
        .app_autoscaling
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(rid)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .ctx("deregister scalable target", rid);
    gone(r)
}

async fn apply(
    ctx: &Ctx,
    rid: &str,
    service: &str,
    load_balancer: &Id,
    target_group: &Id,
    change: &Change,
    observed: Option<&ObservedScaling>,
) -> Result<(), Error> {
    let aas = &ctx.clients.app_autoscaling;
    let Some((min, max, want)) = wanted(&ctx.stack, service) else {
        deregister(ctx, rid).await?;
        ctx.progress(format!("auto scaling of {service} removed"));
        return Ok(());
    };
    if change.has("min/max") || observed.is_none() {
        ctx.wait(
            Wait::Propagation,
            &format!("service {service} and Application Auto Scaling's role to be usable"),
            || async {
                aas.register_scalable_target()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(rid)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                    .min_capacity(min)
                    .max_capacity(max)
                    // Tagged so that the deploy role's permissions reach it (and nothing else).
                    .set_tags(Some(ctx.stack.resource_tags().into_iter().collect()))
                    .send()
                    .await
                    .ctx("register scalable target", rid)
            },
        )
        .await?;
    }
    let have = observed.map(|o| o.policies.clone()).unwrap_or_default();
    for (name, target) in want.iter().filter(|(n, t)| have.get(*n) != Some(t)) {
        let spec = if name.ends_with("-cpu") {
            PredefinedMetricSpecification::builder().predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
        } else {
            // Requests per target is measured per (load balancer, target group) pair.
            let label = resource_label(load_balancer.get()?, target_group.get()?).ok_or_else(|| {
                Error::Refused(format!("cannot name the request metric of {load_balancer} and {target_group}"))
            })?;
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::AlbRequestCountPerTarget)
                .resource_label(label)
        };
        let spec = spec.build().map_err(|e| Error::Refused(e.to_string()))?;
        let config = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(*target)
            .predefined_metric_specification(spec)
            .scale_in_cooldown(60)
            .scale_out_cooldown(60)
            .build()
            .map_err(|e| Error::Refused(e.to_string()))?;
        ctx.wait(Wait::Propagation, &format!("the scalable target of {service} to be registered"), || async {
            aas.put_scaling_policy()
                .policy_name(name)
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(rid)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(config.clone())
                .send()
                .await
                .ctx("put scaling policy", name)
        })
        .await?;
    }
    ctx.progress(format!("auto scaling of {service}: {min}–{max} tasks"));
    Ok(())
}

pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    cluster: &str,
    service: &str,
    load_balancer: &Id,
    target_group: &Id,
    observed: Option<ObservedScaling>,
) -> Result<(), Error> {
    let rid = resource_id(cluster, service);
    // Nothing wanted and nothing there: no row.
    if ctx.stack.service.autoscaling.is_none() && observed.is_none() {
        return Ok(());
    }
    Step::new(ctx, SERVICE_AUTOSCALING, &rid)
        .converge_observed(
            plan,
            observed,
            async || observe(ctx, &rid).await,
            |o| diff(&ctx.stack, service, o),
            async |c: &Change, o: Option<&ObservedScaling>| {
                apply(ctx, &rid, service, load_balancer, target_group, c, o).await
            },
        )
        .await?;
    Ok(())
}

/// Deregisters the service's scalable target (its policies and their alarms go with it).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, cluster: &str, service: &str) -> Result<(), Error> {
    let rid = resource_id(cluster, service);
    if observe(ctx, &rid).await?.is_none() {
        return Ok(());
    }
    if ctx.applying() {
        deregister(ctx, &rid).await?;
    }
    plan.push(SERVICE_AUTOSCALING, &rid, None, Change::delete());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_count_label_from_the_arns() {
        let lb =
            "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/konnichiwa-alb/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/konnichiwa-tg/73e2d6bc24d8a067";
        assert_eq!(
            resource_label(lb, tg).as_deref(),
            Some("app/konnichiwa-alb/50dc6c495c0c9188/targetgroup/konnichiwa-tg/73e2d6bc24d8a067")
        );
        assert_eq!(resource_label("nonsense", tg), None);
    }

    #[test]
    fn scaling_diffs() {
        let s = crate::resources::test_stack();
        let good = ObservedScaling {
            resource_id: "service/konnichiwa/konnichiwa".into(),
            min: 2,
            max: 8,
            policies: BTreeMap::from([("konnichiwa-cpu".to_owned(), 60.0)]),
        };
        assert!(diff(&s, "konnichiwa", Some(&good)).is_no_op());
        let drifted =
            ObservedScaling { policies: BTreeMap::from([("konnichiwa-cpu".to_owned(), 80.0)]), ..good.clone() };
        assert_eq!(diff(&s, "konnichiwa", Some(&drifted)).fields[0].field, "policy konnichiwa-cpu");
        let mut off = s.clone();
        off.service.autoscaling = None;
        assert_eq!(diff(&off, "konnichiwa", Some(&good)).action, crate::reconcile::Action::Delete);
        assert!(diff(&off, "konnichiwa", None).is_no_op());
    }
}
