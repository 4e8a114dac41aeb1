//! The task definition (EC2, bridge networking with host port 0, the image by digest, API_KEY from
//! the secret, awslogs, a container health check, a stop timeout that covers the app's grace),
//! registered only when it really differs from the latest active revision; the ECS service on our
//! capacity provider behind the target group, with circuit breaker and health-check grace; and
//! service auto scaling (target tracking on CPU, optionally requests per target).

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, Compatibility, ContainerDefinition, DeploymentCircuitBreaker,
    DeploymentConfiguration, HealthCheck, KeyValuePair, LoadBalancer, LogConfiguration, LogDriver, NetworkMode,
    PortMapping, PropagateTags, Secret, TransportProtocol,
};
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::reconcile::{Change, Ctx, FieldDiff, Plan, compare};

pub const CONTAINER: &str = "app";
/// ECS's SIGTERM -> SIGKILL wait: covers the app's 20 s SHUTDOWN_GRACE with margin.
pub const STOP_TIMEOUT_SECONDS: i32 = 30;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceOutputs {
    pub service: String,
    pub task_definition_arn: Option<String>,
    pub image: Option<String>,
    /// The deployment `up` started (None when nothing changed).
    pub deployment_id: Option<String>,
}

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
}

/// Inputs from earlier kinds.
pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub capacity_provider: &'a str,
    pub image: &'a str,
    pub secret_arn: &'a str,
    pub log_group: &'a str,
    pub execution_role: &'a str,
    pub task_role: &'a str,
    pub target_group: Option<&'a str>,
    pub load_balancer: Option<&'a str>,
    /// The API key changes in this run: the tasks must restart to read it.
    pub key_changes: bool,
}

pub fn family(stack: &stack::Stack) -> String {
    stack.name.clone()
}

pub fn desired_task(stack: &stack::Stack, i: &Inputs<'_>) -> TaskSpec {
    let svc = &stack.service;
    let mut environment = svc.environment.clone();
    environment.insert("PORT".into(), svc.container_port.to_string());
    environment.entry("LOG_FORMAT".into()).or_insert_with(|| "json".into());
    TaskSpec {
        image: i.image.to_owned(),
        cpu: i32::try_from(svc.cpu).unwrap_or(256),
        memory: i32::try_from(svc.memory).unwrap_or(256),
        container_port: i32::from(svc.container_port),
        environment,
        secrets: BTreeMap::from([("API_KEY".to_owned(), i.secret_arn.to_owned())]),
        log_group: i.log_group.to_owned(),
        region: stack.region.clone(),
        execution_role: i.execution_role.to_owned(),
        task_role: i.task_role.to_owned(),
        network_mode: "bridge".into(),
        health_check: vec!["CMD".into(), "/app".into(), "healthcheck".into()],
        stop_timeout: STOP_TIMEOUT_SECONDS,
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
    ]
    .into_iter()
    .flatten()
    .collect();
    Change::update(fields)
}

fn spec_of(td: &aws_sdk_ecs::types::TaskDefinition) -> Option<TaskSpec> {
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
    })
}

/// The latest ACTIVE revision of the family, as (arn, spec).
pub async fn observe_task(ctx: &Ctx, family: &str) -> Result<Option<(String, TaskSpec)>, Error> {
    match ctx
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(family)
        .send()
        .await
        .ctx("describe task definition", family)
    {
        Ok(out) => Ok(out.task_definition().and_then(|td| Some((td.task_definition_arn()?.to_owned(), spec_of(td)?)))),
        Err(e) if e.code() == Some("ClientException") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Registers `spec` as a new revision; returns its ARN.
pub async fn register(ctx: &Ctx, family: &str, spec: &TaskSpec) -> Result<String, Error> {
    let env: Vec<KeyValuePair> =
        spec.environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect();
    let secrets = spec
        .secrets
        .iter()
        .map(|(k, v)| Secret::builder().name(k).value_from(v).build().map_err(|e| Error::Refused(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let health = HealthCheck::builder()
        .set_command(Some(spec.health_check.clone()))
        .interval(10)
        .timeout(3)
        .retries(3)
        .start_period(10)
        .build()
        .map_err(|e| Error::Refused(e.to_string()))?;
    let log = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", &spec.log_group)
        .options("awslogs-region", &spec.region)
        .options("awslogs-stream-prefix", CONTAINER)
        .build()
        .map_err(|e| Error::Refused(e.to_string()))?;
    let container = ContainerDefinition::builder()
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
        .build();
    let tags: Vec<aws_sdk_ecs::types::Tag> = ctx
        .stack
        .resource_tags()
        .into_iter()
        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
        .collect();
    let out = ctx
        .clients
        .ecs
        .register_task_definition()
        .family(family)
        .network_mode(NetworkMode::Bridge)
        .requires_compatibilities(Compatibility::Ec2)
        .cpu(spec.cpu.to_string())
        .memory(spec.memory.to_string())
        .execution_role_arn(&spec.execution_role)
        .task_role_arn(&spec.task_role)
        .container_definitions(container)
        .set_tags(Some(tags))
        .send()
        .await
        .ctx("register task definition", family)?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_owned)
        .ok_or_else(|| Error::Refused("RegisterTaskDefinition returned no ARN".into()))
}

// ---------- service ----------

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedService {
    pub arn: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// Absent fields: moto does not keep them (see shared/testing-aws.md); they compare as sent.
    pub capacity_providers: Option<Vec<String>>,
    pub target_groups: Vec<String>,
    pub circuit_breaker: Option<(bool, bool)>,
    pub min_healthy: Option<i32>,
    pub max_percent: Option<i32>,
    pub grace_seconds: Option<i32>,
}

pub fn circuit_breaker(stack: &stack::Stack) -> (bool, bool) {
    match stack.service.deployment.circuit_breaker {
        stack::CircuitBreaker::Rollback => (true, true),
        stack::CircuitBreaker::Enabled => (true, false),
        stack::CircuitBreaker::Disabled => (false, false),
    }
}

pub fn diff_service(
    stack: &stack::Stack,
    task_definition: &str,
    provider: &str,
    target_group: Option<&str>,
    o: Option<&ObservedService>,
) -> Change {
    let svc = &stack.service;
    let d = &svc.deployment;
    let grace = i32::try_from(svc.health_check_grace_period.get().as_secs()).unwrap_or(30);
    let Some(o) = o else {
        return Change::create(vec![
            FieldDiff::new("task_definition", None, Some(task_definition.to_owned())),
            FieldDiff::new("desired_count", None, Some(svc.desired_count.to_string())),
            FieldDiff::new("capacity_provider", None, Some(provider.to_owned())),
            FieldDiff::new("circuit_breaker", None, Some(format!("{:?}", d.circuit_breaker).to_lowercase())),
        ]);
    };
    let mut fields: Vec<FieldDiff> =
        compare("task_definition", &o.task_definition, &task_definition.to_owned()).into_iter().collect();
    // With auto scaling, the desired count belongs to it.
    if svc.autoscaling.is_none() {
        fields.extend(compare("desired_count", &o.desired, &i32::try_from(svc.desired_count).unwrap_or(1)));
    }
    if let Some(cp) = o.capacity_providers.as_ref().filter(|cp| cp.as_slice() != [provider.to_owned()]) {
        fields.push(FieldDiff::new("capacity_provider", Some(cp.join(",")), Some(provider.to_owned())));
    }
    if let Some(tg) = target_group.filter(|tg| o.target_groups.as_slice() != [(*tg).to_owned()]) {
        fields.push(FieldDiff::new("target_group", Some(o.target_groups.join(",")), Some(tg.to_owned())));
    }
    let want_cb = circuit_breaker(stack);
    if let Some(cb) = o.circuit_breaker.filter(|cb| *cb != want_cb) {
        fields.push(FieldDiff::new("circuit_breaker", Some(format!("{cb:?}")), Some(format!("{want_cb:?}"))));
    }
    fields.extend(o.min_healthy.and_then(|v| {
        compare("minimum_healthy_percent", &v, &i32::try_from(d.minimum_healthy_percent).unwrap_or(100))
    }));
    fields.extend(
        o.max_percent.and_then(|v| compare("maximum_percent", &v, &i32::try_from(d.maximum_percent).unwrap_or(200))),
    );
    fields.extend(o.grace_seconds.and_then(|v| compare("health_check_grace_period", &v, &grace)));
    Change::update(fields)
}

pub async fn observe_service(ctx: &Ctx, cluster: &str, name: &str) -> Result<Option<ObservedService>, Error> {
    let out = match ctx
        .clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .ctx("describe service", name)
    {
        Ok(o) => o,
        Err(e) if e.code() == Some("ClusterNotFoundException") => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(out.services().iter().find(|s| s.status() == Some("ACTIVE")).map(|s| {
        let dc = s.deployment_configuration();
        ObservedService {
            arn: s.service_arn().unwrap_or_default().to_owned(),
            task_definition: s.task_definition().unwrap_or_default().to_owned(),
            desired: s.desired_count(),
            running: s.running_count(),
            pending: s.pending_count(),
            capacity_providers: Some(
                s.capacity_provider_strategy().iter().map(|c| c.capacity_provider().to_owned()).collect::<Vec<_>>(),
            )
            .filter(|v| !v.is_empty()),
            target_groups: s.load_balancers().iter().filter_map(|l| l.target_group_arn().map(str::to_owned)).collect(),
            circuit_breaker: dc.and_then(|d| d.deployment_circuit_breaker()).map(|c| (c.enable(), c.rollback())),
            min_healthy: dc.and_then(|d| d.minimum_healthy_percent()),
            max_percent: dc.and_then(|d| d.maximum_percent()),
            grace_seconds: s.health_check_grace_period_seconds(),
        }
    }))
}

fn deployment_config(stack: &stack::Stack) -> DeploymentConfiguration {
    let (enable, rollback) = circuit_breaker(stack);
    let d = &stack.service.deployment;
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(enable).rollback(rollback).build())
        .minimum_healthy_percent(i32::try_from(d.minimum_healthy_percent).unwrap_or(100))
        .maximum_percent(i32::try_from(d.maximum_percent).unwrap_or(200))
        .build()
}

fn strategy(provider: &str) -> Result<CapacityProviderStrategyItem, Error> {
    CapacityProviderStrategyItem::builder()
        .capacity_provider(provider)
        .weight(1)
        .base(0)
        .build()
        .map_err(|e| Error::Refused(e.to_string()))
}

/// Reconciles the task definition, the service and its auto scaling.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, i: &Inputs<'_>) -> Result<ServiceOutputs, Error> {
    let stack = &ctx.stack;
    let family = family(stack);
    let want = desired_task(stack, i);
    let observed_td = observe_task(ctx, &family).await?;
    let change = diff_task(&want, observed_td.as_ref().map(|(_, s)| s));
    let mut td_arn = observed_td.as_ref().map(|(a, _)| a.clone());
    if ctx.applying() && !change.is_no_op() {
        let arn = register(ctx, &family, &want).await?;
        ctx.progress(format!("registered task definition {arn}"));
        td_arn = Some(arn);
    }
    plan.push("task-definition", &family, td_arn.clone(), change);

    let name = stack.name.clone();
    let observed = observe_service(ctx, i.cluster, &name).await?;
    let td_for_diff = td_arn.clone().unwrap_or_else(|| format!("{family}:(new revision)"));
    let mut change = diff_service(stack, &td_for_diff, i.capacity_provider, i.target_group, observed.as_ref());
    // A new secret value reaches tasks only when they start: roll them.
    if i.key_changes && observed.is_some() && !change.fields.iter().any(|f| f.field == "task_definition") {
        change.fields.push(FieldDiff::new(
            "tasks",
            Some("running with the old API key".into()),
            Some("restarted (new deployment) to read the new key".into()),
        ));
        change = Change::update(change.fields);
    }
    let mut deployment_id = None;
    if ctx.applying() && !change.is_no_op() {
        let ecs = &ctx.clients.ecs;
        let grace = i32::try_from(stack.service.health_check_grace_period.get().as_secs()).unwrap_or(30);
        let lb = i.target_group.map(|tg| {
            LoadBalancer::builder()
                .target_group_arn(tg)
                .container_name(CONTAINER)
                .container_port(i32::from(stack.service.container_port))
                .build()
        });
        let out_service = if observed.is_none() {
            let tags: Vec<aws_sdk_ecs::types::Tag> = stack
                .resource_tags()
                .into_iter()
                .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
                .collect();
            ecs.create_service()
                .cluster(i.cluster)
                .service_name(&name)
                .task_definition(td_arn.clone().unwrap_or_default())
                .desired_count(i32::try_from(stack.service.desired_count).unwrap_or(1))
                .capacity_provider_strategy(strategy(i.capacity_provider)?)
                .set_load_balancers(lb.map(|l| vec![l]))
                .deployment_configuration(deployment_config(stack))
                .health_check_grace_period_seconds(grace)
                .enable_ecs_managed_tags(true)
                .propagate_tags(PropagateTags::Service)
                .set_tags(Some(tags))
                .send()
                .await
                .ctx("create service", &name)?
                .service
        } else {
            let mut req = ecs
                .update_service()
                .cluster(i.cluster)
                .service(&name)
                .task_definition(td_arn.clone().unwrap_or_default())
                .capacity_provider_strategy(strategy(i.capacity_provider)?)
                .deployment_configuration(deployment_config(stack))
                .health_check_grace_period_seconds(grace)
                .set_load_balancers(lb.map(|l| vec![l]));
            if stack.service.autoscaling.is_none() {
                req = req.desired_count(i32::try_from(stack.service.desired_count).unwrap_or(1));
            }
            if change.fields.iter().any(|f| f.field == "tasks") {
                req = req.force_new_deployment(true);
            }
            req.send().await.ctx("update service", &name)?.service
        };
        deployment_id = out_service.and_then(|s| {
            s.deployments().iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.id().map(str::to_owned))
        });
        ctx.progress(format!("service {name} now runs {}", td_arn.clone().unwrap_or_default()));
    }
    plan.push("ecs-service", &name, observed.as_ref().map(|o| o.arn.clone()), change);
    reconcile_autoscaling(ctx, plan, i.cluster, &name, i.load_balancer, i.target_group).await?;
    Ok(ServiceOutputs { service: name, task_definition_arn: td_arn, image: Some(i.image.to_owned()), deployment_id })
}

fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// `app/<lb-name>/<id>/targetgroup/<tg-name>/<id>`, the label ALBRequestCountPerTarget needs.
pub fn resource_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.rsplit_once(':')?.1;
    tg.starts_with("targetgroup/").then(|| format!("{lb}/{tg}"))
}

async fn reconcile_autoscaling(
    ctx: &Ctx,
    plan: &mut Plan,
    cluster: &str,
    service: &str,
    load_balancer: Option<&str>,
    target_group: Option<&str>,
) -> Result<(), Error> {
    let aas = &ctx.clients.app_autoscaling;
    let rid = resource_id(cluster, service);
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&rid)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .ctx("describe scalable target", &rid)?;
    let current = targets.scalable_targets().first().map(|t| (t.min_capacity(), t.max_capacity()));
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&rid)
        .send()
        .await
        .ctx("describe scaling policies of", &rid)?;
    let have: BTreeMap<String, f64> = policies
        .scaling_policies()
        .iter()
        .filter_map(|p| {
            Some((p.policy_name().to_owned(), p.target_tracking_scaling_policy_configuration()?.target_value()))
        })
        .collect();
    let Some(a) = &ctx.stack.service.autoscaling else {
        if current.is_some() {
            remove_autoscaling(ctx, plan, &rid).await?;
        }
        return Ok(());
    };
    let (min, max) = (i32::try_from(a.min).unwrap_or(1), i32::try_from(a.max).unwrap_or(1));
    let mut want = BTreeMap::from([(format!("{service}-cpu"), a.target_cpu_percent.get())]);
    if let Some(r) = a.requests_per_target {
        want.insert(format!("{service}-requests"), f64::from(r));
    }
    let mut fields = Vec::new();
    if current != Some((min, max)) {
        fields.push(FieldDiff::new("min/max", current.map(|(a, b)| format!("{a}/{b}")), Some(format!("{min}/{max}"))));
    }
    for (name, target) in &want {
        if have.get(name) != Some(target) {
            fields.push(FieldDiff::new(
                format!("policy {name}"),
                have.get(name).map(|v| format!("target {v}")),
                Some(format!("target {target}")),
            ));
        }
    }
    let change = if current.is_none() { Change::create(fields) } else { Change::update(fields) };
    if ctx.applying() && !change.is_no_op() {
        aas.register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&rid)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(min)
            .max_capacity(max)
            .send()
            .await
            .ctx("register scalable target", &rid)?;
        for (name, target) in want.iter().filter(|(n, t)| have.get(*n) != Some(t)) {
            let spec = if name.ends_with("-cpu") {
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
            } else {
                // Requests per target is measured per (load balancer, target group) pair.
                let label = match (load_balancer, target_group) {
                    (Some(lb), Some(tg)) => resource_label(lb, tg),
                    _ => None,
                }
                .ok_or_else(|| {
                    Error::Refused("requests_per_target needs the load balancer and target group first".into())
                })?;
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::AlbRequestCountPerTarget)
                    .resource_label(label)
            };
            let spec = spec.build().map_err(|e| Error::Refused(e.to_string()))?;
            aas.put_scaling_policy()
                .policy_name(name)
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&rid)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(
                    TargetTrackingScalingPolicyConfiguration::builder()
                        .target_value(*target)
                        .predefined_metric_specification(spec)
                        .scale_in_cooldown(60)
                        .scale_out_cooldown(60)
                        .build()
                        .map_err(|e| Error::Refused(e.to_string()))?,
                )
                .send()
                .await
                .ctx("put scaling policy", name)?;
        }
        ctx.progress(format!("auto scaling of {service}: {min}–{max} tasks"));
    }
    plan.push("service-autoscaling", &rid, None, change);
    Ok(())
}

/// Deregisters the service's scalable target (its policies go with it).
async fn remove_autoscaling(ctx: &Ctx, plan: &mut Plan, rid: &str) -> Result<(), Error> {
    if ctx.applying() {
        ctx.clients
            .app_autoscaling
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(rid)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .ctx("deregister scalable target", rid)?;
    }
    plan.push("service-autoscaling", rid, None, Change::delete());
    Ok(())
}

/// Auto scaling, the service (scaled to 0 first), then every revision of the task definition.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, cluster: &str) -> Result<(), Error> {
    let name = ctx.stack.name.clone();
    let ecs = &ctx.clients.ecs;
    let rid = resource_id(cluster, &name);
    let targets = ctx
        .clients
        .app_autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&rid)
        .send()
        .await
        .ctx("describe scalable target", &rid)?;
    if !targets.scalable_targets().is_empty() {
        remove_autoscaling(ctx, plan, &rid).await?;
    }
    if let Some(s) = observe_service(ctx, cluster, &name).await? {
        if ctx.applying() {
            ecs.update_service()
                .cluster(cluster)
                .service(&name)
                .desired_count(0)
                .send()
                .await
                .ctx("scale to zero", &name)?;
            ecs.delete_service()
                .cluster(cluster)
                .service(&name)
                .force(true)
                .send()
                .await
                .ctx("delete service", &name)?;
            ctx.progress(format!("deleted service {name}"));
        }
        plan.push("ecs-service", &name, Some(s.arn), Change::delete());
    }
    let family = family(&ctx.stack);
    let listed = ecs
        .list_task_definitions()
        .family_prefix(&family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .ctx("list task definitions of", &family)?;
    for arn in listed.task_definition_arns() {
        // The prefix also matches other families (`konnichiwa-x`): keep ours only.
        let ours = arn.rsplit('/').next().and_then(|f| f.rsplit_once(':')).is_some_and(|(fam, _)| fam == family);
        if !ours {
            continue;
        }
        if ctx.applying() {
            ecs.deregister_task_definition()
                .task_definition(arn)
                .send()
                .await
                .ctx("deregister task definition", arn)?;
        }
        plan.push("task-definition", arn.rsplit('/').next().unwrap_or(arn), Some(arn.clone()), Change::delete());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs<'static> {
        Inputs {
            cluster: "konnichiwa",
            capacity_provider: "konnichiwa-capacity",
            image: "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/konnichiwa@sha256:aaaa",
            secret_arn: "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:konnichiwa/api-key-AbCdEf",
            log_group: "/ecs/konnichiwa",
            execution_role: "arn:aws:iam::123456789012:role/konnichiwa-execution",
            task_role: "arn:aws:iam::123456789012:role/konnichiwa-task",
            target_group: Some("arn:tg"),
            load_balancer: None,
            key_changes: false,
        }
    }

    #[test]
    fn request_count_label_from_the_arns() {
        let lb =
            "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/konnichiwa-alb/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/konnichiwa-tg/73e2d6bc24d8a067";
        assert_eq!(
            resource_label(lb, tg).as_deref(),
            Some("app/konnichiwa-alb/50dc6c495c0c9188/targetgroup/konnichiwa-tg/73e2d6bc24d8a067")
        );
        assert_eq!(resource_label("nonsense", tg), None);
    }

    #[test]
    fn the_key_comes_from_the_secret_never_the_environment() {
        let s = crate::resources::test_stack();
        let t = desired_task(&s, &inputs());
        assert!(!t.environment.contains_key("API_KEY"));
        assert_eq!(t.secrets["API_KEY"], inputs().secret_arn);
        assert_eq!(t.environment["PORT"], "8080");
        assert!(t.stop_timeout >= 25, "covers the app's 20 s grace");
    }

    #[test]
    fn an_identical_definition_registers_nothing_and_an_image_change_registers_once() {
        let s = crate::resources::test_stack();
        let want = desired_task(&s, &inputs());
        assert!(diff_task(&want, Some(&want.clone())).is_no_op());
        let old = TaskSpec { image: "repo@sha256:old".into(), ..want.clone() };
        let c = diff_task(&want, Some(&old));
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].field, "image");
    }

    #[test]
    fn fields_moto_drops_compare_as_sent() {
        let s = crate::resources::test_stack();
        let o = ObservedService {
            arn: "arn".into(),
            task_definition: "td:1".into(),
            desired: 5,
            running: 5,
            pending: 0,
            capacity_providers: None,
            target_groups: vec!["arn:tg".into()],
            circuit_breaker: None,
            min_healthy: None,
            max_percent: None,
            grace_seconds: None,
        };
        assert!(
            diff_service(&s, "td:1", "konnichiwa-capacity", Some("arn:tg"), Some(&o)).is_no_op(),
            "desired 5 belongs to autoscaling"
        );
        let broken = ObservedService { circuit_breaker: Some((false, false)), ..o };
        assert_eq!(
            diff_service(&s, "td:1", "konnichiwa-capacity", Some("arn:tg"), Some(&broken)).fields[0].field,
            "circuit_breaker"
        );
    }
}
