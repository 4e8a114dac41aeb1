//! The suite's moto (scripts/moto_aws.py) answers as AWS does where moto 5.2 does not and the
//! difference would change what our tests measure: each patch checked against the running
//! emulator, with the AWS behaviour it restores. Without these, a retried create could look
//! harmless, `down` could pass while AWS would refuse it, and a retried delete could fail where
//! AWS answers "not found".

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, DesiredStatus, LaunchType, NetworkMode};

use crate::common::Account;

/// The error code of a failed call, as the SDK read it.
fn code<E: aws_sdk_ecs::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("(no code: the emulator did not answer as AWS does)").to_owned()
}

/// A fresh VPC with DNS hostnames and two subnets of it in two zones.
async fn network(c: &provisioner::aws::Clients) -> (String, Vec<String>) {
    let vpc = c.ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.expect("vpc");
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
    // As the stack's VPC has (moto's Fargate tasks need it to name their interface).
    let on = aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build();
    c.ec2.modify_vpc_attribute().vpc_id(&vpc).enable_dns_hostnames(on).send().await.expect("dns hostnames");
    let mut ids = Vec::new();
    for (i, zone) in ["ap-northeast-1a", "ap-northeast-1c"].into_iter().enumerate() {
        let s = c
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.9.{i}.0/24"))
            .availability_zone(zone)
            .send()
            .await
            .expect("subnet");
        ids.push(s.subnet().and_then(|s| s.subnet_id()).expect("subnet id").to_owned());
    }
    (vpc, ids)
}

#[tokio::test]
async fn a_second_create_of_a_named_group_or_load_balancer_answers_as_aws_does() {
    let account = Account::new();
    let c = account.clients().await;
    let (_, subnets) = network(&c).await;

    // CreateAutoScalingGroup of a name in use: AlreadyExists, and the group keeps its instances.
    let template = c
        .ec2
        .create_launch_template()
        .launch_template_name("emulator-lt")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("launch template");
    let template_id = template.launch_template().and_then(|t| t.launch_template_id()).expect("id").to_owned();
    let create_group = || async {
        c.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name("emulator-asg")
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(&template_id)
                    .build(),
            )
            .min_size(1)
            .max_size(2)
            .desired_capacity(1)
            .vpc_zone_identifier(subnets.join(","))
            .send()
            .await
    };
    create_group().await.expect("the first create");
    let instances = || async {
        let g = c.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names("emulator-asg").send().await;
        let g = g.expect("describe groups");
        g.auto_scaling_groups()
            .iter()
            .flat_map(|g| g.instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)))
            .collect::<Vec<_>>()
    };
    let before = instances().await;
    assert_eq!(before.len(), 1);
    let again = create_group().await.expect_err("AWS refuses a second group of the same name");
    assert_eq!(code(&again), "AlreadyExists");
    assert_eq!(instances().await, before, "the group keeps its instances");

    // CreateLoadBalancer of a name in use with the same settings: the existing one.
    let create_lb = || async {
        let lb = c
            .elb
            .create_load_balancer()
            .name("emulator-alb")
            .set_subnets(Some(subnets.clone()))
            .send()
            .await
            .expect("create load balancer");
        lb.load_balancers().first().and_then(|l| l.load_balancer_arn()).expect("arn").to_owned()
    };
    let first = create_lb().await;
    assert_eq!(create_lb().await, first, "the same load balancer, not a second one");
    let all = c.elb.describe_load_balancers().send().await.expect("describe load balancers");
    assert_eq!(all.load_balancers().len(), 1);
}

#[tokio::test]
async fn ecs_lists_deletes_and_refuses_as_aws_does() {
    let account = Account::new();
    let c = account.clients().await;
    let ecs = &c.ecs;
    let (vpc, subnets) = network(&c).await;
    let group = c.ec2.create_security_group().group_name("emulator").description("emulator").vpc_id(vpc).send().await;
    let group = group.expect("security group").group_id().expect("group id").to_owned();

    // DeleteCapacityProvider of a provider that is not there: a ClientException, not a crash.
    let missing = ecs.delete_capacity_provider().capacity_provider("gone").send().await.expect_err("refused");
    assert_eq!(code(&missing), "ClientException", "{missing:?}");

    ecs.create_cluster().cluster_name("emulator").send().await.expect("cluster");
    ecs.register_task_definition()
        .family("emulator-worker")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(ContainerDefinition::builder().name("w").image("w").memory(512).build())
        .send()
        .await
        .expect("task definition");
    ecs.create_service()
        .cluster("emulator")
        .service_name("web")
        .task_definition("emulator-worker")
        .desired_count(0)
        .send()
        .await
        .expect("service");
    let network = aws_sdk_ecs::types::NetworkConfiguration::builder()
        .awsvpc_configuration(
            aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                .set_subnets(Some(subnets.clone()))
                .security_groups(group)
                .build()
                .expect("awsvpc"),
        )
        .build();
    let run = ecs
        .run_task()
        .cluster("emulator")
        .task_definition("emulator-worker")
        .launch_type(LaunchType::Fargate)
        .network_configuration(network)
        .started_by("worker")
        .send()
        .await
        .expect("run task");
    let task = run.tasks().first().and_then(|t| t.task_arn()).expect("task").to_owned();
    let listed = |service: Option<&'static str>, status: Option<DesiredStatus>| async move {
        let out = ecs
            .list_tasks()
            .cluster("emulator")
            .set_service_name(service.map(str::to_owned))
            .set_desired_status(status)
            .send()
            .await
            .expect("list tasks");
        out.task_arns().to_vec()
    };
    assert_eq!(listed(None, None).await, std::slice::from_ref(&task));
    assert!(listed(Some("web"), None).await.is_empty(), "serviceName lists only that service's tasks");

    // DeleteCluster while a task runs: ClusterContainsTasksException.
    let busy = ecs.delete_cluster().cluster("emulator").send().await.expect_err("refused while the task runs");
    assert_eq!(code(&busy), "ClusterContainsTasksException", "{busy:?}");

    // A stopped task is listed only when asked for.
    ecs.stop_task().cluster("emulator").task(&task).send().await.expect("stop");
    assert!(listed(None, None).await.is_empty(), "ListTasks lists RUNNING tasks unless asked for others");
    assert_eq!(listed(None, Some(DesiredStatus::Stopped)).await, [task]);
    ecs.delete_service().cluster("emulator").service("web").send().await.expect("delete service");
    ecs.delete_cluster().cluster("emulator").send().await.expect("an idle cluster is deleted");
}

#[tokio::test]
async fn application_auto_scaling_says_not_found_as_aws_does() {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let account = Account::new();
    let c = account.clients().await;
    let policy = c
        .app_autoscaling
        .delete_scaling_policy()
        .policy_name("gone")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id("service/emulator/web")
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .expect_err("nothing to delete");
    assert_eq!(code(&policy), "ObjectNotFoundException", "{policy:?}");
    let target = c
        .app_autoscaling
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id("service/emulator/web")
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .expect_err("nothing to deregister");
    assert_eq!(code(&target), "ObjectNotFoundException", "{target:?}");
}

#[tokio::test]
async fn removing_a_role_a_profile_no_longer_holds_says_no_such_entity() {
    let account = Account::new();
    let c = account.clients().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    c.iam.create_role().role_name("emulator").assume_role_policy_document(trust).send().await.expect("role");
    c.iam.create_instance_profile().instance_profile_name("emulator").send().await.expect("profile");
    c.iam
        .add_role_to_instance_profile()
        .instance_profile_name("emulator")
        .role_name("emulator")
        .send()
        .await
        .expect("add");
    let remove =
        || c.iam.remove_role_from_instance_profile().instance_profile_name("emulator").role_name("emulator").send();
    remove().await.expect("the first remove");
    let again = remove().await.expect_err("the role is not in the profile any more");
    assert_eq!(code(&again), "NoSuchEntity", "{again:?}");
}
