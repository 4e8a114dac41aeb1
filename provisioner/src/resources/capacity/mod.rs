//! EC2 capacity for the cluster: the launch template (ECS-optimized AMI from the public SSM
//! parameter, IMDSv2 with hop limit 1, encrypted root volume, user data that joins the cluster),
//! the Auto Scaling group across the public subnets (instances protected from scale-in so ECS
//! decides what to drain; a new template version rolls out by instance refresh), and the
//! capacity provider (managed scaling, termination protection and draining). One file per
//! sub-resource; this file holds what they share and walks them in order.

pub mod group;
mod provider;
mod template;

use serde::Serialize;
use serde_json::json;
use stack::catalog::{Arch, arch_of};

use crate::error::{AwsContext, Error};
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::{Ctx, Id, Plan};
use crate::resources::cluster::ClusterOutputs;
use crate::resources::iam::IamOutputs;
use crate::resources::network::NetworkOutputs;

use crate::reconcile::Noun;
pub use group::{ObservedAsg, diff_asg};
pub use provider::{ObservedProvider, diff_provider};
pub use template::{AmiChoice, ObservedTemplate, TemplateSpec, diff_template, user_data};
/// The nouns of this kind's plan rows.
pub const LAUNCH_TEMPLATE: Noun = Noun::new("launch-template");
pub const AUTO_SCALING_GROUP: Noun = Noun::new("auto-scaling-group");
pub const CAPACITY_PROVIDER: Noun = Noun::new("capacity-provider");

pub const ROOT_DEVICE: &str = "/dev/xvda";

/// What capacity calls: the launch template by the stack's tag, the Auto Scaling group and the
/// capacity provider by name; instances only from a launch template.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:DescribeInstances",
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeInstanceRefreshes",
            "ecs:DescribeCapacityProviders",
        ],
        Scope::Any,
    ),
    Permission::new(
        &["ssm:GetParameter"],
        Scope::Own(|c| {
            vec![format!("arn:{}:ssm:{}::parameter/aws/service/ecs/optimized-ami/*", c.partition, c.stack.region)]
        }),
    ),
    Permission::new(&["ec2:CreateLaunchTemplate"], Scope::Ec2Creating(&["launch-template"])),
    Permission::new(
        &["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplate"],
        Scope::Ec2Tagged(&["launch-template"]),
    ),
    Permission::new(&["ec2:TerminateInstances"], Scope::Ec2Tagged(&["instance"])),
    // Auto Scaling launches with the caller's permission to run instances, checked resource by
    // resource: only from the stack's launch template, into its subnets with its security groups,
    // from the image the stack names (or an Amazon-owned one: the recommended ECS AMI).
    Permission::new(&["ec2:RunInstances"], Scope::Ec2Tagged(&["launch-template", "subnet", "security-group"])),
    // The instances of the stack's instance type only: a template version or a direct call with
    // a larger one would spend the account's vCPU quota, which other stacks share.
    Permission::new(
        &["ec2:RunInstances"],
        Scope::Conditioned {
            resources: |c| vec![c.arn("ec2", "instance/*")],
            condition: |c| {
                json!({
                    "ArnLike": { "ec2:LaunchTemplate": c.arn("ec2", "launch-template/*") },
                    "StringEquals": { "ec2:InstanceType": c.stack.capacity.instance_type },
                })
            },
        },
    ),
    Permission::new(
        &["ec2:RunInstances"],
        Scope::Conditioned {
            resources: |c| ["volume/*", "network-interface/*"].map(|r| c.arn("ec2", r)).to_vec(),
            condition: |c| json!({ "ArnLike": { "ec2:LaunchTemplate": c.arn("ec2", "launch-template/*") } }),
        },
    ),
    Permission::new(
        &["ec2:RunInstances"],
        Scope::Conditioned {
            resources: |c| vec![format!("arn:{}:ec2:{}::image/*", c.partition, c.stack.region)],
            condition: |c| match c.stack.capacity.ami.as_str() {
                ami if ami.starts_with("ami-") => json!({ "StringEquals": { "ec2:ImageID": ami } }),
                _ => json!({ "StringEquals": { "ec2:Owner": "amazon" } }),
            },
        },
    ),
    // A group on `$Latest` or `$Default` launches whatever version the template has later, with
    // Auto Scaling's own role, unchecked: the group is created and updated with an explicit
    // version only, and (once they exist) only in the stack's subnets. StartInstanceRefresh can
    // move a group to any version and IAM cannot bound which: the deploy role is denied it
    // (`ci_role::DENIED`); a refresh is an administrator's `up`.
    Permission::new(
        &["autoscaling:CreateAutoScalingGroup"],
        Scope::Conditioned { resources: group_arn, condition: |c| group_condition(c, "Bool") },
    ),
    Permission::new(
        &["autoscaling:UpdateAutoScalingGroup"],
        Scope::Conditioned { resources: group_arn, condition: |c| group_condition(c, "BoolIfExists") },
    ),
    Permission::new(
        &["autoscaling:DeleteAutoScalingGroup", "autoscaling:SetInstanceProtection"],
        Scope::Own(group_arn),
    ),
    Permission::new(&["autoscaling:CreateOrUpdateTags"], Scope::Retag(group_arn)),
    // The capacity provider's statements are held with the cluster's (the group's conditions
    // fill most of this kind's policy).
    Permission::new(&["ecs:CreateCapacityProvider"], Scope::CreatingTagged).in_group("cluster"),
    Permission::new(&["ecs:UpdateCapacityProvider", "ecs:DeleteCapacityProvider"], Scope::Own(provider_arn))
        .in_group("cluster"),
    Permission::new(&["ecs:TagResource"], Scope::Retag(provider_arn)).in_group("cluster"),
    // CreateCapacityProvider passes ECS's service-linked role to ECS.
    Permission::new(
        &["iam:PassRole"],
        Scope::PassRole {
            roles: |c| vec![c.iam_arn("role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS")],
            service: "ecs.amazonaws.com",
        },
    )
    .in_group("cluster"),
    Permission::new(
        &["iam:CreateServiceLinkedRole"],
        Scope::ServiceLinkedRoles(&["autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com"]),
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct CapacityOutputs {
    pub ami: Option<String>,
    pub launch_template_id: Id,
    pub auto_scaling_group: String,
    pub auto_scaling_group_arn: Id,
    pub capacity_provider: String,
    /// The group's desired capacity when it was read (ECS's managed scaling owns it once the group
    /// exists); None in a plan of a group not made yet.
    pub instances_desired: Option<u32>,
}

/// A launch template version named explicitly (`bool`: `Bool` for a create, which always names
/// a template, `BoolIfExists` for an update, which may leave it as it is), and the subnets the
/// stack has, when it has them.
fn group_condition(c: &PolicyContext, bool: &str) -> serde_json::Value {
    // No launch configuration and no instance-type overrides (each could name another instance
    // profile, unchecked), no capacity reservation (someone else's); a create names its subnets
    // and attaches no load balancer itself.
    let mut absent = json!({
        "autoscaling:LaunchConfigurationName": "true",
        "autoscaling:InstanceTypes": "true",
        "autoscaling:CapacityReservationIds": "true",
        "autoscaling:CapacityReservationResourceGroupArns": "true",
    });
    if bool == "Bool" {
        for key in
            ["autoscaling:TargetGroupARNs", "autoscaling:LoadBalancerNames", "autoscaling:TrafficSourceIdentifiers"]
        {
            absent[key] = json!("true");
        }
        absent["autoscaling:VPCZoneIdentifiers"] = json!("false");
    }
    // No more instances than stack.yaml allows (a group scaled past it spends the account's
    // vCPU quota, which other stacks share); an update may leave the size as it is.
    let at_most = if bool == "Bool" { "NumericLessThanEquals" } else { "NumericLessThanEqualsIfExists" };
    let mut condition = json!({
        bool: { "autoscaling:LaunchTemplateVersionSpecified": "true" },
        "Null": absent,
        at_most: { "autoscaling:MaxSize": c.stack.capacity.max.to_string() },
    });
    if !c.subnets.is_empty() {
        condition["ForAllValues:StringEquals"] = json!({ "autoscaling:VPCZoneIdentifiers": c.subnets });
    }
    condition
}

fn group_arn(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("autoscaling", &format!("autoScalingGroup:*:autoScalingGroupName/{}", names(c.stack).asg))]
}

fn provider_arn(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("ecs", &format!("capacity-provider/{}", names(c.stack).provider))]
}

pub struct Names {
    pub launch_template: String,
    pub asg: String,
    pub provider: String,
}

pub fn names(stack: &stack::Stack) -> Names {
    let adopted = &stack.adopted;
    let derived = || format!("{}-instances", stack.name);
    Names {
        launch_template: adopted.launch_template.clone().unwrap_or_else(derived),
        asg: adopted.auto_scaling_group.clone().unwrap_or_else(derived),
        provider: crate::resources::cluster::provider_name(stack),
    }
}

/// The public SSM parameter of the recommended ECS-optimized AMI, by family and architecture.
pub fn ami_parameter(ami: &str, arch: Arch) -> Option<String> {
    let family = match ami {
        "ecs-optimized-al2023" => "amazon-linux-2023",
        "ecs-optimized-al2" => "amazon-linux-2",
        _ => return None,
    };
    let arch_part = if arch == Arch::Arm64 { "arm64/" } else { "" };
    Some(format!("/aws/service/ecs/optimized-ami/{family}/{arch_part}recommended/image_id"))
}

/// The architecture the image will have: `build` builds for this machine.
pub fn image_arch(stack: &stack::Stack) -> Option<Arch> {
    (stack.service.image == "build")
        .then(|| if std::env::consts::ARCH == "aarch64" { Arch::Arm64 } else { Arch::X86_64 })
}

/// Refuses, before any change, an instance type that cannot run the image.
pub fn check_architecture(stack: &stack::Stack, image: Option<Arch>) -> Result<(), Error> {
    let instances = arch_of(&stack.capacity.instance_type);
    match image {
        Some(img) if img != instances => Err(Error::Refused(format!(
            "capacity.instance_type {} runs {instances} but the image is built for {img}: pick an {img} instance type \
             (e.g. {}) or build the image for {instances}",
            stack.capacity.instance_type,
            if img == Arch::X86_64 { "t3.small" } else { "t4g.small" }
        ))),
        _ => Ok(()),
    }
}

/// The AMI stack.yaml names, or its family's recommended AMI as SSM says now.
pub(crate) async fn resolve_ami(ctx: &Ctx) -> Result<AmiChoice, Error> {
    let cap = &ctx.stack.capacity;
    let Some(parameter) = ami_parameter(&cap.ami, arch_of(&cap.instance_type)) else {
        return Ok(AmiChoice::Named(cap.ami.clone()));
    };
    let out = ctx
        .clients
        .ssm
        .get_parameter()
        .name(&parameter)
        .send()
        .await
        .ctx("read the recommended ECS AMI from", &parameter)?;
    let recommended = out
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_owned)
        .ok_or_else(|| Error::Refused(format!("SSM parameter {parameter} has no value")))?;
    Ok(AmiChoice::Recommended { parameter, recommended, follow: cap.follow_recommended_ami })
}

/// Inputs from earlier kinds.
pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub instance_profile: &'a str,
    pub security_group: &'a Id,
    pub subnets: &'a [Id],
}

/// The AMI to run, the launch template and the capacity provider, read before the capacity's
/// inputs are known (the engine reads them at the start); the group is read in turn, as it
/// depends on the template's version.
#[derive(Debug)]
pub struct Seen {
    ami: AmiChoice,
    template: Option<template::ObservedTemplate>,
    provider: Option<provider::ObservedProvider>,
}

/// Reads the AMI, the template and the provider at once.
pub async fn see(ctx: &Ctx) -> Result<Seen, Error> {
    let n = names(&ctx.stack);
    let (ami, template, provider) = tokio::try_join!(
        resolve_ami(ctx),
        template::observe(ctx, &n.launch_template),
        provider::observe(ctx, &n.provider)
    )?;
    Ok(Seen { ami, template, provider })
}

/// The template, the group and the provider, from what `see` read.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, inputs: &Inputs<'_>, seen: Seen) -> Result<CapacityOutputs, Error> {
    let n = names(&ctx.stack);
    let Seen { ami, template, provider } = seen;
    let spec = TemplateSpec {
        // Chosen against the observed template by `template::converge`.
        image_id: String::new(),
        instance_type: ctx.stack.capacity.instance_type.clone(),
        instance_profile: inputs.instance_profile.to_owned(),
        security_group: inputs.security_group.clone(),
        user_data: user_data(inputs.cluster),
        root_volume_gib: i32::try_from(ctx.stack.capacity.root_volume_gib).unwrap_or(30),
    };
    let template = template::converge(ctx, plan, &n, &spec, &ami, template).await?;
    let (asg_arn, instances_desired) = group::converge(ctx, plan, &n, &template, inputs.subnets).await?;
    provider::converge(ctx, plan, &n, &asg_arn, provider).await?;
    Ok(CapacityOutputs {
        ami: Some(template.image_id.clone()),
        launch_template_id: template.id,
        auto_scaling_group: n.asg,
        auto_scaling_group_arn: asg_arn,
        capacity_provider: n.provider,
        instances_desired,
    })
}

/// The launch template, the Auto Scaling group and the capacity provider.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let n = names(stack);
    vec![(LAUNCH_TEMPLATE, n.launch_template), (AUTO_SCALING_GROUP, n.asg), (CAPACITY_PROVIDER, n.provider)]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "capacity",
    nouns: &[LAUNCH_TEMPLATE, AUTO_SCALING_GROUP, CAPACITY_PROVIDER],
    permissions: PERMISSIONS,
    arn_types: &[
        "ec2:launch-template",
        "ec2:instance",
        // The instances' root volumes carry the stack's tag too and go with them.
        "ec2:volume",
        "autoscaling:autoScalingGroup",
        "ecs:capacity-provider",
        "ecs:container-instance",
    ],
    deleted_after: &["ecs-service"],
    derived_names,
    name_limits: &[],
    terraform_types: &["aws_launch_template", "aws_autoscaling_group", "aws_ecs_capacity_provider"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Capacity>()),
};

/// The instances run in the network's subnets with the instance profile, and join the cluster,
/// whose default strategy then places tasks on them.
pub struct Capacity;

impl Reconciles for Capacity {
    type Needs = (NetworkOutputs, ClusterOutputs, IamOutputs);
    type Seen = Seen;
    type Gives = CapacityOutputs;

    /// An instance type that cannot run the image `up` builds.
    fn refuse(stack: &stack::Stack) -> Result<(), Error> {
        check_architecture(stack, image_arch(stack))
    }

    fn see(ctx: &Ctx) -> Making<'_, Seen> {
        Box::pin(see(ctx))
    }

    fn reconcile<'a>(
        ctx: &'a Ctx,
        plan: &'a mut Plan,
        (network, cluster, iam): Self::Needs,
        seen: Seen,
    ) -> Making<'a, CapacityOutputs> {
        Box::pin(async move {
            let inputs = Inputs {
                cluster: &cluster.cluster,
                instance_profile: &iam.instance_profile_name,
                security_group: &network.instance_security_group_id,
                subnets: &network.subnet_ids,
            };
            let capacity = reconcile(ctx, plan, &inputs, seen).await?;
            let observed = cluster.observed.as_ref();
            crate::resources::cluster::reconcile_strategy(ctx, plan, &capacity.capacity_provider, observed).await?;
            Ok(capacity)
        })
    }
}

/// Capacity provider (detached first), Auto Scaling group with its instances, launch template.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let n = names(&ctx.stack);
    if let Some(c) = crate::resources::cluster::observe(ctx).await? {
        crate::resources::cluster::detach_providers(ctx, &c).await?;
    }
    provider::teardown(ctx, plan, &n).await?;
    group::teardown(ctx, plan, &n).await?;
    template::teardown(ctx, plan, &n).await
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let n = names(&ctx.stack);
    let mut left = Vec::new();
    left.extend(provider::leftover(ctx, &n).await?);
    left.extend(group::leftovers(ctx, &n).await?);
    left.extend(template::leftover(ctx, &n).await?);
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_is_held_to_explicit_versions_and_once_known_to_the_stacks_subnets() {
        let stack = crate::resources::test_stack();
        let mut ctx = crate::reconcile::permission::test_context(&stack);
        let condition = |ctx: &PolicyContext, bool: &str| group_condition(ctx, bool);
        let before = condition(&ctx, "Bool");
        assert_eq!(before["Bool"]["autoscaling:LaunchTemplateVersionSpecified"], "true");
        assert!(before.get("ForAllValues:StringEquals").is_none(), "no subnets to name before the first up");
        assert_eq!(before["Null"]["autoscaling:LaunchConfigurationName"], "true", "{before}");
        assert_eq!(before["Null"]["autoscaling:VPCZoneIdentifiers"], "false", "a create names its subnets");
        assert_eq!(before["Null"]["autoscaling:CapacityReservationIds"], "true", "no one's reservation");
        let max = stack.capacity.max.to_string();
        assert_eq!(before["NumericLessThanEquals"]["autoscaling:MaxSize"], json!(max), "no larger than stack.yaml");
        ctx.subnets = vec!["subnet-1".into(), "subnet-2".into()];
        let after = condition(&ctx, "BoolIfExists");
        assert_eq!(after["BoolIfExists"]["autoscaling:LaunchTemplateVersionSpecified"], "true");
        assert_eq!(after["NumericLessThanEqualsIfExists"]["autoscaling:MaxSize"], json!(max), "or as it is");
        assert_eq!(
            after["ForAllValues:StringEquals"]["autoscaling:VPCZoneIdentifiers"],
            json!(["subnet-1", "subnet-2"])
        );
        let granted: Vec<&str> = PERMISSIONS.iter().flat_map(|p| p.actions.iter().copied()).collect();
        assert!(!granted.contains(&"autoscaling:StartInstanceRefresh"), "an administrator's step");
    }

    #[test]
    fn ami_parameters_by_family_and_architecture() {
        assert_eq!(
            ami_parameter("ecs-optimized-al2023", Arch::X86_64).as_deref(),
            Some("/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id")
        );
        assert_eq!(
            ami_parameter("ecs-optimized-al2023", Arch::Arm64).as_deref(),
            Some("/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id")
        );
        assert_eq!(ami_parameter("ami-0123456789abcdef0", Arch::X86_64), None);
    }

    #[test]
    fn graviton_instances_refuse_an_x86_image() {
        let mut s = crate::resources::test_stack();
        assert!(check_architecture(&s, Some(Arch::X86_64)).is_ok());
        s.capacity.instance_type = "t4g.small".into();
        let e = check_architecture(&s, Some(Arch::X86_64)).expect_err("mismatch");
        assert!(e.to_string().contains("t4g.small runs arm64") && e.to_string().contains("t3.small"), "{e}");
        assert!(check_architecture(&s, Some(Arch::Arm64)).is_ok());
    }
}
