//! What real AWS does and moto does not, replayed through the fault proxy with AWS's actual error
//! codes and messages: each rule of the provisioner that exists because of it has a case here
//! that fails without the rule.
//! - "not yet": EC2 `*.NotFound` right after a create, ELB and Auto Scaling not seeing the new
//!   network, a new group not listed, a cluster provisioning or busy, IAM and ECS propagation —
//!   retried;
//! - lost answers of each create — adopted, or the duplicate repaired, never two of ours;
//! - a genuine permission error — reported at once, not waited on;
//! - `down`'s waits: capacity provider in use, cluster still holding services, tasks draining,
//!   and a capacity provider that AWS fails to delete.

use crate::common;

use crate::common::census;
use crate::common::faults::{Faults, Proxy, Script};
use crate::common::{Account, moto_url};

const KEY: &str = "behaviour-test-key-0123456789abcd";

/// `up` with `scripts` in front of moto must converge to a clean stack, answering each script's
/// `times` calls with it and then calling its operation again.
async fn up_converges_despite(scripts: Vec<Script>) {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let ops: Vec<(String, usize)> = scripts.iter().map(|s| (s.operation.clone(), s.times)).collect();
    for script in scripts {
        proxy.script(script);
    }
    let out = account.run_at(&proxy.url, &["up", "--yes", "--json"], &[("API_KEY", KEY)]).await;
    let label: Vec<&str> = ops.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(out.status.code(), Some(0), "with {label:?} scripted: {}", common::text(&out));
    for (op, times) in &ops {
        let stats = proxy.stats().get(op).cloned().unwrap_or_default();
        assert_eq!(stats.scripted, *times, "{op}: the scripted answers were given");
        assert!(stats.forwarded >= 1, "{op}: called again after AWS's answer: {stats:?}");
    }
    let census = census::take(&account.clients().await, "konnichiwa").await;
    assert_eq!(census, census::clean(), "with {label:?} scripted: exactly a clean run's resources");
}

/// Runs the cases as four `up`s at once, each with a share of the scripts (never two for one
/// operation in the same run): a case that the provisioner does not handle fails its run, named
/// by the operations scripted in it. Four runs instead of one per case: each full `up` costs the
/// emulator's CPU, which the whole suite shares.
async fn all(cases: Vec<Script>) {
    let mut groups: Vec<Vec<Script>> = vec![Vec::new(); 4];
    for case in cases {
        match groups.iter_mut().filter(|g| g.iter().all(|s| s.operation != case.operation)).min_by_key(|g| g.len()) {
            Some(g) => g.push(case),
            None => groups.push(vec![case]),
        }
    }
    let mut runs = tokio::task::JoinSet::new();
    for group in groups.into_iter().filter(|g| !g.is_empty()) {
        runs.spawn(up_converges_despite(group));
    }
    while let Some(done) = runs.join_next().await {
        done.expect("case");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_usable_yet_is_waited_for() {
    let rtb = "The routeTable ID 'rtb-0a1b2c3d4e5f60718' does not exist";
    all(vec![
        // ELB's test write to a log bucket whose policy was put a moment ago.
        Script::error(
            "ModifyLoadBalancerAttributes",
            1,
            "InvalidConfigurationRequest",
            "Access Denied for bucket: konnichiwa-alb-logs-123456789012-ap-northeast-1. Please check S3bucket permission",
        ),
        // ECS: the service-linked role AWSServiceRoleForECS, created just before, propagating.
        Script::error(
            "CreateCluster",
            2,
            "InvalidParameterException",
            "Unable to assume the service linked role. Please verify that the ECS service linked role exists.",
        ),
        Script::error(
            "CreateCapacityProvider",
            1,
            "InvalidParameterException",
            "Unable to assume the service linked role. Please verify that the ECS service linked role exists.",
        ),
        Script::error(
            "CreateService",
            1,
            "InvalidParameterException",
            "The target group with targetGroupArn arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/konnichiwa-tg/0a1b2c3d4e5f6071 does not have an associated load balancer.",
        ),
        Script::error(
            "CreateService",
            1,
            "InvalidParameterException",
            "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions.",
        ),
        Script::error("RegisterTaskDefinition", 1, "ClientException", "Role is not valid"),
        Script::error(
            "RegisterScalableTarget",
            1,
            "ValidationException",
            "ECS service doesn't exist: service/konnichiwa/konnichiwa",
        ),
        Script::error(
            "RegisterScalableTarget",
            1,
            "ValidationException",
            "Unable to assume IAM role: arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
        ),
        Script::error(
            "PutScalingPolicy",
            1,
            "ObjectNotFoundException",
            "No scalable target registered for service namespace: ecs, resource ID: service/konnichiwa/konnichiwa, scalable dimension: ecs:service:DesiredCount",
        ),
        Script::error(
            "CreateAutoScalingGroup",
            1,
            "ValidationError",
            "You must use a valid fully-formed launch template. Value (konnichiwa-instance) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
        ),
        // ELB and Auto Scaling: the network EC2 made a moment ago, not visible to them yet.
        Script::error("CreateLoadBalancer", 1, "SubnetNotFound", "The subnet ID 'subnet-0a1b2c3d4e5f60718' is not valid"),
        Script::error(
            "CreateLoadBalancer",
            1,
            "InvalidSecurityGroup",
            "Security group 'sg-0a1b2c3d4e5f60718' does not exist",
        ),
        Script::error("CreateTargetGroup", 1, "ValidationError", "The VPC ID 'vpc-0a1b2c3d4e5f60718' is not found"),
        Script::error(
            "CreateAutoScalingGroup",
            1,
            "ValidationError",
            "The subnet ID 'subnet-0a1b2c3d4e5f60718' does not exist",
        ),
        // Auto Scaling: the group just created is not listed yet (the capacity provider needs its ARN).
        Script::body(
            "DescribeAutoScalingGroups",
            1,
            "<DescribeAutoScalingGroupsResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>",
        )
        .once_called("CreateAutoScalingGroup"),
        // ECS: the cluster still provisioning, or changing, when its providers are set.
        Script::body(
            "DescribeClusters",
            1,
            r#"{"clusters":[{"clusterName":"konnichiwa","status":"PROVISIONING"}],"failures":[]}"#,
        )
        .once_called("CreateCluster"),
        Script::error("PutClusterCapacityProviders", 1, "ClientException", "Cluster was not ACTIVE"),
        Script::error(
            "PutClusterCapacityProviders",
            1,
            "UpdateInProgressException",
            "The specified cluster is in a busy state. Cluster attachments must be in UPDATE_COMPLETE or UPDATE_FAILED state before they can be updated. Wait and try the request again.",
        ),
        Script::error(
            "PutClusterCapacityProviders",
            1,
            "ResourceInUseException",
            "The specified capacity provider is in use and cannot be removed.",
        ),
        // IAM: a boundary, role or profile created a moment ago, not yet known to the next call.
        Script::error(
            "CreateRole",
            1,
            "NoSuchEntity",
            "Scope ARN: arn:aws:iam::123456789012:policy/konnichiwa-boundary does not exist or is not attachable.",
        ),
        Script::error("AddRoleToInstanceProfile", 1, "NoSuchEntity", "The role with name konnichiwa-instance cannot be found."),
        // EC2: what was created a moment ago is not visible yet.
        Script::error("ModifyVpcAttribute", 1, "InvalidVpcID.NotFound", "The vpc ID 'vpc-0a1b2c3d4e5f60718' does not exist"),
        Script::error(
            "ModifySubnetAttribute",
            1,
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-0a1b2c3d4e5f60718' does not exist",
        ),
        Script::error(
            "AttachInternetGateway",
            1,
            "InvalidInternetGatewayID.NotFound",
            "The internetGateway ID 'igw-0a1b2c3d4e5f60718' does not exist",
        ),
        Script::error("CreateRoute", 1, "InvalidRouteTableID.NotFound", rtb),
        Script::error("AssociateRouteTable", 1, "InvalidRouteTableID.NotFound", rtb),
        Script::error(
            "AuthorizeSecurityGroupIngress",
            1,
            "InvalidGroup.NotFound",
            "The security group 'sg-0a1b2c3d4e5f60718' does not exist",
        ),
        // S3: a bucket still being created, and one created a moment ago that S3 does not know yet.
        Script::error(
            "CreateBucket",
            1,
            "OperationAborted",
            "A conflicting conditional operation is currently in progress against this resource. Please try again.",
        ),
        Script::error("PutPublicAccessBlock", 2, "NoSuchBucket", "The specified bucket does not exist"),
        Script::error("PutBucketPolicy", 1, "NoSuchBucket", "The specified bucket does not exist"),
        // Secrets Manager: the same name deleted with --purge moments ago.
        Script::error(
            "CreateSecret",
            1,
            "InvalidRequestException",
            "You can't create this secret because a secret with this name is already scheduled for deletion.",
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_adopted_or_its_duplicate_repaired() {
    all([
        "PutParameter", // the lease itself
        "CreateVpc",
        "CreateSubnet",
        "CreateInternetGateway",
        "AttachInternetGateway",
        "CreateRouteTable",
        "CreateRoute",
        "AssociateRouteTable",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "CreateRepository",
        "CreateLogGroup",
        "CreateSecret",
        "PutResourcePolicy",
        "CreateBucket",
        "PutBucketPolicy",
        "CreateCluster",
        "CreateTargetGroup",
        "CreateLoadBalancer",
        "CreateListener",
        "CreateRole",
        "PutRolePolicy",
        "CreateInstanceProfile",
        "AddRoleToInstanceProfile",
        "CreateLaunchTemplate",
        "CreateAutoScalingGroup",
        "CreateCapacityProvider",
        "PutClusterCapacityProviders",
        "RegisterTaskDefinition",
        "CreateService",
        "RegisterScalableTarget",
        "PutScalingPolicy",
    ]
    .into_iter()
    .map(|op| Script::lose_answer(op, 1))
    .collect())
    .await;
}

/// A quota (how many secrets, certificates, log groups the account may have) is not a rate
/// limit: retrying cannot clear it, so it is reported at once, named, with where to raise it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_error_fails_at_once_naming_the_quota() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    proxy.script(Script::error(
        "CreateSecret",
        50,
        "LimitExceededException",
        "The request failed because it would exceed one of the Secrets Manager quotas.",
    ));
    let started = std::time::Instant::now();
    let out = account.run_at(&proxy.url, &["up", "--yes"], &[("API_KEY", KEY)]).await;
    let said = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("Secrets Manager quotas") && said.contains("Service Quotas") && said.contains("not retried"),
        "{said}"
    );
    assert_eq!(proxy.stats()["CreateSecret"].seen, 1, "a quota is not retried");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_pass_role_denial_is_reported_at_once() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    proxy.script(Script::error(
        "CreateAutoScalingGroup",
        50,
        "AccessDenied",
        "User: arn:aws:sts::123456789012:assumed-role/konnichiwa-deploy/ci is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/konnichiwa-instance",
    ));
    let started = std::time::Instant::now();
    let out = account.run_at(&proxy.url, &["up", "--yes"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out).contains("not authorized to perform: iam:PassRole"), "{}", common::text(&out));
    assert_eq!(proxy.stats()["CreateAutoScalingGroup"].seen, 1, "not retried");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_waits_for_what_is_still_settling() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    account.json_at(&proxy.url, &["up", "--yes"], &[], 0).await;
    let task = r#"{"taskArns":["arn:aws:ecs:ap-northeast-1:123456789012:task/konnichiwa/0a1b2c3d4e5f60718"]}"#;
    // The service's tasks take two looks to drain (the service's own listing: the load test's
    // workers are listed at the same time); the provider is still in use once; the cluster still
    // holds the service, then is updating.
    proxy.script(Script::body("ListTasks", 2, task).only_if("serviceName"));
    proxy.script(Script::error(
        "PutClusterCapacityProviders",
        1,
        "ResourceInUseException",
        "The specified capacity provider is in use and cannot be removed.",
    ));
    proxy.script(Script::error(
        "DeleteCapacityProvider",
        1,
        "UpdateInProgressException",
        "The specified capacity provider is currently being updated. Wait for the update to complete and try again.",
    ));
    proxy.script(Script::error(
        "DeleteCluster",
        1,
        "ClusterContainsServicesException",
        "The Cluster cannot be deleted while Services are active.",
    ));
    proxy.script(Script::error(
        "DeleteCluster",
        1,
        "UpdateInProgressException",
        "The cluster is being updated. Wait for the update to complete and try again.",
    ));
    proxy.reset_stats();
    let down = account.json_at(&proxy.url, &["down", "--yes", "--purge"], &[], 0).await;
    assert_eq!(down["leftovers"], serde_json::json!([]));
    let stats = proxy.stats();
    assert!(stats["ListTasks"].seen >= 3, "waited for the tasks: {:?}", stats["ListTasks"]);
    for op in ["PutClusterCapacityProviders", "DeleteCapacityProvider"] {
        assert_eq!(stats[op].forwarded, 1, "{op} retried after AWS's answer");
    }
    assert_eq!(stats["DeleteCluster"].seen, 3);
    let order = common::mutations(&down);
    let pos = |op: &str| order.iter().position(|m| m == op).unwrap_or_else(|| panic!("{op} not in {order:?}"));
    assert!(pos("ECS:DeleteService") < pos("ECS:PutClusterCapacityProviders"), "{order:?}");
    assert!(census::leftovers(&census::take(&account.clients().await, "konnichiwa").await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_provider_aws_fails_to_delete_is_reported_with_its_reason() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    account.json_at(&proxy.url, &["up", "--yes"], &[], 0).await;
    let failed = serde_json::json!({ "capacityProviders": [{
        "capacityProviderArn": "arn:aws:ecs:ap-northeast-1:123456789012:capacity-provider/konnichiwa-capacity",
        "name": "konnichiwa-capacity",
        "status": "ACTIVE",
        "updateStatus": "DELETE_FAILED",
        "updateStatusReason": "The Auto Scaling group konnichiwa-instances still has instances protected from scale in.",
        "tags": [{ "key": "konnichiwa:stack", "value": "konnichiwa" }]
    }]});
    // down's plan and apply each observe the provider once; the third look follows the delete.
    proxy.script(Script::body("DescribeCapacityProviders", 1, &failed.to_string()).after(2));
    let out = account.run_at(&proxy.url, &["down", "--yes"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::text(&out).contains("could not delete capacity provider konnichiwa-capacity: The Auto Scaling group"),
        "{}",
        common::text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_purge_waits_until_aws_has_removed_the_secret_so_up_can_follow_at_once() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    account.json_at(&proxy.url, &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    let still_there = serde_json::json!({
        "ARN": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:konnichiwa/api-key-AbCdEf",
        "Name": "konnichiwa/api-key",
        "DeletedDate": 1.8e9,
        "Tags": [{ "Key": "konnichiwa:stack", "Value": "konnichiwa" }]
    });
    // down's plan describes the secret once (its apply is given that answer: `read_replay`); after
    // the delete AWS lists it twice more.
    proxy.script(Script::body("DescribeSecret", 2, &still_there.to_string()).after(1));
    proxy.reset_stats();
    account.json_at(&proxy.url, &["down", "--yes", "--purge"], &[], 0).await;
    assert!(proxy.stats()["DescribeSecret"].seen >= 4, "{:?}", proxy.stats()["DescribeSecret"]);
    let up = account.json_at(&proxy.url, &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    assert!(common::mutations(&up).iter().any(|m| m == "Secrets Manager:CreateSecret"));
}
