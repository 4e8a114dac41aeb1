//! The driver: runs the resource kinds along their dependencies, what needs nothing of each other
//! at once, and passes each kind's outputs (ids, ARNs — pending ones in a plan) to the kinds that
//! need them. The plan lists rows in one order whatever finished first.
//! Teardown, the sweep and the permissions walk the one list of kinds (`crate::kinds`); the kinds
//! know only the vocabulary in `reconcile`.
//!
//! Order (`a ‖ b`: at once; `→`: after):
//! ( (network ‖ certificate: requested, validated in DNS, issued ‖ access-log bucket) → load
//!   balancer, listeners, the domain's alias )
//! ‖ ( (repository ‖ log group ‖ secret ‖ cluster ‖ the alarms' SNS topic) → (the image pushed to
//!   the repository ‖ IAM, scoped to the repository's, log group's and secret's ARNs)
//!   → once the network is done too: launch template, Auto Scaling group, capacity provider, the
//!   cluster's default strategy )
//! → the SLO alarms on the load balancer's metrics
//! → task definition, service (rolled back by those alarms), service auto scaling.

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
    /// Built from app/ here, whose sources have the digest `sources`: in Apply mode, unless the
    /// service already runs an image built from them, built and pushed to `repository` (default:
    /// the stack's ECR repository).
    Build { sources: String, repository: Option<String>, workspace: std::path::PathBuf },
    /// Whatever the latest task definition runs (for `status` and `outputs`, which build nothing).
    Unchanged,
}

/// Observes every kind, records changes in the plan, and in Apply mode makes them.
pub async fn reconcile(ctx: &Ctx, image: &ImageSource) -> Result<(Plan, Outputs), Error> {
    // Before anything is observed or changed.
    capacity::check_architecture(&ctx.stack, capacity::image_arch(&ctx.stack))?;
    // Who the caller is: checked before any change; a plan changes nothing and reads meanwhile.
    let caller_reads = async || secret::check_caller_reads(&ctx.stack, &ctx.clients.identity().await?);
    if ctx.applying() {
        caller_reads().await?;
    }
    // Two chains that need nothing of each other run at once: the network, the certificate and the
    // front door on them; and the stack's own parts (repository, log group, secret, cluster,
    // topic), the image and the roles scoped to them. What later kinds can read by name alone is
    // read meanwhile, so that they wait only for their inputs, not for their own reads too.
    let (mut front, mut own, mut p_capacity) = (Plans::default(), Plans::default(), Plan::default());
    // The instances need the network and the roles, not the load balancer: the network hands its
    // outputs over as soon as it is done.
    let (network_done, network_known) = tokio::sync::oneshot::channel();
    // Boxed: these futures hold every kind's at once, too large for the stack of a debug build.
    let (edge, (base, capacity), later, ()) = tokio::try_join!(
        Box::pin(edge(ctx, &mut front, network_done)),
        Box::pin(own_parts_and_capacity(ctx, &mut own, &mut p_capacity, image, network_known)),
        Box::pin(see_later(ctx)),
        async { if ctx.applying() { Ok(()) } else { caller_reads().await } },
    )?;
    let Edge { network, certificate, load_balancer } = edge;
    let Base { registry, logs, secret, cluster, observed_cluster: _, topic, image_ref, push, iam } = base;

    // The alarms need the load balancer's metrics.
    let mut p_alarms = Plan::default();
    let (lb, tg) = (&load_balancer.load_balancer_arn, &load_balancer.target_group_arn);
    let alarms = alarms::reconcile(ctx, &mut p_alarms, lb, tg, topic.as_deref(), later.alarms).await?;

    let mut p_service = Plan::default();
    let ready =
        Ready { cluster: &cluster, capacity: &capacity, image: &image_ref, secret: &secret, logs: &logs, iam: &iam };
    let service = Box::pin(run_service(ctx, &mut p_service, &ready, &load_balancer, &alarms, later.service)).await?;

    // The plan in dependency order, whatever finished first.
    let mut plan = Plan::default();
    let (first, then) = (
        [front.network, front.certificate, own.ecr, own.logs, own.secret, own.cluster],
        [front.log_bucket, front.load_balancer, own.iam, p_capacity, own.topic, p_alarms, p_service],
    );
    first.into_iter().chain(then).for_each(|part| plan.extend(part));
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

/// What the service runs with, made by the kinds before it.
struct Ready<'a> {
    cluster: &'a ClusterOutputs,
    capacity: &'a CapacityOutputs,
    image: &'a ImageRef,
    secret: &'a SecretOutputs,
    logs: &'a LogOutputs,
    iam: &'a IamOutputs,
}

/// The task definition, the service (behind the load balancer, rolled back by the alarms) and
/// its auto scaling.
async fn run_service(
    ctx: &Ctx,
    plan: &mut Plan,
    ready: &Ready<'_>,
    load_balancer: &LoadBalancerOutputs,
    alarms: &AlarmOutputs,
    seen: service::Seen,
) -> Result<ServiceOutputs, Error> {
    let inputs = service::Inputs {
        cluster: &ready.cluster.cluster,
        capacity_provider: &ready.capacity.capacity_provider,
        image: ready.image,
        secret_arn: &ready.secret.secret_arn,
        log_group: &ready.logs.log_group,
        execution_role: &ready.iam.execution_role_arn,
        task_role: &ready.iam.task_role_arn,
        target_group: &load_balancer.target_group_arn,
        load_balancer: &load_balancer.load_balancer_arn,
        alarms: &alarms.rollback_alarms,
        key_changes: ready.secret.value_changes,
        key_version_created: ready.secret.current_version_created,
    };
    service::reconcile(ctx, plan, &inputs, seen).await
}

/// What the kinds after the two chains read by name alone, at the start.
struct Later {
    alarms: alarms::Seen,
    service: service::Seen,
}

async fn see_later(ctx: &Ctx) -> Result<Later, Error> {
    let (alarms, service) = tokio::try_join!(alarms::see(ctx), service::see(ctx))?;
    Ok(Later { alarms, service })
}

/// The stack's own parts (`stack_parts`), then, once the network is done too, the capacity on
/// them (launch template, Auto Scaling group, capacity provider, the cluster's default strategy),
/// while the load balancer is still being made. The capacity is read at the start.
async fn own_parts_and_capacity(
    ctx: &Ctx,
    plans: &mut Plans,
    plan: &mut Plan,
    image: &ImageSource,
    network: tokio::sync::oneshot::Receiver<NetworkOutputs>,
) -> Result<(Base, CapacityOutputs), Error> {
    let (base, seen) = tokio::try_join!(stack_parts(ctx, plans, image), capacity::see(ctx))?;
    // The sender goes only with a failed network, whose error is the run's.
    let network = network.await.map_err(|_| Error::NotYetKnown("the network".into()))?;
    let inputs = capacity::Inputs {
        cluster: &base.cluster.cluster,
        instance_profile: &base.iam.instance_profile_name,
        security_group: &network.instance_security_group_id,
        subnets: &network.subnet_ids,
    };
    let capacity = capacity::reconcile(ctx, plan, &inputs, seen).await?;
    cluster::reconcile_strategy(ctx, plan, &capacity.capacity_provider, base.observed_cluster.as_ref()).await?;
    Ok((base, capacity))
}

/// Each concurrent part's rows, kept apart so the plan reads in one order whatever finished first.
#[derive(Default)]
struct Plans {
    network: Plan,
    certificate: Plan,
    log_bucket: Plan,
    load_balancer: Plan,
    ecr: Plan,
    logs: Plan,
    secret: Plan,
    cluster: Plan,
    topic: Plan,
    iam: Plan,
}

/// The network and the certificate, and the front door on them.
struct Edge {
    network: NetworkOutputs,
    certificate: Option<CertificateOutputs>,
    load_balancer: LoadBalancerOutputs,
}

/// The network, the HTTPS certificate (requested, validated in DNS, issued) and the access-log
/// bucket at once — ACM validates while the network is built: minutes that need not add up —
/// then the load balancer on them.
async fn edge(
    ctx: &Ctx,
    plans: &mut Plans,
    network_done: tokio::sync::oneshot::Sender<NetworkOutputs>,
) -> Result<Edge, Error> {
    let network = async {
        let network = network::reconcile(ctx, &mut plans.network).await?;
        // The capacity waits for it, not for the load balancer; it may have failed meanwhile.
        let _ = network_done.send(network.clone());
        Ok(network)
    };
    let (network, certificate, log_bucket, seen) = tokio::try_join!(
        network,
        certificate::reconcile(ctx, &mut plans.certificate),
        log_bucket::reconcile(ctx, &mut plans.log_bucket),
        load_balancer::see(ctx),
    )?;
    let on = FrontDoor { network: &network, certificate: certificate.as_ref(), log_bucket: log_bucket.as_deref() };
    let load_balancer = front_door(ctx, &mut plans.load_balancer, &on, seen).await?;
    Ok(Edge { network, certificate, load_balancer })
}

/// What the stack owns apart from its network, and the image and roles that depend on it.
struct Base {
    registry: EcrOutputs,
    logs: LogOutputs,
    secret: SecretOutputs,
    cluster: ClusterOutputs,
    observed_cluster: Option<cluster::ObservedCluster>,
    topic: Option<String>,
    image_ref: ImageRef,
    push: Option<crate::image::PushReport>,
    iam: IamOutputs,
}

/// Repository, log group, secret, cluster and the alarms' topic at once; then the image (pushed
/// to the repository) and the roles (scoped to the repository's, log group's and secret's ARNs).
async fn stack_parts(ctx: &Ctx, plans: &mut Plans, image: &ImageSource) -> Result<Base, Error> {
    let (registry, logs, secret, (cluster, observed_cluster), topic, seen_iam) = tokio::try_join!(
        ecr::reconcile(ctx, &mut plans.ecr),
        logs::reconcile(ctx, &mut plans.logs),
        secret::reconcile(ctx, &mut plans.secret),
        cluster::reconcile(ctx, &mut plans.cluster),
        topic::reconcile(ctx, &mut plans.topic),
        iam::see(ctx),
    )?;
    let scope = iam_scope(ctx, &registry, &logs, &secret).await?;
    let ((image_ref, push), iam) = tokio::try_join!(
        image_reference(ctx, image, &registry),
        iam::reconcile(ctx, &mut plans.iam, &scope, iam::Part::All, seen_iam)
    )?;
    Ok(Base { registry, logs, secret, cluster, observed_cluster, topic, image_ref, push, iam })
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

/// What the front door stands on.
struct FrontDoor<'a> {
    network: &'a NetworkOutputs,
    certificate: Option<&'a CertificateOutputs>,
    log_bucket: Option<&'a str>,
}

/// The load balancer (with its target group and listeners) and the domain's alias to it. The
/// access-log bucket's policy is in place before the load balancer is told to log there.
async fn front_door(
    ctx: &Ctx,
    plan: &mut Plan,
    on: &FrontDoor<'_>,
    seen: load_balancer::Seen,
) -> Result<LoadBalancerOutputs, Error> {
    let FrontDoor { network, certificate, log_bucket } = *on;
    let inputs = load_balancer::Inputs {
        vpc: &network.vpc_id,
        subnets: &network.subnet_ids,
        security_group: &network.load_balancer_security_group_id,
        log_bucket,
        certificate: certificate.map(|c| &c.certificate_arn),
    };
    let lb = load_balancer::reconcile(ctx, plan, &inputs, seen).await?;
    if let (Some(domain), Some(zone)) = (dns::domain(&ctx.stack), certificate.and_then(|c| c.zone.as_ref())) {
        let target = alias::Target { dns_name: lb.dns_name.clone(), zone_id: lb.hosted_zone_id.clone() };
        alias::reconcile(ctx, plan, zone, domain, &target).await?;
    }
    Ok(lb)
}

/// The image the task definition names: stack.yaml's reference, the one running now, or one
/// built here — the running one when it was built from the same sources, else (in Apply mode)
/// built and pushed before any task definition can name it.
async fn image_reference(
    ctx: &Ctx,
    image: &ImageSource,
    registry: &EcrOutputs,
) -> Result<(ImageRef, Option<crate::image::PushReport>), Error> {
    let running = async || service::task::observe_latest(ctx, &service::family(&ctx.stack)).await;
    match image {
        ImageSource::Reference(r) => Ok((ImageRef::parse(r), None)),
        ImageSource::Unchanged => Ok((
            running().await?.map_or_else(ImageRef::first_deploy, |t| {
                let r = ImageRef::parse(&t.spec.image);
                ImageRef { sources: t.spec.sources, ..r }
            }),
            None,
        )),
        ImageSource::Build { sources, repository, workspace } => {
            let repository = repository.clone().map_or_else(|| registry.repository_uri.clone(), Id::Known);
            // Built from these sources and pushed there already: nothing to build.
            if let Some(t) = running().await?.filter(|t| t.spec.sources.as_deref() == Some(sources.as_str())) {
                let r = ImageRef::parse(&t.spec.image);
                if r.repository == repository {
                    return Ok((r.built_from(sources), None));
                }
            }
            match (ctx.applying(), repository.known()) {
                (true, Some(repo)) => build_and_push(ctx, repo, sources, workspace).await,
                (true, None) => Err(Error::NotYetKnown(format!("the URI of repository {}", registry.repository))),
                (false, _) => Ok((ImageRef::unbuilt(repository, sources), None)),
            }
        }
    }
}

/// Builds the app's image (a release build: minutes, on a thread of its own) and pushes it.
async fn build_and_push(
    ctx: &Ctx,
    repository: &str,
    sources: &str,
    workspace: &std::path::Path,
) -> Result<(ImageRef, Option<crate::image::PushReport>), Error> {
    ctx.progress("building the app image (service.image: build)…".to_owned());
    let built = crate::image::build::build_app_in(workspace).await?;
    let report = crate::image::push_to(&ctx.clients, &built, repository, &built.tag).await?;
    ctx.progress(format!(
        "pushed image {} ({} new blobs, {} bytes)",
        report.reference, report.blobs_uploaded, report.bytes_uploaded
    ));
    Ok((ImageRef::parse(&report.reference).built_from(sources), Some(report)))
}
