//! The driver: runs the graph of the one list of kinds (`graph`), what needs nothing of each other
//! at once, and passes each kind's outputs (ids, ARNs — pending ones in a plan) to the kinds that
//! need them, typed; the plan lists rows in the graph's order whatever finished first. Teardown,
//! the sweep and the census walk the same list (`walk`). A kind declares its node in its own
//! module: this driver names a kind only to hand its outputs to other tools (`Outputs`), to check
//! that the caller could read the secret it is about to make, and to find the image the service
//! runs now (the image is the engine's own step of the graph, no AWS resource).
//!
//! The graph of the example stack (`a ‖ b`: at once; `→`: after), as the kinds' needs make it:
//! (network ‖ certificate: requested, validated in DNS, issued ‖ access-log bucket) → load
//! balancer, listeners → the domain's alias;
//! (repository ‖ log group ‖ secret) → (the image pushed to the repository ‖ IAM, scoped to the
//! repository's, log group's and secret's ARNs); cluster;
//! (network, cluster, IAM) → launch template, Auto Scaling group, capacity provider, the cluster's
//! default strategy; (load balancer, the alarms' SNS topic) → the SLO alarms;
//! everything → task definition, service (rolled back by those alarms), service auto scaling.
//! Every kind reads what it can by name at the start, while what it needs is still being made.

use serde::Serialize;

pub mod graph;
mod read;
pub mod walk;
pub use read::{Located, read_outputs};

use crate::error::Error;
use crate::image::ImageToRun;
use crate::image::reference::ImageRef;
use crate::reconcile::kind::{Edge, Given, Making, Node, Reconciles};
use crate::reconcile::{Ctx, Id, Plan};
use crate::resources::KINDS;
use crate::resources::alarms::AlarmOutputs;
use crate::resources::capacity::CapacityOutputs;
use crate::resources::certificate::CertificateOutputs;
use crate::resources::cluster::ClusterOutputs;
use crate::resources::ecr::EcrOutputs;
use crate::resources::iam::IamOutputs;
use crate::resources::load_balancer::LoadBalancerOutputs;
use crate::resources::logs::LogOutputs;
use crate::resources::network::NetworkOutputs;
use crate::resources::secret::{self, SecretOutputs};
use crate::resources::service::{self, ServiceOutputs};

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

/// Observes every kind, records changes in the plan, and in Apply mode makes them: the graph of
/// `KINDS` (`graph`), run along its edges.
pub async fn reconcile(ctx: &Ctx, image: &ImageSource) -> Result<(Plan, Outputs), Error> {
    let vertices = graph::vertices(KINDS, STEPS);
    let order = graph::check(&vertices, &seeded()).map_err(|e| Error::Refused(format!("internal error: {e}")))?;
    // Before anything is read or changed: what a kind could not make (an image the instances
    // could not run), then whether the caller could read the secret it is about to make (a plan
    // changes nothing and reads meanwhile).
    graph::refuse(&ctx.stack, &vertices)?;
    let caller_reads = async || secret::check_caller_reads(&ctx.stack, &ctx.clients.identity().await?);
    if ctx.applying() {
        caller_reads().await?;
    }
    let given = Given::default();
    given.put(image.clone());
    let reads_meanwhile = async { if ctx.applying() { Ok(()) } else { caller_reads().await } };
    let (plan, ()) = tokio::try_join!(Box::pin(graph::run(ctx, &vertices, &order, &given)), reads_meanwhile)?;
    walk::assert_registered(&plan);
    Ok((plan, outputs(&given)))
}

/// What the engine's caller gives the graph before it runs.
fn seeded() -> Vec<Edge> {
    vec![Edge::of::<ImageSource>()]
}

/// What the graph gave, as other tools read it.
fn outputs(given: &Given) -> Outputs {
    Outputs {
        network: given.get(),
        registry: given.get(),
        logs: given.get(),
        secret: given.get(),
        iam: given.get(),
        cluster: given.get(),
        capacity: given.get(),
        load_balancer: given.get(),
        certificate: given.get(),
        alarms: given.get(),
        service: given.get(),
        push: given.get::<ImageToRun>().push,
    }
}

/// The engine's own steps in the graph: what is no kind of AWS resource.
const STEPS: &[graph::Vertex] = &[graph::Vertex { name: "image", node: Node::of::<ImageStep>(), kind: None }];

/// The image the service runs: named, running, or built and pushed to the repository.
struct ImageStep;

impl Reconciles for ImageStep {
    type Needs = (ImageSource, EcrOutputs);
    type Seen = ();
    type Gives = ImageToRun;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, _: &'a mut Plan, (image, registry): Self::Needs, (): ()) -> Making<'a, ImageToRun> {
        Box::pin(async move {
            let (reference, push) = image_reference(ctx, &image, &registry).await?;
            Ok(ImageToRun { reference, push })
        })
    }
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
