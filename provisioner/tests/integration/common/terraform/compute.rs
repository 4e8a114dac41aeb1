//! The state's capacity, read from EC2, Auto Scaling, ECS and SSM: the launch template, the Auto
//! Scaling group, the ECS cluster, its capacity provider and their association, and the
//! `aws_ssm_parameter` data source of the recommended ECS AMI; the IAM side is in `iam`.

use serde_json::{Value, json};

use super::state::{Built, Reading, tag_map};

/// The SSM parameter the configuration reads its AMI from (the stack's `ami: ecs-optimized-al2023`).
const ECS_AMI_PARAMETER: &str = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id";

pub async fn read(r: &Reading) -> Vec<Built> {
    let mut built = vec![launch_template(r).await, auto_scaling_group(r).await, ecs_ami(r).await];
    built.extend(cluster(r).await);
    built.extend(super::iam::read(r).await);
    built
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Value {
    tag_map(tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

fn ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> Value {
    tag_map(tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

/// A tristate the provider keeps as a string ("true", "false", or "" when unset).
fn tristate(v: Option<bool>) -> String {
    v.map(|b| b.to_string()).unwrap_or_default()
}

async fn launch_template(r: &Reading) -> Built {
    let name = format!("{}-instances", r.stack);
    let ec2 = &r.c.ec2;
    let found = ec2.describe_launch_templates().launch_template_names(&name).send().await.expect("launch template");
    let lt = found.launch_templates().first().expect("the launch template");
    let id = lt.launch_template_id().unwrap_or_default();
    let versions = ec2.describe_launch_template_versions().launch_template_id(id).versions("$Latest").send().await;
    let versions = versions.expect("its latest version");
    let d = versions.launch_template_versions().first().and_then(|v| v.launch_template_data()).expect("its data");
    let metadata = d.metadata_options().map(|m| {
        json!({
            "http_endpoint": m.http_endpoint().map(|v| v.as_str()).unwrap_or_default(),
            "http_protocol_ipv6": m.http_protocol_ipv6().map(|v| v.as_str()).unwrap_or_default(),
            "http_put_response_hop_limit": m.http_put_response_hop_limit().unwrap_or(0),
            "http_tokens": m.http_tokens().map(|v| v.as_str()).unwrap_or_default(),
            "instance_metadata_tags": m.instance_metadata_tags().map(|v| v.as_str()).unwrap_or_default(),
        })
    });
    let profile = d
        .iam_instance_profile()
        .map(|p| json!({ "arn": p.arn().unwrap_or_default(), "name": p.name().unwrap_or_default() }));
    // moto also echoes the template's own tag specification in its data (AWS has none there).
    let specs: Vec<Value> = d
        .tag_specifications()
        .iter()
        .filter(|s| s.resource_type().is_some_and(|t| t.as_str() != "launch-template"))
        .map(|s| json!({ "resource_type": s.resource_type().map(|t| t.as_str()), "tags": ec2_tags(s.tags()) }))
        .collect();
    Built::new(
        "aws_launch_template",
        "instances",
        json!({
            "arn": r.arn("ec2", &format!("launch-template/{id}")),
            "block_device_mappings": block_devices(d),
            "default_version": lt.default_version_number(),
            "iam_instance_profile": profile.into_iter().collect::<Vec<_>>(),
            "id": id,
            "image_id": d.image_id(),
            "instance_type": d.instance_type().map(|t| t.as_str()),
            "latest_version": lt.latest_version_number(),
            "metadata_options": metadata.into_iter().collect::<Vec<_>>(),
            "name": lt.launch_template_name(),
            "name_prefix": "",
            "tag_specifications": specs,
            "tags_all": ec2_tags(lt.tags()),
            "user_data": d.user_data(),
            "vpc_security_group_ids": d.security_group_ids(),
        }),
    )
}

/// A launch template's `block_device_mappings` blocks.
fn block_devices(d: &aws_sdk_ec2::types::ResponseLaunchTemplateData) -> Vec<Value> {
    d.block_device_mappings()
        .iter()
        .map(|b| {
            let ebs = b.ebs().map(|e| {
                json!({
                    "delete_on_termination": tristate(e.delete_on_termination()),
                    "encrypted": tristate(e.encrypted()),
                    "iops": e.iops().unwrap_or(0),
                    "kms_key_id": e.kms_key_id().unwrap_or_default(),
                    "snapshot_id": e.snapshot_id().unwrap_or_default(),
                    "throughput": e.throughput().unwrap_or(0),
                    "volume_initialization_rate": e.volume_initialization_rate().unwrap_or(0),
                    "volume_size": e.volume_size().unwrap_or(0),
                    "volume_type": e.volume_type().map(|t| t.as_str()).unwrap_or_default(),
                })
            });
            json!({
                "device_name": b.device_name().unwrap_or_default(),
                "ebs": ebs.into_iter().collect::<Vec<_>>(),
                "no_device": b.no_device().unwrap_or_default(),
                "virtual_name": b.virtual_name().unwrap_or_default(),
            })
        })
        .collect()
}

async fn auto_scaling_group(r: &Reading) -> Built {
    let name = format!("{}-instances", r.stack);
    let found = r.c.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names(&name).send().await;
    let found = found.expect("describe_auto_scaling_groups");
    let g = found.auto_scaling_groups().first().expect("the Auto Scaling group");
    let lt = g.launch_template().map(|t| {
        json!({
            "id": t.launch_template_id(),
            "name": t.launch_template_name(),
            "version": t.version(),
        })
    });
    let mut tags: Vec<Value> = g
        .tags()
        .iter()
        .map(|t| json!({ "key": t.key(), "propagate_at_launch": t.propagate_at_launch(), "value": t.value() }))
        .collect();
    tags.sort_by_key(|t| t["key"].as_str().unwrap_or_default().to_owned());
    let zones: Vec<&str> = g.vpc_zone_identifier().unwrap_or_default().split(',').filter(|s| !s.is_empty()).collect();
    Built::new(
        "aws_autoscaling_group",
        "instances",
        json!({
            "arn": g.auto_scaling_group_arn(),
            "availability_zones": g.availability_zones(),
            "capacity_rebalance": g.capacity_rebalance(),
            "default_cooldown": g.default_cooldown(),
            "desired_capacity": g.desired_capacity(),
            "health_check_grace_period": g.health_check_grace_period(),
            "health_check_type": g.health_check_type(),
            "id": g.auto_scaling_group_name(),
            "launch_template": lt.into_iter().collect::<Vec<_>>(),
            "load_balancers": g.load_balancer_names(),
            "max_size": g.max_size(),
            "min_size": g.min_size(),
            "name": g.auto_scaling_group_name(),
            "name_prefix": "",
            "protect_from_scale_in": g.new_instances_protected_from_scale_in(),
            "service_linked_role_arn": g.service_linked_role_arn(),
            "tag": tags,
            "target_group_arns": g.target_group_arns(),
            "vpc_zone_identifier": zones,
        }),
    )
}

/// The ECS cluster, its capacity provider, and the association of the two.
async fn cluster(r: &Reading) -> Vec<Built> {
    use aws_sdk_ecs::types::{CapacityProviderField, ClusterField};
    let ecs = &r.c.ecs;
    let found = ecs.describe_clusters().clusters(&r.stack).include(ClusterField::Tags).include(ClusterField::Settings);
    let found = found.send().await.expect("describe_clusters");
    let cl = found.clusters().first().expect("the cluster");
    let arn = cl.cluster_arn().unwrap_or_default();
    let settings: Vec<Value> =
        cl.settings().iter().map(|s| json!({ "name": s.name().map(|n| n.as_str()), "value": s.value() })).collect();
    let strategy: Vec<Value> = cl
        .default_capacity_provider_strategy()
        .iter()
        .map(|s| json!({ "base": s.base(), "capacity_provider": s.capacity_provider(), "weight": s.weight() }))
        .collect();
    let mut built = vec![
        Built::new(
            "aws_ecs_cluster",
            "main",
            json!({
                "arn": arn,
                "configuration": [],
                "id": arn,
                "name": cl.cluster_name(),
                "service_connect_defaults": [],
                "setting": settings,
                "tags_all": ecs_tags(cl.tags()),
            }),
        ),
        Built::new(
            "aws_ecs_cluster_capacity_providers",
            "main",
            json!({
                "capacity_providers": cl.capacity_providers(),
                "cluster_name": cl.cluster_name(),
                "default_capacity_provider_strategy": strategy,
                "id": cl.cluster_name(),
            }),
        ),
    ];
    let providers = ecs.describe_capacity_providers().set_capacity_providers(Some(cl.capacity_providers().to_vec()));
    let providers = providers.include(CapacityProviderField::Tags).send().await.expect("capacity providers");
    let p = providers.capacity_providers().first().expect("the cluster's capacity provider");
    let asg = p.auto_scaling_group_provider().map(|a| {
        let scaling = a.managed_scaling().map(|m| {
            json!({
                "instance_warmup_period": m.instance_warmup_period(),
                "maximum_scaling_step_size": m.maximum_scaling_step_size(),
                "minimum_scaling_step_size": m.minimum_scaling_step_size(),
                "status": m.status().map(|s| s.as_str()),
                "target_capacity": m.target_capacity(),
            })
        });
        json!({
            "auto_scaling_group_arn": a.auto_scaling_group_arn(),
            "managed_draining": a.managed_draining().map(|d| d.as_str()).unwrap_or_default(),
            "managed_scaling": scaling.into_iter().collect::<Vec<_>>(),
            "managed_termination_protection": a.managed_termination_protection().map(|t| t.as_str()),
        })
    });
    let attributes = json!({
        "arn": p.capacity_provider_arn(),
        "auto_scaling_group_provider": asg.into_iter().collect::<Vec<_>>(),
        "id": p.capacity_provider_arn(),
        "name": p.name(),
        "tags_all": ecs_tags(p.tags()),
    });
    built.push(Built::new("aws_ecs_capacity_provider", "main", attributes));
    built
}

/// `data.aws_ssm_parameter.ecs_ami[0]`: the recommended AMI as SSM answers now.
async fn ecs_ami(r: &Reading) -> Built {
    let got = r.c.ssm.get_parameter().name(ECS_AMI_PARAMETER).send().await.expect("the ECS AMI parameter");
    let p = got.parameter().expect("the parameter");
    Built::indexed(
        "aws_ssm_parameter",
        "ecs_ami",
        0,
        json!({
            "arn": p.arn(),
            "id": p.name(),
            "insecure_value": p.value(),
            "name": p.name(),
            "type": p.r#type().map(|t| t.as_str()),
            "value": p.value(),
            "version": p.version(),
        }),
    )
}
