//! `disown`: a stack `up` made, made to look as if Terraform had made it. Every `konnichiwa:*` tag
//! comes off, by each service's own untag call; the stack's other tags stay (Terraform's
//! `default_tags` would have set them); EC2 `Name`s become Terraform-like (`<stack>-main-vpc`,
//! `<stack>-public-0`…). Then every listing is asked again, and anything still tagged fails the
//! test that called it.

use aws_sdk_ec2::types::{
    Filter, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, ResponseLaunchTemplateData, Tag,
    TagSpecification,
};
use provisioner::aws::Clients;

use super::listings::{self, Holder, Marked, STACK_TAG};
use crate::common::Account;

/// Takes stack `stack`'s marks off everything it made in `account` (after `up` ran for it), and
/// asserts that no listing still sees its `konnichiwa:stack` tag.
pub async fn disown(account: &Account, stack: &str) {
    let c = account.clients().await;
    let found = listings::marked(&c, stack).await;
    assert!(!found.is_empty(), "nothing carries {STACK_TAG} = {stack}: did `up` run for it?");
    // By our tag, so before it comes off.
    rename_ec2(&c, stack).await;
    for (holder, marked) in &found {
        untag(&c, stack, holder, marked).await;
    }
    let left = listings::marked(&c, stack).await;
    assert!(left.is_empty(), "disown left {STACK_TAG} = {stack} on (holder: keys, seen by): {left:#?}");
}

/// The `Name` the instances of a Terraform-made stack carry.
fn instance_name(stack: &str) -> String {
    format!("{stack}-ecs-instance")
}

fn name_tag(value: &str) -> Tag {
    Tag::builder().key("Name").value(value).build()
}

/// Terraform-like `Name`s on the stack's VPC, subnets (by zone), gateway, route table, security
/// groups, instances, and on the instances the Auto Scaling group launches.
async fn rename_ec2(c: &Clients, stack: &str) {
    let owned = || Filter::builder().name(format!("tag:{STACK_TAG}")).values(stack).build();
    let ec2 = &c.ec2;
    let mut names: Vec<(String, String)> = Vec::new();
    let vpcs = ec2.describe_vpcs().filters(owned()).send().await.expect("describe_vpcs");
    names.extend(vpcs.vpcs().iter().map(|v| (v.vpc_id().unwrap_or_default().to_owned(), format!("{stack}-main-vpc"))));
    let subnets = ec2.describe_subnets().filters(owned()).send().await.expect("describe_subnets");
    let mut subnets: Vec<_> = subnets.subnets().iter().collect();
    subnets.sort_by_key(|s| s.availability_zone().unwrap_or_default().to_owned());
    for (i, s) in subnets.iter().enumerate() {
        names.push((s.subnet_id().unwrap_or_default().to_owned(), format!("{stack}-public-{i}")));
    }
    let igws = ec2.describe_internet_gateways().filters(owned()).send().await.expect("describe_internet_gateways");
    names.extend(
        igws.internet_gateways()
            .iter()
            .map(|g| (g.internet_gateway_id().unwrap_or_default().to_owned(), format!("{stack}-main-igw"))),
    );
    let rts = ec2.describe_route_tables().filters(owned()).send().await.expect("describe_route_tables");
    names.extend(
        rts.route_tables()
            .iter()
            .map(|r| (r.route_table_id().unwrap_or_default().to_owned(), format!("{stack}-public-rt"))),
    );
    let sgs = ec2.describe_security_groups().filters(owned()).send().await.expect("describe_security_groups");
    names.extend(
        sgs.security_groups().iter().map(|g| {
            (g.group_id().unwrap_or_default().to_owned(), format!("{}-sg", g.group_name().unwrap_or_default()))
        }),
    );
    let reservations = ec2.describe_instances().filters(owned()).send().await.expect("describe_instances");
    for i in reservations.reservations().iter().flat_map(|r| r.instances()) {
        names.push((i.instance_id().unwrap_or_default().to_owned(), instance_name(stack)));
    }
    for (id, name) in names {
        ec2.create_tags().resources(id).tags(name_tag(&name)).send().await.expect("create_tags Name");
    }
    rename_group_instances(c, stack).await;
}

/// The `Name` an Auto Scaling group of the stack gives the instances it launches.
async fn rename_group_instances(c: &Clients, stack: &str) {
    let groups = c.autoscaling.describe_auto_scaling_groups().send().await.expect("describe_auto_scaling_groups");
    for g in groups.auto_scaling_groups() {
        let tags = g.tags();
        let ours = tags.iter().any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(stack));
        if !ours || !tags.iter().any(|t| t.key() == Some("Name")) {
            continue;
        }
        let name = g.auto_scaling_group_name().unwrap_or_default();
        let tag = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(name)
            .resource_type("auto-scaling-group")
            .key("Name")
            .value(instance_name(stack))
            .propagate_at_launch(true)
            .build();
        c.autoscaling.create_or_update_tags().tags(tag).send().await.expect("create_or_update_tags Name");
    }
}

/// A call's outcome as text, for one panic message per holder.
fn done<T, E: std::fmt::Debug>(result: Result<T, E>) -> Result<(), String> {
    result.map(drop).map_err(|e| format!("{e:?}"))
}

/// Takes `marked`'s keys off `holder` with its service's own call.
async fn untag(c: &Clients, stack: &str, holder: &Holder, marked: &Marked) {
    let keys: Vec<String> = marked.keys.iter().cloned().collect();
    let outcome = match holder {
        Holder::Ec2(id) => {
            let tags = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
            done(c.ec2.delete_tags().resources(id).set_tags(Some(tags)).send().await)
        }
        Holder::LaunchTemplate(id) => {
            recreate_launch_template(c, stack, id).await;
            Ok(())
        }
        Holder::AutoScalingGroup(name) => {
            let tags = keys.iter().map(|k| {
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .build()
            });
            done(c.autoscaling.delete_tags().set_tags(Some(tags.collect())).send().await)
        }
        Holder::Ecs(arn) => done(c.ecs.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await),
        Holder::Elb(arn) => done(c.elb.remove_tags().resource_arns(arn).set_tag_keys(Some(keys)).send().await),
        Holder::Role(name) => done(c.iam.untag_role().role_name(name).set_tag_keys(Some(keys)).send().await),
        Holder::InstanceProfile(name) => {
            let call = c.iam.untag_instance_profile().instance_profile_name(name).set_tag_keys(Some(keys));
            done(call.send().await)
        }
        Holder::Policy(arn) => done(c.iam.untag_policy().policy_arn(arn).set_tag_keys(Some(keys)).send().await),
        _ => untag_by_arn(c, holder, keys).await,
    };
    if let Err(e) = outcome {
        panic!("untag {holder:?}: {e}");
    }
}

/// The services whose untag call takes an ARN (or, for S3, the bucket's whole tag set).
async fn untag_by_arn(c: &Clients, holder: &Holder, keys: Vec<String>) -> Result<(), String> {
    match holder {
        Holder::LogGroup(arn) => done(c.logs.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await),
        Holder::Repository(arn) => done(c.ecr.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await),
        Holder::Secret(arn) => done(c.secrets.untag_resource().secret_id(arn).set_tag_keys(Some(keys)).send().await),
        Holder::Alarm(arn) => {
            done(c.cloudwatch.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await)
        }
        Holder::Topic(arn) => done(c.sns.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await),
        Holder::ScalableTarget(arn) => {
            let untag = c.app_autoscaling.untag_resource().resource_arn(arn).set_tag_keys(Some(keys));
            done(untag.send().await)
        }
        Holder::Bucket(name) => {
            let now = c.s3.get_bucket_tagging().bucket(name).send().await.map_err(|e| format!("{e:?}"))?;
            let kept: Vec<_> = now.tag_set().iter().filter(|t| !keys.iter().any(|k| k == t.key())).cloned().collect();
            if kept.is_empty() {
                return done(c.s3.delete_bucket_tagging().bucket(name).send().await);
            }
            let tagging = aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(kept)).build().expect("tagging");
            done(c.s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await)
        }
        other => unreachable!("untag handles {other:?}"),
    }
}

/// A launch template made again under its name, without our tags: a version's tag
/// specifications (the instances' and volumes' tags) cannot change, and Terraform's would not
/// carry ours. The Auto Scaling groups on the old one move
/// to the new one's `$Latest`, as Terraform's `aws_autoscaling_group` would have them.
async fn recreate_launch_template(c: &Clients, stack: &str, id: &str) {
    let ec2 = &c.ec2;
    let described = ec2.describe_launch_templates().launch_template_ids(id).send().await.expect("launch template");
    let lt = described.launch_templates().first().expect("the launch template");
    let name = lt.launch_template_name().expect("its name").to_owned();
    let mut tags: Vec<Tag> = lt.tags().iter().filter(|t| !is_ours(t.key())).cloned().collect();
    tags.retain(|t| t.key() != Some("Name"));
    tags.push(name_tag(&format!("{name}-lt")));
    let versions = ec2.describe_launch_template_versions().launch_template_id(id).versions("$Default").send().await;
    let versions = versions.expect("launch template versions");
    let data = versions.launch_template_versions().first().and_then(|v| v.launch_template_data()).expect("its data");
    let data = request_data(data, &instance_name(stack));
    // moto keeps a deleted template's tags in its tag store (DescribeTags lists them): off first.
    let ours: Vec<Tag> = lt
        .tags()
        .iter()
        .filter(|t| is_ours(t.key()))
        .map(|t| Tag::builder().set_key(t.key().map(str::to_owned)).build())
        .collect();
    ec2.delete_tags().resources(id).set_tags(Some(ours)).send().await.expect("delete_tags of the launch template");
    ec2.delete_launch_template().launch_template_id(id).send().await.expect("delete_launch_template");
    let spec = TagSpecification::builder().resource_type(ResourceType::LaunchTemplate).set_tags(Some(tags)).build();
    let created = ec2
        .create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(data)
        .tag_specifications(spec)
        .send()
        .await
        .expect("create_launch_template");
    let new_id = created.launch_template().and_then(|t| t.launch_template_id()).expect("the new id");
    let groups = c.autoscaling.describe_auto_scaling_groups().send().await.expect("describe_auto_scaling_groups");
    for g in groups.auto_scaling_groups() {
        if g.launch_template().and_then(|t| t.launch_template_id()) != Some(id) {
            continue;
        }
        let spec = aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
            .launch_template_id(new_id)
            .version("$Latest")
            .build();
        let group = g.auto_scaling_group_name().unwrap_or_default();
        let update = c.autoscaling.update_auto_scaling_group().auto_scaling_group_name(group).launch_template(spec);
        update.send().await.expect("update_auto_scaling_group");
    }
}

fn is_ours(key: Option<&str>) -> bool {
    key.is_some_and(|k| k.starts_with("konnichiwa:"))
}

/// A launch template's data as a request: the fields `up` sets, with the instances' and volumes'
/// tags without ours and with a Terraform-like `Name` (moto also echoes the template's own tag
/// specification in its data; AWS refuses that one there).
fn request_data(d: &ResponseLaunchTemplateData, instance_name: &str) -> RequestLaunchTemplateData {
    let profile = d.iam_instance_profile().map(|p| {
        LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
            .set_arn(p.arn().map(str::to_owned))
            .set_name(p.name().map(str::to_owned))
            .build()
    });
    let metadata = d.metadata_options().map(|m| {
        LaunchTemplateInstanceMetadataOptionsRequest::builder()
            .set_http_tokens(m.http_tokens().cloned())
            .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
            .set_http_endpoint(m.http_endpoint().cloned())
            .build()
    });
    let devices = d.block_device_mappings().iter().map(|b| {
        let ebs = b.ebs().map(|e| {
            LaunchTemplateEbsBlockDeviceRequest::builder()
                .set_encrypted(e.encrypted())
                .set_delete_on_termination(e.delete_on_termination())
                .set_volume_size(e.volume_size())
                .set_volume_type(e.volume_type().cloned())
                .build()
        });
        LaunchTemplateBlockDeviceMappingRequest::builder()
            .set_device_name(b.device_name().map(str::to_owned))
            .set_ebs(ebs)
            .build()
    });
    let specs = d
        .tag_specifications()
        .iter()
        .filter(|s| matches!(s.resource_type(), Some(ResourceType::Instance | ResourceType::Volume)));
    let specs = specs.map(|s| {
        let mut tags: Vec<Tag> =
            s.tags().iter().filter(|t| !is_ours(t.key()) && t.key() != Some("Name")).cloned().collect();
        tags.push(name_tag(instance_name));
        LaunchTemplateTagSpecificationRequest::builder()
            .set_resource_type(s.resource_type().cloned())
            .set_tags(Some(tags))
            .build()
    });
    RequestLaunchTemplateData::builder()
        .set_image_id(d.image_id().map(str::to_owned))
        .set_instance_type(d.instance_type().cloned())
        .set_iam_instance_profile(profile)
        .set_security_group_ids(Some(d.security_group_ids().to_vec()))
        .set_user_data(d.user_data().map(str::to_owned))
        .set_metadata_options(metadata)
        .set_block_device_mappings(Some(devices.collect()))
        .set_tag_specifications(Some(specs.collect()))
        .build()
}
