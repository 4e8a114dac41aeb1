//! The state's service, read from ECS, Application Auto Scaling, ECR, CloudWatch Logs and Secrets
//! Manager: the ECS service, its task definition (its container definitions as the JSON string
//! the provider keeps), its scalable target and CPU policy, the repository and its lifecycle
//! policy, the log group, and the API key's secret with a version that holds `PLACEHOLDER`.

use aws_sdk_applicationautoscaling::types::ServiceNamespace;
use aws_sdk_ecs::types::{ContainerDefinition, ServiceField, TaskDefinitionField};
use serde_json::{Map, Value, json};

use super::state::{Built, PLACEHOLDER, Reading, sorted, tag_map};

pub async fn read(r: &Reading) -> Vec<Built> {
    let mut built = service(r).await;
    built.extend(autoscaling(r).await);
    built.extend(repository(r).await);
    built.push(log_group(r).await);
    built.extend(secret(r).await);
    built
}

fn ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> Value {
    tag_map(tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

/// The ECS service and the task definition it runs.
async fn service(r: &Reading) -> Vec<Built> {
    let ecs = &r.c.ecs;
    let found = ecs.describe_services().cluster(&r.stack).services(&r.stack).include(ServiceField::Tags).send().await;
    let found = found.expect("describe_services");
    let s = found.services().first().expect("the service");
    let deployment = s.deployment_configuration();
    let breaker = deployment.and_then(|d| d.deployment_circuit_breaker());
    let alarms = deployment.and_then(|d| d.alarms());
    let strategy: Vec<Value> = s
        .capacity_provider_strategy()
        .iter()
        .map(|x| json!({ "base": x.base(), "capacity_provider": x.capacity_provider(), "weight": x.weight() }))
        .collect();
    let lbs: Vec<Value> = s
        .load_balancers()
        .iter()
        .map(|l| {
            json!({
                "container_name": l.container_name(),
                "container_port": l.container_port(),
                "elb_name": l.load_balancer_name().unwrap_or_default(),
                "target_group_arn": l.target_group_arn(),
            })
        })
        .collect();
    let alarms =
        alarms.map(|a| json!([{ "alarm_names": a.alarm_names(), "enable": a.enable(), "rollback": a.rollback() }]));
    let attributes = json!({
        "alarms": alarms,
        "capacity_provider_strategy": strategy,
        "cluster": s.cluster_arn(),
        "deployment_circuit_breaker": breaker.map(|b| json!([{ "enable": b.enable(), "rollback": b.rollback() }])),
        "deployment_controller": s.deployment_controller().map(|c| json!([{ "type": c.r#type().as_str() }])),
        "deployment_maximum_percent": deployment.and_then(|d| d.maximum_percent()),
        "deployment_minimum_healthy_percent": deployment.and_then(|d| d.minimum_healthy_percent()),
        "desired_count": s.desired_count(),
        "enable_ecs_managed_tags": s.enable_ecs_managed_tags(),
        "enable_execute_command": s.enable_execute_command(),
        "health_check_grace_period_seconds": s.health_check_grace_period_seconds(),
        "id": s.service_arn(),
        "launch_type": s.launch_type().map(|t| t.as_str()),
        "load_balancer": lbs,
        "name": s.service_name(),
        "platform_version": s.platform_version().unwrap_or_default(),
        "propagate_tags": s.propagate_tags().map(|t| t.as_str()),
        "scheduling_strategy": s.scheduling_strategy().map(|t| t.as_str()),
        "tags_all": ecs_tags(s.tags()),
        "task_definition": s.task_definition(),
    });
    let task = task_definition(r, s.task_definition().expect("its task definition")).await;
    vec![Built::new("aws_ecs_service", "app", attributes), task]
}

async fn task_definition(r: &Reading, arn: &str) -> Built {
    let got = r.c.ecs.describe_task_definition().task_definition(arn).include(TaskDefinitionField::Tags).send().await;
    let got = got.expect("describe_task_definition");
    let td = got.task_definition().expect("the task definition");
    let containers: Vec<Value> = td.container_definitions().iter().map(container).collect();
    let arn = td.task_definition_arn().unwrap_or_default();
    Built::new(
        "aws_ecs_task_definition",
        "app",
        json!({
            "arn": arn,
            "arn_without_revision": arn.rsplit_once(':').map(|(a, _)| a),
            "container_definitions": Value::Array(containers).to_string(),
            "cpu": td.cpu(),
            "execution_role_arn": td.execution_role_arn(),
            "family": td.family(),
            "id": td.family(),
            "memory": td.memory(),
            "network_mode": td.network_mode().map(|m| m.as_str()),
            "requires_compatibilities": td.requires_compatibilities().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "revision": td.revision(),
            "tags_all": ecs_tags(got.tags()),
            "task_role_arn": td.task_role_arn(),
        }),
    )
}

/// One container definition in ECS's JSON (camelCase, keys sorted, an unset CPU left out), as the
/// provider keeps it in `container_definitions`.
fn container(c: &ContainerDefinition) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            o.insert(k.into(), v);
        }
    };
    put("name", json!(c.name()));
    put("image", json!(c.image()));
    put("cpu", if c.cpu() == 0 { Value::Null } else { json!(c.cpu()) });
    put("memory", json!(c.memory()));
    put("memoryReservation", json!(c.memory_reservation()));
    put("essential", json!(c.essential()));
    let ports = c.port_mappings().iter().map(|p| {
        let protocol = p.protocol().map(|x| x.as_str());
        json!({ "containerPort": p.container_port(), "hostPort": p.host_port(), "protocol": protocol })
    });
    put("portMappings", Value::Array(ports.collect()));
    let env = c.environment().iter().map(|e| json!({ "name": e.name(), "value": e.value() }));
    put("environment", Value::Array(env.collect()));
    put("mountPoints", json!([]));
    put("volumesFrom", json!([]));
    let secrets = c.secrets().iter().map(|s| json!({ "name": s.name(), "valueFrom": s.value_from() }));
    put("secrets", Value::Array(secrets.collect()));
    put("stopTimeout", json!(c.stop_timeout()));
    put("readonlyRootFilesystem", json!(c.readonly_root_filesystem()));
    if !c.command().is_empty() {
        put("command", json!(c.command()));
    }
    if !c.entry_point().is_empty() {
        put("entryPoint", json!(c.entry_point()));
    }
    put("user", json!(c.user()));
    if let Some(l) = c.log_configuration() {
        put("logConfiguration", json!({ "logDriver": l.log_driver().as_str(), "options": l.options() }));
    }
    if let Some(h) = c.health_check() {
        put(
            "healthCheck",
            json!({
                "command": h.command(), "interval": h.interval(), "retries": h.retries(),
                "startPeriod": h.start_period(), "timeout": h.timeout(),
            }),
        );
    }
    sorted(Value::Object(o))
}

/// The service's scalable target and its scaling policy (moto keeps no tags of scalable
/// targets: `tags_all` is empty).
async fn autoscaling(r: &Reading) -> Vec<Built> {
    let aas = &r.c.app_autoscaling;
    let rid = format!("service/{}/{}", r.stack, r.stack);
    let targets = aas.describe_scalable_targets().service_namespace(ServiceNamespace::Ecs).resource_ids(&rid).send();
    let targets = targets.await.expect("describe_scalable_targets");
    let t = targets.scalable_targets().first().expect("the service's scalable target");
    let target = Built::new(
        "aws_appautoscaling_target",
        "service",
        json!({
            "arn": t.scalable_target_arn(),
            "id": t.resource_id(),
            "max_capacity": t.max_capacity(),
            "min_capacity": t.min_capacity(),
            "resource_id": t.resource_id(),
            "role_arn": t.role_arn(),
            "scalable_dimension": t.scalable_dimension().as_str(),
            "service_namespace": t.service_namespace().as_str(),
            "tags_all": scalable_target_tags(aas, t.scalable_target_arn()).await,
        }),
    );
    let policies = aas.describe_scaling_policies().service_namespace(ServiceNamespace::Ecs).resource_id(&rid).send();
    let policies = policies.await.expect("describe_scaling_policies");
    let p = policies.scaling_policies().iter().find(|p| p.policy_name().ends_with("-cpu")).expect("the CPU policy");
    let tracking = p.target_tracking_scaling_policy_configuration().map(|c| {
        let metric = c.predefined_metric_specification().map(|m| {
            json!([{
                "predefined_metric_type": m.predefined_metric_type().as_str(),
                "resource_label": m.resource_label().unwrap_or_default(),
            }])
        });
        json!([{
            "customized_metric_specification": [],
            "disable_scale_in": c.disable_scale_in().unwrap_or(false),
            "predefined_metric_specification": metric,
            "scale_in_cooldown": c.scale_in_cooldown(),
            "scale_out_cooldown": c.scale_out_cooldown(),
            "target_value": c.target_value(),
        }])
    });
    let policy = Built::new(
        "aws_appautoscaling_policy",
        "cpu",
        json!({
            "alarm_arns": p.alarms().iter().map(|a| a.alarm_arn()).collect::<Vec<_>>(),
            "arn": p.policy_arn(),
            "id": p.policy_name(),
            "name": p.policy_name(),
            "policy_type": p.policy_type().as_str(),
            "resource_id": p.resource_id(),
            "scalable_dimension": p.scalable_dimension().as_str(),
            "service_namespace": p.service_namespace().as_str(),
            "step_scaling_policy_configuration": [],
            "target_tracking_scaling_policy_configuration": tracking,
        }),
    );
    vec![target, policy]
}

/// The repository and its lifecycle policy.
async fn repository(r: &Reading) -> Vec<Built> {
    let ecr = &r.c.ecr;
    let found = ecr.describe_repositories().repository_names(&r.stack).send().await.expect("describe_repositories");
    let repo = found.repositories().first().expect("the repository");
    let arn = repo.repository_arn().unwrap_or_default();
    let tags = ecr.list_tags_for_resource().resource_arn(arn).send().await.expect("ecr: tags");
    let encryption = repo.encryption_configuration().map(
        |e| json!([{ "encryption_type": e.encryption_type().as_str(), "kms_key": e.kms_key().unwrap_or_default() }]),
    );
    let scanning = repo.image_scanning_configuration().map(|s| json!([{ "scan_on_push": s.scan_on_push() }]));
    let mut built = vec![Built::new(
        "aws_ecr_repository",
        "app",
        json!({
            "arn": arn,
            "encryption_configuration": encryption,
            "id": repo.repository_name(),
            "image_scanning_configuration": scanning,
            "image_tag_mutability": repo.image_tag_mutability().map(|m| m.as_str()),
            "name": repo.repository_name(),
            "registry_id": repo.registry_id(),
            "repository_url": repo.repository_uri(),
            "tags_all": tag_map(tags.tags().iter().map(|t| (t.key(), t.value()))),
        }),
    )];
    let policy = ecr.get_lifecycle_policy().repository_name(&r.stack).send().await.expect("get_lifecycle_policy");
    built.push(Built::new(
        "aws_ecr_lifecycle_policy",
        "app",
        json!({
            "id": policy.repository_name(),
            "policy": policy.lifecycle_policy_text(),
            "registry_id": policy.registry_id(),
            "repository": policy.repository_name(),
        }),
    ));
    built
}

async fn log_group(r: &Reading) -> Built {
    let name = format!("/ecs/{}", r.stack);
    let found = r.c.logs.describe_log_groups().log_group_name_prefix(&name).send().await.expect("describe_log_groups");
    let g = found.log_groups().iter().find(|g| g.log_group_name() == Some(name.as_str())).expect("the log group");
    let arn = g.log_group_arn().unwrap_or_default();
    let tags = r.c.logs.list_tags_for_resource().resource_arn(arn).send().await.expect("logs: tags");
    Built::new(
        "aws_cloudwatch_log_group",
        "app",
        json!({
            "arn": arn,
            "id": name,
            "kms_key_id": g.kms_key_id().unwrap_or_default(),
            "log_group_class": g.log_group_class().map(|c| c.as_str()).unwrap_or_default(),
            "name": name,
            "name_prefix": "",
            "retention_in_days": g.retention_in_days().unwrap_or(0),
            "tags_all": tag_map(tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))),
        }),
    )
}

/// The API key's secret, and its current version with `PLACEHOLDER` for the value the state
/// would hold.
async fn secret(r: &Reading) -> Vec<Built> {
    let sm = &r.c.secrets;
    let name = format!("{}/api-key", r.stack);
    let s = sm.describe_secret().secret_id(&name).send().await.expect("describe_secret");
    let arn = s.arn().unwrap_or_default();
    let current = s
        .version_ids_to_stages()
        .into_iter()
        .flatten()
        .find(|(_, stages)| stages.iter().any(|x| x == "AWSCURRENT"))
        .map(|(id, stages)| (id.clone(), stages.clone()))
        .expect("the secret's current version");
    let secret = Built::new(
        "aws_secretsmanager_secret",
        "api_key",
        json!({
            "arn": arn,
            "description": s.description().unwrap_or_default(),
            "id": arn,
            "kms_key_id": s.kms_key_id().unwrap_or_default(),
            "name": s.name(),
            "name_prefix": "",
            "replica": [],
            "tags_all": tag_map(s.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
        }),
    );
    let version = Built::new(
        "aws_secretsmanager_secret_version",
        "api_key",
        json!({
            "arn": arn,
            "id": format!("{arn}|{}", current.0),
            "secret_binary": "",
            "secret_id": arn,
            "secret_string": PLACEHOLDER,
            "version_id": current.0,
            "version_stages": current.1,
        }),
    );
    vec![secret, version]
}

/// A scalable target's tags as the state's `tags_all` map.
async fn scalable_target_tags(aas: &aws_sdk_applicationautoscaling::Client, arn: Option<&str>) -> serde_json::Value {
    let out = aas.list_tags_for_resource().resource_arn(arn.expect("its ARN")).send().await.expect("its tags");
    serde_json::to_value(out.tags().cloned().unwrap_or_default()).expect("a map")
}
