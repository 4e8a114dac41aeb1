//! The driver: runs the resource kinds in dependency order (independent ones concurrently) and
//! passes each kind's outputs (ids, ARNs — pending ones in a plan) to the kinds that need them.
//! Teardown, the sweep and the permissions walk the one list of kinds (`crate::kinds`); the kinds
//! know only the vocabulary in `reconcile`.
//!
//! Order: network and the HTTPS certificate (requested, validated in DNS, issued) concurrently |
//! (repository, log group, secret, cluster, load balancer and the domain's alias) concurrently | the
//! image pushed to the repository | IAM (scoped to the ARNs of the repository, log group and
//! secret) | launch template, Auto Scaling group, capacity provider | the cluster's default
//! strategy | the alarms' SNS topic (if asked for), then the SLO alarms (on the load balancer's
//! metrics) | task definition, service (rolled back by those alarms), service auto scaling.

use serde::Serialize;

mod read;
pub use read::{Located, read_outputs};

use crate::dns;
use crate::error::Error;
use crate::image::reference::ImageRef;
use crate::reconcile::{Ctx, Id, Plan};
use crate::resources::alarms::{self, AlarmOutputs};
use crate::resources::alias;
use crate::resources::capacity::{self, CapacityOutputs};
use crate::resources::certificate::{self, CertificateOutputs};
use crate::resources::cluster::{self, ClusterOutputs};
use crate::resources::ecr::{self, EcrOutputs};
use crate::resources::iam::{self, IamOutputs};
use crate::resources::load_balancer::{self, LoadBalancerOutputs};
use crate::resources::log_bucket;
use crate::resources::logs::{self, LogOutputs};
use crate::resources::network::{self, NetworkOutputs};
use crate::resources::secret::{self, SecretOutputs};
use crate::resources::service::{self, ServiceOutputs};
use crate::resources::topic;

/// What the stack's resources expose to each other and to other tools (`provisioner outputs`).
#[derive(Debug, Clone, Serialize)]
pub struct Outputs {
    pub network: NetworkOutputs,
    pub registry: EcrOutputs,
    pub logs: LogOutputs,
    pub secret: SecretOutputs,
    pub iam: IamOutputs,
    pub cluster: ClusterOutputs,
    pub capacity: CapacityOutputs,
    pub load_balancer: LoadBalancerOutputs,
    /// The HTTPS listener's certificate (None without HTTPS).
    pub certificate: Option<CertificateOutputs>,
    /// The SLO alarms that roll a deployment back.
    pub alarms: AlarmOutputs,
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
    secret::check_caller_reads(&ctx.stack, &ctx.clients.identity().await?)?;
    let mut plan = Plan::default();
    // ACM validates while the network is built: minutes that need not add up.
    let mut p_certificate = Plan::default();
    let (network, certificate) =
        tokio::try_join!(network::reconcile(ctx, &mut plan), certificate::reconcile(ctx, &mut p_certificate))?;
    plan.extend(p_certificate);

    let (mut p_ecr, mut p_logs, mut p_secret, mut p_cluster, mut p_lb) =
        (Plan::default(), Plan::default(), Plan::default(), Plan::default(), Plan::default());
    let (registry, logs, secret, (cluster, observed_cluster), load_balancer) = tokio::try_join!(
        ecr::reconcile(ctx, &mut p_ecr),
        logs::reconcile(ctx, &mut p_logs),
        secret::reconcile(ctx, &mut p_secret),
        cluster::reconcile(ctx, &mut p_cluster),
        front_door(ctx, &mut p_lb, &network, certificate.as_ref()),
    )?;
    for p in [p_ecr, p_logs, p_secret, p_cluster, p_lb] {
        plan.extend(p);
    }

    let (image_ref, push) = image_reference(ctx, image, &registry).await?;

    let iam = iam::reconcile(ctx, &mut plan, &iam_scope(ctx, &registry, &logs, &secret).await?, iam::Part::All).await?;

    let inputs = capacity::Inputs {
        cluster: &cluster.cluster,
        instance_profile: &iam.instance_profile_name,
        security_group: &network.instance_security_group_id,
        subnets: &network.subnet_ids,
    };
    let capacity = capacity::reconcile(ctx, &mut plan, &inputs).await?;
    cluster::reconcile_strategy(ctx, &mut plan, &capacity.capacity_provider, observed_cluster.as_ref()).await?;

    let topic = topic::reconcile(ctx, &mut plan).await?;
    let (lb, tg) = (&load_balancer.load_balancer_arn, &load_balancer.target_group_arn);
    let alarms = alarms::reconcile(ctx, &mut plan, lb, tg, topic.as_deref()).await?;
    let inputs = service::Inputs {
        cluster: &cluster.cluster,
        capacity_provider: &capacity.capacity_provider,
        image: &image_ref,
        secret_arn: &secret.secret_arn,
        log_group: &logs.log_group,
        execution_role: &iam.execution_role_arn,
        task_role: &iam.task_role_arn,
        target_group: &load_balancer.target_group_arn,
        load_balancer: &load_balancer.load_balancer_arn,
        alarms: &alarms.rollback_alarms,
        key_changes: secret.value_changes,
        key_version_created: secret.current_version_created,
    };
    let service = service::reconcile(ctx, &mut plan, &inputs).await?;
    crate::kinds::assert_registered(&plan);
    Ok((
        plan,
        Outputs {
            network,
            registry,
            logs,
            secret,
            iam,
            cluster,
            capacity,
            load_balancer,
            certificate,
            alarms,
            service,
            push,
        },
    ))
}

/// What the roles may reach: the repository, the log group and the secret, by ARN.
async fn iam_scope(
    ctx: &Ctx,
    registry: &EcrOutputs,
    logs: &LogOutputs,
    secret: &SecretOutputs,
) -> Result<iam::Scope, Error> {
    let identity = ctx.clients.identity().await?;
    Ok(iam::Scope {
        repository_arn: registry.repository_arn.clone(),
        log_group_arn: logs.log_group_arn.clone(),
        secret_arn: secret.secret_arn.clone(),
        account: identity.account,
        partition: identity.partition,
    })
}

/// The access-log bucket, the load balancer (with its target group and listeners) and the
/// domain's alias to it. The bucket's policy must be in place before the load balancer is told to
/// log there.
async fn front_door(
    ctx: &Ctx,
    plan: &mut Plan,
    network: &NetworkOutputs,
    certificate: Option<&CertificateOutputs>,
) -> Result<LoadBalancerOutputs, Error> {
    let log_bucket = log_bucket::reconcile(ctx, plan).await?;
    let inputs = load_balancer::Inputs {
        vpc: &network.vpc_id,
        subnets: &network.subnet_ids,
        security_group: &network.load_balancer_security_group_id,
        log_bucket: log_bucket.as_deref(),
        certificate: certificate.map(|c| &c.certificate_arn),
    };
    let lb = load_balancer::reconcile(ctx, plan, &inputs).await?;
    if let (Some(domain), Some(zone)) = (dns::domain(&ctx.stack), certificate.and_then(|c| c.zone.as_ref())) {
        let target = alias::Target { dns_name: lb.dns_name.clone(), zone_id: lb.hosted_zone_id.clone() };
        alias::reconcile(ctx, plan, zone, domain, &target).await?;
    }
    Ok(lb)
}

/// The image the task definition names: stack.yaml's reference, the one running now, or the one
/// built here — pushed (in Apply mode) before any task definition can name it.
async fn image_reference(
    ctx: &Ctx,
    image: &ImageSource,
    registry: &EcrOutputs,
) -> Result<(ImageRef, Option<crate::image::PushReport>), Error> {
    match image {
        ImageSource::Reference(r) => Ok((ImageRef::parse(r), None)),
        ImageSource::Unchanged => {
            let current = service::task::observe_latest(ctx, &service::family(&ctx.stack)).await?;
            Ok((current.map_or_else(ImageRef::first_deploy, |t| ImageRef::parse(&t.spec.image)), None))
        }
        ImageSource::Built { image, repository } => {
            let repository = repository.clone().map_or_else(|| registry.repository_uri.clone(), Id::Known);
            match (ctx.applying(), repository.known()) {
                (true, Some(repo)) => {
                    let report = crate::image::push_to(&ctx.clients, image, repo, &image.tag).await?;
                    ctx.progress(format!(
                        "pushed image {} ({} new blobs, {} bytes)",
                        report.reference, report.blobs_uploaded, report.bytes_uploaded
                    ));
                    Ok((ImageRef::parse(&report.reference), Some(report)))
                }
                (true, None) => Err(Error::NotYetKnown(format!("the URI of repository {}", registry.repository))),
                (false, _) => Ok((ImageRef::built(repository, &image.manifest_digest), None)),
            }
        }
    }
}
