//! EC2 capacity for the cluster: the launch template (ECS-optimized AMI from the public SSM
//! parameter, IMDSv2 with hop limit 1, encrypted root volume, user data that joins the cluster),
//! the Auto Scaling group across the public subnets (instances protected from scale-in so ECS
//! decides what to drain), and the capacity provider (managed scaling and termination protection).

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, VolumeType,
};
use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, ManagedScaling, ManagedScalingStatus, ManagedTerminationProtection, Tag as EcsTag,
};
use base64::Engine;
use serde::Serialize;
use stack::catalog::{Arch, arch_of};

use crate::error::{AwsContext, Error};
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Plan, compare, tags};
use crate::retry;

pub const ROOT_DEVICE: &str = "/dev/xvda";

#[derive(Debug, Clone, Default, Serialize)]
pub struct CapacityOutputs {
    pub ami: Option<String>,
    pub launch_template_id: Option<String>,
    pub auto_scaling_group: String,
    pub auto_scaling_group_arn: Option<String>,
    pub capacity_provider: String,
}

pub struct Names {
    pub launch_template: String,
    pub asg: String,
    pub provider: String,
}

pub fn names(stack: &str) -> Names {
    Names {
        launch_template: format!("{stack}-instances"),
        asg: format!("{stack}-instances"),
        provider: format!("{stack}-capacity"),
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

/// The launch template's data as stack.yaml wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    pub image_id: String,
    pub instance_type: String,
    pub instance_profile: String,
    pub security_group: String,
    pub user_data: String,
    pub root_volume_gib: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTemplate {
    pub id: String,
    pub version: i64,
    pub spec: TemplateSpec,
    pub imds_v2_required: bool,
    pub hop_limit: Option<i32>,
    pub encrypted: bool,
    pub tags: Vec<(String, String)>,
}

pub fn user_data(cluster: &str) -> String {
    format!("#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n")
}

pub fn diff_template(want: &TemplateSpec, stack: &stack::Stack, observed: Option<&ObservedTemplate>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("ami", None, Some(want.image_id.clone())),
            FieldDiff::new("instance_type", None, Some(want.instance_type.clone())),
            FieldDiff::new("instance_profile", None, Some(want.instance_profile.clone())),
            FieldDiff::new("imds", None, Some("v2 required, hop limit 1".into())),
            FieldDiff::new("root_volume", None, Some(format!("{} GiB gp3, encrypted", want.root_volume_gib))),
        ]);
    };
    let s = &o.spec;
    let mut fields: Vec<FieldDiff> = [
        compare("ami", &s.image_id, &want.image_id),
        compare("instance_type", &s.instance_type, &want.instance_type),
        compare("instance_profile", &s.instance_profile, &want.instance_profile),
        compare("security_group", &s.security_group, &want.security_group),
        (s.user_data != want.user_data).then(|| {
            FieldDiff::new(
                "user_data",
                Some(s.user_data.trim().replace('\n', "; ")),
                Some(want.user_data.trim().replace('\n', "; ")),
            )
        }),
        compare("root_volume_gib", &s.root_volume_gib, &want.root_volume_gib),
        compare("imds_v2_required", &o.imds_v2_required, &true),
        compare("imds_hop_limit", &o.hop_limit.unwrap_or(0), &1),
        compare("root_volume_encrypted", &o.encrypted, &true),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.extend(tags::diff(&tags::desired(stack, &names(&stack.name).launch_template), &o.tags));
    Change::update(fields)
}

async fn resolve_ami(ctx: &Ctx) -> Result<String, Error> {
    let cap = &ctx.stack.capacity;
    let Some(param) = ami_parameter(&cap.ami, arch_of(&cap.instance_type)) else { return Ok(cap.ami.clone()) };
    let out =
        ctx.clients.ssm.get_parameter().name(&param).send().await.ctx("read the recommended ECS AMI from", &param)?;
    out.parameter()
        .and_then(|p| p.value())
        .map(str::to_owned)
        .ok_or_else(|| Error::Refused(format!("SSM parameter {param} has no value")))
}

async fn observe_template(ctx: &Ctx, name: &str) -> Result<Option<ObservedTemplate>, Error> {
    let ec2 = &ctx.clients.ec2;
    let out = match ec2
        .describe_launch_templates()
        .launch_template_names(name)
        .send()
        .await
        .ctx("describe launch template", name)
    {
        Ok(o) => o,
        Err(e)
            if matches!(
                e.code(),
                Some("InvalidLaunchTemplateName.NotFoundException") | Some("InvalidLaunchTemplateName.NotFound")
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    type Found = (String, i64, Vec<(String, String)>);
    let found: Vec<Found> = out
        .launch_templates()
        .iter()
        .map(|t| {
            (
                t.launch_template_id().unwrap_or_default().to_owned(),
                t.latest_version_number().unwrap_or(1),
                tags::pairs(t.tags()),
            )
        })
        .collect();
    let Some((id, latest, tags)) =
        tags::pick_owned("launch template", name, &ctx.stack.name, found, |t| t.0.clone(), |t| t.2.clone())?
    else {
        return Ok(None);
    };
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_id(&id)
        .versions(latest.to_string())
        .send()
        .await
        .ctx("describe the latest version of launch template", name)?;
    let data = versions.launch_template_versions().first().and_then(|v| v.launch_template_data());
    let ebs = data
        .and_then(|d| d.block_device_mappings().iter().find(|b| b.device_name() == Some(ROOT_DEVICE)))
        .and_then(|b| b.ebs());
    let user_data = data
        .and_then(|d| d.user_data())
        .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let meta = data.and_then(|d| d.metadata_options());
    Ok(Some(ObservedTemplate {
        id,
        version: latest,
        spec: TemplateSpec {
            image_id: data.and_then(|d| d.image_id()).unwrap_or_default().to_owned(),
            instance_type: data.and_then(|d| d.instance_type()).map(|t| t.as_str().to_owned()).unwrap_or_default(),
            instance_profile: data
                .and_then(|d| d.iam_instance_profile())
                .and_then(|p| p.name())
                .unwrap_or_default()
                .to_owned(),
            security_group: data.and_then(|d| d.security_group_ids().first()).cloned().unwrap_or_default(),
            user_data,
            root_volume_gib: ebs.and_then(|e| e.volume_size()).unwrap_or(0),
        },
        imds_v2_required: meta.and_then(|m| m.http_tokens()).map(|t| t.as_str() == "required").unwrap_or(false),
        hop_limit: meta.and_then(|m| m.http_put_response_hop_limit()),
        encrypted: ebs.and_then(|e| e.encrypted()).unwrap_or(false),
        tags,
    }))
}

fn template_data(ctx: &Ctx, spec: &TemplateSpec) -> RequestLaunchTemplateData {
    let instance_tags = tags::ec2_tags(&tags::desired(&ctx.stack, &format!("{}-instance", ctx.stack.name)));
    RequestLaunchTemplateData::builder()
        .image_id(&spec.image_id)
        .instance_type(spec.instance_type.as_str().into())
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(&spec.instance_profile).build(),
        )
        .security_group_ids(&spec.security_group)
        .user_data(base64::engine::general_purpose::STANDARD.encode(&spec.user_data))
        // IMDSv2 with one hop: containers in bridge mode cannot reach the instance role's credentials.
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::Required)
                .http_put_response_hop_limit(1)
                .http_endpoint("enabled".into())
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(ROOT_DEVICE)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(spec.root_volume_gib)
                        .volume_type(VolumeType::Gp3)
                        .encrypted(true)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(instance_tags.clone()))
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(instance_tags))
                .build(),
        )
        .build()
}

// ---------- Auto Scaling group ----------

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAsg {
    pub arn: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub subnets: Vec<String>,
    pub launch_template_id: Option<String>,
    pub protected: bool,
    pub instances: Vec<String>,
    pub tags: Vec<(String, String)>,
}

pub fn diff_asg(
    stack: &stack::Stack,
    subnets: &[String],
    template_id: Option<&str>,
    observed: Option<&ObservedAsg>,
) -> Change {
    let cap = &stack.capacity;
    let mut want_subnets = subnets.to_vec();
    want_subnets.sort();
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("min/desired/max", None, Some(format!("{}/{}/{}", cap.min, cap.desired, cap.max))),
            FieldDiff::new("subnets", None, Some(want_subnets.join(","))),
            FieldDiff::new("protect_from_scale_in", None, Some("true".into())),
        ]);
    };
    let mut have_subnets = o.subnets.clone();
    have_subnets.sort();
    // Desired capacity is set at creation only: afterwards the capacity provider's managed
    // scaling owns it, and resetting it would fight ECS.
    let mut fields: Vec<FieldDiff> = [
        compare("min", &o.min, &i32::try_from(cap.min).unwrap_or(i32::MAX)),
        compare("max", &o.max, &i32::try_from(cap.max).unwrap_or(i32::MAX)),
        compare("subnets", &have_subnets.join(","), &want_subnets.join(",")),
        compare("protect_from_scale_in", &o.protected, &true),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(t) = template_id.filter(|t| o.launch_template_id.as_deref() != Some(*t)) {
        fields.push(FieldDiff::new("launch_template", o.launch_template_id.clone(), Some(t.to_owned())));
    }
    fields.extend(tags::diff(&asg_tag_pairs(stack), &o.tags));
    Change::update(fields)
}

fn asg_tag_pairs(stack: &stack::Stack) -> Vec<(String, String)> {
    let mut t = tags::desired(stack, &format!("{}-instance", stack.name));
    // ECS manages the group's capacity through the capacity provider.
    t.push(("AmazonECSManaged".into(), String::new()));
    t
}

async fn observe_asg(ctx: &Ctx, name: &str) -> Result<Option<ObservedAsg>, Error> {
    let out = ctx
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .ctx("describe Auto Scaling group", name)?;
    let found: Vec<ObservedAsg> = out
        .auto_scaling_groups()
        .iter()
        .map(|g| ObservedAsg {
            arn: g.auto_scaling_group_arn().unwrap_or_default().to_owned(),
            min: g.min_size().unwrap_or(0),
            max: g.max_size().unwrap_or(0),
            desired: g.desired_capacity().unwrap_or(0),
            subnets: g
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            launch_template_id: g.launch_template().and_then(|t| t.launch_template_id()).map(str::to_owned),
            protected: g.new_instances_protected_from_scale_in().unwrap_or(false),
            instances: g.instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect(),
            tags: g
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                .collect(),
        })
        .collect();
    tags::pick_owned("Auto Scaling group", name, &ctx.stack.name, found, |g| g.arn.clone(), |g| g.tags.clone())
}

fn asg_tags(stack: &stack::Stack, name: &str) -> Vec<AsgTag> {
    asg_tag_pairs(stack)
        .into_iter()
        .map(|(k, v)| {
            AsgTag::builder()
                .key(k)
                .value(v)
                .propagate_at_launch(true)
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .build()
        })
        .collect()
}

/// An instance profile or role created seconds ago may be rejected while IAM propagates.
fn iam_not_yet_visible(e: &Error) -> bool {
    let text = e.to_string();
    [
        "Invalid IamInstanceProfile",
        "Invalid IAM Instance Profile",
        "not authorized to perform: iam:PassRole",
        "Unable to assume",
    ]
    .iter()
    .any(|m| text.contains(m))
}

// ---------- capacity provider ----------

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProvider {
    pub arn: String,
    pub asg_arn: String,
    pub managed_scaling: bool,
    pub target_capacity: i32,
    pub termination_protection: bool,
    pub tags: Vec<(String, String)>,
}

pub fn diff_provider(stack: &stack::Stack, asg_arn: Option<&str>, observed: Option<&ObservedProvider>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("managed_scaling", None, Some("enabled, target 100%".into())),
            FieldDiff::new("managed_termination_protection", None, Some("enabled".into())),
        ]);
    };
    if let Some(a) = asg_arn.filter(|a| o.asg_arn != *a) {
        return Change::replace(
            "a capacity provider's Auto Scaling group cannot change",
            vec![FieldDiff::new("auto_scaling_group", Some(o.asg_arn.clone()), Some(a.to_owned()))],
        );
    }
    let mut fields: Vec<FieldDiff> = [
        compare("managed_scaling", &o.managed_scaling, &true),
        compare("target_capacity", &o.target_capacity, &100),
        compare("managed_termination_protection", &o.termination_protection, &true),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

async fn observe_provider(ctx: &Ctx, name: &str) -> Result<Option<ObservedProvider>, Error> {
    // Always by name: moto answers 500 to a DescribeCapacityProviders without names.
    let out = ctx
        .clients
        .ecs
        .describe_capacity_providers()
        .capacity_providers(name)
        .include("TAGS".into())
        .send()
        .await
        .ctx("describe capacity provider", name)?;
    let found: Vec<ObservedProvider> = out
        .capacity_providers()
        .iter()
        .filter(|p| p.status().is_some_and(|s| s.as_str() == "ACTIVE"))
        .map(|p| {
            let asg = p.auto_scaling_group_provider();
            ObservedProvider {
                arn: p.capacity_provider_arn().unwrap_or_default().to_owned(),
                asg_arn: asg.map(|a| a.auto_scaling_group_arn().to_owned()).unwrap_or_default(),
                managed_scaling: asg
                    .and_then(|a| a.managed_scaling())
                    .and_then(|m| m.status())
                    .is_some_and(|s| *s == ManagedScalingStatus::Enabled),
                target_capacity: asg.and_then(|a| a.managed_scaling()).and_then(|m| m.target_capacity()).unwrap_or(0),
                termination_protection: asg
                    .and_then(|a| a.managed_termination_protection())
                    .is_some_and(|t| *t == ManagedTerminationProtection::Enabled),
                tags: p
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                    .collect(),
            }
        })
        .collect();
    tags::pick_owned("capacity provider", name, &ctx.stack.name, found, |p| p.arn.clone(), |p| p.tags.clone())
}

fn provider_config(asg_arn: &str) -> Result<AutoScalingGroupProvider, Error> {
    AutoScalingGroupProvider::builder()
        .auto_scaling_group_arn(asg_arn)
        .managed_scaling(
            ManagedScaling::builder()
                .status(ManagedScalingStatus::Enabled)
                .target_capacity(100)
                .minimum_scaling_step_size(1)
                .maximum_scaling_step_size(10)
                .build(),
        )
        .managed_termination_protection(ManagedTerminationProtection::Enabled)
        .build()
        .map_err(|e| Error::Refused(e.to_string()))
}

/// Inputs from earlier kinds.
pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub instance_profile: &'a str,
    pub security_group: Option<&'a str>,
    pub subnets: &'a [String],
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, inputs: &Inputs<'_>) -> Result<CapacityOutputs, Error> {
    let n = names(&ctx.stack.name);
    let ami = resolve_ami(ctx).await?;
    let spec = TemplateSpec {
        image_id: ami.clone(),
        instance_type: ctx.stack.capacity.instance_type.clone(),
        instance_profile: inputs.instance_profile.to_owned(),
        security_group: inputs.security_group.unwrap_or("(instances security group)").to_owned(),
        user_data: user_data(inputs.cluster),
        root_volume_gib: i32::try_from(ctx.stack.capacity.root_volume_gib).unwrap_or(30),
    };
    let ec2 = &ctx.clients.ec2;

    // Launch template
    let observed_lt = observe_template(ctx, &n.launch_template).await?;
    let change = diff_template(&spec, &ctx.stack, observed_lt.as_ref());
    let mut lt_id = observed_lt.as_ref().map(|t| t.id.clone());
    let mut new_version = false;
    if ctx.applying() && !change.is_no_op() {
        let only_tags = change.fields.iter().all(|f| f.field.starts_with("tags."));
        match &observed_lt {
            None => {
                let out = ec2
                    .create_launch_template()
                    .launch_template_name(&n.launch_template)
                    .launch_template_data(template_data(ctx, &spec))
                    .tag_specifications(tags::ec2_spec(ResourceType::LaunchTemplate, &ctx.stack, &n.launch_template))
                    .send()
                    .await
                    .ctx("create launch template", &n.launch_template)?;
                lt_id = out.launch_template().and_then(|t| t.launch_template_id()).map(str::to_owned);
                ctx.progress(format!("created launch template {} with AMI {ami}", n.launch_template));
            }
            Some(t) => {
                if !only_tags {
                    ec2.create_launch_template_version()
                        .launch_template_id(&t.id)
                        .launch_template_data(template_data(ctx, &spec))
                        .send()
                        .await
                        .ctx("create a launch template version of", &n.launch_template)?;
                    new_version = true;
                    ctx.progress(format!("new version of launch template {} (AMI {ami})", n.launch_template));
                }
                if change.fields.iter().any(|f| f.field.starts_with("tags.")) {
                    ec2.create_tags()
                        .resources(&t.id)
                        .set_tags(Some(tags::ec2_tags(&tags::desired(&ctx.stack, &n.launch_template))))
                        .send()
                        .await
                        .ctx("tag launch template", &n.launch_template)?;
                }
            }
        }
    }
    plan.push("launch-template", &n.launch_template, lt_id.clone(), change);

    // Auto Scaling group
    let observed_asg = observe_asg(ctx, &n.asg).await?;
    let change = diff_asg(&ctx.stack, inputs.subnets, lt_id.as_deref(), observed_asg.as_ref());
    let mut asg_arn = observed_asg.as_ref().map(|g| g.arn.clone());
    if ctx.applying() && !change.is_no_op() {
        let asg = &ctx.clients.autoscaling;
        let cap = &ctx.stack.capacity;
        let template = LaunchTemplateSpecification::builder()
            .launch_template_id(lt_id.clone().unwrap_or_default())
            .version("$Latest")
            .build();
        if observed_asg.is_none() {
            retry::retry_if(
                ctx.deadline,
                &format!("IAM to publish instance profile {}", inputs.instance_profile),
                iam_not_yet_visible,
                || async {
                    asg.create_auto_scaling_group()
                        .auto_scaling_group_name(&n.asg)
                        .launch_template(template.clone())
                        .min_size(i32::try_from(cap.min).unwrap_or(0))
                        .max_size(i32::try_from(cap.max).unwrap_or(1))
                        .desired_capacity(i32::try_from(cap.desired).unwrap_or(0))
                        .vpc_zone_identifier(inputs.subnets.join(","))
                        .new_instances_protected_from_scale_in(true)
                        .set_tags(Some(asg_tags(&ctx.stack, &n.asg)))
                        .send()
                        .await
                        .ctx("create Auto Scaling group", &n.asg)
                },
            )
            .await?;
            ctx.progress(format!("created Auto Scaling group {}", n.asg));
        } else {
            asg.update_auto_scaling_group()
                .auto_scaling_group_name(&n.asg)
                .launch_template(template)
                .min_size(i32::try_from(cap.min).unwrap_or(0))
                .max_size(i32::try_from(cap.max).unwrap_or(1))
                .vpc_zone_identifier(inputs.subnets.join(","))
                .new_instances_protected_from_scale_in(true)
                .send()
                .await
                .ctx("update Auto Scaling group", &n.asg)?;
            if change.fields.iter().any(|f| f.field.starts_with("tags.")) {
                asg.create_or_update_tags()
                    .set_tags(Some(asg_tags(&ctx.stack, &n.asg)))
                    .send()
                    .await
                    .ctx("tag Auto Scaling group", &n.asg)?;
            }
            ctx.progress(format!("updated Auto Scaling group {}", n.asg));
        }
        asg_arn = observe_asg(ctx, &n.asg).await?.map(|g| g.arn);
    }
    if ctx.applying() && new_version && observed_asg.as_ref().is_some_and(|g| !g.instances.is_empty()) {
        start_instance_refresh(ctx, &n.asg).await?;
    }
    plan.push("auto-scaling-group", &n.asg, asg_arn.clone(), change);

    // Capacity provider
    let observed_cp = observe_provider(ctx, &n.provider).await?;
    let change = diff_provider(&ctx.stack, asg_arn.as_deref(), observed_cp.as_ref());
    if ctx.applying() && !change.is_no_op() {
        let ecs = &ctx.clients.ecs;
        let config = provider_config(asg_arn.as_deref().unwrap_or_default())?;
        let ecs_tags: Vec<EcsTag> =
            ctx.stack.resource_tags().into_iter().map(|(k, v)| EcsTag::builder().key(k).value(v).build()).collect();
        if change.action == Action::Replace {
            return Err(Error::Refused(format!(
                "capacity provider {} points at another Auto Scaling group: run `down` then `up`",
                n.provider
            )));
        }
        if observed_cp.is_none() {
            ecs.create_capacity_provider()
                .name(&n.provider)
                .auto_scaling_group_provider(config)
                .set_tags(Some(ecs_tags))
                .send()
                .await
                .ctx("create capacity provider", &n.provider)?;
            ctx.progress(format!("created capacity provider {}", n.provider));
        } else {
            use aws_sdk_ecs::types::AutoScalingGroupProviderUpdate;
            let update = AutoScalingGroupProviderUpdate::builder()
                .set_managed_scaling(config.managed_scaling().cloned())
                .managed_termination_protection(ManagedTerminationProtection::Enabled)
                .build();
            ecs.update_capacity_provider()
                .name(&n.provider)
                .auto_scaling_group_provider(update)
                .send()
                .await
                .ctx("update capacity provider", &n.provider)?;
            if change.fields.iter().any(|f| f.field.starts_with("tags.")) {
                ecs.tag_resource()
                    .resource_arn(observed_cp.as_ref().map(|p| p.arn.clone()).unwrap_or_default())
                    .set_tags(Some(ecs_tags))
                    .send()
                    .await
                    .ctx("tag capacity provider", &n.provider)?;
            }
        }
    }
    plan.push("capacity-provider", &n.provider, observed_cp.map(|p| p.arn), change);
    Ok(CapacityOutputs {
        ami: Some(ami),
        launch_template_id: lt_id,
        auto_scaling_group: n.asg,
        auto_scaling_group_arn: asg_arn,
        capacity_provider: n.provider,
    })
}

/// Replaces instances on a new template version, letting ECS drain each (scale-in protection and
/// managed termination keep tasks until they moved).
async fn start_instance_refresh(ctx: &Ctx, asg_name: &str) -> Result<(), Error> {
    let r = ctx
        .clients
        .autoscaling
        .start_instance_refresh()
        .auto_scaling_group_name(asg_name)
        .preferences(
            aws_sdk_autoscaling::types::RefreshPreferences::builder()
                .min_healthy_percentage(100)
                .max_healthy_percentage(200)
                .instance_warmup(60)
                .build(),
        )
        .send()
        .await
        .ctx("start an instance refresh of", asg_name);
    match r {
        Ok(_) => {
            ctx.progress(format!("instance refresh of {asg_name} started: instances are replaced one by one"));
            Ok(())
        }
        // moto does not implement instance refreshes; real AWS does, and there this is an error.
        Err(e) if ctx.clients.is_emulator() => {
            ctx.progress(format!(
                "instance refresh unavailable at this emulator ({e}); new instances use the new template"
            ));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Capacity provider (detached first), Auto Scaling group with its instances, launch template.
pub async fn teardown(
    ctx: &Ctx,
    plan: &mut Plan,
    cluster: Option<&crate::resources::cluster::ObservedCluster>,
) -> Result<(), Error> {
    let n = names(&ctx.stack.name);
    if let Some(c) = cluster {
        crate::resources::cluster::detach_providers(ctx, c).await?;
    }
    if let Some(p) = observe_provider(ctx, &n.provider).await? {
        if ctx.applying() {
            let r = retry::retry(
                ctx.deadline,
                &format!("capacity provider {} to be unused", n.provider),
                &["ResourceInUseException", "UpdateInProgressException"],
                || async {
                    ctx.clients
                        .ecs
                        .delete_capacity_provider()
                        .capacity_provider(&n.provider)
                        .send()
                        .await
                        .ctx("delete capacity provider", &n.provider)
                },
            )
            .await;
            match r {
                Err(e) if e.code() != Some("ClientException") => return Err(e),
                _ => ctx.progress(format!("deleted capacity provider {}", n.provider)),
            }
        }
        plan.push("capacity-provider", &n.provider, Some(p.arn), Change::delete());
    }
    if let Some(g) = observe_asg(ctx, &n.asg).await? {
        if ctx.applying() {
            delete_asg(ctx, &n.asg, &g).await?;
        }
        let mut change = Change::delete();
        change.fields.push(FieldDiff::new(
            "instances",
            Some(g.instances.len().to_string()),
            Some("0 (terminated, scale-in protection removed)".into()),
        ));
        plan.push("auto-scaling-group", &n.asg, Some(g.arn), change);
    }
    if let Some(t) = observe_template(ctx, &n.launch_template).await? {
        if ctx.applying() {
            ctx.clients
                .ec2
                .delete_launch_template()
                .launch_template_id(&t.id)
                .send()
                .await
                .ctx("delete launch template", &n.launch_template)?;
            ctx.progress(format!("deleted launch template {}", n.launch_template));
        }
        plan.push("launch-template", &n.launch_template, Some(t.id), Change::delete());
    }
    Ok(())
}

/// Scale-in protection keeps instances alive through a ForceDelete: remove it, scale to zero,
/// delete the group, terminate whatever is left and wait for it.
async fn delete_asg(ctx: &Ctx, name: &str, g: &ObservedAsg) -> Result<(), Error> {
    let asg = &ctx.clients.autoscaling;
    if !g.instances.is_empty() {
        asg.set_instance_protection()
            .auto_scaling_group_name(name)
            .set_instance_ids(Some(g.instances.clone()))
            .protected_from_scale_in(false)
            .send()
            .await
            .ctx("remove scale-in protection in", name)?;
    }
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(0)
        .max_size(0)
        .desired_capacity(0)
        .send()
        .await
        .ctx("scale to zero", name)?;
    asg.delete_auto_scaling_group()
        .auto_scaling_group_name(name)
        .force_delete(true)
        .send()
        .await
        .ctx("delete Auto Scaling group", name)?;
    if !g.instances.is_empty() {
        let r = ctx
            .clients
            .ec2
            .terminate_instances()
            .set_instance_ids(Some(g.instances.clone()))
            .send()
            .await
            .ctx("terminate the instances of", name);
        if let Err(e) = r
            && e.code() != Some("InvalidInstanceID.NotFound")
        {
            return Err(e);
        }
        wait_terminated(ctx, &g.instances).await?;
    }
    ctx.progress(format!("deleted Auto Scaling group {name} and its {} instances", g.instances.len()));
    Ok(())
}

async fn wait_terminated(ctx: &Ctx, ids: &[String]) -> Result<(), Error> {
    let started = std::time::Instant::now();
    loop {
        let out = ctx
            .clients
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .ctx("describe instances", ids.join(","))?;
        let alive: Vec<String> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|s| s.as_str() != "terminated"))
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() + std::time::Duration::from_secs(5) > ctx.deadline {
            return Err(Error::Deadline {
                waiting_for: format!("instances {} to terminate", alive.join(", ")),
                elapsed: started.elapsed(),
            });
        }
        ctx.progress(format!("waiting for {} instances to terminate", alive.len()));
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let n = names(&ctx.stack.name);
    let mut left = Vec::new();
    if let Some(p) = observe_provider(ctx, &n.provider).await? {
        left.push(format!("capacity provider {}", p.arn));
    }
    if let Some(g) = observe_asg(ctx, &n.asg).await? {
        left.push(format!("Auto Scaling group {}", g.arn));
    }
    if let Some(t) = observe_template(ctx, &n.launch_template).await? {
        left.push(format!("launch template {}", t.id));
    }
    let running = ctx
        .clients
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", stack::OWNERSHIP_TAG))
                .values(&ctx.stack.name)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        )
        .send()
        .await
        .ctx("sweep instances of", &ctx.stack.name)?;
    left.extend(
        running
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id())
            .map(|id| format!("instance {id}")),
    );
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TemplateSpec {
        TemplateSpec {
            image_id: "ami-old".into(),
            instance_type: "t3.small".into(),
            instance_profile: "konnichiwa-instance".into(),
            security_group: "sg-1".into(),
            user_data: user_data("konnichiwa"),
            root_volume_gib: 30,
        }
    }

    #[test]
    fn a_newer_recommended_ami_is_drift() {
        let s = crate::resources::test_stack();
        let observed = ObservedTemplate {
            id: "lt-1".into(),
            version: 1,
            spec: spec(),
            imds_v2_required: true,
            hop_limit: Some(1),
            encrypted: true,
            tags: tags::desired(&s, "konnichiwa-instances"),
        };
        assert!(diff_template(&spec(), &s, Some(&observed)).is_no_op());
        let newer = TemplateSpec { image_id: "ami-new".into(), ..spec() };
        assert_eq!(
            diff_template(&newer, &s, Some(&observed)).fields,
            vec![FieldDiff::new("ami", Some("ami-old".into()), Some("ami-new".into()))]
        );
        let weak = ObservedTemplate { imds_v2_required: false, hop_limit: Some(2), ..observed };
        let fields: Vec<String> = diff_template(&spec(), &s, Some(&weak)).fields.into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["imds_v2_required", "imds_hop_limit"]);
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

    #[test]
    fn desired_capacity_is_left_to_managed_scaling() {
        let s = crate::resources::test_stack();
        let subnets = vec!["subnet-b".to_owned(), "subnet-a".to_owned()];
        let o = ObservedAsg {
            arn: "arn".into(),
            min: 1,
            max: 4,
            desired: 3,
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            launch_template_id: Some("lt-1".into()),
            protected: true,
            instances: vec![],
            tags: asg_tag_pairs(&s),
        };
        assert!(diff_asg(&s, &subnets, Some("lt-1"), Some(&o)).is_no_op(), "desired 3 != 2 is ECS's business");
        let unprotected = ObservedAsg { protected: false, ..o };
        assert_eq!(diff_asg(&s, &subnets, Some("lt-1"), Some(&unprotected)).fields[0].field, "protect_from_scale_in");
    }
}
