//! The ECS cluster (Container Insights configurable, tagged) and its default capacity-provider
//! strategy. moto's CreateCluster replaces an existing cluster, so this always describes first.
//! A fresh account has no ECS service-linked role: it is created before the first cluster, and
//! CreateCluster waits out "Unable to assume the service linked role" while it propagates.

use aws_sdk_ecs::types::{CapacityProviderStrategyItem, ClusterField, ClusterSetting, ClusterSettingName};
use serde::Serialize;
use serde_json::json;

use crate::error::{AwsContext, Error, gone};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;
/// The nouns of this kind's plan rows.
pub const ECS_CLUSTER: Noun = Noun::new("ecs-cluster");
pub const CLUSTER_STRATEGY: Noun = Noun::new("cluster-strategy");

/// What the cluster calls, on the stack's cluster only (and ECS's service-linked role).
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["ecs:DescribeClusters"], Scope::Any),
    Permission::new(&["ecs:UpdateClusterSettings", "ecs:DeleteCluster"], Scope::Own(cluster_arn)),
    // The stack's own capacity provider only (none, to detach them for `down`; none when the
    // cluster is created): a cluster deleted and created again takes no one else's either.
    Permission::new(
        &["ecs:CreateCluster", "ecs:PutClusterCapacityProviders"],
        Scope::Conditioned { resources: cluster_arn, condition: only_the_stacks_provider },
    ),
    Permission::new(&["ecs:TagResource"], Scope::Retag(cluster_arn)),
    Permission::new(
        &["ecs:TagResource"],
        Scope::TagOnCreate {
            key: "ecs:CreateAction",
            creates: &["CreateCluster", "CreateCapacityProvider", "CreateService", "RegisterTaskDefinition"],
        },
    ),
    Permission::new(&["iam:CreateServiceLinkedRole"], Scope::ServiceLinkedRoles(&[ECS_SERVICE])),
];

/// A condition that every capacity provider a request names (`ecs:capacity-provider`, a key of
/// several values) is the stack's: true of a request that names none. The Service Authorization
/// Reference types the key as ARNs while requests name providers by short name, and AWS does
/// not say which the key carries: both name the stack's provider (a name is unique in the
/// account and region, and the region is pinned by the resource).
pub fn only_the_stacks_provider(c: &PolicyContext) -> serde_json::Value {
    let mut values = vec![provider_name(c.stack)];
    values.extend(the_providers_arn(c));
    json!({ "ForAllValues:StringEquals": { "ecs:capacity-provider": values } })
}

/// The one capacity provider the stack's cluster takes (made by the capacity kind).
pub fn provider_name(stack: &stack::Stack) -> String {
    stack.adopted.capacity_provider.clone().unwrap_or_else(|| format!("{}-capacity", stack.name))
}

fn the_providers_arn(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("ecs", &format!("capacity-provider/{}", provider_name(c.stack)))]
}

/// The stack's cluster, exactly.
pub fn cluster_arn(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("ecs", &format!("cluster/{}", name(c.stack)))]
}

/// The service that ECS's service-linked role (AWSServiceRoleForECS) is for.
pub const ECS_SERVICE: &str = "ecs.amazonaws.com";

#[derive(Debug, Clone, Serialize)]
pub struct ClusterOutputs {
    pub cluster: String,
    pub cluster_arn: Id,
    /// The cluster as this run found it (None: absent, or made by the run), for its strategy.
    #[serde(skip)]
    pub observed: Option<ObservedCluster>,
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

impl Observed for ObservedCluster {
    fn id(&self) -> &str {
        &self.arn
    }
}

pub fn name(stack: &stack::Stack) -> String {
    stack.adopted.cluster.clone().unwrap_or_else(|| stack.name.clone())
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

/// Every task ARN a ListTasks request lists, page after page (100 a page); none when the cluster
/// does not exist.
pub async fn all_tasks(
    list: aws_sdk_ecs::operation::list_tasks::builders::ListTasksFluentBuilder,
    what: &str,
) -> Result<Vec<String>, Error> {
    let mut pages = list.into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        match crate::error::absent(page.ctx("list the tasks of", what))? {
            Some(page) => arns.extend(page.task_arns().iter().cloned()),
            None => break,
        }
    }
    Ok(arns)
}

/// The ARN of the stack's active cluster, if there is one (one call; nothing compared).
pub async fn locate(ctx: &Ctx) -> Result<Option<String>, Error> {
    Ok(observe(ctx).await?.map(|c| c.arn))
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
            tags: tags::ecs_pairs(c.tags()),
        })
        .collect();
    tags::pick_owned("ECS cluster", &name, &ctx.owner(), found, |c| c.arn.clone(), |c| c.tags.clone())
}

fn insights(on: bool) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

/// AWSServiceRoleForECS, which CreateCluster needs; "has been taken" means it exists.
pub async fn ensure_service_linked_role(ctx: &Ctx) -> Result<(), Error> {
    let r = ctx.clients.iam.create_service_linked_role().aws_service_name(ECS_SERVICE).send().await;
    match r.ctx("create the ECS service-linked role for", ECS_SERVICE) {
        Ok(_) => {
            ctx.progress("created the ECS service-linked role (AWSServiceRoleForECS)");
            Ok(())
        }
        Err(e) if e.is_already_there() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn apply(
    ctx: &Ctx,
    name: &str,
    change: &Change,
    observed: Option<&ObservedCluster>,
) -> Result<Option<String>, Error> {
    let ecs = &ctx.clients.ecs;
    let Some(c) = observed else {
        ensure_service_linked_role(ctx).await?;
        let out = ctx
            .wait(Wait::Propagation, "the ECS service-linked role to be usable", || async {
                ecs.create_cluster()
                    .cluster_name(name)
                    .settings(insights(ctx.stack.capacity.container_insights))
                    .set_tags(Some(tags::ecs(&ctx.stack)))
                    .send()
                    .await
                    .ctx("create cluster", name)
            })
            .await?;
        await_active(ctx, name).await?;
        ctx.progress(format!("cluster {name} ready"));
        return Ok(out.cluster().and_then(|c| c.cluster_arn()).map(str::to_owned));
    };
    if change.has("container_insights") {
        ecs.update_cluster_settings()
            .cluster(name)
            .settings(insights(ctx.stack.capacity.container_insights))
            .send()
            .await
            .ctx("update settings of cluster", name)?;
    }
    if change.has_tags() {
        ecs.tag_resource()
            .resource_arn(&c.arn)
            .set_tags(Some(tags::ecs(&ctx.stack)))
            .send()
            .await
            .ctx("tag cluster", name)?;
    }
    ctx.progress(format!("cluster {name} ready"));
    Ok(None)
}

/// Waits until a new cluster is ACTIVE: CreateCluster may answer while ECS still provisions it
/// (PROVISIONING), and nothing may use it before (the Terraform AWS provider waits the same way).
async fn await_active(ctx: &Ctx, name: &str) -> Result<(), Error> {
    ctx.wait(Wait::Settling(&["Cluster.Provisioning"]), &format!("cluster {name} to be ACTIVE"), || async {
        let out = ctx.clients.ecs.describe_clusters().clusters(name).send().await.ctx("describe cluster", name)?;
        match out.clusters().first().and_then(|c| c.status()) {
            Some("ACTIVE") => Ok(()),
            None | Some("PROVISIONING") => Err(crate::wait::not_yet("Cluster.Provisioning", name, "not ACTIVE yet")),
            Some(other) => Err(Error::Refused(format!(
                "cluster {name} is {other} right after it was created: ECS could not set it up; see its status in \
                 the ECS console, delete it, and run up again"
            ))),
        }
    })
    .await
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<ClusterOutputs, Error> {
    let name = name(&ctx.stack);
    let outcome = Step::new(ctx, ECS_CLUSTER, &name)
        .converge(
            plan,
            async || observe(ctx).await,
            |o| diff(&ctx.stack, o),
            async |c: &Change, o: Option<&ObservedCluster>| apply(ctx, &name, c, o).await,
        )
        .await?;
    Ok(ClusterOutputs {
        cluster_arn: outcome.id_or(|| format!("cluster {name}")),
        cluster: name,
        observed: outcome.observed,
    })
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
        let strategy = CapacityProviderStrategyItem::builder()
            .capacity_provider(provider)
            .weight(1)
            .base(0)
            .build()
            .map_err(|e| Error::Refused(e.to_string()))?;
        // While the cluster or a provider still changes, ECS answers UpdateInProgress or
        // ResourceInUse, and "Cluster was not ACTIVE" while it provisions: each waited out, as the
        // Terraform AWS provider does.
        ctx.wait(Wait::Propagation, &format!("cluster {name} to be ACTIVE"), || async {
            // An update settles within minutes; ResourceInUse held for 10 (the Terraform AWS
            // provider's figure) is a service on a provider this change removes.
            let busy = Wait::DependencyWithin(std::time::Duration::from_secs(10 * 60));
            ctx.wait(busy, &format!("cluster {name} to finish its update"), || async {
                ctx.clients
                    .ecs
                    .put_cluster_capacity_providers()
                    .cluster(&name)
                    .capacity_providers(provider)
                    .default_capacity_provider_strategy(strategy.clone())
                    .send()
                    .await
                    .ctx("set the capacity providers of cluster", &name)
            })
            .await
        })
        .await?;
        ctx.progress(format!("cluster {name} places tasks on {provider}"));
    }
    plan.push(CLUSTER_STRATEGY, format!("{name} default strategy"), None, change);
    Ok(())
}

/// Detaches the providers (so they can be deleted); a provider still in use by tasks answers
/// ResourceInUse, one still updating UpdateInProgress, until they settle.
pub async fn detach_providers(ctx: &Ctx, observed: &ObservedCluster) -> Result<(), Error> {
    if !ctx.applying() || observed.capacity_providers.is_empty() {
        return Ok(());
    }
    let name = name(&ctx.stack);
    let waiting = format!("the capacity providers of cluster {name} to be unused");
    ctx.wait(Wait::Dependency, &waiting, || async {
        ctx.clients
            .ecs
            .put_cluster_capacity_providers()
            .cluster(&name)
            .set_capacity_providers(Some(Vec::new()))
            .set_default_capacity_provider_strategy(Some(Vec::new()))
            .send()
            .await
            .ctx("detach capacity providers from cluster", &name)
    })
    .await?;
    Ok(())
}

/// The cluster and its default capacity provider strategy.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let cluster = name(stack);
    vec![(CLUSTER_STRATEGY, format!("{cluster} default strategy")), (ECS_CLUSTER, cluster)]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "ecs-cluster",
    nouns: &[ECS_CLUSTER, CLUSTER_STRATEGY],
    permissions: PERMISSIONS,
    arn_types: &["ecs:cluster"],
    deleted_after: &["ecs-service", "capacity", "loadtest"],
    derived_names,
    name_limits: &[],
    terraform_types: &["aws_ecs_cluster", "aws_ecs_cluster_capacity_providers"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Cluster>()),
};

/// The cluster needs nothing of other kinds; the capacity sets its default strategy.
pub struct Cluster;

impl Reconciles for Cluster {
    type Needs = ();
    type Seen = ();
    type Gives = ClusterOutputs;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, ClusterOutputs> {
        Box::pin(async move { reconcile(ctx, plan).await })
    }
}

/// Deletes the cluster once no instance, task or service is left in it.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let name = name(&ctx.stack);
    let Some(c) = observe(ctx).await? else { return Ok(()) };
    if ctx.applying() {
        let ecs = &ctx.clients.ecs;
        // Waited out while instances, tasks or services leave it, or an update finishes
        // (`Meaning::InUse`).
        let r = ctx
            .wait(Wait::Dependency, &format!("cluster {name} to be empty"), || async {
                ecs.delete_cluster().cluster(&name).send().await.ctx("delete cluster", &name)
            })
            .await;
        gone(r)?;
        ctx.progress(format!("deleted cluster {name}"));
    }
    plan.push(ECS_CLUSTER, &name, Some(c.arn), Change::delete());
    Ok(())
}

/// The cluster, if it is still there after a teardown.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    Ok(observe(ctx).await?.map(|c| format!("ECS cluster {}", c.arn)).into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_page_of_tasks_is_read() {
        use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let page = |from: usize, to: usize, next: Option<&str>| {
            let arns = (from..to).map(|i| format!("arn:aws:ecs:ap-northeast-1:1:task/c/{i}")).collect();
            ListTasksOutput::builder().set_task_arns(Some(arns)).set_next_token(next.map(str::to_owned)).build()
        };
        let rule = mock!(aws_sdk_ecs::Client::list_tasks)
            .sequence()
            .output(move || page(0, 100, Some("page-2")))
            .output(move || page(100, 130, None))
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, &[&rule]);
        let arns = all_tasks(client.list_tasks().cluster("c"), "c").await.expect("listed");
        assert_eq!(arns.len(), 130, "both pages");
        assert_eq!(rule.num_calls(), 2);
    }

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
