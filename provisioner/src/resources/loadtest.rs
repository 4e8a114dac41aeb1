//! The load generators on ECS (`provisioner loadtest`): their security group (no ingress; egress
//! to HTTPS and the target's port only), their Fargate task definition (family
//! `<stack>-loadtest`, registered for one run and deregistered after it), their tasks (RunTask on
//! Fargate in the stack's public subnets, one per worker with its own command line), and what
//! they leave in their log streams (`loadtest/loadtest/<task id>`).
//!
//! Fargate, not the stack's EC2 capacity: a run lasts minutes, needs no instance sized or
//! drained for it, and the app's capacity stays the app's.

use std::collections::BTreeSet;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, ContainerOverride, CpuArchitecture,
    DesiredStatus, LaunchType, LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode, OsFamily,
    RuntimePlatform, Secret, TaskOverride, Ulimit, UlimitName,
};

use crate::error::{AwsContext, Error, gone};
use serde_json::json;
use stack::OWNERSHIP_TAG;

use crate::reconcile::Noun;
use crate::reconcile::kind::Kind;
use crate::reconcile::permission::{Permission, Scope};
use crate::reconcile::{Change, Ctx, Id, Plan, tags};
use crate::resources::cluster;
use crate::resources::network::SECURITY_GROUP;
use crate::resources::network::security_group::{self, Rule, Source};
use crate::resources::service::TASK_DEFINITION;
use crate::resources::service::{family_arns, task};
use crate::wait::Wait;
/// The nouns of this kind's plan rows.
pub const LOADTEST_TASK: Noun = Noun::new("loadtest-task");

pub const CONTAINER: &str = "loadtest";
/// `startedBy` of every worker task: how a run (or the next one) finds them.
pub const STARTED_BY: &str = "konnichiwa-loadtest";
/// The tag that tells worker tasks from the service's tasks in the same cluster (the deploy role
/// may stop only those).
pub const WORKER_TAG: (&str, &str) = ("konnichiwa:role", "loadtest-worker");
/// SIGTERM -> SIGKILL: time for an interrupted worker to print its result.
const STOP_TIMEOUT_SECONDS: i32 = 30;

pub fn family(stack: &stack::Stack) -> String {
    format!("{}-loadtest", stack.name)
}

pub fn security_group_name(stack: &stack::Stack) -> String {
    format!("{}-loadtest", stack.name)
}

/// The log stream a worker task writes to.
pub fn stream(task_id: &str) -> String {
    format!("{}{task_id}", stream_prefix())
}

/// What every worker's stream name starts with (the awslogs prefix and container).
pub fn stream_prefix() -> String {
    format!("{CONTAINER}/{CONTAINER}/")
}

/// What the load generators call beyond what `up` does: running tasks of their family only,
/// tagging them only as RunTask starts them, stopping only tasks of the stack's cluster that
/// carry the worker tag (never the service's). Their lines are read with the log group's
/// FilterLogEvents (`logs::PERMISSIONS`).
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &["ecs:RegisterTaskDefinition"],
        Scope::Conditioned {
            resources: |c| family_arns(c, &family(c.stack)),
            condition: |c| json!({ "StringEquals": { format!("aws:RequestTag/{OWNERSHIP_TAG}"): c.stack.name } }),
        },
    ),
    // The workers' family, in the stack's cluster only.
    Permission::new(
        &["ecs:RunTask"],
        Scope::Conditioned {
            resources: |c| family_arns(c, &family(c.stack)),
            // Workers run on Fargate (no provider); none of another stack's providers either.
            condition: |c| {
                let mut condition = crate::resources::cluster::only_the_stacks_provider(c);
                condition["ArnEquals"] = json!({ "ecs:cluster": cluster::cluster_arn(c) });
                condition
            },
        },
    ),
    Permission::new(&["ecs:TagResource"], Scope::Retag(|c| family_arns(c, &family(c.stack)))),
    Permission::new(&["ecs:TagResource"], Scope::TagOnCreate { key: "ecs:CreateAction", creates: &["RunTask"] }),
    Permission::new(
        &["ecs:StopTask"],
        Scope::TaggedWith {
            resources: |c| vec![c.arn("ecs", &format!("task/{}/*", cluster::name(c.stack)))],
            key: WORKER_TAG.0,
            value: WORKER_TAG.1,
        },
    ),
];

/// Fargate's CPU units and the memory (MiB) each allows.
pub fn check_size(cpu: u32, memory: u32) -> Result<(), String> {
    let (low, high, step) = match cpu {
        256 => (512, 2048, 512),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        _ => return Err(format!("--worker-cpu {cpu}: Fargate takes 256, 512, 1024, 2048 or 4096 CPU units")),
    };
    let fits = (low..=high).contains(&memory) && (memory == 512 || memory.is_multiple_of(step));
    if fits {
        Ok(())
    } else {
        Err(format!(
            "--worker-memory {memory}: with {cpu} CPU units Fargate takes {low}–{high} MiB in steps of {step} (e.g. {})",
            low.max(2 * cpu)
        ))
    }
}

/// Egress of the workers' group: HTTPS (the image, CloudWatch Logs, Secrets Manager, an https
/// target) and the target's port. DNS to the VPC's resolver is not filtered by security groups.
pub fn egress(target_port: u16) -> BTreeSet<Rule> {
    [443, i32::from(target_port)]
        .into_iter()
        .map(|port| Rule { protocol: "tcp".into(), from: port, to: port, source: Source::Cidr("0.0.0.0/0".into()) })
        .collect()
}

/// The workers' group, created on first use (`down` deletes it with the stack's other groups).
pub async fn converge_security_group(ctx: &Ctx, plan: &mut Plan, vpc: &Id, target_port: u16) -> Result<String, Error> {
    let name = security_group_name(&ctx.stack);
    let observed = security_group::observe(ctx, vpc, &name).await?;
    let id = security_group::converge_rules(
        ctx,
        plan,
        vpc,
        observed,
        &name,
        "Konnichiwa load generators: no ingress; egress to HTTPS and the target's port",
        BTreeSet::new(),
        egress(target_port),
    )
    .await?;
    Ok(id.get()?.to_owned())
}

/// What a worker task definition is made of.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub image: String,
    pub cpu: u32,
    pub memory: u32,
    pub arm64: bool,
    pub execution_role: String,
    pub log_group: String,
    /// The API-key secret, when the mix needs the key.
    pub api_key_secret: Option<String>,
}

/// Registers the run's revision of the family; its ARN.
pub async fn register(ctx: &Ctx, spec: &WorkerSpec) -> Result<String, Error> {
    let family = family(&ctx.stack);
    let refused = |e: aws_sdk_ecs::error::BuildError| Error::Refused(e.to_string());
    let log = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", &spec.log_group)
        .options("awslogs-region", &ctx.stack.region)
        .options("awslogs-stream-prefix", CONTAINER)
        // Blocking (the default): the result lines must reach the stream, not be dropped.
        .options("mode", "blocking")
        .build()
        .map_err(refused)?;
    let secrets = spec
        .api_key_secret
        .iter()
        .map(|arn| Secret::builder().name("API_KEY").value_from(arn).build().map_err(refused))
        .collect::<Result<Vec<_>, _>>()?;
    // One connection per user or per 10 req/s: far beyond Fargate's default of 1024 files.
    let nofile =
        Ulimit::builder().name(UlimitName::Nofile).soft_limit(65_535).hard_limit(65_535).build().map_err(refused)?;
    let container = ContainerDefinition::builder()
        .name(CONTAINER)
        .image(&spec.image)
        .essential(true)
        .memory(i32::try_from(spec.memory).unwrap_or(i32::MAX))
        .readonly_root_filesystem(true)
        .set_secrets(Some(secrets))
        .ulimits(nofile)
        .log_configuration(log)
        .stop_timeout(STOP_TIMEOUT_SECONDS)
        .build();
    let platform = RuntimePlatform::builder()
        .operating_system_family(OsFamily::Linux)
        .cpu_architecture(if spec.arm64 { CpuArchitecture::Arm64 } else { CpuArchitecture::X8664 })
        .build();
    let tags = tags::ecs(&ctx.stack);
    let out = ctx
        .wait(Wait::Propagation, "the execution role to be usable", || async {
            ctx.clients
                .ecs
                .register_task_definition()
                .family(&family)
                .network_mode(NetworkMode::Awsvpc)
                .requires_compatibilities(Compatibility::Fargate)
                .cpu(spec.cpu.to_string())
                .memory(spec.memory.to_string())
                .execution_role_arn(&spec.execution_role)
                .runtime_platform(platform.clone())
                .container_definitions(container.clone())
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .ctx("register task definition", &family)
        })
        .await?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_owned)
        .ok_or_else(|| Error::Refused("RegisterTaskDefinition returned no task definition".into()))
}

/// The family's ACTIVE revisions (a killed run's leftovers, or this run's), newest first.
pub async fn active_revisions(ctx: &Ctx) -> Result<Vec<String>, Error> {
    task::active_revisions(ctx, &family(&ctx.stack)).await
}

pub async fn deregister(ctx: &Ctx, arn: &str) -> Result<(), Error> {
    let r = ctx.clients.ecs.deregister_task_definition().task_definition(arn).send().await;
    gone(r.ctx("deregister task definition", arn))
}

/// The family's tasks that are not stopped (or not yet told to stop); none without a cluster.
pub async fn running_tasks(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let list = ctx
        .clients
        .ecs
        .list_tasks()
        .cluster(cluster::name(&ctx.stack))
        .family(family(&ctx.stack))
        .desired_status(DesiredStatus::Running);
    cluster::all_tasks(list, "the load generators").await
}

/// Where a worker runs and what it is told.
pub struct Launch<'a> {
    pub task_definition: &'a str,
    pub subnets: &'a [String],
    pub security_group: &'a str,
    pub command: Vec<String>,
    /// Same for a retry of the same worker of the same run: a lost answer starts no second task.
    pub client_token: String,
}

/// Refuses a worker command that would make RunTask's overrides longer than ECS takes (their JSON,
/// as the request carries it), before any worker starts.
pub fn command_fits(command: &[String]) -> Result<(), Error> {
    let overrides = serde_json::json!({ "containerOverrides": [{ "name": CONTAINER, "command": command }] });
    let (size, limit) = (overrides.to_string().len(), stack::limits::RUN_TASK_OVERRIDES);
    if size > limit.max {
        return Err(Error::Refused(format!(
            "the load generators' command makes their RunTask overrides {size} characters, and ECS takes {}: \
             shorten the load test's settings (fewer or shorter paths and headers)",
            limit.describe()
        )));
    }
    Ok(())
}

/// Starts one worker task; its ARN.
pub async fn run_task(ctx: &Ctx, launch: &Launch<'_>) -> Result<String, Error> {
    command_fits(&launch.command)?;
    let refused = |e: aws_sdk_ecs::error::BuildError| Error::Refused(e.to_string());
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(launch.subnets.to_vec()))
                .security_groups(launch.security_group)
                // Public subnets without a NAT gateway: the task pulls its image and reaches the
                // target through the internet gateway.
                .assign_public_ip(AssignPublicIp::Enabled)
                .build()
                .map_err(refused)?,
        )
        .build();
    let overrides = TaskOverride::builder()
        .container_overrides(
            ContainerOverride::builder().name(CONTAINER).set_command(Some(launch.command.clone())).build(),
        )
        .build();
    let mut tags = tags::ecs(&ctx.stack);
    tags.push(aws_sdk_ecs::types::Tag::builder().key(WORKER_TAG.0).value(WORKER_TAG.1).build());
    let out = ctx
        .wait(Wait::Propagation, "the task definition and its role to be usable", || async {
            ctx.clients
                .ecs
                .run_task()
                .cluster(cluster::name(&ctx.stack))
                .task_definition(launch.task_definition)
                .launch_type(LaunchType::Fargate)
                .count(1)
                .network_configuration(network.clone())
                .overrides(overrides.clone())
                .started_by(STARTED_BY)
                .set_tags(Some(tags.clone()))
                .client_token(&launch.client_token)
                .send()
                .await
                .ctx("run a load generator task of", launch.task_definition)
        })
        .await?;
    if let Some(f) = out.failures().first() {
        return Err(Error::Refused(format!(
            "ECS could not start a load generator task: {} {}",
            f.reason().unwrap_or("(no reason)"),
            f.detail().unwrap_or_default()
        )));
    }
    out.tasks()
        .first()
        .and_then(|t| t.task_arn())
        .map(str::to_owned)
        .ok_or_else(|| Error::Refused("RunTask answered without a task".into()))
}

/// A worker task as DescribeTasks shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskState {
    pub arn: String,
    pub last_status: String,
    pub stopped_reason: Option<String>,
    /// The container's exit code and reason, once it stopped.
    pub exit_code: Option<i32>,
    pub container_reason: Option<String>,
}

impl TaskState {
    pub fn stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// Why it stopped, in one line.
    pub fn why_stopped(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.stopped_reason {
            parts.push(r.clone());
        }
        if let Some(code) = self.exit_code {
            parts.push(format!("exit code {code}"));
        }
        if let Some(r) = &self.container_reason {
            parts.push(r.clone());
        }
        if parts.is_empty() { "no reason given".into() } else { parts.join("; ") }
    }
}

pub async fn describe(ctx: &Ctx, arns: &[String]) -> Result<Vec<TaskState>, Error> {
    let mut states = Vec::with_capacity(arns.len());
    // DescribeTasks takes up to 100 tasks a call.
    for chunk in arns.chunks(100) {
        let out = ctx
            .clients
            .ecs
            .describe_tasks()
            .cluster(cluster::name(&ctx.stack))
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .ctx("describe the load generator tasks of", cluster::name(&ctx.stack))?;
        for t in out.tasks() {
            let container = t.containers().iter().find(|c| c.name() == Some(CONTAINER));
            states.push(TaskState {
                arn: t.task_arn().unwrap_or_default().to_owned(),
                last_status: t.last_status().unwrap_or_default().to_owned(),
                stopped_reason: t.stopped_reason().filter(|r| !r.is_empty()).map(str::to_owned),
                exit_code: container.and_then(|c| c.exit_code()),
                container_reason: container.and_then(|c| c.reason()).filter(|r| !r.is_empty()).map(str::to_owned),
            });
        }
    }
    Ok(states)
}

/// Running tasks of the workers' family that the stack did not start, one line each: without the
/// stack's ownership and worker tags, or outside the stack's `subnets`. RunTask has no condition
/// key for the network (docs/POSTURE.md): whoever holds the deploy role can start one anywhere
/// the account reaches, so `status` looks for them.
pub async fn strays(ctx: &Ctx, subnets: &[String]) -> Result<Vec<String>, Error> {
    let arns = running_tasks(ctx).await?;
    let cluster_name = cluster::name(&ctx.stack);
    let mut lines = Vec::new();
    for chunk in arns.chunks(100) {
        let out = ctx
            .clients
            .ecs
            .describe_tasks()
            .cluster(&cluster_name)
            .set_tasks(Some(chunk.to_vec()))
            .include(aws_sdk_ecs::types::TaskField::Tags)
            .send()
            .await
            .ctx("describe the load generator tasks of", &cluster_name)?;
        for t in out.tasks() {
            let has =
                |key: &str, value: &str| t.tags().iter().any(|g| g.key() == Some(key) && g.value() == Some(value));
            let ours = has(OWNERSHIP_TAG, &ctx.stack.name) && has(WORKER_TAG.0, WORKER_TAG.1);
            let subnet = t
                .attachments()
                .iter()
                .flat_map(|a| a.details())
                .find(|d| d.name() == Some("subnetId"))
                .and_then(|d| d.value());
            let inside = subnet.is_some_and(|s| subnets.iter().any(|ours| ours == s));
            if ours && inside {
                continue;
            }
            let mut why = Vec::new();
            if !ours {
                why.push("without the stack's worker tags".to_owned());
            }
            if !inside {
                why.push(format!("in {}, not one of the stack's subnets", subnet.unwrap_or("an unknown subnet")));
            }
            let arn = t.task_arn().unwrap_or_default();
            lines.push(format!(
                "a task of the load generators' family that the stack did not start runs: {arn} ({}). Stop it \
                 (`aws ecs stop-task --cluster {cluster_name} --task {}`, with administrator credentials when it is \
                 untagged) and find who started it (CloudTrail, RunTask)",
                why.join(", "),
                task_id(arn)
            ));
        }
    }
    Ok(lines)
}

pub async fn stop_task(ctx: &Ctx, arn: &str, reason: &str) -> Result<(), Error> {
    let r = ctx.clients.ecs.stop_task().cluster(cluster::name(&ctx.stack)).task(arn).reason(reason).send().await;
    gone(r.ctx("stop task", arn))
}

/// What `provisioner loadtest` runs its workers with.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    vec![(TASK_DEFINITION, family(stack)), (SECURITY_GROUP, security_group_name(stack))]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "loadtest",
    nouns: &[LOADTEST_TASK, TASK_DEFINITION],
    permissions: PERMISSIONS,
    arn_types: &["ecs:task"],
    deleted_after: &[],
    derived_names,
    name_limits: &[],
    terraform_types: &[],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: None,
};

/// What `down` does before the cluster goes: stops the workers a killed `provisioner loadtest`
/// (or a lost CI runner) left running — they bill Fargate, and the cluster cannot be deleted
/// while they run — and deregisters the workers' revisions.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    for arn in running_tasks(ctx).await? {
        if ctx.applying() {
            stop_task(ctx, &arn, "provisioner down").await?;
            ctx.progress(format!("stopped load generator task {}", task_id(&arn)));
        }
        plan.push(LOADTEST_TASK, task_id(&arn), Some(arn.clone()), Change::delete());
    }
    for arn in active_revisions(ctx).await? {
        if ctx.applying() {
            deregister(ctx, &arn).await?;
            ctx.progress(format!("deregistered {arn}"));
        }
        plan.push(TASK_DEFINITION, family(&ctx.stack), Some(arn), Change::delete());
    }
    Ok(())
}

/// Workers still running and the workers' revisions still registered.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let mut left: Vec<String> =
        running_tasks(ctx).await?.into_iter().map(|a| format!("load generator task {a}")).collect();
    left.extend(active_revisions(ctx).await?.into_iter().map(|a| format!("task definition {a}")));
    Ok(left)
}

/// The id at the end of a task's ARN.
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_command_ecs_would_refuse_is_refused_before_any_worker_starts() {
        assert!(command_fits(&["loadtest".into(), "--rate".into(), "100".into()]).is_ok());
        let e =
            command_fits(&["loadtest".into(), "x".repeat(stack::limits::RUN_TASK_OVERRIDES.max)]).expect_err("long");
        assert!(e.to_string().contains("at most 8192 characters"), "{e}");
    }

    #[test]
    fn fargate_sizes_are_checked_with_the_fix() {
        assert!(check_size(1024, 2048).is_ok());
        assert!(check_size(256, 512).is_ok());
        assert!(check_size(4096, 30720).is_ok());
        assert!(check_size(1000, 2048).unwrap_err().contains("256, 512, 1024, 2048 or 4096"));
        let e = check_size(1024, 1024).unwrap_err();
        assert!(e.contains("2048–8192 MiB in steps of 1024"), "{e}");
        assert!(check_size(512, 1536).is_err());
    }

    #[test]
    fn egress_is_https_and_the_target_port_only() {
        let rules: Vec<String> = egress(80).iter().map(ToString::to_string).collect();
        assert_eq!(rules, ["tcp/80 from 0.0.0.0/0", "tcp/443 from 0.0.0.0/0"]);
        assert_eq!(egress(443).len(), 1);
    }
}
