//! The task definition: EC2, bridge networking with host port 0, the image by digest, API_KEY
//! from the secret, awslogs, a container health check, a stop timeout that covers the app's
//! grace. Only ACTIVE revisions are current (AWS answers a bare family with the latest ACTIVE
//! one; an emulator may not), every page of the family's revisions is read, and a revision is
//! ours only with our tag. RegisterTaskDefinition has no idempotency token: identical revisions
//! that a lost answer registered twice are deregistered right after.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration, LogDriver, NetworkMode,
    PortMapping, Secret, SortOrder, TaskDefinitionField, TaskDefinitionStatus, TransportProtocol,
};

use super::TASK_DEFINITION;
use crate::error::{AwsContext, Error, absent, gone};
use crate::image::reference::ImageRef;
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;

pub const CONTAINER: &str = "app";
/// The container health check's interval, timeout, retries and start period (seconds): the task
/// definition's, and `run-local`'s.
pub const HEALTH_CHECK: HealthTiming = HealthTiming { interval: 10, timeout: 3, retries: 3, start_period: 10 };

/// When a container health check runs and how many failures make a container unhealthy.
#[derive(Debug, Clone, Copy)]
pub struct HealthTiming {
    pub interval: i32,
    pub timeout: i32,
    pub retries: i32,
    pub start_period: i32,
}
/// ECS's SIGTERM -> SIGKILL wait: covers the app's 20 s SHUTDOWN_GRACE with margin.
pub const STOP_TIMEOUT_SECONDS: i32 = 30;
/// awslogs in non-blocking mode: a slow CloudWatch must not stall the app's writes to stdout;
/// lines beyond this buffer are dropped instead.
pub const LOG_MODE: &str = "non-blocking";
pub const LOG_BUFFER: &str = "25m";

/// A task definition reduced to what we set, normalized (sorted lists, AWS defaults filled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub image: String,
    pub cpu: i32,
    pub memory: i32,
    pub container_port: i32,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub log_group: String,
    pub region: String,
    pub execution_role: String,
    pub task_role: String,
    pub network_mode: String,
    pub health_check: Vec<String>,
    pub stop_timeout: i32,
    /// The container cannot write to its root filesystem (the app writes nothing to disk).
    pub readonly_root: bool,
    /// awslogs `mode` and `max-buffer-size`.
    pub log_mode: String,
    pub log_buffer: String,
    /// Writable volumes where ECS Exec's agent keeps its state (with `service.exec`).
    pub exec_dirs: Vec<String>,
    /// With `image: build`, the digest of the sources the image was built from (the container's
    /// `SOURCES_LABEL` docker label): what tells `plan` whether the image would change.
    pub sources: Option<String>,
}

/// The container label that records the sources an image built here came from.
pub const SOURCES_LABEL: &str = "konnichiwa.sources";

/// Where ECS Exec's agent writes inside the container: writable volumes there let it run while
/// the root filesystem stays read-only.
pub const EXEC_DIRS: &[&str] = &["/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"];

fn exec_volume_name(dir: &str) -> String {
    format!("exec{}", dir.replace('/', "-"))
}

/// A revision of the family.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTask {
    pub arn: String,
    pub revision: i32,
    pub spec: TaskSpec,
}

impl Observed for ObservedTask {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// What the task definition names from other kinds: known once they exist.
pub struct TaskInputs<'a> {
    pub image: &'a ImageRef,
    pub secret_arn: &'a Id,
    pub log_group: &'a str,
    pub execution_role: &'a Id,
    pub task_role: &'a Id,
}

impl TaskInputs<'_> {
    fn check_known(&self) -> Result<(), Error> {
        self.image.get()?;
        self.secret_arn.get()?;
        self.execution_role.get()?;
        self.task_role.get()?;
        Ok(())
    }
}

pub fn family(stack: &stack::Stack) -> String {
    stack.adopted.task_family.clone().unwrap_or_else(|| stack.name.clone())
}

pub fn desired_task(stack: &stack::Stack, i: &TaskInputs<'_>) -> TaskSpec {
    let svc = &stack.service;
    let mut environment = svc.environment.clone();
    environment.insert("PORT".into(), svc.container_port.to_string());
    environment.entry("LOG_FORMAT".into()).or_insert_with(|| "json".into());
    TaskSpec {
        image: i.image.to_string(),
        cpu: i32::try_from(svc.cpu).unwrap_or(256),
        memory: i32::try_from(svc.memory).unwrap_or(256),
        container_port: i32::from(svc.container_port),
        environment,
        secrets: BTreeMap::from([("API_KEY".to_owned(), i.secret_arn.to_string())]),
        log_group: i.log_group.to_owned(),
        region: stack.region.clone(),
        execution_role: i.execution_role.to_string(),
        task_role: i.task_role.to_string(),
        network_mode: "bridge".into(),
        health_check: vec!["CMD".into(), "/app".into(), "healthcheck".into()],
        stop_timeout: STOP_TIMEOUT_SECONDS,
        readonly_root: true,
        log_mode: LOG_MODE.into(),
        log_buffer: LOG_BUFFER.into(),
        exec_dirs: if svc.exec { EXEC_DIRS.iter().map(|d| (*d).to_owned()).collect() } else { Vec::new() },
        sources: i.image.sources.clone(),
    }
}

/// Field-level differences; empty means "register nothing".
pub fn diff_task(want: &TaskSpec, have: Option<&TaskSpec>) -> Change {
    let Some(h) = have else {
        return Change::create(vec![
            FieldDiff::new("image", None, Some(want.image.clone())),
            FieldDiff::new("cpu/memory", None, Some(format!("{} units / {} MiB", want.cpu, want.memory))),
            FieldDiff::new(
                "secrets.API_KEY",
                None,
                Some(format!("valueFrom {}", want.secrets.get("API_KEY").cloned().unwrap_or_default())),
            ),
        ]);
    };
    let map = |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let fields: Vec<FieldDiff> = [
        compare("image", &h.image, &want.image),
        compare("cpu", &h.cpu, &want.cpu),
        compare("memory", &h.memory, &want.memory),
        compare("container_port", &h.container_port, &want.container_port),
        compare("environment", &map(&h.environment), &map(&want.environment)),
        compare("secrets", &map(&h.secrets), &map(&want.secrets)),
        compare("log_group", &h.log_group, &want.log_group),
        compare("execution_role", &h.execution_role, &want.execution_role),
        compare("task_role", &h.task_role, &want.task_role),
        compare("network_mode", &h.network_mode, &want.network_mode),
        compare("health_check", &h.health_check.join(" "), &want.health_check.join(" ")),
        compare("stop_timeout", &h.stop_timeout, &want.stop_timeout),
        compare("readonly_root_filesystem", &h.readonly_root, &want.readonly_root),
        compare("exec_volumes", &h.exec_dirs.join(","), &want.exec_dirs.join(",")),
        compare("sources", &h.sources.as_deref().unwrap_or("(none)"), &want.sources.as_deref().unwrap_or("(none)")),
        compare(
            "log_mode",
            &format!("{} {}", h.log_mode, h.log_buffer),
            &format!("{} {}", want.log_mode, want.log_buffer),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    Change::update(fields)
}

pub fn spec_of(td: &aws_sdk_ecs::types::TaskDefinition) -> Option<TaskSpec> {
    let c = td.container_definitions().iter().find(|c| c.name() == Some(CONTAINER))?;
    let pairs =
        |v: &[KeyValuePair]| v.iter().filter_map(|p| Some((p.name()?.to_owned(), p.value()?.to_owned()))).collect();
    let log = c.log_configuration();
    let opt = |k: &str| log.and_then(|l| l.options()).and_then(|o| o.get(k)).cloned().unwrap_or_default();
    Some(TaskSpec {
        image: c.image().unwrap_or_default().to_owned(),
        cpu: td.cpu().and_then(|v| v.parse().ok()).unwrap_or(c.cpu()),
        memory: td.memory().and_then(|v| v.parse().ok()).or(c.memory()).unwrap_or(0),
        container_port: c.port_mappings().first().and_then(|p| p.container_port()).unwrap_or(0),
        environment: pairs(c.environment()),
        secrets: c.secrets().iter().map(|s| (s.name().to_owned(), s.value_from().to_owned())).collect(),
        log_group: opt("awslogs-group"),
        region: opt("awslogs-region"),
        execution_role: td.execution_role_arn().unwrap_or_default().to_owned(),
        task_role: td.task_role_arn().unwrap_or_default().to_owned(),
        network_mode: td.network_mode().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "bridge".into()),
        health_check: c.health_check().map(|h| h.command().to_vec()).unwrap_or_default(),
        stop_timeout: c.stop_timeout().unwrap_or(30),
        readonly_root: c.readonly_root_filesystem().unwrap_or(false),
        // AWS's default mode is blocking.
        log_mode: log
            .and_then(|l| l.options())
            .and_then(|o| o.get("mode"))
            .cloned()
            .unwrap_or_else(|| "blocking".into()),
        log_buffer: opt("max-buffer-size"),
        exec_dirs: {
            let mut dirs: Vec<String> = c
                .mount_points()
                .iter()
                .filter(|m| m.source_volume().is_some_and(|v| v.starts_with("exec-")))
                .filter_map(|m| m.container_path().map(str::to_owned))
                .collect();
            dirs.sort_by_key(|d| EXEC_DIRS.iter().position(|e| e == d));
            dirs
        },
        sources: c.docker_labels().and_then(|l| l.get(SOURCES_LABEL)).cloned(),
    })
}

/// `family:revision` of a task definition ARN.
pub fn family_and_revision(arn: &str) -> Option<(&str, i32)> {
    let (family, revision) = arn.rsplit('/').next()?.rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

/// The ARNs of the family's ACTIVE revisions, newest first: every page, and only this family
/// (the prefix also matches `<family>-x`).
pub async fn active_revisions(ctx: &Ctx, family: &str) -> Result<Vec<String>, Error> {
    let mut pages = ctx
        .clients
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    let mut arns: Vec<(i32, String)> = Vec::new();
    while let Some(page) = pages.next().await {
        for arn in page.ctx("list task definitions of", family)?.task_definition_arns() {
            if let Some((f, rev)) = family_and_revision(arn)
                && f == family
            {
                arns.push((rev, arn.clone()));
            }
        }
    }
    arns.sort_by_key(|a| std::cmp::Reverse(a.0));
    Ok(arns.into_iter().map(|(_, a)| a).collect())
}

/// One revision with its tags; refuses a revision without our tag.
pub async fn describe(ctx: &Ctx, arn: &str) -> Result<Option<ObservedTask>, Error> {
    let out = ctx
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .ctx("describe task definition", arn);
    let Some(out) = absent(out)? else { return Ok(None) };
    let Some(td) = out.task_definition() else { return Ok(None) };
    let tag_pairs = tags::ecs_pairs(out.tags());
    let family = td.family().unwrap_or_default().to_owned();
    tags::pick_owned(
        "task definition",
        &family,
        &ctx.owner(),
        vec![(arn.to_owned(), tag_pairs)],
        |t| t.0.clone(),
        |t| t.1.clone(),
    )?;
    Ok(spec_of(td).map(|spec| ObservedTask { arn: arn.to_owned(), revision: td.revision(), spec }))
}

/// The newest ACTIVE revision of the family.
pub async fn observe_latest(ctx: &Ctx, family: &str) -> Result<Option<ObservedTask>, Error> {
    match active_revisions(ctx, family).await?.first() {
        Some(arn) => describe(ctx, arn).await,
        None => Ok(None),
    }
}

/// The app's container as `spec` describes it.
fn container(spec: &TaskSpec) -> Result<ContainerDefinition, Error> {
    let env: Vec<KeyValuePair> =
        spec.environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect();
    let secrets = spec
        .secrets
        .iter()
        .map(|(k, v)| Secret::builder().name(k).value_from(v).build().map_err(|e| Error::Refused(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let health = HealthCheck::builder()
        .set_command(Some(spec.health_check.clone()))
        .interval(HEALTH_CHECK.interval)
        .timeout(HEALTH_CHECK.timeout)
        .retries(HEALTH_CHECK.retries)
        .start_period(HEALTH_CHECK.start_period)
        .build()
        .map_err(|e| Error::Refused(e.to_string()))?;
    let log = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", &spec.log_group)
        .options("awslogs-region", &spec.region)
        .options("awslogs-stream-prefix", CONTAINER)
        .options("mode", &spec.log_mode)
        .options("max-buffer-size", &spec.log_buffer)
        .build()
        .map_err(|e| Error::Refused(e.to_string()))?;
    Ok(ContainerDefinition::builder()
        .name(CONTAINER)
        .image(&spec.image)
        .essential(true)
        .memory(spec.memory)
        // Host port 0: ECS maps an ephemeral port, so several tasks fit on one instance.
        .port_mappings(
            PortMapping::builder()
                .container_port(spec.container_port)
                .host_port(0)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .set_environment(Some(env))
        .set_secrets(Some(secrets))
        .log_configuration(log)
        .health_check(health)
        .stop_timeout(spec.stop_timeout)
        .readonly_root_filesystem(spec.readonly_root)
        .set_docker_labels(spec.sources.as_ref().map(|s| HashMap::from([(SOURCES_LABEL.to_owned(), s.clone())])))
        .set_mount_points(Some(
            spec.exec_dirs
                .iter()
                .map(|d| {
                    aws_sdk_ecs::types::MountPoint::builder()
                        .source_volume(exec_volume_name(d))
                        .container_path(d)
                        .read_only(false)
                        .build()
                })
                .collect(),
        ))
        .build())
}

/// Registers `spec` as a new revision (waiting out roles not yet usable); returns its ARN.
pub async fn register(ctx: &Ctx, family: &str, spec: &TaskSpec) -> Result<String, Error> {
    let container = container(spec)?;
    let volumes: Vec<aws_sdk_ecs::types::Volume> = spec
        .exec_dirs
        .iter()
        .map(|d| aws_sdk_ecs::types::Volume::builder().name(exec_volume_name(d)).build())
        .collect();
    let ecs_tags = tags::ecs(&ctx.stack);
    let out = ctx
        .wait(Wait::Propagation, "the execution and task roles to be usable", || async {
            ctx.clients
                .ecs
                .register_task_definition()
                .family(family)
                .network_mode(NetworkMode::Bridge)
                .requires_compatibilities(Compatibility::Ec2)
                .cpu(spec.cpu.to_string())
                .memory(spec.memory.to_string())
                .execution_role_arn(&spec.execution_role)
                .task_role_arn(&spec.task_role)
                .container_definitions(container.clone())
                .set_volumes(Some(volumes.clone()))
                .set_tags(Some(ecs_tags.clone()))
                .send()
                .await
                .ctx("register task definition", family)
        })
        .await?;
    let td = out
        .task_definition()
        .ok_or_else(|| Error::Refused("RegisterTaskDefinition returned no task definition".into()))?;
    let arn = td.task_definition_arn().unwrap_or_default().to_owned();
    drop_duplicates_before(ctx, family, &arn, spec).await?;
    Ok(arn)
}

/// Deregisters the revisions just before `arn` that are identical to it: a register retried after
/// a lost answer (or a killed run's) leaves such copies, which nothing uses.
async fn drop_duplicates_before(ctx: &Ctx, family: &str, arn: &str, spec: &TaskSpec) -> Result<(), Error> {
    let Some((_, revision)) = family_and_revision(arn) else { return Ok(()) };
    for older in active_revisions(ctx, family).await? {
        let Some((_, r)) = family_and_revision(&older) else { continue };
        if r >= revision {
            continue;
        }
        match describe(ctx, &older).await? {
            Some(o) if o.spec == *spec => {
                let out = ctx.clients.ecs.deregister_task_definition().task_definition(&older).send().await;
                out.ctx("deregister a duplicate of", &older)?;
                ctx.progress(format!("deregistered {older}: a duplicate of {arn} (a register whose answer was lost)"));
            }
            _ => break,
        }
    }
    Ok(())
}

/// With `image: build`, an image moving to another repository is almost always a run without
/// the `--image-repository` an earlier `up` was given: the plan says so next to the change.
pub fn explain_registry_change(stack: &stack::Stack, mut change: Change) -> Change {
    if stack.service.image != "build" {
        return change;
    }
    for f in change.fields.iter_mut().filter(|f| f.field == "image") {
        let (Some(old), Some(new)) = (&f.old, &f.new) else { continue };
        let (from, to) = (ImageRef::parse(old).repository, ImageRef::parse(new).repository);
        if from != to {
            f.new = Some(format!(
                "{new} (the service runs an image from {from}, pushed by `up --image-repository {from}`; this run \
                 pushes to {to}: give plan and up --image-repository {from} to stay there)"
            ));
        }
    }
    change
}

/// The family's current revision; its ARN (pending in Plan mode when one will be registered).
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    family: &str,
    want: &TaskSpec,
    inputs: &TaskInputs<'_>,
    seen: Option<ObservedTask>,
) -> Result<Id, Error> {
    let outcome = Step::new(ctx, TASK_DEFINITION, family)
        .converge_observed(
            plan,
            seen,
            async || observe_latest(ctx, family).await,
            |o| explain_registry_change(&ctx.stack, diff_task(want, o.map(|t| &t.spec))),
            async |_: &Change, _: Option<&ObservedTask>| {
                inputs.check_known()?;
                let arn = register(ctx, family, want).await?;
                ctx.progress(format!("registered task definition {arn}"));
                Ok(arn)
            },
        )
        .await?;
    let applied = outcome.applied.is_some();
    Ok(if !outcome.change.is_no_op() && !applied {
        Id::Pending(format!("task definition {family}, new revision"))
    } else {
        outcome.id_or(|| format!("task definition {family}"))
    })
}

/// Deregisters every ACTIVE revision of the family that carries our tag.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, family: &str) -> Result<(), Error> {
    for arn in active_revisions(ctx, family).await? {
        match describe(ctx, &arn).await {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(Error::Foreign { .. }) => {
                ctx.progress(format!("left {arn} alone: it does not carry this stack's tag"));
                continue;
            }
            Err(e) => return Err(e),
        }
        if ctx.applying() {
            let r = ctx.clients.ecs.deregister_task_definition().task_definition(&arn).send().await;
            gone(r.ctx("deregister task definition", &arn))?;
        }
        plan.push(TASK_DEFINITION, arn.rsplit('/').next().unwrap_or(&arn), Some(arn.clone()), Change::delete());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn inputs() -> (Id, Id, Id) {
        (
            Id::Known("arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:konnichiwa/api-key-AbCdEf".into()),
            Id::Known("arn:aws:iam::123456789012:role/konnichiwa-execution".into()),
            Id::Known("arn:aws:iam::123456789012:role/konnichiwa-task".into()),
        )
    }

    fn want(s: &stack::Stack) -> TaskSpec {
        let (secret, execution, task) = inputs();
        desired_task(
            s,
            &TaskInputs {
                image: &ImageRef::parse("123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/konnichiwa@sha256:aaaa"),
                secret_arn: &secret,
                log_group: "/ecs/konnichiwa",
                execution_role: &execution,
                task_role: &task,
            },
        )
    }

    #[test]
    fn the_key_comes_from_the_secret_never_the_environment() {
        let s = crate::resources::test_stack();
        let t = want(&s);
        assert!(!t.environment.contains_key("API_KEY"));
        assert_eq!(t.secrets["API_KEY"], inputs().0.to_string());
        assert_eq!(t.environment["PORT"], "8080");
        assert!(t.stop_timeout >= 25, "covers the app's 20 s grace");
        assert!(t.readonly_root && t.log_mode == "non-blocking", "{t:?}");
    }

    #[test]
    fn an_identical_definition_registers_nothing_and_an_image_change_registers_once() {
        let s = crate::resources::test_stack();
        let want = want(&s);
        assert!(diff_task(&want, Some(&want.clone())).is_no_op());
        let old = TaskSpec { image: "repo@sha256:old".into(), ..want.clone() };
        let c = diff_task(&want, Some(&old));
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].field, "image");
    }

    #[tokio::test]
    async fn every_page_of_revisions_is_read_and_only_this_family_kept() {
        use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let arn = |f: &str| format!("arn:aws:ecs:ap-northeast-1:123456789012:task-definition/{f}");
        let first = mock!(aws_sdk_ecs::Client::list_task_definitions)
            .match_requests(|r| r.next_token().is_none())
            .then_output(move || {
                ListTaskDefinitionsOutput::builder()
                    .task_definition_arns(arn("konnichiwa:3"))
                    .task_definition_arns(arn("konnichiwa-prod:9"))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(aws_sdk_ecs::Client::list_task_definitions)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(move || {
                ListTaskDefinitionsOutput::builder()
                    .task_definition_arns(arn("konnichiwa:12"))
                    .task_definition_arns(arn("konnichiwa:2"))
                    .build()
            });
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-northeast-1"))
            .build();
        let mut clients = crate::aws::Clients::from_sdk_config(&sdk);
        clients.ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&first, &second]);
        let ctx = Ctx {
            clients,
            stack: crate::resources::test_stack(),
            mode: crate::reconcile::Mode::Plan,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
            adopting: Default::default(),
        };
        let revisions = active_revisions(&ctx, "konnichiwa").await.expect("listed");
        assert_eq!(revisions, [arn("konnichiwa:12"), arn("konnichiwa:3"), arn("konnichiwa:2")], "newest first");
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[test]
    fn revisions_are_told_apart_from_other_families() {
        assert_eq!(family_and_revision("arn:aws:ecs:r:1:task-definition/konnichiwa:12"), Some(("konnichiwa", 12)));
        assert_eq!(
            family_and_revision("arn:aws:ecs:r:1:task-definition/konnichiwa-prod:3"),
            Some(("konnichiwa-prod", 3))
        );
        assert_eq!(family_and_revision("nonsense"), None);
    }

    #[test]
    fn an_image_from_another_registry_is_explained_only_for_built_images() {
        let mut s = crate::resources::test_stack();
        s.service.image = "build".into();
        let change = Change::update(vec![FieldDiff::new(
            "image",
            Some("127.0.0.1:5000/konnichiwa@sha256:aa".into()),
            Some("1.dkr.ecr.ap-northeast-1.amazonaws.com/konnichiwa@sha256:aa".into()),
        )]);
        let explained = explain_registry_change(&s, change.clone());
        let new = explained.fields[0].new.clone().unwrap_or_default();
        assert!(new.contains("--image-repository 127.0.0.1:5000/konnichiwa"), "{new}");
        s.service.image = "127.0.0.1:5000/other@sha256:bb".into();
        assert_eq!(
            explain_registry_change(&s, change.clone()).fields,
            change.fields,
            "a reference in stack.yaml is meant"
        );
    }
}
