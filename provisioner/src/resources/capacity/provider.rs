//! The capacity provider: the Auto Scaling group with managed scaling, managed termination
//! protection and managed draining (ECS drains an instance's tasks before an instance refresh or
//! scale-in takes it). Its create waits out the ECS service-linked role's propagation; its
//! delete is followed until AWS says it is gone (or why it failed).

use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, AutoScalingGroupProviderUpdate, ManagedDraining, ManagedScaling, ManagedScalingStatus,
    ManagedTerminationProtection,
};

use super::CAPACITY_PROVIDER;
use super::Names;
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProvider {
    pub arn: String,
    pub asg_arn: String,
    pub managed_scaling: bool,
    pub target_capacity: i32,
    pub termination_protection: bool,
    /// None where the API does not report it (emulators): it compares as sent.
    pub managed_draining: Option<bool>,
    /// DELETE_IN_PROGRESS, DELETE_FAILED, … while an operation runs.
    pub update_status: Option<String>,
    pub update_status_reason: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedProvider {
    fn id(&self) -> &str {
        &self.arn
    }
}

pub fn diff_provider(stack: &stack::Stack, asg_arn: &Id, observed: Option<&ObservedProvider>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("auto_scaling_group", None, Some(asg_arn.to_string())),
            FieldDiff::new("managed_scaling", None, Some("enabled, target 100%".into())),
            FieldDiff::new("managed_termination_protection", None, Some("enabled".into())),
            FieldDiff::new("managed_draining", None, Some("enabled".into())),
        ]);
    };
    if let Some(a) = asg_arn.known().filter(|a| o.asg_arn != *a) {
        return Change::replace(
            "a capacity provider's Auto Scaling group cannot change",
            vec![FieldDiff::new("auto_scaling_group", Some(o.asg_arn.clone()), Some(a.to_owned()))],
        );
    }
    let mut fields: Vec<FieldDiff> = [
        compare("managed_scaling", &o.managed_scaling, &true),
        compare("target_capacity", &o.target_capacity, &100),
        compare("managed_termination_protection", &o.termination_protection, &true),
        o.managed_draining.and_then(|d| compare("managed_draining", &d, &true)),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

/// Always by name: moto answers 500 to a DescribeCapacityProviders without names.
async fn describe(ctx: &Ctx, name: &str) -> Result<Vec<(String, ObservedProvider)>, Error> {
    let out = ctx
        .clients
        .ecs
        .describe_capacity_providers()
        .capacity_providers(name)
        .include("TAGS".into())
        .send()
        .await
        .ctx("describe capacity provider", name)?;
    Ok(out
        .capacity_providers()
        .iter()
        .map(|p| {
            let asg = p.auto_scaling_group_provider();
            let status = p.status().map(|s| s.as_str().to_owned()).unwrap_or_default();
            (
                status,
                ObservedProvider {
                    arn: p.capacity_provider_arn().unwrap_or_default().to_owned(),
                    asg_arn: asg.map(|a| a.auto_scaling_group_arn().to_owned()).unwrap_or_default(),
                    managed_scaling: asg
                        .and_then(|a| a.managed_scaling())
                        .and_then(|m| m.status())
                        .is_some_and(|s| *s == ManagedScalingStatus::Enabled),
                    target_capacity: asg
                        .and_then(|a| a.managed_scaling())
                        .and_then(|m| m.target_capacity())
                        .unwrap_or(0),
                    termination_protection: asg
                        .and_then(|a| a.managed_termination_protection())
                        .is_some_and(|t| *t == ManagedTerminationProtection::Enabled),
                    managed_draining: asg.and_then(|a| a.managed_draining()).map(|d| *d == ManagedDraining::Enabled),
                    update_status: p.update_status().map(|s| s.as_str().to_owned()),
                    update_status_reason: p.update_status_reason().map(str::to_owned),
                    tags: tags::ecs_pairs(p.tags()),
                },
            )
        })
        .collect())
}

pub(super) async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedProvider>, Error> {
    let active: Vec<ObservedProvider> =
        describe(ctx, name).await?.into_iter().filter(|(status, _)| status == "ACTIVE").map(|(_, p)| p).collect();
    tags::pick_owned("capacity provider", name, &ctx.owner(), active, |p| p.arn.clone(), |p| p.tags.clone())
}

fn managed_scaling() -> ManagedScaling {
    ManagedScaling::builder()
        .status(ManagedScalingStatus::Enabled)
        .target_capacity(100)
        .minimum_scaling_step_size(1)
        .maximum_scaling_step_size(10)
        .build()
}

async fn apply(
    ctx: &Ctx,
    name: &str,
    asg_arn: &Id,
    change: &Change,
    observed: Option<&ObservedProvider>,
) -> Result<Option<String>, Error> {
    let ecs = &ctx.clients.ecs;
    let ecs_tags = tags::ecs(&ctx.stack);
    if change.action == crate::reconcile::Action::Replace {
        return Err(Error::Refused(format!(
            "capacity provider {name} points at another Auto Scaling group: run `down` then `up`"
        )));
    }
    let Some(o) = observed else {
        let config = AutoScalingGroupProvider::builder()
            .auto_scaling_group_arn(asg_arn.get()?)
            .managed_scaling(managed_scaling())
            .managed_termination_protection(ManagedTerminationProtection::Enabled)
            .managed_draining(ManagedDraining::Enabled)
            .build()
            .map_err(|e| Error::Refused(e.to_string()))?;
        let out = ctx
            .wait(Wait::Propagation, "the ECS service-linked role to be usable", || async {
                ecs.create_capacity_provider()
                    .name(name)
                    .auto_scaling_group_provider(config.clone())
                    .set_tags(Some(ecs_tags.clone()))
                    .send()
                    .await
                    .ctx("create capacity provider", name)
            })
            .await?;
        ctx.progress(format!("created capacity provider {name}"));
        return Ok(out.capacity_provider().and_then(|p| p.capacity_provider_arn()).map(str::to_owned));
    };
    if change.has_more_than_tags() {
        let update = AutoScalingGroupProviderUpdate::builder()
            .managed_scaling(managed_scaling())
            .managed_termination_protection(ManagedTerminationProtection::Enabled)
            .managed_draining(ManagedDraining::Enabled)
            .build();
        ecs.update_capacity_provider()
            .name(name)
            .auto_scaling_group_provider(update)
            .send()
            .await
            .ctx("update capacity provider", name)?;
    }
    if change.has_tags() {
        ecs.tag_resource()
            .resource_arn(&o.arn)
            .set_tags(Some(ecs_tags))
            .send()
            .await
            .ctx("tag capacity provider", name)?;
    }
    Ok(None)
}

/// Converges the provider from `observed` (read by the caller, at once with the template).
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    n: &Names,
    asg_arn: &Id,
    observed: Option<ObservedProvider>,
) -> Result<(), Error> {
    let name = &n.provider;
    Step::new(ctx, CAPACITY_PROVIDER, name)
        .converge_observed(
            plan,
            observed,
            async || observe(ctx, name).await,
            |o| diff_provider(&ctx.stack, asg_arn, o),
            async |c: &Change, o: Option<&ObservedProvider>| apply(ctx, name, asg_arn, c, o).await,
        )
        .await?;
    Ok(())
}

/// Deletes the provider (detached from the cluster before) and follows the deletion until AWS
/// reports it gone; DELETE_FAILED is reported with AWS's reason. Only "not found" counts as done.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, n: &Names) -> Result<(), Error> {
    let name = &n.provider;
    let Some(p) = observe(ctx, name).await? else { return Ok(()) };
    if ctx.applying() {
        let ecs = &ctx.clients.ecs;
        let r = ctx
            .wait(Wait::Dependency, &format!("capacity provider {name} to be unused"), || async {
                ecs.delete_capacity_provider()
                    .capacity_provider(name)
                    .send()
                    .await
                    .ctx("delete capacity provider", name)
            })
            .await;
        gone(r)?;
        ctx.wait(
            Wait::Settling(&["CapacityProvider.Deleting"]),
            &format!("capacity provider {name} to be deleted"),
            || async {
                let left: Vec<ObservedProvider> = describe(ctx, name)
                    .await?
                    .into_iter()
                    .filter(|(status, _)| status == "ACTIVE")
                    .map(|(_, p)| p)
                    .collect();
                match left.first() {
                    None => Ok(()),
                    Some(p) if p.update_status.as_deref() == Some("DELETE_FAILED") => Err(Error::Refused(format!(
                        "AWS could not delete capacity provider {name}: {}",
                        p.update_status_reason.clone().unwrap_or_else(|| "no reason given".into())
                    ))),
                    Some(_) => {
                        Err(crate::wait::not_yet("CapacityProvider.Deleting", name.as_str(), "deletion in progress"))
                    }
                }
            },
        )
        .await?;
        ctx.progress(format!("deleted capacity provider {name}"));
    }
    plan.push(CAPACITY_PROVIDER, name, Some(p.arn), Change::delete());
    Ok(())
}

pub async fn leftover(ctx: &Ctx, n: &Names) -> Result<Option<String>, Error> {
    Ok(observe(ctx, &n.provider).await?.map(|p| format!("capacity provider {}", p.arn)))
}
