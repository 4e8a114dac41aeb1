//! A count of everything a stack owns, read straight from moto with the test's own clients: the
//! yardstick that says a faulty run made no duplicates (its census equals a clean run's) and
//! that `down` left nothing (every count is zero). Its keys are the plan nouns of the one list of
//! kinds (`provisioner::engine::walk`), and a test holds them to it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use provisioner::aws::Clients;

/// Kind -> how many of the stack's are there.
pub type Census = BTreeMap<&'static str, usize>;

fn owned(stack: &str) -> Filter {
    Filter::builder().name("tag:konnichiwa:stack").values(stack).build()
}

/// Counts what stack `name` (with the example's derived names) owns in the clients' account.
pub async fn take(c: &Clients, name: &str) -> Census {
    let mut n = Census::new();
    let ec2 = &c.ec2;
    n.insert("vpc", ec2.describe_vpcs().filters(owned(name)).send().await.expect("vpcs").vpcs().len());
    n.insert("subnet", ec2.describe_subnets().filters(owned(name)).send().await.expect("subnets").subnets().len());
    n.insert(
        "internet-gateway",
        ec2.describe_internet_gateways().filters(owned(name)).send().await.expect("igws").internet_gateways().len(),
    );
    n.insert(
        "route-table",
        ec2.describe_route_tables().filters(owned(name)).send().await.expect("rts").route_tables().len(),
    );
    n.insert(
        "security-group",
        ec2.describe_security_groups().filters(owned(name)).send().await.expect("sgs").security_groups().len(),
    );
    n.insert(
        "launch-template",
        ec2.describe_launch_templates().filters(owned(name)).send().await.expect("lts").launch_templates().len(),
    );
    n.insert(
        "auto-scaling-group",
        c.autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("{name}-instances"))
            .send()
            .await
            .expect("asgs")
            .auto_scaling_groups()
            .len(),
    );
    let cps = c.ecs.describe_capacity_providers().capacity_providers(format!("{name}-capacity")).send().await;
    n.insert(
        "capacity-provider",
        cps.map(|o| {
            o.capacity_providers().iter().filter(|p| p.status().is_some_and(|s| s.as_str() == "ACTIVE")).count()
        })
        .unwrap_or(0),
    );
    let clusters = c.ecs.describe_clusters().clusters(name).send().await.expect("clusters");
    n.insert("ecs-cluster", clusters.clusters().iter().filter(|c| c.status() == Some("ACTIVE")).count());
    let services = c.ecs.describe_services().cluster(name).services(name).send().await;
    n.insert(
        "ecs-service",
        services.map(|o| o.services().iter().filter(|s| s.status() == Some("ACTIVE")).count()).unwrap_or(0),
    );
    let tds = c
        .ecs
        .list_task_definitions()
        .family_prefix(name)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .expect("task definitions");
    n.insert(
        "task-definition",
        tds.task_definition_arns()
            .iter()
            .filter(|a| a.rsplit('/').next().and_then(|f| f.rsplit_once(':')).is_some_and(|(f, _)| f == name))
            .count(),
    );
    let lbs = c.elb.describe_load_balancers().names(format!("{name}-alb")).send().await;
    let lb_arns: Vec<String> = lbs
        .map(|o| o.load_balancers().iter().filter_map(|l| l.load_balancer_arn().map(str::to_owned)).collect())
        .unwrap_or_default();
    n.insert("load-balancer", lb_arns.len());
    let (mut listeners, mut rules) = (0, 0);
    for arn in &lb_arns {
        let found = c.elb.describe_listeners().load_balancer_arn(arn).send().await.expect("listeners");
        listeners += found.listeners().len();
        for l in found.listeners() {
            let r = c.elb.describe_rules().listener_arn(l.listener_arn().unwrap_or_default()).send().await;
            rules += r.expect("rules").rules().iter().filter(|r| !r.is_default().unwrap_or(false)).count();
        }
    }
    n.insert("listener", listeners);
    // A canary, linear or blue/green strategy's two rules (the example is rolling: none).
    n.insert("listener-rule", rules);
    let mut groups = 0;
    for tg in [format!("{name}-tg"), format!("{name}-tg2")] {
        let tgs = c.elb.describe_target_groups().names(tg).send().await;
        groups += tgs.map(|o| o.target_groups().len()).unwrap_or(0);
    }
    n.insert("target-group", groups);
    let mut roles = 0;
    for role in ["instance", "execution", "task"] {
        roles += usize::from(c.iam.get_role().role_name(format!("{name}-{role}")).send().await.is_ok());
    }
    n.insert("iam-role", roles);
    let account = c.identity().await.expect("account").account;
    let boundary = format!("arn:aws:iam::{account}:policy/{name}-boundary");
    n.insert("iam-policy", usize::from(c.iam.get_policy().policy_arn(boundary).send().await.is_ok()));
    n.insert(
        "instance-profile",
        usize::from(
            c.iam.get_instance_profile().instance_profile_name(format!("{name}-instance")).send().await.is_ok(),
        ),
    );
    let repos = c.ecr.describe_repositories().repository_names(name).send().await;
    n.insert("ecr-repository", repos.map(|o| o.repositories().len()).unwrap_or(0));
    let groups =
        c.logs.describe_log_groups().log_group_name_prefix(format!("/ecs/{name}")).send().await.expect("groups");
    n.insert(
        "log-group",
        groups.log_groups().iter().filter(|g| g.log_group_name() == Some(format!("/ecs/{name}").as_str())).count(),
    );
    let secret = c.secrets.describe_secret().secret_id(format!("{name}/api-key")).send().await;
    n.insert("secret", secret.map(|s| usize::from(s.deleted_date().is_none())).unwrap_or(0));
    let targets = c
        .app_autoscaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .expect("scalable targets");
    let rid = format!("service/{name}/{name}");
    let scalable = targets.scalable_targets().iter().filter(|t| t.resource_id() == rid).count();
    let policies = c
        .app_autoscaling
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_id(&rid)
        .send()
        .await
        .expect("policies");
    // One plan row covers both: the scalable target and its policy.
    n.insert("service-autoscaling", scalable + policies.scaling_policies().len());
    // By exact name: a prefix would count another stack's (`<name>-staging-…`).
    let names = provisioner::resources::alarms::all_names(name).to_vec();
    let alarms = c.cloudwatch.describe_alarms().set_alarm_names(Some(names.clone())).send().await.expect("alarms");
    n.insert(
        "alarm",
        alarms.metric_alarms().iter().filter(|a| a.alarm_name().is_some_and(|n| names.iter().any(|x| x == n))).count(),
    );
    // The error budget's windows and alerts, both types asked for (DescribeAlarms lists only
    // metric alarms unless told otherwise).
    let (alerts, windows) = provisioner::resources::budget::names(name);
    let budget = c
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(alerts.iter().chain(&windows).cloned().collect()))
        .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
        .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
        .send()
        .await
        .expect("budget alarms");
    n.insert("burn-alarm", budget.metric_alarms().len());
    n.insert("budget-alert", budget.composite_alarms().len());
    let topic = format!("arn:aws:sns:ap-northeast-1:{account}:{name}-alarms");
    n.insert("sns-topic", usize::from(c.sns.get_topic_attributes().topic_arn(topic).send().await.is_ok()));
    let buckets = c.s3.list_buckets().send().await.expect("buckets");
    let prefix = format!("{name}-alb-logs-");
    n.insert(
        "log-bucket",
        buckets.buckets().iter().filter(|b| b.name().is_some_and(|n| n.starts_with(&prefix))).count(),
    );
    n
}

/// What the example stack owns after a clean `up`.
pub fn clean() -> Census {
    Census::from([
        ("alarm", 3),
        ("auto-scaling-group", 1),
        // Made only with slo.availability.
        ("budget-alert", 0),
        ("burn-alarm", 0),
        ("capacity-provider", 1),
        ("ecr-repository", 1),
        ("ecs-cluster", 1),
        ("ecs-service", 1),
        ("iam-policy", 1),
        ("iam-role", 3),
        ("instance-profile", 1),
        ("internet-gateway", 1),
        ("launch-template", 1),
        ("listener", 1),
        ("listener-rule", 0),
        ("load-balancer", 1),
        ("log-bucket", 1),
        ("log-group", 1),
        ("route-table", 1),
        ("secret", 1),
        ("security-group", 2),
        ("service-autoscaling", 2),
        // Made only with service.deployment.alarm_topic.
        ("sns-topic", 0),
        ("subnet", 2),
        ("target-group", 1),
        ("task-definition", 1),
        ("vpc", 1),
    ])
}

/// Nouns of registered kinds that the example stack does not make (no domain, no load test
/// running) or that are settings rather than resources.
const NOT_IN_THE_EXAMPLE: &[&str] = &["certificate", "dns-record", "dns-alias", "cluster-strategy", "loadtest-task"];

#[test]
fn the_census_counts_every_kind_in_the_one_list() {
    let counted = clean();
    for noun in provisioner::engine::walk::nouns().map(|n| n.as_str()) {
        assert!(
            counted.contains_key(noun) || NOT_IN_THE_EXAMPLE.contains(&noun),
            "the plan noun {noun:?} of a registered kind is not counted: add it to census::take and census::clean \
             (tests/integration/common/census.rs)"
        );
    }
    for key in counted.keys() {
        assert!(
            provisioner::engine::walk::nouns().any(|n| n == *key),
            "census key {key:?} is no registered kind's plan noun (KINDS in provisioner/src/resources/mod.rs)"
        );
    }
}

/// What is left of a census after `down`: the kinds with a count above zero.
pub fn leftovers(census: &Census) -> Vec<String> {
    census.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect()
}
