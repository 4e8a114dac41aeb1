//! The ECS cluster (Container Insights configurable, tagged) and its default capacity-provider
//! strategy. moto's CreateCluster replaces an existing cluster, so this always describes first.

use aws_sdk_ecs::types::{CapacityProviderStrategyItem, ClusterField, ClusterSetting, ClusterSettingName, Tag};
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::reconcile::{Change, Ctx, FieldDiff, Plan, compare, tags};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterOutputs {
    pub cluster: String,
    pub cluster_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCluster {
    pub arn: String,
    pub container_insights: bool,
    pub capacity_providers: Vec<String>,
    pub default_strategy: Vec<String>,
    pub registered_instances: i32,
    pub tags: Vec<(String, String)>,
}

pub fn name(stack: &stack::Stack) -> String {
    stack.name.clone()
}

pub fn diff(stack: &stack::Stack, observed: Option<&ObservedCluster>) -> Change {
    let insights = stack.capacity.container_insights;
    let Some(c) = observed else {
        return Change::create(vec![FieldDiff::new("container_insights", None, Some(insights.to_string()))]);
    };
    let mut fields: Vec<FieldDiff> =
        compare("container_insights", &c.container_insights, &insights).into_iter().collect();
    fields.extend(tags::diff(&stack.resource_tags(), &c.tags));
    Change::update(fields)
}

/// The cluster's providers and default strategy: exactly our capacity provider.
pub fn diff_strategy(provider: &str, observed: Option<&ObservedCluster>) -> Change {
    let want = vec![provider.to_owned()];
    let (providers, strategy) =
        observed.map(|c| (c.capacity_providers.clone(), c.default_strategy.clone())).unwrap_or_default();
    let fields: Vec<FieldDiff> = [
        (providers != want).then(|| {
            FieldDiff::new(
                "capacity_providers",
                Some(providers.join(",")).filter(|s| !s.is_empty()),
                Some(provider.to_owned()),
            )
        }),
        (strategy != want).then(|| {
            FieldDiff::new(
                "default_strategy",
                Some(strategy.join(",")).filter(|s| !s.is_empty()),
                Some(format!("{provider} (weight 1)")),
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if observed.is_none() { Change::create(fields) } else { Change::update(fields) }
}

pub async fn observe(ctx: &Ctx) -> Result<Option<ObservedCluster>, Error> {
    let name = name(&ctx.stack);
    let out = ctx
        .clients
        .ecs
        .describe_clusters()
        .clusters(&name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .ctx("describe cluster", &name)?;
    let found: Vec<ObservedCluster> = out
        .clusters()
        .iter()
        .filter(|c| c.status() == Some("ACTIVE"))
        .map(|c| ObservedCluster {
            arn: c.cluster_arn().unwrap_or_default().to_owned(),
            container_insights: c.settings().iter().any(|s| {
                s.name() == Some(&ClusterSettingName::ContainerInsights)
                    && s.value().is_some_and(|v| v == "enabled" || v == "enhanced")
            }),
            capacity_providers: c.capacity_providers().to_vec(),
            default_strategy: c
                .default_capacity_provider_strategy()
                .iter()
                .map(|s| s.capacity_provider().to_owned())
                .collect(),
            registered_instances: c.registered_container_instances_count(),
            tags: c
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                .collect(),
        })
        .collect();
    tags::pick_owned("ECS cluster", &name, &ctx.stack.name, found, |c| c.arn.clone(), |c| c.tags.clone())
}

fn ecs_tags(stack: &stack::Stack) -> Vec<Tag> {
    stack.resource_tags().into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn insights(on: bool) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<(ClusterOutputs, Option<ObservedCluster>), Error> {
    let name = name(&ctx.stack);
    let observed = observe(ctx).await?;
    let change = diff(&ctx.stack, observed.as_ref());
    let mut arn = observed.as_ref().map(|c| c.arn.clone());
    if ctx.applying() && !change.is_no_op() {
        let ecs = &ctx.clients.ecs;
        if observed.is_none() {
            let out = ecs
                .create_cluster()
                .cluster_name(&name)
                .settings(insights(ctx.stack.capacity.container_insights))
                .set_tags(Some(ecs_tags(&ctx.stack)))
                .send()
                .await
                .ctx("create cluster", &name)?;
            arn = out.cluster().and_then(|c| c.cluster_arn()).map(str::to_owned);
        } else {
            if change.fields.iter().any(|f| f.field == "container_insights") {
                ecs.update_cluster_settings()
                    .cluster(&name)
                    .settings(insights(ctx.stack.capacity.container_insights))
                    .send()
                    .await
                    .ctx("update settings of cluster", &name)?;
            }
            if change.fields.iter().any(|f| f.field.starts_with("tags.")) {
                ecs.tag_resource()
                    .resource_arn(arn.clone().unwrap_or_default())
                    .set_tags(Some(ecs_tags(&ctx.stack)))
                    .send()
                    .await
                    .ctx("tag cluster", &name)?;
            }
        }
        ctx.progress(format!("cluster {name} ready"));
    }
    plan.push("ecs-cluster", &name, arn.clone(), change);
    Ok((ClusterOutputs { cluster: name, cluster_arn: arn }, observed))
}

/// Makes our capacity provider the cluster's only provider and default strategy.
pub async fn reconcile_strategy(
    ctx: &Ctx,
    plan: &mut Plan,
    provider: &str,
    observed: Option<&ObservedCluster>,
) -> Result<(), Error> {
    let name = name(&ctx.stack);
    let change = diff_strategy(provider, observed);
    if ctx.applying() && !change.is_no_op() {
        ctx.clients
            .ecs
            .put_cluster_capacity_providers()
            .cluster(&name)
            .capacity_providers(provider)
            .default_capacity_provider_strategy(
                CapacityProviderStrategyItem::builder()
                    .capacity_provider(provider)
                    .weight(1)
                    .base(0)
                    .build()
                    .map_err(|e| Error::Refused(e.to_string()))?,
            )
            .send()
            .await
            .ctx("set the capacity providers of cluster", &name)?;
        ctx.progress(format!("cluster {name} places tasks on {provider}"));
    }
    plan.push("cluster-strategy", format!("{name} default strategy"), None, change);
    Ok(())
}

/// Detaches the providers (so they can be deleted) — the first step of teardown.
pub async fn detach_providers(ctx: &Ctx, observed: &ObservedCluster) -> Result<(), Error> {
    if !ctx.applying() || observed.capacity_providers.is_empty() {
        return Ok(());
    }
    let name = name(&ctx.stack);
    ctx.clients
        .ecs
        .put_cluster_capacity_providers()
        .cluster(&name)
        .set_capacity_providers(Some(Vec::new()))
        .set_default_capacity_provider_strategy(Some(Vec::new()))
        .send()
        .await
        .ctx("detach capacity providers from cluster", &name)?;
    Ok(())
}

pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let name = name(&ctx.stack);
    let Some(c) = observe(ctx).await? else { return Ok(()) };
    if ctx.applying() {
        // The cluster cannot go while container instances are registered.
        let ecs = &ctx.clients.ecs;
        let r = crate::retry::retry(
            ctx.deadline,
            &format!("cluster {name} to have no container instances"),
            &["ClusterContainsContainerInstancesException", "ClusterContainsTasksException"],
            || async { ecs.delete_cluster().cluster(&name).send().await.ctx("delete cluster", &name) },
        )
        .await;
        match r {
            Err(e) if e.code() != Some("ClusterNotFoundException") => return Err(e),
            _ => ctx.progress(format!("deleted cluster {name}")),
        }
    }
    plan.push("ecs-cluster", &name, Some(c.arn), Change::delete());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_diff() {
        let c = ObservedCluster {
            arn: "arn".into(),
            container_insights: false,
            capacity_providers: vec!["s-capacity".into()],
            default_strategy: vec!["s-capacity".into()],
            registered_instances: 0,
            tags: vec![],
        };
        assert!(diff_strategy("s-capacity", Some(&c)).is_no_op());
        let bare = ObservedCluster { capacity_providers: vec![], default_strategy: vec![], ..c };
        assert_eq!(diff_strategy("s-capacity", Some(&bare)).fields.len(), 2);
    }
}
