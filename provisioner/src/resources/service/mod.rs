//! The app on ECS: the task definition (`task`), the service behind the target group on our
//! capacity provider (`ecs_service`), and service auto scaling (`scaling`). `down` removes them in
//! reverse and waits until the service is INACTIVE and its tasks are gone, so the capacity
//! provider can be detached.

pub mod ecs_service;
pub mod scaling;
pub mod strategy;
pub mod task;

use aws_smithy_types::DateTime;
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::image::reference::ImageRef;
use serde_json::json;
use stack::OWNERSHIP_TAG;

use crate::image::ImageToRun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::{Change, Ctx, Id, Plan};
use crate::resources::alarms::AlarmOutputs;
use crate::resources::alias::Aliased;
use crate::resources::capacity::CapacityOutputs;
use crate::resources::cluster::ClusterOutputs;
use crate::resources::iam::IamOutputs;
use crate::resources::load_balancer::LoadBalancerOutputs;
use crate::resources::logs::LogOutputs;
use crate::resources::secret::SecretOutputs;
use crate::wait::Wait;

use crate::reconcile::Noun;
pub use ecs_service::{ObservedService, circuit_breaker, diff_service, observe_service};
pub use scaling::resource_label;
pub use task::{CONTAINER, STOP_TIMEOUT_SECONDS, TaskSpec, desired_task, diff_task, family};
/// The nouns of this kind's plan rows.
pub const ECS_SERVICE: Noun = Noun::new("ecs-service");
pub const SERVICE_AUTOSCALING: Noun = Noun::new("service-autoscaling");
pub const TASK_DEFINITION: Noun = Noun::new("task-definition");

/// The ECS service's name (adopted, or the stack's).
pub fn name(stack: &stack::Stack) -> String {
    stack.adopted.service.clone().unwrap_or_else(|| stack.name.clone())
}

/// What the service calls: the service and its revisions by name, the scalable target by the
/// stack's tag, target tracking's alarms by their names.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "ecs:ListTaskDefinitions",
            "ecs:DescribeTaskDefinition",
            "ecs:DescribeServices",
            "ecs:ListTasks",
            "ecs:DescribeTasks",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
        ],
        Scope::Any,
    ),
    // Revisions of the stack's family only, tagged as the stack's.
    Permission::new(
        &["ecs:RegisterTaskDefinition"],
        Scope::Conditioned {
            resources: |c| family_arns(c, &family(c.stack)),
            condition: |c| json!({ "StringEquals": { format!("aws:RequestTag/{OWNERSHIP_TAG}"): c.stack.name } }),
        },
    ),
    // No resource-level permission exists for this one (docs/POSTURE.md).
    Permission::new(&["ecs:DeregisterTaskDefinition"], Scope::Any),
    // The service runs revisions of its own family only, whatever the request names, on the
    // stack's capacity provider, in bridge mode (a request with subnets — awsvpc, Fargate —
    // could place it in any VPC).
    // A request that names no provider passes `ForAllValues` (an explicit EC2 launch type then
    // goes around the provider, onto the stack's own instances only: docs/POSTURE.md). Requiring
    // the key on CreateService would stop CI's first create if ECS did not set it from the
    // strategy, which nothing here can confirm before real AWS.
    Permission::new(
        &["ecs:CreateService", "ecs:UpdateService"],
        Scope::Conditioned { resources: service_arn, condition: service_condition },
    ),
    Permission::new(&["ecs:DeleteService"], Scope::Own(service_arn)),
    // A canary, linear or blue/green service's deployments: found (listed on the service),
    // followed, answered at the gate and rolled back — the stack's service's only.
    Permission::new(&["ecs:ListServiceDeployments"], Scope::Own(service_arn)),
    Permission::new(
        &["ecs:DescribeServiceDeployments", "ecs:ContinueServiceDeployment", "ecs:StopServiceDeployment"],
        Scope::Own(service_deployment_arns),
    ),
    Permission::new(
        &["ecs:TagResource"],
        Scope::Retag(|c| {
            let mut arns = service_arn(c);
            arns.extend(family_arns(c, &family(c.stack)));
            arns
        }),
    ),
    // Scalable targets of ECS services' desired count only: a DynamoDB, RDS or Lambda target
    // tagged as the stack's (TagResource cannot tell them apart) still cannot be deregistered or
    // given a policy.
    Permission::new(
        &["application-autoscaling:RegisterScalableTarget"],
        Scope::Conditioned { resources: |_| vec!["*".into()], condition: |c| ecs_service_targets(c, "aws:RequestTag") },
    ),
    Permission::new(&["application-autoscaling:TagResource"], Scope::TagUnowned),
    Permission::new(
        &[
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:DeleteScalingPolicy",
            "application-autoscaling:DeregisterScalableTarget",
        ],
        Scope::Conditioned {
            resources: |_| vec!["*".into()],
            condition: |c| ecs_service_targets(c, "aws:ResourceTag"),
        },
    ),
    // Target tracking makes its alarms with the caller's CloudWatch permissions; they act on the
    // service's own scaling policies only.
    Permission::new(&["cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"], Scope::Own(target_tracking_alarms)),
    Permission::new(
        &["cloudwatch:PutMetricAlarm"],
        Scope::Conditioned {
            resources: target_tracking_alarms,
            condition: |c| {
                let cluster = crate::resources::cluster::name(c.stack);
                let policies = c.arn(
                    "autoscaling",
                    &format!("scalingPolicy:*:resource/ecs/service/{cluster}/{}:policyName/*", name(c.stack)),
                );
                json!({ "ForAllValues:StringLike": { "cloudwatch:AlarmActions": policies } })
            },
        },
    ),
    Permission::new(
        &["iam:CreateServiceLinkedRole"],
        Scope::ServiceLinkedRoles(&["ecs.application-autoscaling.amazonaws.com"]),
    ),
];

fn target_tracking_alarms(c: &PolicyContext) -> Vec<String> {
    // Target tracking names its two alarms `…/<service>-AlarmHigh-<id>` and `-AlarmLow-<id>`: not
    // `<service>-*`, which would reach a sibling service `<service>-worker` in a shared cluster.
    let prefix = format!("alarm:TargetTracking-service/{}/{}", crate::resources::cluster::name(c.stack), name(c.stack));
    ["AlarmHigh", "AlarmLow"].iter().map(|which| c.arn("cloudwatch", &format!("{prefix}-{which}-*"))).collect()
}

/// The service's revisions, the stack's capacity provider only (an update without a strategy
/// keeps the service's; a create always sends one) and no subnet (bridge networking sends none).
fn service_condition(c: &PolicyContext) -> serde_json::Value {
    let mut condition = crate::resources::cluster::only_the_stacks_provider(c);
    condition["ArnLikeIfExists"] = json!({ "ecs:task-definition": family_arns(c, &family(c.stack)) });
    condition["Null"] = json!({ "ecs:subnet": "true" });
    condition
}

/// The stack's tag (in the request or on the resource, `tag`) on an ECS service's desired-count
/// target.
fn ecs_service_targets(c: &PolicyContext, tag: &str) -> serde_json::Value {
    json!({ "StringEquals": {
        format!("{tag}/{OWNERSHIP_TAG}"): c.stack.name,
        "application-autoscaling:service-namespace": "ecs",
        "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
    }})
}

fn service_arn(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("ecs", &format!("service/{}/{}", crate::resources::cluster::name(c.stack), name(c.stack)))]
}

/// The stack's service and its service deployments (DescribeServiceDeployments is authorized on
/// both, by the Service Authorization Reference).
fn service_deployment_arns(c: &PolicyContext) -> Vec<String> {
    let (cluster, name) = (crate::resources::cluster::name(c.stack), name(c.stack));
    let mut arns = service_arn(c);
    arns.push(c.arn("ecs", &format!("service-deployment/{cluster}/{name}/*")));
    arns
}

/// A task definition family's revisions, as IAM may be asked about them (with or without the
/// revision number).
pub fn family_arns(c: &PolicyContext, family: &str) -> Vec<String> {
    vec![c.arn("ecs", &format!("task-definition/{family}")), c.arn("ecs", &format!("task-definition/{family}:*"))]
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutputs {
    pub service: String,
    pub task_definition_arn: Id,
    pub image: Option<String>,
    /// The deployment `up` started (None when nothing changed).
    pub deployment_id: Option<String>,
}

/// Inputs from earlier kinds.
pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub capacity_provider: &'a str,
    pub image: &'a ImageRef,
    pub secret_arn: &'a Id,
    pub log_group: &'a str,
    pub execution_role: &'a Id,
    pub task_role: &'a Id,
    pub target_group: &'a Id,
    pub load_balancer: &'a Id,
    /// The SLO alarms that roll a deployment back.
    pub alarms: &'a [String],
    /// A new API key is written in this run.
    pub key_changes: bool,
    /// When the secret's current version was created.
    pub key_version_created: Option<DateTime>,
    /// What ECS shifts traffic with (a canary, linear or blue/green strategy).
    pub shift: Option<strategy::Shift<'a>>,
}

/// Reconciles the task definition, the service and its auto scaling.
/// The service's latest task definition, the service and its scaling, read by name before the
/// service's inputs are known (the engine reads them at the start).
#[derive(Debug)]
pub struct Seen {
    task: Option<task::ObservedTask>,
    service: Option<ecs_service::ObservedService>,
    scaling: Option<scaling::ObservedScaling>,
}

/// Reads the latest task definition, the service and its scaling at once.
pub async fn see(ctx: &Ctx) -> Result<Seen, Error> {
    let (cluster, name) = (crate::resources::cluster::name(&ctx.stack), name(&ctx.stack));
    let (family, rid) = (family(&ctx.stack), scaling::resource_id(&cluster, &name));
    let (task, service, scaling) = tokio::try_join!(
        task::observe_latest(ctx, &family),
        ecs_service::observe_service(ctx, &cluster, &name),
        scaling::observe(ctx, &rid),
    )?;
    Ok(Seen { task, service, scaling })
}

/// The task definition, the service and its auto scaling, from what `see` read.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, i: &Inputs<'_>, seen: Seen) -> Result<ServiceOutputs, Error> {
    let Seen { task: seen_task, service: observed, scaling: seen_scaling } = seen;
    let family = family(&ctx.stack);
    let task_inputs = task::TaskInputs {
        image: i.image,
        secret_arn: i.secret_arn,
        log_group: i.log_group,
        execution_role: i.execution_role,
        task_role: i.task_role,
    };
    let want = desired_task(&ctx.stack, &task_inputs);
    let name = name(&ctx.stack);
    let td = task::converge(ctx, plan, &family, &want, &task_inputs, seen_task).await?;
    let (_, deployment_id) = ecs_service::converge(
        ctx,
        plan,
        &name,
        &ecs_service::ServiceInputs {
            cluster: i.cluster,
            capacity_provider: i.capacity_provider,
            task_definition: &td,
            target_group: i.target_group,
            alarms: i.alarms,
            key_changes: i.key_changes,
            key_version_created: i.key_version_created,
            shift: i.shift,
        },
        observed,
    )
    .await?;
    scaling::converge(ctx, plan, i.cluster, &name, i.load_balancer, i.target_group, seen_scaling).await?;
    Ok(ServiceOutputs { service: name, task_definition_arn: td, image: i.image.get().ok(), deployment_id })
}

/// What ECS shifts traffic with, for a canary, linear or blue/green strategy (None: rolling).
fn shift<'a>(lb: &'a LoadBalancerOutputs, iam: &'a IamOutputs) -> Result<Option<strategy::Shift<'a>>, Error> {
    match (&lb.shift, &iam.load_balancer_role_arn) {
        (None, _) => Ok(None),
        (Some(outputs), Some(role)) => Ok(Some(strategy::Shift { outputs, role })),
        (Some(_), None) => Err(Error::Refused(
            "the load balancer shifts traffic but IAM gave no role for ECS to shift it with: a bug, please report it"
                .into(),
        )),
    }
}

/// The service's tasks that have not stopped.
async fn live_tasks(ctx: &Ctx, cluster: &str, service: &str) -> Result<usize, Error> {
    let list = ctx.clients.ecs.list_tasks().cluster(cluster).service_name(service);
    Ok(crate::resources::cluster::all_tasks(list, service).await?.len())
}

/// The names the service derives: the service, its task family and its scalable target.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let cluster = crate::resources::cluster::name(stack);
    let mut names = vec![(ECS_SERVICE, name(stack)), (TASK_DEFINITION, task::family(stack))];
    if stack.service.autoscaling.is_some() {
        names.push((SERVICE_AUTOSCALING, scaling::resource_id(&cluster, &name(stack))));
    }
    names
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "ecs-service",
    nouns: &[ECS_SERVICE, SERVICE_AUTOSCALING, TASK_DEFINITION],
    permissions: PERMISSIONS,
    arn_types: &["ecs:service", "ecs:task-definition", "application-autoscaling:scalable-target"],
    deleted_after: &[],
    derived_names,
    name_limits: &[],
    terraform_types: &[
        "aws_ecs_task_definition",
        "aws_ecs_service",
        "aws_appautoscaling_target",
        "aws_appautoscaling_policy",
    ],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Service>()),
};

/// The service runs the image on the cluster's capacity, with the secret, the log group and the
/// roles, behind the load balancer, rolled back by the alarms.
pub struct Service;

impl Reconciles for Service {
    type Needs = (
        ClusterOutputs,
        CapacityOutputs,
        ImageToRun,
        SecretOutputs,
        LogOutputs,
        IamOutputs,
        LoadBalancerOutputs,
        AlarmOutputs,
        Aliased,
    );
    type Seen = Seen;
    type Gives = ServiceOutputs;

    fn see(ctx: &Ctx) -> Making<'_, Seen> {
        Box::pin(see(ctx))
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, needs: Self::Needs, seen: Seen) -> Making<'a, ServiceOutputs> {
        Box::pin(async move {
            // The alias too: the service changes only once everything else of the stack is done.
            let (cluster, capacity, image, secret, logs, iam, load_balancer, alarms, _aliased) = needs;
            let inputs = Inputs {
                cluster: &cluster.cluster,
                capacity_provider: &capacity.capacity_provider,
                image: &image.reference,
                secret_arn: &secret.secret_arn,
                log_group: &logs.log_group,
                execution_role: &iam.execution_role_arn,
                task_role: &iam.task_role_arn,
                target_group: &load_balancer.target_group_arn,
                load_balancer: &load_balancer.load_balancer_arn,
                alarms: &alarms.rollback_alarms,
                key_changes: secret.value_changes,
                key_version_created: secret.current_version_created,
                shift: shift(&load_balancer, &iam)?,
            };
            reconcile(ctx, plan, &inputs, seen).await
        })
    }
}

/// Auto scaling, the service (scaled to 0, deleted, and followed until it is INACTIVE and its
/// tasks are gone), then every revision of the task definition that carries our tag.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let cluster = &crate::resources::cluster::name(&ctx.stack);
    let name = name(&ctx.stack);
    let ecs = &ctx.clients.ecs;
    scaling::teardown(ctx, plan, cluster, &name).await?;
    if let Some(s) = observe_service(ctx, cluster, &name).await? {
        if ctx.applying() {
            // Either answered "not active" when a lost answer hid that the service was deleted.
            let zero = ecs.update_service().cluster(cluster).service(&name).desired_count(0).send().await;
            crate::error::gone(zero.ctx("scale to zero", &name))?;
            let deleted = ecs.delete_service().cluster(cluster).service(&name).force(true).send().await;
            crate::error::gone(deleted.ctx("delete service", &name))?;
            ctx.wait(
                Wait::Settling(&["Service.Draining"]),
                &format!("service {name} to be INACTIVE and its tasks gone"),
                || async {
                    let (active, tasks) =
                        (observe_service(ctx, cluster, &name).await?.is_some(), live_tasks(ctx, cluster, &name).await?);
                    if !active && tasks == 0 {
                        return Ok(());
                    }
                    ctx.progress(format!("waiting for service {name} to drain ({tasks} tasks left)"));
                    Err(crate::wait::not_yet(
                        "Service.Draining",
                        name.as_str(),
                        format!("still {} with {tasks} tasks", if active { "ACTIVE" } else { "DRAINING" }),
                    ))
                },
            )
            .await?;
            ctx.progress(format!("deleted service {name}"));
        }
        plan.push(ECS_SERVICE, &name, Some(s.arn), Change::delete());
    }
    task::teardown(ctx, plan, &family(&ctx.stack)).await
}

/// What of the service is still there after a teardown: the service, its revisions, its
/// scalable target.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let cluster = &crate::resources::cluster::name(&ctx.stack);
    let name = name(&ctx.stack);
    let mut left = Vec::new();
    if let Some(s) = observe_service(ctx, cluster, &name).await? {
        left.push(format!("ECS service {}", s.arn));
    }
    for arn in task::active_revisions(ctx, &family(&ctx.stack)).await? {
        // Only revisions that carry our tag are ours to report.
        if let Ok(Some(_)) = task::describe(ctx, &arn).await {
            left.push(format!("task definition {arn}"));
        }
    }

    if scaling::observe(ctx, &scaling::resource_id(cluster, &name)).await?.is_some() {
        left.push(format!("scalable target {}", scaling::resource_id(cluster, &name)));
    }
    Ok(left)
}
