//! Everything of a stack that still carries its `konnichiwa:stack` tag, as each listing sees it:
//! the Resource Groups Tagging API, and each service's own describe calls for what moto's tagging
//! API does not list (IAM, Auto Scaling groups, launch templates, capacity providers, listeners,
//! ECR repositories…) or lists from another store than the service's describe (EC2 launch
//! templates, Application Auto Scaling's scalable targets).

use std::collections::{BTreeMap, BTreeSet};

use provisioner::aws::Clients;

pub const STACK_TAG: &str = "konnichiwa:stack";
const OURS: &str = "konnichiwa:";

/// Where a tag sits, and so which call takes it off.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    /// An EC2 resource by id (VPC, subnet, gateway, route table, security group, instance).
    Ec2(String),
    /// A launch template by id: its own tags, or its default version's tag specifications.
    LaunchTemplate(String),
    AutoScalingGroup(String),
    Ecs(String),
    Elb(String),
    Role(String),
    InstanceProfile(String),
    Policy(String),
    LogGroup(String),
    Repository(String),
    Secret(String),
    Alarm(String),
    Topic(String),
    Bucket(String),
    ScalableTarget(String),
}

/// What carries the stack's tag: its `konnichiwa:*` keys, and the listings that saw it.
#[derive(Debug, Clone, Default)]
pub struct Marked {
    pub keys: BTreeSet<String>,
    pub seen_by: BTreeSet<&'static str>,
}

pub type Found = BTreeMap<Holder, Marked>;

/// Adds `holder` when `tags` hold `konnichiwa:stack = stack`.
fn note<'a>(
    found: &mut Found,
    stack: &str,
    listing: &'static str,
    holder: Holder,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let tags: Vec<(&str, &str)> = tags.into_iter().collect();
    if !tags.iter().any(|(k, v)| *k == STACK_TAG && *v == stack) {
        return;
    }
    let marked = found.entry(holder).or_default();
    marked.keys.extend(tags.iter().filter(|(k, _)| k.starts_with(OURS)).map(|(k, _)| (*k).to_owned()));
    marked.seen_by.insert(listing);
}

/// Everything of `stack` that carries its tag, by every listing.
pub async fn marked(c: &Clients, stack: &str) -> Found {
    let mut found = Found::new();
    tagging_api(c, stack, &mut found).await;
    ec2(c, stack, &mut found).await;
    launch_templates(c, stack, &mut found).await;
    iam(c, stack, &mut found).await;
    auto_scaling_groups(c, stack, &mut found).await;
    ecs(c, stack, &mut found).await;
    load_balancing(c, stack, &mut found).await;
    others(c, stack, &mut found).await;
    found
}

/// The holder of an ARN the tagging API lists; a type with no untag call here is a test bug.
fn holder_of(arn: &str) -> Holder {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (service, resource) = (parts[2], parts[5]);
    let after_slash = || resource.split_once('/').map(|(_, r)| r.to_owned()).unwrap_or_default();
    match service {
        "ec2" if resource.starts_with("launch-template/") => Holder::LaunchTemplate(after_slash()),
        "ec2" => Holder::Ec2(after_slash()),
        "ecs" => Holder::Ecs(arn.to_owned()),
        "elasticloadbalancing" => Holder::Elb(arn.to_owned()),
        "logs" => Holder::LogGroup(arn.trim_end_matches(":*").to_owned()),
        "ecr" => Holder::Repository(arn.to_owned()),
        "secretsmanager" => Holder::Secret(arn.to_owned()),
        "cloudwatch" => Holder::Alarm(arn.to_owned()),
        "sns" => Holder::Topic(arn.to_owned()),
        "s3" => Holder::Bucket(resource.to_owned()),
        "autoscaling" => Holder::AutoScalingGroup(resource.rsplit('/').next().unwrap_or_default().to_owned()),
        _ => panic!("the tagging API lists {arn}, which `disown` has no untag call for: add one"),
    }
}

async fn tagging_api(c: &Clients, stack: &str, found: &mut Found) {
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder().key(STACK_TAG).values(stack).build();
    let mappings = c
        .tagging
        .get_resources()
        .tag_filters(filter)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("tagging API: get_resources");
    for m in mappings {
        let arn = m.resource_arn().expect("an ARN");
        let tags = m.tags().iter().map(|t| (t.key(), t.value()));
        note(found, stack, "resourcegroupstaggingapi:GetResources", holder_of(arn), tags);
    }
}

/// EC2's tag store (every resource type), by resource.
async fn ec2(c: &Clients, stack: &str, found: &mut Found) {
    let all = c.ec2.describe_tags().into_paginator().items().send().try_collect().await.expect("ec2: describe_tags");
    let mut by_resource: BTreeMap<String, Vec<(&str, &str)>> = BTreeMap::new();
    for t in &all {
        let id = t.resource_id().unwrap_or_default().to_owned();
        by_resource.entry(id).or_default().push((t.key().unwrap_or_default(), t.value().unwrap_or_default()));
    }
    for (id, tags) in by_resource {
        let holder = if id.starts_with("lt-") { Holder::LaunchTemplate(id) } else { Holder::Ec2(id) };
        note(found, stack, "ec2:DescribeTags", holder, tags);
    }
}

/// Launch templates as DescribeLaunchTemplates reports them (moto keeps the tags they were
/// created with there, whatever DeleteTags did since), and the tags their default version
/// stamps on every instance and volume it launches.
async fn launch_templates(c: &Clients, stack: &str, found: &mut Found) {
    let all = c
        .ec2
        .describe_launch_templates()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("ec2: describe_launch_templates");
    for lt in &all {
        let id = lt.launch_template_id().unwrap_or_default().to_owned();
        let tags = lt.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
        note(found, stack, "ec2:DescribeLaunchTemplates", Holder::LaunchTemplate(id.clone()), tags);
        let versions = c
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(&id)
            .versions("$Default")
            .send()
            .await
            .expect("ec2: describe_launch_template_versions");
        let specs = versions.launch_template_versions().iter().filter_map(|v| v.launch_template_data());
        for spec in specs.flat_map(|d| d.tag_specifications()) {
            let tags = spec.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
            note(found, stack, "ec2:DescribeLaunchTemplateVersions", Holder::LaunchTemplate(id.clone()), tags);
        }
    }
}

fn iam_tags(tags: &[aws_sdk_iam::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key(), t.value()))
}

/// Roles, instance profiles (moto has no ListInstanceProfileTags: GetInstanceProfile's tags) and
/// customer managed policies.
async fn iam(c: &Clients, stack: &str, found: &mut Found) {
    let roles = c.iam.list_roles().into_paginator().items().send().try_collect().await.expect("iam: list_roles");
    for role in &roles {
        let tags = c.iam.list_role_tags().role_name(role.role_name()).send().await.expect("iam: list_role_tags");
        note(found, stack, "iam:ListRoleTags", Holder::Role(role.role_name().to_owned()), iam_tags(tags.tags()));
    }
    let profiles = c
        .iam
        .list_instance_profiles()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("iam: list_instance_profiles");
    for p in &profiles {
        let name = p.instance_profile_name();
        let got = c.iam.get_instance_profile().instance_profile_name(name).send().await.expect("get profile");
        let tags = got.instance_profile().map(|p| p.tags()).unwrap_or_default();
        note(found, stack, "iam:GetInstanceProfile", Holder::InstanceProfile(name.to_owned()), iam_tags(tags));
    }
    let policies = c
        .iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("iam: list_policies");
    for p in policies.iter().filter_map(|p| p.arn()) {
        let tags = c.iam.list_policy_tags().policy_arn(p).send().await.expect("iam: list_policy_tags");
        note(found, stack, "iam:ListPolicyTags", Holder::Policy(p.to_owned()), iam_tags(tags.tags()));
    }
}

async fn auto_scaling_groups(c: &Clients, stack: &str, found: &mut Found) {
    let groups = c
        .autoscaling
        .describe_auto_scaling_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("autoscaling: describe_auto_scaling_groups");
    for g in &groups {
        let tags = g.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
        let holder = Holder::AutoScalingGroup(g.auto_scaling_group_name().unwrap_or_default().to_owned());
        note(found, stack, "autoscaling:DescribeAutoScalingGroups", holder, tags);
    }
}

fn ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}

/// Clusters, their capacity providers (moto answers 500 to DescribeCapacityProviders without
/// names) and services, and every task definition.
async fn ecs(c: &Clients, stack: &str, found: &mut Found) {
    use aws_sdk_ecs::types::{CapacityProviderField, ClusterField, ServiceField, TaskDefinitionField};
    let arns = c.ecs.list_clusters().into_paginator().items().send().try_collect().await.expect("ecs: list_clusters");
    if !arns.is_empty() {
        let clusters =
            c.ecs.describe_clusters().set_clusters(Some(arns)).include(ClusterField::Tags).send().await.expect("ecs");
        for cl in clusters.clusters() {
            let arn = cl.cluster_arn().unwrap_or_default();
            note(found, stack, "ecs:DescribeClusters", Holder::Ecs(arn.to_owned()), ecs_tags(cl.tags()));
            let names = cl.capacity_providers().to_vec();
            if !names.is_empty() {
                let cps = c.ecs.describe_capacity_providers().set_capacity_providers(Some(names));
                let cps = cps.include(CapacityProviderField::Tags).send().await.expect("ecs: capacity providers");
                for p in cps.capacity_providers() {
                    let holder = Holder::Ecs(p.capacity_provider_arn().unwrap_or_default().to_owned());
                    note(found, stack, "ecs:DescribeCapacityProviders", holder, ecs_tags(p.tags()));
                }
            }
            let services = c.ecs.list_services().cluster(arn).send().await.expect("ecs: list_services");
            if !services.service_arns().is_empty() {
                let described =
                    c.ecs.describe_services().cluster(arn).set_services(Some(services.service_arns().to_vec()));
                let described = described.include(ServiceField::Tags).send().await.expect("ecs: describe_services");
                for s in described.services() {
                    let holder = Holder::Ecs(s.service_arn().unwrap_or_default().to_owned());
                    note(found, stack, "ecs:DescribeServices", holder, ecs_tags(s.tags()));
                }
            }
        }
    }
    let tds = c.ecs.list_task_definitions().into_paginator().items().send().try_collect().await.expect("ecs: tds");
    for td in &tds {
        let got = c.ecs.describe_task_definition().task_definition(td).include(TaskDefinitionField::Tags).send();
        let got = got.await.expect("ecs: describe_task_definition");
        note(found, stack, "ecs:DescribeTaskDefinition", Holder::Ecs(td.clone()), ecs_tags(got.tags()));
    }
}

/// Load balancers, their listeners, and target groups: DescribeTags, twenty at a time.
async fn load_balancing(c: &Clients, stack: &str, found: &mut Found) {
    let lbs = c.elb.describe_load_balancers().into_paginator().items().send().try_collect().await.expect("elbv2");
    let mut arns: Vec<String> = lbs.iter().filter_map(|l| l.load_balancer_arn().map(str::to_owned)).collect();
    for lb in lbs.iter().filter_map(|l| l.load_balancer_arn()) {
        let listeners = c.elb.describe_listeners().load_balancer_arn(lb).send().await.expect("elbv2: listeners");
        arns.extend(listeners.listeners().iter().filter_map(|l| l.listener_arn().map(str::to_owned)));
    }
    let tgs = c.elb.describe_target_groups().into_paginator().items().send().try_collect().await.expect("elbv2: tgs");
    arns.extend(tgs.iter().filter_map(|t| t.target_group_arn().map(str::to_owned)));
    for chunk in arns.chunks(20) {
        let described = c.elb.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await.expect("elbv2 tags");
        for d in described.tag_descriptions() {
            let tags = d.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
            let holder = Holder::Elb(d.resource_arn().unwrap_or_default().to_owned());
            note(found, stack, "elasticloadbalancing:DescribeTags", holder, tags);
        }
    }
}

/// ECR, CloudWatch Logs, Secrets Manager, alarms, SNS topics and S3 buckets, each by its own
/// tag listing.
async fn others(c: &Clients, stack: &str, found: &mut Found) {
    let repos = c.ecr.describe_repositories().into_paginator().items().send().try_collect().await.expect("ecr");
    for arn in repos.iter().filter_map(|r| r.repository_arn()) {
        let tags = c.ecr.list_tags_for_resource().resource_arn(arn).send().await.expect("ecr: tags");
        let tags = tags.tags().iter().map(|t| (t.key(), t.value()));
        note(found, stack, "ecr:ListTagsForResource", Holder::Repository(arn.to_owned()), tags);
    }
    let groups = c.logs.describe_log_groups().into_paginator().items().send().try_collect().await.expect("logs");
    for arn in groups.iter().filter_map(|g| g.log_group_arn()) {
        let tags = c.logs.list_tags_for_resource().resource_arn(arn).send().await.expect("logs: tags");
        let tags = tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        note(found, stack, "logs:ListTagsForResource", Holder::LogGroup(arn.to_owned()), tags);
    }
    let pages = c.secrets.list_secrets().into_paginator().send().try_collect().await.expect("secrets");
    for s in pages.iter().flat_map(|p| p.secret_list()) {
        let tags = s.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
        note(found, stack, "secretsmanager:ListSecrets", Holder::Secret(s.arn().unwrap_or_default().to_owned()), tags);
    }
    let alarms = c.cloudwatch.describe_alarms().send().await.expect("cloudwatch: describe_alarms");
    for arn in alarms.metric_alarms().iter().filter_map(|a| a.alarm_arn()) {
        let tags = c.cloudwatch.list_tags_for_resource().resource_arn(arn).send().await.expect("alarm tags");
        let tags = tags.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
        note(found, stack, "cloudwatch:ListTagsForResource", Holder::Alarm(arn.to_owned()), tags);
    }
    let topics = c.sns.list_topics().into_paginator().items().send().try_collect().await.expect("sns: list_topics");
    for arn in topics.iter().filter_map(|t| t.topic_arn()) {
        let tags = c.sns.list_tags_for_resource().resource_arn(arn).send().await.expect("sns: tags");
        let tags = tags.tags().iter().map(|t| (t.key(), t.value()));
        note(found, stack, "sns:ListTagsForResource", Holder::Topic(arn.to_owned()), tags);
    }
    let aas = &c.app_autoscaling;
    let ecs = aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs;
    let targets = aas.describe_scalable_targets().service_namespace(ecs).send().await.expect("scalable targets");
    for arn in targets.scalable_targets().iter().filter_map(|t| t.scalable_target_arn()) {
        let tags = aas.list_tags_for_resource().resource_arn(arn).send().await.expect("scalable target tags");
        let tags = tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        note(found, stack, "application-autoscaling:ListTagsForResource", Holder::ScalableTarget(arn.to_owned()), tags);
    }
    let buckets = c.s3.list_buckets().send().await.expect("s3: list_buckets");
    for name in buckets.buckets().iter().filter_map(|b| b.name()) {
        // A bucket without tags answers NoSuchTagSet.
        let Ok(tagging) = c.s3.get_bucket_tagging().bucket(name).send().await else { continue };
        let tags = tagging.tag_set().iter().map(|t| (t.key(), t.value()));
        note(found, stack, "s3:GetBucketTagging", Holder::Bucket(name.to_owned()), tags);
    }
}
