//! The suite's moto (scripts/moto_aws.py) answers as AWS does where moto 5.2 does not and the
//! difference would change what our tests measure: each patch checked against the running
//! emulator, with the AWS behaviour it restores. Without these, a retried create could look
//! harmless, `down` could pass while AWS would refuse it, and a retried delete could fail where
//! AWS answers "not found".

use aws_sdk_ecs::types::{
    AdvancedConfiguration, CanaryConfiguration, Compatibility, ContainerDefinition, DeploymentConfiguration,
    DeploymentLifecycleHook, DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
    DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration, DeploymentStrategy, DesiredStatus,
    LaunchType, LinearConfiguration, LoadBalancer, NetworkMode, ServiceDeployment, ServiceDeploymentLifecycleStage,
    StopServiceDeploymentStopType,
};
use aws_sdk_iam::error::ProvideErrorMetadata;

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

#[tokio::test]
async fn deleting_a_record_that_is_gone_is_refused_as_route_53_refuses_it() {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    let account = Account::new();
    let c = account.clients().await;
    let zone = crate::https::zone(&c, "gone.example.com").await;
    let record = ResourceRecordSet::builder()
        .name("a.gone.example.com")
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value("192.0.2.1").build().expect("record"))
        .build()
        .expect("record set");
    let change = |action| {
        let change = Change::builder().action(action).resource_record_set(record.clone()).build().expect("change");
        c.route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(ChangeBatch::builder().changes(change).build().expect("batch"))
            .send()
    };
    change(ChangeAction::Create).await.expect("create");
    change(ChangeAction::Delete).await.expect("the first delete");
    let again = change(ChangeAction::Delete).await.expect_err("the record is gone");
    assert_eq!(code(&again), "InvalidChangeBatch", "{again:?}");
    let said = again.message().unwrap_or_default();
    assert!(said.contains("type='A'] but it was not found"), "{said}");
}

/// Calls the S3 operation `op` on `bucket` (each as the log bucket's kind sends it); the error
/// code when it fails.
async fn s3_call(c: &provisioner::aws::Clients, op: &str, bucket: &str) -> Result<(), String> {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, Delete, ExpirationStatus,
        LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier, ObjectOwnership, OwnershipControls,
        OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
        ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    };
    let s3 = &c.s3;
    // A refused HEAD has no body, so no code: its status says it.
    fn err<E: ProvideErrorMetadata>(e: aws_sdk_s3::error::SdkError<E>) -> String {
        let status = e.raw_response().map(|r| r.status().as_u16());
        match (e.code(), status) {
            (Some(code), _) => code.to_owned(),
            (None, Some(403)) => "AccessDenied".to_owned(),
            (None, status) => format!("(no code, HTTP {status:?})"),
        }
    }
    match op {
        "CreateBucket" => {
            let config = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::ApNortheast1)
                .build();
            s3.create_bucket().bucket(bucket).create_bucket_configuration(config).send().await.map(|_| ()).map_err(err)
        }
        "PutBucketTagging" => {
            let tag = Tag::builder().key("konnichiwa:stack").value("emulator").build().expect("tag");
            let tagging = Tagging::builder().tag_set(tag).build().expect("tagging");
            s3.put_bucket_tagging().bucket(bucket).tagging(tagging).send().await.map(|_| ()).map_err(err)
        }
        "GetBucketTagging" => s3.get_bucket_tagging().bucket(bucket).send().await.map(|_| ()).map_err(err),
        "PutPublicAccessBlock" => {
            let block = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            let r = s3.put_public_access_block().bucket(bucket).public_access_block_configuration(block);
            r.send().await.map(|_| ()).map_err(err)
        }
        "GetPublicAccessBlock" => s3.get_public_access_block().bucket(bucket).send().await.map(|_| ()).map_err(err),
        "PutBucketEncryption" => {
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .expect("sse");
            let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
            let config = ServerSideEncryptionConfiguration::builder().rules(rule).build().expect("config");
            let r = s3.put_bucket_encryption().bucket(bucket).server_side_encryption_configuration(config);
            r.send().await.map(|_| ()).map_err(err)
        }
        "GetBucketEncryption" => s3.get_bucket_encryption().bucket(bucket).send().await.map(|_| ()).map_err(err),
        "PutBucketOwnershipControls" => {
            let rule = OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced).build();
            let controls = OwnershipControls::builder().rules(rule.expect("rule")).build().expect("controls");
            let r = s3.put_bucket_ownership_controls().bucket(bucket).ownership_controls(controls);
            r.send().await.map(|_| ()).map_err(err)
        }
        "GetBucketOwnershipControls" => {
            s3.get_bucket_ownership_controls().bucket(bucket).send().await.map(|_| ()).map_err(err)
        }
        "PutBucketLifecycleConfiguration" => {
            let rule = LifecycleRule::builder()
                .id("expire")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .expiration(LifecycleExpiration::builder().days(30).build())
                .build()
                .expect("rule");
            let config = BucketLifecycleConfiguration::builder().rules(rule).build().expect("lifecycle");
            let r = s3.put_bucket_lifecycle_configuration().bucket(bucket).lifecycle_configuration(config);
            r.send().await.map(|_| ()).map_err(err)
        }
        "GetBucketLifecycleConfiguration" => {
            s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await.map(|_| ()).map_err(err)
        }
        "PutBucketPolicy" => {
            let policy = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"logdelivery.elasticloadbalancing.amazonaws.com"}},"Action":"s3:PutObject","Resource":"arn:aws:s3:::{bucket}/AWSLogs/*"}}]}}"#
            );
            s3.put_bucket_policy().bucket(bucket).policy(policy).send().await.map(|_| ()).map_err(err)
        }
        "GetBucketPolicy" => s3.get_bucket_policy().bucket(bucket).send().await.map(|_| ()).map_err(err),
        "HeadBucket" => s3.head_bucket().bucket(bucket).send().await.map(|_| ()).map_err(err),
        "ListObjectVersions" => s3.list_object_versions().bucket(bucket).send().await.map(|_| ()).map_err(err),
        // A key that is not there: S3 answers it deleted, as it would a present one.
        "DeleteObjects" => {
            let key = ObjectIdentifier::builder().key("AWSLogs/old.log.gz").build().expect("key");
            let delete = Delete::builder().objects(key).build().expect("delete");
            // S3 answers a refused key among the deleted ones, not the request.
            let out = s3.delete_objects().bucket(bucket).delete(delete).send().await.map_err(err)?;
            match out.errors().first() {
                Some(e) => Err(e.code().unwrap_or("(no code)").to_owned()),
                None => Ok(()),
            }
        }
        "DeleteBucket" => s3.delete_bucket().bucket(bucket).send().await.map(|_| ()).map_err(err),
        other => panic!("no call written for the S3 operation {other}"),
    }
}

/// The S3 operations the log bucket's kind calls, in an order each can succeed in.
const S3_OPERATIONS: &[&str] = &[
    "CreateBucket",
    "PutBucketTagging",
    "GetBucketTagging",
    "PutPublicAccessBlock",
    "GetPublicAccessBlock",
    "PutBucketEncryption",
    "GetBucketEncryption",
    "PutBucketOwnershipControls",
    "GetBucketOwnershipControls",
    "PutBucketLifecycleConfiguration",
    "GetBucketLifecycleConfiguration",
    "PutBucketPolicy",
    "GetBucketPolicy",
    "HeadBucket",
    "ListObjectVersions",
    "DeleteObjects",
    "DeleteBucket",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_authorizes_each_operation_by_the_iam_action_aws_names() {
    // IAM enforcement is a switch of the whole server: a moto of this test's own.
    let moto = crate::common::OwnMoto::start();
    let account = Account::new();
    let setup = account.clients_at(&moto.url, ("test", "test", None)).await;
    let keys_of = |user: &'static str| {
        let iam = setup.iam.clone();
        async move {
            iam.create_user().user_name(user).send().await.expect("user");
            let key = iam.create_access_key().user_name(user).send().await.expect("access key");
            let key = key.access_key().expect("key");
            (key.access_key_id().to_owned(), key.secret_access_key().to_owned())
        }
    };
    let (admin_id, admin_secret) = keys_of("admin").await;
    let (caller_id, caller_secret) = keys_of("caller").await;
    let everything = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    setup
        .iam
        .put_user_policy()
        .user_name("admin")
        .policy_name("all")
        .policy_document(everything)
        .send()
        .await
        .expect("admin");
    // moto checks signatures: each proxy signs again for moto's address, one set of keys each.
    let admin_proxy = crate::common::faults::Proxy::start(&moto.url, crate::common::faults::Faults::default()).await;
    admin_proxy.resign_for_moto(&admin_id, &admin_secret);
    let caller_proxy = crate::common::faults::Proxy::start(&moto.url, crate::common::faults::Faults::default()).await;
    caller_proxy.resign_for_moto(&caller_id, &caller_secret);
    let admin = account.clients_at(&admin_proxy.url, (&admin_id, &admin_secret, None)).await;
    let caller = account.clients_at(&caller_proxy.url, (&caller_id, &caller_secret, None)).await;
    moto.enforce_iam(true).await;

    let bucket = "emulator-alb-logs";
    let grant = |action: String| {
        let iam = admin.iam.clone();
        async move {
            let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": action, "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]}]});
            let r = iam.put_user_policy().user_name("caller").policy_name("s3").policy_document(policy.to_string());
            r.send().await.expect("the caller's policy");
        }
    };
    let mut wrong = Vec::new();
    for op in S3_OPERATIONS {
        let action = crate::common::policy::s3_action(op);
        // Refused under the operation's own name where AWS checks another action…
        if action != format!("s3:{op}") {
            grant(format!("s3:{op}")).await;
            match s3_call(&caller, op, bucket).await {
                Err(code) if code == "AccessDenied" => {}
                other => wrong.push(format!("{op} granted as s3:{op}: {other:?}, AWS refuses it")),
            }
        }
        // … and allowed with exactly the action AWS checks.
        grant(action.clone()).await;
        if let Err(code) = s3_call(&caller, op, bucket).await {
            wrong.push(format!("{op} granted as {action}: {code}"));
        }
    }
    moto.enforce_iam(false).await;
    assert!(wrong.is_empty(), "the emulator authorizes S3 as AWS does not:\n{}", wrong.join("\n"));
}

/// A policy document of exactly `size` characters as IAM counts them (whitespace not counted).
fn policy_of_size(size: usize) -> String {
    let with_sid = |sid: &str| {
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow",
            "Action": "s3:GetObject", "Resource": "*"}]})
        .to_string()
    };
    let bare = stack::limits::policy_size(&serde_json::from_str(&with_sid("")).expect("json"));
    let doc = with_sid(&"P".repeat(size - bare));
    assert_eq!(stack::limits::policy_size(&serde_json::from_str(&doc).expect("json")), size);
    doc
}

/// A trust policy of exactly `size` characters.
fn trust_of_size(size: usize) -> String {
    let with_sid = |sid: &str| {
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        .to_string()
    };
    let bare = stack::limits::policy_size(&serde_json::from_str(&with_sid("")).expect("json"));
    with_sid(&"T".repeat(size - bare))
}

#[tokio::test]
async fn iam_refuses_what_crosses_its_size_count_and_name_limits_as_aws_does() {
    use stack::limits::{
        IAM_INSTANCE_PROFILE_NAME, IAM_MANAGED_POLICY, IAM_POLICY_NAME, IAM_ROLE_INLINE_POLICIES,
        IAM_ROLE_MANAGED_POLICIES, IAM_ROLE_NAME, IAM_TRUST_POLICY,
    };
    let account = Account::new();
    let iam = &account.clients().await.iam;
    let refused = |e: &dyn aws_sdk_iam::error::ProvideErrorMetadata| {
        format!("{} {}", e.code().unwrap_or("(no code)"), e.message().unwrap_or_default())
    };

    // A trust policy at the limit is taken; one character more is LimitExceeded, nothing made.
    let trust = trust_of_size(IAM_TRUST_POLICY.max);
    iam.create_role().role_name("emulator").assume_role_policy_document(&trust).send().await.expect("at the limit");
    let over = trust_of_size(IAM_TRUST_POLICY.max + 1);
    let e = iam.create_role().role_name("emulator-2").assume_role_policy_document(&over).send().await;
    assert_eq!(refused(&e.expect_err("over")), "LimitExceeded Cannot exceed quota for ACLSizePerRole: 2048");
    let e = iam.update_assume_role_policy().role_name("emulator").policy_document(&over).send().await;
    assert_eq!(refused(&e.expect_err("over")), "LimitExceeded Cannot exceed quota for ACLSizePerRole: 2048");
    assert!(iam.get_role().role_name("emulator-2").send().await.is_err(), "nothing was made");
    let long = "r".repeat(IAM_ROLE_NAME.max + 1);
    let e = iam.create_role().role_name(&long).assume_role_policy_document(&trust).send().await.expect_err("long");
    assert!(refused(&e).starts_with("ValidationError") && refused(&e).contains("length less than or equal to 64"));
    let long = "p".repeat(IAM_INSTANCE_PROFILE_NAME.max + 1);
    let e = iam.create_instance_profile().instance_profile_name(long).send().await.expect_err("long");
    assert!(refused(&e).contains("length less than or equal to 128"), "{}", refused(&e));

    // Inline policies count together: two halves fill the limit, one character more is refused.
    let half = IAM_ROLE_INLINE_POLICIES.max / 2;
    for name in ["a", "b"] {
        let r = iam.put_role_policy().role_name("emulator").policy_name(name).policy_document(policy_of_size(half));
        r.send().await.expect("within the limit together");
    }
    let r = iam.put_role_policy().role_name("emulator").policy_name("c").policy_document(policy_of_size(150));
    assert_eq!(
        refused(&r.send().await.expect_err("over, together")),
        "LimitExceeded Maximum policy size of 10240 bytes exceeded for role emulator"
    );
    // Rewriting one in place counts the new document instead of the old.
    let r = iam.put_role_policy().role_name("emulator").policy_name("a").policy_document(policy_of_size(half - 10));
    r.send().await.expect("a smaller rewrite");

    // A managed policy at the limit is taken, and a version of it; one character more is not.
    let r = iam.create_policy().policy_name("emulator").policy_document(policy_of_size(IAM_MANAGED_POLICY.max));
    let arn = r.send().await.expect("at the limit").policy().and_then(|p| p.arn()).expect("arn").to_owned();
    let over = policy_of_size(IAM_MANAGED_POLICY.max + 1);
    let e = iam.create_policy().policy_name("emulator-2").policy_document(&over).send().await.expect_err("over");
    assert_eq!(refused(&e), "LimitExceeded Cannot exceed quota for PolicySize: 6144");
    let e = iam.create_policy_version().policy_arn(&arn).policy_document(&over).send().await.expect_err("over");
    assert_eq!(refused(&e), "LimitExceeded Cannot exceed quota for PolicySize: 6144");
    let long = "n".repeat(IAM_POLICY_NAME.max + 1);
    let e = iam.create_policy().policy_name(long).policy_document(policy_of_size(200)).send().await;
    assert!(refused(&e.expect_err("long")).contains("length less than or equal to 128"));

    // Ten managed policies a role; the eleventh is refused, attaching one it has again is not.
    let mut arns = vec![arn];
    for i in 1..=IAM_ROLE_MANAGED_POLICIES.max {
        let r = iam.create_policy().policy_name(format!("emulator-{i}")).policy_document(policy_of_size(200));
        arns.push(r.send().await.expect("policy").policy().and_then(|p| p.arn()).expect("arn").to_owned());
    }
    for arn in &arns[..IAM_ROLE_MANAGED_POLICIES.max] {
        iam.attach_role_policy().role_name("emulator").policy_arn(arn).send().await.expect("within the quota");
    }
    iam.attach_role_policy().role_name("emulator").policy_arn(&arns[0]).send().await.expect("attached already");
    let e =
        iam.attach_role_policy().role_name("emulator").policy_arn(&arns[IAM_ROLE_MANAGED_POLICIES.max]).send().await;
    assert_eq!(refused(&e.expect_err("the eleventh")), "LimitExceeded Cannot exceed quota for PoliciesPerRole: 10");
}

#[tokio::test]
async fn the_deploy_roles_permissions_in_one_inline_policy_are_refused_as_aws_refuses_them() {
    // What ci-role wrote before (every statement in one inline policy) is over IAM's limit: AWS
    // refused it with LimitExceeded, and so does the emulator now.
    let account = Account::new();
    account.json(&["ci-role", "--github-repo", "octo-org/konnichiwa", "--yes"], 0);
    let c = account.clients().await;
    let all = crate::common::role_policy(&c, "konnichiwa-deploy").await;
    assert!(stack::limits::policy_size(&all) > stack::limits::IAM_ROLE_INLINE_POLICIES.max);
    let r =
        c.iam.put_role_policy().role_name("konnichiwa-deploy").policy_name("deploy").policy_document(all.to_string());
    let e = r.send().await.expect_err("over the inline limit");
    assert_eq!(e.code(), Some("LimitExceeded"), "{e:?}");
    assert_eq!(e.message(), Some("Maximum policy size of 10240 bytes exceeded for role konnichiwa-deploy"));
}

#[tokio::test]
async fn values_over_awss_size_and_count_limits_are_refused_as_aws_refuses_them() {
    use stack::limits::{ALARM_ACTIONS, ALARM_NAME, RUN_TASK_OVERRIDES, SECRET_VALUE, SSM_STANDARD_PARAMETER_VALUE};
    let account = Account::new();
    let c = account.clients().await;
    let said = |e: &dyn aws_sdk_iam::error::ProvideErrorMetadata| {
        format!("{} {}", e.code().unwrap_or("(no code)"), e.message().unwrap_or_default())
    };

    // SSM: a Standard parameter's value at 4096 characters is taken, one more is not.
    let put = |value: String| c.ssm.put_parameter().name("/emulator/p").value(value).overwrite(true).send();
    put("v".repeat(SSM_STANDARD_PARAMETER_VALUE.max)).await.expect("at the limit");
    let e = put("v".repeat(SSM_STANDARD_PARAMETER_VALUE.max + 1)).await.expect_err("over");
    assert!(
        said(&e).starts_with("ValidationException Standard tier parameters support a maximum parameter value of 4096")
    );

    // Secrets Manager: 65536 bytes of value, not one more (the value itself never echoed).
    let secret =
        |value: String| c.secrets.create_secret().name(format!("emulator-{}", value.len())).secret_string(value).send();
    secret("k".repeat(SECRET_VALUE.max)).await.expect("at the limit");
    let e = secret("k".repeat(SECRET_VALUE.max + 1)).await.expect_err("over");
    assert!(said(&e).starts_with("ValidationException") && said(&e).contains("65536"), "{}", said(&e));
    assert!(!said(&e).contains("kkkk"), "the value is not echoed");

    // CloudWatch: names of 255 characters and five actions a state.
    let alarm = |name: String, actions: usize| {
        let topics = (0..actions).map(|i| format!("arn:aws:sns:ap-northeast-1:{}:t{i}", account.id)).collect();
        c.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .metric_name("m")
            .namespace("n")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
            .set_alarm_actions(Some(topics))
            .send()
    };
    alarm("a".repeat(ALARM_NAME.max), ALARM_ACTIONS.max).await.expect("at both limits");
    let e = alarm("a".repeat(ALARM_NAME.max + 1), 1).await.expect_err("name over");
    assert!(said(&e).starts_with("ValidationError") && said(&e).contains("alarmName"), "{}", said(&e));
    let e = alarm("b".into(), ALARM_ACTIONS.max + 1).await.expect_err("actions over");
    assert!(said(&e).contains("alarmActions") && said(&e).contains("less than or equal to 5"), "{}", said(&e));

    // CloudWatch composite alarms, which moto did not serve; DescribeAlarms lists them only when
    // AlarmTypes names them, and metric alarms only when it names them or is absent.
    use aws_sdk_cloudwatch::types::AlarmType;
    alarm("b".into(), 1).await.expect("the metric alarm the rule names");
    c.cloudwatch
        .put_composite_alarm()
        .alarm_name("emulator-composite")
        .alarm_rule(r#"ALARM("b")"#)
        .send()
        .await
        .expect("PutCompositeAlarm");
    let names = || Some(vec!["emulator-composite".to_owned(), "b".to_owned()]);
    let plain = c.cloudwatch.describe_alarms().set_alarm_names(names()).send().await.expect("describe");
    assert_eq!((plain.metric_alarms().len(), plain.composite_alarms().len()), (1, 0), "{plain:?}");
    let composite = c.cloudwatch.describe_alarms().set_alarm_names(names()).alarm_types(AlarmType::CompositeAlarm);
    let composite = composite.send().await.expect("describe composite");
    assert_eq!((composite.metric_alarms().len(), composite.composite_alarms().len()), (0, 1));
    assert_eq!(composite.composite_alarms()[0].alarm_rule(), Some(r#"ALARM("b")"#));
    // A rule naming an alarm that does not exist is refused; a child goes only after its composite.
    let e = c.cloudwatch.put_composite_alarm().alarm_name("orphan").alarm_rule(r#"ALARM("none.such")"#).send().await;
    assert!(said(&e.expect_err("refused")).contains("in the alarm rule do not exist"));
    let e = c.cloudwatch.delete_alarms().alarm_names("b").send().await.expect_err("b is a child");
    assert!(said(&e).contains("composite alarm(s) depending on it"), "{}", said(&e));
    c.cloudwatch.delete_alarms().alarm_names("emulator-composite").send().await.expect("the composite first");
    c.cloudwatch.delete_alarms().alarm_names("b").send().await.expect("then its child");

    // CloudWatch's extended statistics: PutMetricAlarm takes only the forms its API reference
    // lists (PR(n:m) among them); GetMetricData's percentile rank PR(n:m) is the percentage of the
    // period's values above n and at most m ("Statistics definitions", Percentile rank).
    let ranked = |stat: &str| {
        c.cloudwatch
            .put_metric_alarm()
            .alarm_name("emulator-rank")
            .metric_name("TargetResponseTime")
            .namespace("AWS/ApplicationELB")
            .extended_statistic(stat)
            .period(3600)
            .evaluation_periods(1)
            .threshold(99.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
            .send()
    };
    ranked("PR(:0.3)").await.expect("a percentile rank");
    for malformed in ["PR(0.3)", "PR(:)", "p", "p150", "tm"] {
        let e = ranked(malformed).await.expect_err(malformed);
        assert!(
            said(&e).starts_with("InvalidParameterValue") && said(&e).contains("ExtendedStatistic"),
            "{}",
            said(&e)
        );
    }
    let stored = c.cloudwatch.describe_alarms().alarm_names("emulator-rank").send().await.expect("describe");
    assert_eq!(stored.metric_alarms()[0].extended_statistic(), Some("PR(:0.3)"), "stored as given");
    let at = aws_smithy_types::DateTime::from(std::time::SystemTime::now() - std::time::Duration::from_secs(300));
    let times = aws_sdk_cloudwatch::types::MetricDatum::builder().metric_name("emulator-rt").timestamp(at);
    for v in [0.1, 0.2, 0.3, 0.31, 2.0] {
        let datum = times.clone().value(v).build();
        c.cloudwatch.put_metric_data().namespace("emulator").metric_data(datum).send().await.expect("datum");
    }
    let rank = |id: &str, stat: &str| {
        let metric = aws_sdk_cloudwatch::types::Metric::builder().namespace("emulator").metric_name("emulator-rt");
        let stat = aws_sdk_cloudwatch::types::MetricStat::builder().metric(metric.build()).period(3600).stat(stat);
        aws_sdk_cloudwatch::types::MetricDataQuery::builder().id(id).metric_stat(stat.build()).build()
    };
    let now = std::time::SystemTime::now();
    let out = c
        .cloudwatch
        .get_metric_data()
        .metric_data_queries(rank("within", "PR(:0.3)"))
        .metric_data_queries(rank("between", "PR(0.1:0.31)"))
        .start_time(aws_smithy_types::DateTime::from(now - std::time::Duration::from_secs(3600)))
        .end_time(aws_smithy_types::DateTime::from(now))
        .send()
        .await
        .expect("GetMetricData");
    let value = |id: &str| out.metric_data_results().iter().find(|r| r.id() == Some(id)).map(|r| r.values().to_vec());
    assert_eq!(value("within"), Some(vec![60.0]), "0.1, 0.2 and 0.3 of five");
    assert_eq!(value("between"), Some(vec![60.0]), "0.2, 0.3 and 0.31: the lower bound excluded");

    // ECS: a task definition over 64 KiB, and RunTask overrides over 8192 characters.
    let td = |value_len: usize| {
        let env = aws_sdk_ecs::types::KeyValuePair::builder().name("BLOB").value("x".repeat(value_len)).build();
        c.ecs
            .register_task_definition()
            .family("emulator")
            .container_definitions(
                ContainerDefinition::builder().name("c").image("i").memory(128).environment(env).build(),
            )
            .send()
    };
    td(60_000).await.expect("under 64 KiB");
    let e = td(70_000).await.expect_err("over 64 KiB");
    assert!(
        said(&e).starts_with("ClientException Actual length:")
            && said(&e).contains("Max allowed length is '65536' bytes")
    );
    c.ecs.create_cluster().cluster_name("emulator").send().await.expect("cluster");
    let run = |len: usize| {
        let command = vec!["x".repeat(len)];
        let o = aws_sdk_ecs::types::ContainerOverride::builder().name("c").set_command(Some(command)).build();
        c.ecs
            .run_task()
            .cluster("emulator")
            .task_definition("emulator")
            .overrides(aws_sdk_ecs::types::TaskOverride::builder().container_overrides(o).build())
            .send()
    };
    let e = run(RUN_TASK_OVERRIDES.max).await.expect_err("over 8192 with its JSON");
    assert_eq!(said(&e), "InvalidParameterException Container Overrides length must be at most 8192");

    // Names: a load balancer's 32 characters, an ECR repository's 256.
    let (_, subnets) = network(&c).await;
    let lb = |name: String| c.elb.create_load_balancer().name(name).set_subnets(Some(subnets.clone())).send();
    let e = lb("l".repeat(stack::limits::LOAD_BALANCER_NAME.max + 1)).await.expect_err("long");
    assert!(said(&e).starts_with("ValidationError") && said(&e).contains("cannot be longer than '32'"), "{}", said(&e));
    lb("l".repeat(stack::limits::LOAD_BALANCER_NAME.max)).await.expect("at the limit");
    let repo = |len: usize| c.ecr.create_repository().repository_name("r".repeat(len)).send();
    let e = repo(stack::limits::ECR_REPOSITORY_NAME.max + 1).await.expect_err("long");
    assert!(said(&e).starts_with("InvalidParameterException") && said(&e).contains("256"), "{}", said(&e));
    repo(stack::limits::ECR_REPOSITORY_NAME.max).await.expect("at the limit");

    // A launch template's user data: 16 KB before base64.
    use base64::Engine;
    let template = |name: &str, size: usize| {
        let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
            .user_data(base64::engine::general_purpose::STANDARD.encode(vec![b'#'; size]))
            .build();
        c.ec2.create_launch_template().launch_template_name(name).launch_template_data(data).send()
    };
    template("at-the-limit", stack::limits::LAUNCH_TEMPLATE_USER_DATA.max).await.expect("at the limit");
    let e = template("over", stack::limits::LAUNCH_TEMPLATE_USER_DATA.max + 1).await.expect_err("over");
    assert_eq!(said(&e), "InvalidUserData.Malformed User data is limited to 16384 bytes");
}

#[tokio::test]
async fn an_environment_of_the_whole_budget_validation_allows_registers_on_the_emulator() {
    // Validation leaves the environment ENVIRONMENT_BUDGET bytes of the task definition's 64 KiB:
    // the rest must hold everything else the provisioner puts in it.
    let account = Account::new();
    let value = "x".repeat(stack::limits::ENVIRONMENT_BUDGET - 60);
    account.edit_stack(|t| t.replace("environment: { LOG_LEVEL: info }", &format!("environment: {{ BLOB: {value} }}")));
    let up = account.json(&["up", "--yes"], 0);
    assert!(crate::common::mutations(&up).iter().any(|m| m == "ECS:RegisterTaskDefinition"), "{up:#}");
}

#[tokio::test]
async fn an_api_key_secrets_manager_would_refuse_stops_the_plan_without_being_shown() {
    let account = Account::new();
    let key = "k".repeat(stack::limits::SECRET_VALUE.max + 1);
    let out = account.run_with(&["plan"], &[("API_KEY", key.as_str())]);
    let said = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("API_KEY is 65537 bytes") && said.contains("at most 65536 bytes"), "{said}");
    assert!(!said.contains("kkkkkkkk"), "the key is never shown");
}

// ECS blue/green, canary and linear service deployments (issue 42): moto 5.2 keeps no
// deployment strategy and has no service-deployment APIs; scripts/moto_aws.py models them, with
// a test clock (`POST /moto-api/ecs/clock`) standing in for bake times and hook timeouts.

/// A load balancer with a production and a test listener rule, both forwarding to `blue`, and a
/// second target group `green` for ECS to shift traffic to; a cluster with `web:1`..`web:3`.
struct BlueGreen {
    blue: String,
    green: String,
    production_rule: String,
    test_rule: String,
}

async fn blue_green(c: &provisioner::aws::Clients) -> BlueGreen {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ForwardActionConfig, RuleCondition, TargetGroupTuple, TargetTypeEnum,
    };
    let (vpc, subnets) = network(c).await;
    let lb = c.elb.create_load_balancer().name("bg").set_subnets(Some(subnets)).send().await.expect("load balancer");
    let lb = lb.load_balancers()[0].load_balancer_arn().expect("lb arn").to_owned();
    let mut groups = Vec::new();
    for name in ["bg-blue", "bg-green"] {
        let tg = c
            .elb
            .create_target_group()
            .name(name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .expect("target group");
        groups.push(tg.target_groups()[0].target_group_arn().expect("tg arn").to_owned());
    }
    let forward_to_blue = || {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(TargetGroupTuple::builder().target_group_arn(&groups[0]).weight(100).build())
                    .target_groups(TargetGroupTuple::builder().target_group_arn(&groups[1]).weight(0).build())
                    .build(),
            )
            .build()
    };
    let mut rules = Vec::new();
    for (port, priority) in [(80, 10), (8080, 20)] {
        let listener = c
            .elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(port)
            .default_actions(forward_to_blue())
            .send()
            .await
            .expect("listener");
        let listener = listener.listeners()[0].listener_arn().expect("listener arn").to_owned();
        let rule = c
            .elb
            .create_rule()
            .listener_arn(listener)
            .priority(priority)
            .conditions(RuleCondition::builder().field("path-pattern").values("/*").build())
            .actions(forward_to_blue())
            .send()
            .await
            .expect("rule");
        rules.push(rule.rules()[0].rule_arn().expect("rule arn").to_owned());
    }
    c.ecs.create_cluster().cluster_name("bg").send().await.expect("cluster");
    for image in ["one", "two", "three"] {
        c.ecs
            .register_task_definition()
            .family("web")
            .container_definitions(ContainerDefinition::builder().name("w").image(image).memory(512).build())
            .send()
            .await
            .expect("task definition");
    }
    let [blue, green] = <[String; 2]>::try_from(groups).expect("two groups");
    let [production_rule, test_rule] = <[String; 2]>::try_from(rules).expect("two rules");
    BlueGreen { blue, green, production_rule, test_rule }
}

impl BlueGreen {
    fn load_balancer(&self) -> LoadBalancer {
        LoadBalancer::builder()
            .target_group_arn(&self.blue)
            .container_name("w")
            .container_port(80)
            .advanced_configuration(
                AdvancedConfiguration::builder()
                    .alternate_target_group_arn(&self.green)
                    .production_listener_rule(&self.production_rule)
                    .test_listener_rule(&self.test_rule)
                    .role_arn("arn:aws:iam::123456789012:role/ecs-infrastructure-for-load-balancers")
                    .build(),
            )
            .build()
    }

    async fn create_service(
        &self,
        c: &provisioner::aws::Clients,
        config: DeploymentConfiguration,
    ) -> Result<aws_sdk_ecs::types::Service, String> {
        let created = c
            .ecs
            .create_service()
            .cluster("bg")
            .service_name("web")
            .task_definition("web:1")
            .desired_count(2)
            .load_balancers(self.load_balancer())
            .deployment_configuration(config)
            .send()
            .await
            .map_err(|e| format!("{}: {}", code(&e), e.message().unwrap_or_default()))?;
        Ok(created.service().expect("service").clone())
    }

    /// The production rule's weights as (blue, green).
    async fn production(&self, c: &provisioner::aws::Clients) -> (i32, i32) {
        self.weights(c, &self.production_rule).await
    }

    async fn test(&self, c: &provisioner::aws::Clients) -> (i32, i32) {
        self.weights(c, &self.test_rule).await
    }

    async fn weights(&self, c: &provisioner::aws::Clients, rule: &str) -> (i32, i32) {
        let rules = c.elb.describe_rules().rule_arns(rule).send().await.expect("describe rules");
        let forward = rules.rules()[0].actions().iter().find_map(|a| a.forward_config()).expect("a forward action");
        let weight = |arn: &str| {
            forward.target_groups().iter().find(|t| t.target_group_arn() == Some(arn)).and_then(|t| t.weight())
        };
        (weight(&self.blue).unwrap_or(0), weight(&self.green).unwrap_or(0))
    }
}

async fn update_to(c: &provisioner::aws::Clients, task_definition: &str) {
    c.ecs.update_service().cluster("bg").service("web").task_definition(task_definition).send().await.expect("update");
}

/// The service's newest service deployment, as DescribeServiceDeployments tells it.
async fn latest_deployment(c: &provisioner::aws::Clients) -> ServiceDeployment {
    let list = c.ecs.list_service_deployments().cluster("bg").service("web").send().await.expect("list");
    let arn = list.service_deployments()[0].service_deployment_arn().expect("arn").to_owned();
    let described = c.ecs.describe_service_deployments().service_deployment_arns(arn).send().await.expect("describe");
    described.service_deployments()[0].clone()
}

/// The service's newest deployment's status.
async fn latest_status(c: &provisioner::aws::Clients) -> String {
    latest_deployment(c).await.status().map(|s| s.as_str().to_owned()).unwrap_or_default()
}

fn stage(d: &ServiceDeployment) -> (&str, &str) {
    (d.status().map(|s| s.as_str()).unwrap_or("-"), d.lifecycle_stage().map(|s| s.as_str()).unwrap_or("-"))
}

async fn service_task_definition(c: &provisioner::aws::Clients) -> String {
    let s = c.ecs.describe_services().cluster("bg").services("web").send().await.expect("describe services");
    s.services()[0].task_definition().expect("task definition").rsplit('/').next().expect("name").to_owned()
}

/// Takes the service's newest deployment to its end as an operator would: continues each PAUSE
/// hook it waits at and moves the test clock through its bake times.
async fn finish_latest_deployment(c: &provisioner::aws::Clients, account: &Account) {
    for _ in 0..100 {
        let d = latest_deployment(c).await;
        match d.status().map(|s| s.as_str()) {
            Some("SUCCESSFUL") => return,
            Some("PENDING" | "IN_PROGRESS") => {}
            other => panic!("the deployment ended {other:?}: {d:?}"),
        }
        match d.lifecycle_hook_details().iter().find(|h| h.status().map(|s| s.as_str()) == Some("AWAITING_ACTION")) {
            Some(hook) => {
                c.ecs
                    .continue_service_deployment()
                    .service_deployment_arn(d.service_deployment_arn().expect("arn"))
                    .hook_id(hook.hook_id().expect("hook id"))
                    .send()
                    .await
                    .expect("continue");
            }
            None => crate::common::advance_ecs_clock(account, 1).await,
        }
    }
    panic!("the deployment did not end within 100 test minutes");
}

fn pause_after_test_traffic(timeout_minutes: i32) -> DeploymentLifecycleHook {
    DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
        .timeout_configuration(
            DeploymentLifecycleHookTimeoutConfiguration::builder()
                .timeout_in_minutes(timeout_minutes)
                .action(DeploymentLifecycleHookAction::Rollback)
                .build(),
        )
        .build()
}

fn canary(percent: f64, bake: i32) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::Canary)
        .canary_configuration(
            CanaryConfiguration::builder().canary_percent(percent).canary_bake_time_in_minutes(bake).build(),
        )
        .bake_time_in_minutes(3)
        .lifecycle_hooks(pause_after_test_traffic(30))
        .build()
}

// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html,
// API_CanaryConfiguration.html, API_LinearConfiguration.html, API_AdvancedConfiguration.html:
// the strategy and its settings are kept and read back; out-of-range values, a blue/green
// strategy without its bake time, settings of another strategy and a load balancer without
// advancedConfiguration are InvalidParameterException.
#[tokio::test]
async fn a_services_deployment_strategy_is_kept_and_checked_as_ecs_documents_it() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;

    let refused = |config: DeploymentConfiguration| {
        let bg = &bg;
        let c = &c;
        async move { bg.create_service(c, config).await.expect_err("ECS refuses this configuration") }
    };
    let linear = |step: f64, bake: i32| {
        DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::Linear)
            .linear_configuration(
                LinearConfiguration::builder().step_percent(step).step_bake_time_in_minutes(bake).build(),
            )
            .build()
    };
    for (config, says) in [
        (canary(0.05, 5), "canaryPercent"),
        (canary(100.1, 5), "canaryPercent"),
        (canary(10.0, 1441), "canaryBakeTimeInMinutes"),
        (linear(2.9, 1), "stepPercent"),
        (linear(10.0, -1), "stepBakeTimeInMinutes"),
        (DeploymentConfiguration::builder().strategy(DeploymentStrategy::BlueGreen).build(), "bakeTimeInMinutes"),
        (
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::BlueGreen)
                .bake_time_in_minutes(1441)
                .build(),
            "bakeTimeInMinutes",
        ),
        (
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::Linear)
                .canary_configuration(CanaryConfiguration::builder().canary_percent(5.0).build())
                .build(),
            "canaryConfiguration",
        ),
    ] {
        let e = refused(config).await;
        assert!(e.starts_with("InvalidParameterException") && e.contains(says), "{says}: {e}");
    }
    // API_DeploymentLifecycleHook.html, lifecycleStages: "PAUSE hooks cannot be configured at
    // TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT stages. These stages are only valid for
    // AWS_LAMBDA hooks."
    for stage in [DeploymentLifecycleHookStage::TestTrafficShift, DeploymentLifecycleHookStage::ProductionTrafficShift]
    {
        let pause = DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::Pause)
            .lifecycle_stages(DeploymentLifecycleHookStage::PostScaleUp)
            .lifecycle_stages(stage.clone())
            .build();
        let config = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .bake_time_in_minutes(5)
            .lifecycle_hooks(pause)
            .build();
        let e = refused(config).await;
        assert!(e.starts_with("InvalidParameterException") && e.contains(stage.as_str()), "{stage:?}: {e}");
    }
    // A canary service whose load balancer has no advancedConfiguration.
    let plain = c
        .ecs
        .create_service()
        .cluster("bg")
        .service_name("plain")
        .task_definition("web:1")
        .load_balancers(
            LoadBalancer::builder().target_group_arn(&bg.blue).container_name("w").container_port(80).build(),
        )
        .deployment_configuration(canary(10.0, 5))
        .send()
        .await
        .expect_err("a canary needs the alternate target group and listener rule");
    assert_eq!(code(&plain), "InvalidParameterException");
    assert!(plain.message().unwrap_or_default().contains("advancedConfiguration"), "{plain:?}");

    bg.create_service(&c, canary(10.0, 5)).await.expect("a valid canary service");
    let read = c.ecs.describe_services().cluster("bg").services("web").send().await.expect("describe services");
    let service = &read.services()[0];
    let config = service.deployment_configuration().expect("deploymentConfiguration read back");
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::Canary));
    assert_eq!(config.canary_configuration().and_then(|c| c.canary_percent()), Some(10.0));
    assert_eq!(config.canary_configuration().and_then(|c| c.canary_bake_time_in_minutes()), Some(5));
    assert_eq!(config.bake_time_in_minutes(), Some(3));
    let hook = &config.lifecycle_hooks()[0];
    assert_eq!(hook.target_type(), Some(&DeploymentLifecycleHookTargetType::Pause));
    assert_eq!(hook.lifecycle_stages(), [DeploymentLifecycleHookStage::PostTestTrafficShift]);
    let advanced = service.load_balancers()[0].advanced_configuration().expect("advancedConfiguration read back");
    assert_eq!(advanced.alternate_target_group_arn(), Some(bg.green.as_str()));
    assert_eq!(advanced.production_listener_rule(), Some(bg.production_rule.as_str()));
    assert_eq!(advanced.test_listener_rule(), Some(bg.test_rule.as_str()));

    // UpdateService keeps a new configuration too.
    c.ecs
        .update_service()
        .cluster("bg")
        .service("web")
        .deployment_configuration(linear(20.0, 4))
        .send()
        .await
        .expect("update to linear");
    let read = c.ecs.describe_services().cluster("bg").services("web").send().await.expect("describe services");
    let config = read.services()[0].deployment_configuration().expect("deploymentConfiguration");
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::Linear));
    assert_eq!(config.linear_configuration().and_then(|l| l.step_percent()), Some(20.0));
    let e = c
        .ecs
        .update_service()
        .cluster("bg")
        .service("web")
        .deployment_configuration(linear(101.0, 4))
        .send()
        .await
        .expect_err("stepPercent over 100");
    assert_eq!(code(&e), "InvalidParameterException");
}

// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/canary-deployment.html and
// API_ServiceDeployment.html (lifecycleStage), API_ContinueServiceDeployment.html: a new task
// definition starts a service deployment; test traffic moves to the new revision, a PAUSE hook at
// POST_TEST_TRAFFIC_SHIFT holds it until ContinueServiceDeployment(CONTINUE); then the canary
// slice, its bake time, all production traffic, the bake time and clean-up.
#[tokio::test]
async fn a_canary_pauses_at_its_hook_then_shifts_its_slice_then_everything() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    bg.create_service(&c, canary(10.0, 5)).await.expect("canary service");
    finish_latest_deployment(&c, &account).await;
    update_to(&c, "web:2").await;

    let list = c.ecs.list_service_deployments().cluster("bg").service("web").send().await.expect("list");
    assert_eq!(list.service_deployments().len(), 2, "the first deployment and this one");
    let d = latest_deployment(&c).await;
    assert_eq!(stage(&d), ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT"));
    let hook = &d.lifecycle_hook_details()[0];
    assert_eq!(hook.status().map(|s| s.as_str()), Some("AWAITING_ACTION"));
    assert_eq!((bg.production(&c).await, bg.test(&c).await), ((100, 0), (0, 100)), "only test traffic on green");
    let source = d.source_service_revisions()[0].arn().expect("source revision").to_owned();
    assert_eq!(service_task_definition(&c).await, "web:2");

    let arn = d.service_deployment_arn().expect("arn");
    let wrong = c.ecs.continue_service_deployment().service_deployment_arn(arn).hook_id("nope").send().await;
    assert_eq!(code(&wrong.expect_err("an unknown hook")), "InvalidParameterException");
    c.ecs
        .continue_service_deployment()
        .service_deployment_arn(arn)
        .hook_id(hook.hook_id().expect("hook id"))
        .action(DeploymentLifecycleHookAction::Continue)
        .send()
        .await
        .expect("continue");
    let d = latest_deployment(&c).await;
    assert_eq!(stage(&d), ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT"));
    assert_eq!(bg.production(&c).await, (90, 10), "the canary slice");
    assert_eq!(d.target_service_revision().and_then(|r| r.requested_production_traffic_weight()), Some(10.0));

    crate::common::advance_ecs_clock(&account, 4).await;
    assert_eq!(bg.production(&c).await, (90, 10), "the canary bakes 5 minutes");
    crate::common::advance_ecs_clock(&account, 1).await;
    assert_eq!(stage(&latest_deployment(&c).await), ("IN_PROGRESS", "BAKE_TIME"));
    assert_eq!(bg.production(&c).await, (0, 100));
    crate::common::advance_ecs_clock(&account, 3).await;
    let d = latest_deployment(&c).await;
    assert_eq!(d.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
    assert!(d.finished_at().is_some());
    assert_eq!(d.source_service_revisions()[0].arn(), Some(source.as_str()));
    assert_eq!(d.source_service_revisions()[0].running_task_count(), 0, "the old revision is scaled in");

    // The next deployment shifts the other way: green is now production.
    update_to(&c, "web:3").await;
    assert_eq!((bg.production(&c).await, bg.test(&c).await), ((0, 100), (100, 0)));
}

// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html
// and API_ServiceDeployment.html (status): ROLLBACK at a paused hook rolls back to the previous
// service revision through ROLLBACK_REQUESTED and ROLLBACK_IN_PROGRESS (traffic back on blue) to
// ROLLBACK_SUCCESSFUL (the service on its old task definition); the model holds each status one
// test minute.
#[tokio::test]
async fn rolling_back_at_a_paused_hook_puts_traffic_and_the_service_back_on_the_source_revision() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    bg.create_service(&c, canary(10.0, 5)).await.expect("canary service");
    finish_latest_deployment(&c, &account).await;
    update_to(&c, "web:2").await;
    let d = latest_deployment(&c).await;
    let source = d.source_service_revisions()[0].arn().expect("source").to_owned();
    c.ecs
        .continue_service_deployment()
        .service_deployment_arn(d.service_deployment_arn().expect("arn"))
        .hook_id(d.lifecycle_hook_details()[0].hook_id().expect("hook id"))
        .action(DeploymentLifecycleHookAction::Rollback)
        .send()
        .await
        .expect("roll back");
    let d = latest_deployment(&c).await;
    assert_eq!(d.status().map(|s| s.as_str()), Some("ROLLBACK_REQUESTED"));
    assert_eq!(d.rollback().and_then(|r| r.service_revision_arn()), Some(source.as_str()));
    crate::common::advance_ecs_clock(&account, 1).await;
    assert_eq!(latest_status(&c).await, "ROLLBACK_IN_PROGRESS");
    assert_eq!((bg.production(&c).await, bg.test(&c).await), ((100, 0), (100, 0)));
    assert_eq!(service_task_definition(&c).await, "web:2", "the service goes back when the rollback ends");
    crate::common::advance_ecs_clock(&account, 1).await;
    assert_eq!(latest_status(&c).await, "ROLLBACK_SUCCESSFUL");
    assert_eq!(service_task_definition(&c).await, "web:1");
}

// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookTimeoutConfiguration.html:
// a hook nobody answers takes its timeout action (here ROLLBACK) once timeoutInMinutes pass.
#[tokio::test]
async fn an_unanswered_pause_hook_takes_its_timeout_action_when_the_clock_passes_it() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    bg.create_service(&c, canary(10.0, 5)).await.expect("canary service");
    finish_latest_deployment(&c, &account).await;
    update_to(&c, "web:2").await;
    crate::common::advance_ecs_clock(&account, 29).await;
    assert_eq!(stage(&latest_deployment(&c).await), ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT"));
    crate::common::advance_ecs_clock(&account, 1).await;
    let d = latest_deployment(&c).await;
    assert_eq!(d.status().map(|s| s.as_str()), Some("ROLLBACK_REQUESTED"));
    assert_eq!(d.lifecycle_hook_details()[0].status().map(|s| s.as_str()), Some("TIMED_OUT"));
    crate::common::advance_ecs_clock(&account, 2).await;
    assert_eq!(latest_status(&c).await, "ROLLBACK_SUCCESSFUL");
    assert_eq!(bg.production(&c).await, (100, 0));
    assert_eq!(service_task_definition(&c).await, "web:1");
}

// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/linear-deployment.html,
// API_LinearConfiguration.html ("not applied after reaching 100 percent") and
// API_StopServiceDeployment.html (ROLLBACK; "The valid values are ROLLBACK"): production
// traffic moves in equal steps a step bake time apart. StopServiceDeployment (developer guide,
// stop-service-deployment.html): IN_PROGRESS "moves to the ROLLBACK_REQUESTED state, and then the
// rollback operation starts"; stopped again while it rolls back, it "continues the rollback
// operation"; a finished deployment cannot be stopped.
#[tokio::test]
async fn a_linear_deployment_steps_and_stop_service_deployment_rolls_it_back() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    let linear = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::Linear)
        .linear_configuration(LinearConfiguration::builder().step_percent(40.0).step_bake_time_in_minutes(2).build())
        .build();
    bg.create_service(&c, linear).await.expect("linear service");
    finish_latest_deployment(&c, &account).await;
    update_to(&c, "web:2").await;
    assert_eq!(bg.production(&c).await, (60, 40));
    crate::common::advance_ecs_clock(&account, 2).await;
    assert_eq!(bg.production(&c).await, (20, 80));
    let d = latest_deployment(&c).await;
    let arn = d.service_deployment_arn().expect("arn");
    let abort = c
        .ecs
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Abort)
        .send()
        .await;
    assert_eq!(code(&abort.expect_err("only ROLLBACK is documented")), "InvalidParameterException");
    c.ecs
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .expect("stop with rollback");
    assert_eq!(latest_status(&c).await, "ROLLBACK_REQUESTED");
    for status in ["ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"] {
        assert_eq!(latest_status(&c).await, status);
        c.ecs.stop_service_deployment().service_deployment_arn(arn).send().await.expect("stopping it again goes on");
        crate::common::advance_ecs_clock(&account, 1).await;
    }
    assert_eq!(latest_status(&c).await, "ROLLBACK_SUCCESSFUL");
    assert_eq!(bg.production(&c).await, (100, 0));
    assert_eq!(service_task_definition(&c).await, "web:1");
    let again = c.ecs.stop_service_deployment().service_deployment_arn(arn).send().await;
    assert_eq!(code(&again.expect_err("already rolled back")), "ConflictException");
    let missing = c.ecs.describe_service_deployments().service_deployment_arns(format!("{arn}x")).send().await;
    assert_eq!(missing.expect("describe").failures()[0].reason(), Some("MISSING"));

    // Left alone, the steps reach 100 with no bake after the last one.
    update_to(&c, "web:3").await;
    crate::common::advance_ecs_clock(&account, 4).await;
    assert_eq!(bg.production(&c).await, (0, 100));
    assert_eq!(latest_deployment(&c).await.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
}

// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html:
// blue/green moves all production traffic at once, then both revisions run for the bake time.
#[tokio::test]
async fn a_blue_green_deployment_shifts_everything_then_bakes() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    let config =
        DeploymentConfiguration::builder().strategy(DeploymentStrategy::BlueGreen).bake_time_in_minutes(10).build();
    bg.create_service(&c, config).await.expect("blue/green service");
    finish_latest_deployment(&c, &account).await;
    update_to(&c, "web:2").await;
    let d = latest_deployment(&c).await;
    assert_eq!(stage(&d), ("IN_PROGRESS", "BAKE_TIME"));
    assert_eq!(bg.production(&c).await, (0, 100));
    assert_eq!(d.source_service_revisions()[0].running_task_count(), 2, "blue keeps running through the bake");
    crate::common::advance_ecs_clock(&account, 10).await;
    assert_eq!(latest_deployment(&c).await.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
}

// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html and
// API_Service.html: what CreateService was given (enableExecuteCommand, false when not sent,
// healthCheckGracePeriodSeconds, capacityProviderStrategy, the circuit breaker, alarms and
// percents) is what DescribeServices answers right after, as after an UpdateService; the
// provisioner compares each, so a field kept by one call and not the other is a phantom drift.
#[tokio::test]
async fn a_created_service_reads_back_what_it_was_created_with() {
    use aws_sdk_ecs::types::{CapacityProviderStrategyItem, DeploymentAlarms, DeploymentCircuitBreaker};
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    let config = DeploymentConfiguration::builder()
        .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(true).rollback(true).build())
        .alarms(DeploymentAlarms::builder().alarm_names("slo").enable(true).rollback(true).build().expect("alarms"))
        .minimum_healthy_percent(50)
        .maximum_percent(150)
        .build();
    let create = |name: &'static str, exec: Option<bool>| {
        let (c, config) = (&c, config.clone());
        let lb = LoadBalancer::builder().target_group_arn(&bg.blue).container_name("w").container_port(80).build();
        async move {
            c.ecs
                .create_service()
                .cluster("bg")
                .service_name(name)
                .task_definition("web:1")
                .desired_count(1)
                .load_balancers(lb)
                .capacity_provider_strategy(
                    CapacityProviderStrategyItem::builder().capacity_provider("cp").weight(1).build().expect("item"),
                )
                .health_check_grace_period_seconds(45)
                .set_enable_execute_command(exec)
                .deployment_configuration(config)
                .send()
                .await
                .expect("create service");
        }
    };
    create("with-exec", Some(true)).await;
    create("without-exec", None).await;
    let read = c
        .ecs
        .describe_services()
        .cluster("bg")
        .services("with-exec")
        .services("without-exec")
        .send()
        .await
        .expect("describe services");
    let [with, without] = read.services() else { panic!("two services: {read:?}") };
    assert!(with.enable_execute_command(), "enableExecuteCommand kept");
    assert!(!without.enable_execute_command(), "false when not sent");
    assert_eq!(with.health_check_grace_period_seconds(), Some(45));
    assert_eq!(with.capacity_provider_strategy()[0].capacity_provider(), "cp");
    assert!(with.task_definition().is_some_and(|t| t.starts_with("arn:aws:ecs:")), "{:?}", with.task_definition());
    let dc = with.deployment_configuration().expect("deploymentConfiguration");
    let breaker = dc.deployment_circuit_breaker().expect("circuit breaker");
    assert_eq!((breaker.enable(), breaker.rollback()), (true, true));
    assert_eq!(dc.alarms().map(|a| a.alarm_names().to_vec()), Some(vec!["slo".to_owned()]));
    assert_eq!((dc.minimum_healthy_percent(), dc.maximum_percent()), (Some(50), Some(150)));
}

// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html
// (lifecycleStage) and API_DeploymentLifecycleHook.html: a hook may pause at
// PRE_PRODUCTION_TRAFFIC_SHIFT, but a service deployment reports only the documented stages
// (PRE_PRODUCTION_TRAFFIC_SHIFT is not one; the SDK would read it as Unknown). The model reports
// PRODUCTION_TRAFFIC_SHIFT there, before any production traffic moves (which one AWS reports is
// unverified).
#[tokio::test]
async fn a_pause_before_the_production_shift_reports_a_documented_stage() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    let pause = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::PreProductionTrafficShift)
        .build();
    let config = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::BlueGreen)
        .bake_time_in_minutes(5)
        .lifecycle_hooks(pause)
        .build();
    bg.create_service(&c, config).await.expect("blue/green service");
    finish_latest_deployment(&c, &account).await;
    update_to(&c, "web:2").await;
    let d = latest_deployment(&c).await;
    assert_eq!(d.lifecycle_stage(), Some(&ServiceDeploymentLifecycleStage::ProductionTrafficShift));
    assert_eq!(d.lifecycle_hook_details()[0].status().map(|s| s.as_str()), Some("AWAITING_ACTION"));
    assert_eq!(bg.production(&c).await, (100, 0), "paused before production traffic moves");
}

// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html and
// Terraform's TestAccECSService_BlueGreenDeployment_createFailure (hashicorp/terraform-provider-aws,
// "No rollback candidate was found"): a service's first deployment under a blue/green family
// strategy walks its lifecycle stages and runs its hooks too; rolled back, it has no earlier
// revision to go back to and ends ROLLBACK_FAILED. A rolling first deployment is done at once.
#[tokio::test]
async fn a_first_deployment_runs_its_hooks_and_cannot_roll_back() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    bg.create_service(&c, canary(10.0, 5)).await.expect("canary service");
    let d = latest_deployment(&c).await;
    assert_eq!(stage(&d), ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT"));
    assert!(d.source_service_revisions().is_empty(), "no earlier revision: {d:?}");
    let hook = &d.lifecycle_hook_details()[0];
    assert_eq!(hook.status().map(|s| s.as_str()), Some("AWAITING_ACTION"));
    assert_eq!(bg.production(&c).await, (100, 0), "the first revision is served from targetGroupArn");
    c.ecs
        .continue_service_deployment()
        .service_deployment_arn(d.service_deployment_arn().expect("arn"))
        .hook_id(hook.hook_id().expect("hook id"))
        .action(DeploymentLifecycleHookAction::Rollback)
        .send()
        .await
        .expect("roll back");
    assert_eq!(latest_status(&c).await, "ROLLBACK_REQUESTED");
    crate::common::advance_ecs_clock(&account, 2).await;
    let d = latest_deployment(&c).await;
    assert_eq!(d.status().map(|s| s.as_str()), Some("ROLLBACK_FAILED"));
    assert!(d.status_reason().is_some_and(|r| r.contains("No rollback candidate")), "{d:?}");
    assert_eq!(service_task_definition(&c).await, "web:1");

    let rolling = c
        .ecs
        .create_service()
        .cluster("bg")
        .service_name("rolling")
        .task_definition("web:1")
        .send()
        .await
        .expect("rolling service");
    let arn = rolling.service().and_then(|s| s.service_arn()).expect("service arn");
    let list = c.ecs.list_service_deployments().cluster("bg").service(arn).send().await.expect("list");
    assert_eq!(list.service_deployments()[0].status().map(|s| s.as_str()), Some("SUCCESSFUL"));
}

// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html (UpdateService
// with a new revision or forceNewDeployment creates a service deployment; STOPPED is a completed
// state) and API_ServiceDeployment.html (RECONCILE_SERVICE "only happens when you start a new
// service deployment with more than 1 service revision in an ACTIVE state"): a new task definition
// or forceNewDeployment while a deployment is in flight is accepted; the old deployment ends
// STOPPED and the new one replaces both revisions it left, starting at RECONCILE_SERVICE with
// traffic back on the production revision. Never two deployments in progress at once.
#[tokio::test]
async fn a_new_revision_or_forced_deployment_mid_flight_supersedes_the_deployment_in_flight() {
    let account = Account::new();
    let c = account.clients().await;
    let bg = blue_green(&c).await;
    let reconcile_pause = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::ReconcileService)
        .build();
    let mut config = canary(10.0, 5);
    config.lifecycle_hooks.get_or_insert_with(Vec::new).push(reconcile_pause);
    bg.create_service(&c, config).await.expect("canary service");
    finish_latest_deployment(&c, &account).await;
    let production_revision =
        latest_deployment(&c).await.target_service_revision().and_then(|r| r.arn()).map(str::to_owned);

    update_to(&c, "web:2").await;
    let d = latest_deployment(&c).await;
    let hook = d.lifecycle_hook_details()[0].hook_id().expect("hook id");
    c.ecs
        .continue_service_deployment()
        .service_deployment_arn(d.service_deployment_arn().expect("arn"))
        .hook_id(hook)
        .send()
        .await
        .expect("continue");
    assert_eq!(bg.production(&c).await, (90, 10), "the canary slice on web:2");
    let superseded = latest_deployment(&c).await;
    let web2_revision = superseded.target_service_revision().and_then(|r| r.arn()).map(str::to_owned);

    update_to(&c, "web:3").await;
    let old = c
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(superseded.service_deployment_arn().expect("arn"))
        .send()
        .await
        .expect("describe");
    assert_eq!(old.service_deployments()[0].status().map(|s| s.as_str()), Some("STOPPED"));
    assert!(old.service_deployments()[0].finished_at().is_some());
    let d = latest_deployment(&c).await;
    assert_eq!(stage(&d), ("IN_PROGRESS", "RECONCILE_SERVICE"));
    let sources: Vec<_> = d.source_service_revisions().iter().map(|r| r.arn().map(str::to_owned)).collect();
    assert_eq!(sources, [production_revision, web2_revision], "the production revision first, then the superseded one");
    assert_eq!(bg.production(&c).await, (100, 0), "traffic back on the production revision");
    assert_eq!(service_task_definition(&c).await, "web:3");

    // forceNewDeployment mid-flight: the same.
    c.ecs
        .update_service()
        .cluster("bg")
        .service("web")
        .force_new_deployment(true)
        .send()
        .await
        .expect("force a new deployment");
    let list = c.ecs.list_service_deployments().cluster("bg").service("web").send().await.expect("list");
    let statuses: Vec<_> =
        list.service_deployments().iter().filter_map(|d| d.status().map(|s| s.as_str().to_owned())).collect();
    assert_eq!(statuses, ["IN_PROGRESS", "STOPPED", "STOPPED", "SUCCESSFUL"], "newest first");
    assert_eq!(stage(&latest_deployment(&c).await), ("IN_PROGRESS", "RECONCILE_SERVICE"));
    finish_latest_deployment(&c, &account).await;
    assert_eq!(bg.production(&c).await, (0, 100));
    assert!(latest_deployment(&c).await.source_service_revisions().iter().all(|r| r.running_task_count() == 0));
}
