//! The driver: runs the resource kinds in dependency order (independent ones concurrently),
//! passes each kind's outputs (ids, ARNs) to the kinds that need them, and tears down in reverse.
//!
//! Order: network | (repository, log group, secret, cluster, load balancer) concurrently | the
//! image pushed to the repository | IAM (scoped to the ARNs of the repository, log group and
//! secret) | launch template, Auto Scaling group, capacity provider | the cluster's default
//! strategy | task definition, service, service auto scaling.

use serde::Serialize;

use crate::error::Error;
use crate::reconcile::{Ctx, Plan};
use crate::resources::capacity::{self, CapacityOutputs};
use crate::resources::cluster::{self, ClusterOutputs};
use crate::resources::ecr::{self, EcrOutputs};
use crate::resources::iam::{self, IamOutputs};
use crate::resources::load_balancer::{self, LoadBalancerOutputs};
use crate::resources::logs::{self, LogOutputs};
use crate::resources::network::{self, NetworkOutputs};
use crate::resources::secret::{self, SecretOutputs};
use crate::resources::service::{self, ServiceOutputs};

/// What the stack's resources expose to each other and to other tools (`provisioner outputs`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub network: NetworkOutputs,
    pub registry: EcrOutputs,
    pub logs: LogOutputs,
    pub secret: SecretOutputs,
    pub iam: IamOutputs,
    pub cluster: ClusterOutputs,
    pub capacity: CapacityOutputs,
    pub load_balancer: LoadBalancerOutputs,
    pub service: ServiceOutputs,
    /// Set when `up` built and pushed the image.
    pub push: Option<crate::image::PushReport>,
}

/// Where the service's image comes from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// A reference from stack.yaml (ideally by digest).
    Reference(String),
    /// Built from app/ here; pushed to `repository` (default: the stack's ECR repository).
    Built { image: Box<crate::image::Image>, repository: Option<String> },
    /// Whatever the latest task definition runs (for `status` and `outputs`, which build nothing).
    Unchanged,
}

/// Observes every kind, records changes in the plan, and in Apply mode makes them.
pub async fn reconcile(ctx: &Ctx, image: &ImageSource) -> Result<(Plan, Outputs), Error> {
    // Before anything is observed or changed.
    capacity::check_architecture(&ctx.stack, capacity::image_arch(&ctx.stack))?;
    let mut plan = Plan::default();
    let network = network::reconcile(ctx, &mut plan).await?;

    let (mut p_ecr, mut p_logs, mut p_secret, mut p_cluster, mut p_lb) =
        (Plan::default(), Plan::default(), Plan::default(), Plan::default(), Plan::default());
    let (registry, logs, secret, (cluster, observed_cluster), load_balancer) = tokio::try_join!(
        ecr::reconcile(ctx, &mut p_ecr),
        logs::reconcile(ctx, &mut p_logs),
        secret::reconcile(ctx, &mut p_secret),
        cluster::reconcile(ctx, &mut p_cluster),
        load_balancer::reconcile(
            ctx,
            &mut p_lb,
            network.vpc_id.as_deref(),
            &network.subnet_ids,
            network.load_balancer_security_group_id.as_deref()
        ),
    )?;
    for p in [p_ecr, p_logs, p_secret, p_cluster, p_lb] {
        plan.extend(p);
    }

    // The image: pushed before any task definition can name it.
    let (image_ref, push) = match image {
        ImageSource::Reference(r) => (r.clone(), None),
        ImageSource::Unchanged => {
            let current = service::observe_task(ctx, &service::family(&ctx.stack)).await?.map(|(_, spec)| spec.image);
            (current.unwrap_or_else(|| "(no image deployed yet)".into()), None)
        }
        ImageSource::Built { image, repository } => {
            let repo = repository
                .clone()
                .or_else(|| registry.repository_uri.clone())
                .unwrap_or_else(|| format!("(repository {})", registry.repository));
            if ctx.applying() {
                let report = crate::image::push_to(&ctx.clients, image, &repo, &image.revision).await?;
                ctx.progress(format!(
                    "pushed image {} ({} new blobs, {} bytes)",
                    report.reference, report.blobs_uploaded, report.bytes_uploaded
                ));
                (report.reference.clone(), Some(report))
            } else {
                (format!("{repo}@{}", image.manifest_digest), None)
            }
        }
    };

    let pending = |what: &str, name: &str| format!("(ARN of {what} {name}, once created)");
    let scope = iam::Scope {
        repository_arn: registry.repository_arn.clone().unwrap_or_else(|| pending("repository", &registry.repository)),
        log_group_arn: logs.log_group_arn.clone().unwrap_or_else(|| pending("log group", &logs.log_group)),
        secret_arn: secret.secret_arn.clone().unwrap_or_else(|| pending("secret", &secret.secret_name)),
    };
    let iam = iam::reconcile(ctx, &mut plan, &scope).await?;

    let inputs = capacity::Inputs {
        cluster: &cluster.cluster,
        instance_profile: &iam.instance_profile_name,
        security_group: network.instance_security_group_id.as_deref(),
        subnets: &network.subnet_ids,
    };
    let capacity = capacity::reconcile(ctx, &mut plan, &inputs).await?;
    cluster::reconcile_strategy(ctx, &mut plan, &capacity.capacity_provider, observed_cluster.as_ref()).await?;

    let pending_role = |n: &str| format!("(ARN of role {n}, once created)");
    let (_, execution_name, task_name) = iam::names(&ctx.stack.name);
    let service_inputs = service::Inputs {
        cluster: &cluster.cluster,
        capacity_provider: &capacity.capacity_provider,
        image: &image_ref,
        secret_arn: &scope.secret_arn,
        log_group: &logs.log_group,
        execution_role: &iam.execution_role_arn.clone().unwrap_or_else(|| pending_role(&execution_name)),
        task_role: &iam.task_role_arn.clone().unwrap_or_else(|| pending_role(&task_name)),
        target_group: load_balancer.target_group_arn.as_deref(),
        load_balancer: load_balancer.load_balancer_arn.as_deref(),
        key_changes: secret.value_changes,
    };
    let service = service::reconcile(ctx, &mut plan, &service_inputs).await?;
    Ok((plan, Outputs { network, registry, logs, secret, iam, cluster, capacity, load_balancer, service, push }))
}

/// Deletes every kind in reverse dependency order (Plan mode lists what would go). `purge`
/// deletes the secret at once instead of scheduling its deletion.
pub async fn teardown(ctx: &Ctx, purge: bool) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let observed_cluster = cluster::observe(ctx).await?;
    if observed_cluster.is_some() {
        service::teardown(ctx, &mut plan, &cluster::name(&ctx.stack)).await?;
    }
    load_balancer::teardown(ctx, &mut plan).await?;
    capacity::teardown(ctx, &mut plan, observed_cluster.as_ref()).await?;
    cluster::teardown(ctx, &mut plan).await?;
    logs::teardown(ctx, &mut plan).await?;
    ecr::teardown(ctx, &mut plan).await?;
    secret::teardown(ctx, &mut plan, purge).await?;
    iam::teardown(ctx, &mut plan).await?;
    network::teardown(ctx, &mut plan).await?;
    Ok(plan)
}

/// Anything still tagged with (or named for) the stack after a teardown.
pub async fn sweep(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let mut left = load_balancer::leftovers(ctx).await?;
    left.extend(capacity::leftovers(ctx).await?);
    if let Some(c) = cluster::observe(ctx).await? {
        left.push(format!("ECS cluster {}", c.arn));
    }
    left.extend(logs::leftovers(ctx).await?);
    left.extend(ecr::leftovers(ctx).await?);
    left.extend(secret::leftovers(ctx).await?);
    left.extend(iam::leftovers(ctx).await?);
    left.extend(network::leftovers(ctx).await?);
    Ok(left)
}
