//! What an attacker holding the deploy role's credentials (a malicious commit on main, a
//! compromised action in the deploy job) could make of them, played against exactly the policy
//! `ci-role` renders and the permissions boundary it writes:
//! - the playbook: every known path to a permission outside the stack's own resources, each
//!   refused by the policy, or — where the API call itself is the role's job (writing the task
//!   role's policy) — contained by the boundary;
//! - every statement of the policy and of the boundary can match on AWS (the Service
//!   Authorization Reference's resource types and condition keys, `common::authorization`);
//! - parliament, an AWS policy linter we did not write, finds nothing that is not explained here.
//!
//! moto's IAM enforcement refuses the same paths where it can (the actions the role lacks):
//! deploy_role.rs's `with_exactly_the_declared_actions_*`.

use std::path::Path;

use serde_json::Value;

use crate::common::Account;
use crate::common::authorization::Reference;
use crate::common::policy::{Request, allows, allows_each, allows_within};

const REPO: &str = "octo-org/konnichiwa";

/// The deploy role's policy and the stack's boundary, as `ci-role` wrote them.
async fn rendered(account: &Account) -> (Value, Value) {
    account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    let c = account.clients().await;
    let policy = crate::common::role_policy(&c, "konnichiwa-deploy").await;
    let arn = format!("arn:aws:iam::{}:policy/konnichiwa-boundary", account.id);
    let got = c.iam.get_policy().policy_arn(&arn).send().await.expect("boundary");
    let version = got.policy().and_then(|p| p.default_version_id()).expect("version").to_owned();
    let v = c.iam.get_policy_version().policy_arn(&arn).version_id(version).send().await.expect("version");
    let boundary =
        provisioner::resources::iam::decode_policy(v.policy_version().and_then(|v| v.document()).expect("doc"));
    (policy, boundary)
}

/// One step an attack needs: (action, resource, condition context).
type Step<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);

#[tokio::test]
async fn every_path_to_more_than_the_stack_is_refused_or_contained() {
    let account = Account::new();
    let (policy, boundary) = rendered(&account).await;
    let a = account.id.clone();
    let r = "ap-northeast-1";
    let here = ("aws:RequestedRegion", r);
    let arn = |service: &str, resource: &str| format!("arn:aws:{service}:{r}:{a}:{resource}");
    let role = |name: &str| format!("arn:aws:iam::{a}:role/{name}");
    let boundary_arn = format!("arn:aws:iam::{a}:policy/konnichiwa-boundary");
    let deploy_policy = |group: &str| format!("arn:aws:iam::{a}:policy/konnichiwa-deploy-{group}");
    let (account_wide, identity) = (deploy_policy("account-wide"), deploy_policy("identity"));
    let bounded = ("iam:PermissionsBoundary", boundary_arn.as_str());
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    let our_family = arn("ecs", "task-definition/konnichiwa:7");
    let their_family = arn("ecs", "task-definition/konnichiwa-prod:3");
    let ours_tag = ("aws:RequestTag/konnichiwa:stack", "konnichiwa");
    let theirs_tag = ("aws:RequestTag/konnichiwa:stack", "konnichiwa-prod");
    let their_resource = ("aws:ResourceTag/konnichiwa:stack", "konnichiwa-prod");
    let our_cluster = arn("ecs", "cluster/konnichiwa");
    let group = arn(
        "autoscaling",
        "autoScalingGroup:0a1b2c3d-0000-4000-8000-000000000000:autoScalingGroupName/konnichiwa-instances",
    );
    let (our_provider, their_provider) =
        (arn("ecs", "capacity-provider/konnichiwa-capacity"), arn("ecs", "capacity-provider/konnichiwa-prod-capacity"));
    let their_cluster = arn("ecs", "cluster/konnichiwa-prod");
    let our_template = arn("ec2", "launch-template/lt-1");

    // (what the attacker is after, the steps it needs): refused when any step is.
    let playbook: Vec<(&str, Vec<Step>)> = vec![
        (
            "1. take the boundary off the task role",
            vec![("iam:DeleteRolePermissionsBoundary", role("konnichiwa-task"), vec![bounded])],
        ),
        (
            "1. swap the boundary for AdministratorAccess",
            vec![("iam:PutRolePermissionsBoundary", role("konnichiwa-task"), vec![("iam:PermissionsBoundary", admin)])],
        ),
        ("1. rewrite the boundary", vec![("iam:CreatePolicyVersion", boundary_arn.clone(), vec![])]),
        (
            "1. make an old boundary version the default",
            vec![("iam:SetDefaultPolicyVersion", boundary_arn.clone(), vec![])],
        ),
        ("1. delete the boundary", vec![("iam:DeletePolicy", boundary_arn.clone(), vec![])]),
        ("1. make an unbounded role", vec![("iam:CreateRole", role("konnichiwa-helper"), vec![])]),
        (
            "1. make a role under the boundary, trusting another account",
            vec![("iam:CreateRole", role("konnichiwa-helper"), vec![bounded])],
        ),
        (
            "1. trust another account with the execution role (the API key)",
            vec![("iam:UpdateAssumeRolePolicy", role("konnichiwa-execution"), vec![])],
        ),
        (
            "1. replace the execution role with one trusting another account",
            vec![("iam:DeleteRole", role("konnichiwa-execution"), vec![])],
        ),
        (
            "1. attach AdministratorAccess to the instance role",
            vec![("iam:AttachRolePolicy", role("konnichiwa-instance"), vec![bounded, ("iam:PolicyARN", admin)])],
        ),
        (
            "1. write the policy of a role outside the boundary",
            vec![("iam:PutRolePolicy", role("konnichiwa-task"), vec![])],
        ),
        ("1. give the deploy role more", vec![("iam:PutRolePolicy", role("konnichiwa-deploy"), vec![])]),
        (
            "1. rewrite one of the deploy role's own policies",
            vec![("iam:CreatePolicyVersion", deploy_policy("network"), vec![])],
        ),
        (
            "1. make an old version of a deploy policy the default",
            vec![("iam:SetDefaultPolicyVersion", deploy_policy("account-wide"), vec![])],
        ),
        (
            "1. shed the denials: detach the deploy role's account-wide policy",
            vec![("iam:DetachRolePolicy", role("konnichiwa-deploy"), vec![("iam:PolicyARN", account_wide.as_str())])],
        ),
        ("1. delete a deploy policy", vec![("iam:DeletePolicy", deploy_policy("account-wide"), vec![])]),
        (
            "1. attach a deploy policy to the task role",
            vec![(
                "iam:AttachRolePolicy",
                role("konnichiwa-task"),
                vec![bounded, ("iam:PolicyARN", identity.as_str())],
            )],
        ),
        (
            "1. attach AdministratorAccess to the deploy role",
            vec![("iam:AttachRolePolicy", role("konnichiwa-deploy"), vec![("iam:PolicyARN", admin)])],
        ),
        (
            "1. put an administrator role in the instance profile",
            vec![(
                "iam:AddRoleToInstanceProfile",
                format!("arn:aws:iam::{a}:instance-profile/konnichiwa-instance"),
                vec![],
            )],
        ),
        (
            "1. pass an administrator role to a task",
            vec![(
                "iam:PassRole",
                role("OrganizationAccountAccessRole"),
                vec![("iam:PassedToService", "ecs-tasks.amazonaws.com")],
            )],
        ),
        (
            "1. make a user with keys",
            vec![
                ("iam:CreateUser", format!("arn:aws:iam::{a}:user/backdoor"), vec![]),
                ("iam:CreateAccessKey", format!("arn:aws:iam::{a}:user/backdoor"), vec![]),
            ],
        ),
        (
            "1. assume another role of the account",
            vec![("sts:AssumeRole", role("OrganizationAccountAccessRole"), vec![])],
        ),
        (
            "2. run the service on another stack's revision (its roles)",
            vec![(
                "ecs:UpdateService",
                arn("ecs", "service/konnichiwa/konnichiwa"),
                vec![here, ("ecs:task-definition", their_family.as_str())],
            )],
        ),
        (
            "2. create the service in another cluster",
            vec![(
                "ecs:CreateService",
                arn("ecs", "service/konnichiwa-prod/konnichiwa"),
                vec![here, ("ecs:task-definition", our_family.as_str())],
            )],
        ),
        (
            "3. launch into another VPC's subnet",
            vec![("ec2:RunInstances", arn("ec2", "subnet/subnet-9"), vec![here, their_resource])],
        ),
        (
            "3. launch with another security group",
            vec![("ec2:RunInstances", arn("ec2", "security-group/sg-9"), vec![here, their_resource])],
        ),
        (
            "3. launch from another launch template",
            vec![("ec2:RunInstances", arn("ec2", "launch-template/lt-9"), vec![here, their_resource])],
        ),
        (
            "3. launch someone's image",
            vec![(
                "ec2:RunInstances",
                format!("arn:aws:ec2:{r}::image/ami-9"),
                vec![here, ("ec2:Owner", "999988887777")],
            )],
        ),
        ("3. launch without a launch template", vec![("ec2:RunInstances", arn("ec2", "instance/*"), vec![here])]),
        (
            "3. write a launch template version into another stack's template",
            vec![("ec2:CreateLaunchTemplateVersion", arn("ec2", "launch-template/lt-9"), vec![here, their_resource])],
        ),
        (
            "4. run the load test's family in another cluster",
            vec![(
                "ecs:RunTask",
                arn("ecs", "task-definition/konnichiwa-loadtest:1"),
                vec![here, ("ecs:cluster", their_cluster.as_str())],
            )],
        ),
        (
            "4. run the service's family as a one-off task",
            vec![("ecs:RunTask", our_family.clone(), vec![here, ("ecs:cluster", our_cluster.as_str())])],
        ),
        (
            "4. register another stack's family",
            vec![("ecs:RegisterTaskDefinition", their_family.clone(), vec![here, ours_tag])],
        ),
        (
            "4. register a revision tagged as another stack's",
            vec![("ecs:RegisterTaskDefinition", our_family.clone(), vec![here, theirs_tag])],
        ),
        (
            "4. tag a task as another stack's at its start",
            vec![(
                "ecs:TagResource",
                arn("ecs", "task/konnichiwa/1"),
                vec![here, ("ecs:CreateAction", "RunTask"), theirs_tag],
            )],
        ),
        (
            "5. plant our tag on another stack's scalable target",
            vec![(
                "application-autoscaling:TagResource",
                arn("application-autoscaling", "scalable-target/9"),
                vec![here, ours_tag, their_resource],
            )],
        ),
        (
            "5. plant our tag on another stack's certificate",
            vec![("acm:AddTagsToCertificate", arn("acm", "certificate/9"), vec![here, ours_tag, their_resource])],
        ),
        (
            "5. re-tag our VPC as another stack's",
            vec![(
                "ec2:CreateTags",
                arn("ec2", "vpc/vpc-1"),
                vec![here, ("aws:ResourceTag/konnichiwa:stack", "konnichiwa"), theirs_tag],
            )],
        ),
        (
            "5. delete another stack's certificate",
            vec![("acm:DeleteCertificate", arn("acm", "certificate/9"), vec![here, their_resource])],
        ),
        (
            "read the API key from outside: a secret under another account's key",
            vec![(
                "secretsmanager:CreateSecret",
                arn("secretsmanager", "secret:konnichiwa/api-key-AbCdEf"),
                vec![here, ours_tag, ("secretsmanager:KmsKeyArn", "arn:aws:kms:ap-northeast-1:999988887777:key/1")],
            )],
        ),
        (
            "read the API key from outside: a public resource policy",
            vec![(
                "secretsmanager:PutResourcePolicy",
                arn("secretsmanager", "secret:konnichiwa/api-key-AbCdEf"),
                vec![here, ("secretsmanager:BlockPublicPolicy", "false")],
            )],
        ),
        (
            "read another stack's API key",
            vec![(
                "secretsmanager:GetSecretValue",
                arn("secretsmanager", "secret:konnichiwa-prod/api-key-AbCdEf"),
                vec![here],
            )],
        ),
        (
            "40-1. move the Auto Scaling group to $Latest, then write a version with another instance profile",
            vec![
                (
                    "autoscaling:UpdateAutoScalingGroup",
                    group.clone(),
                    vec![here, ("autoscaling:LaunchTemplateVersionSpecified", "false")],
                ),
                (
                    "ec2:CreateLaunchTemplateVersion",
                    arn("ec2", "launch-template/lt-0123"),
                    vec![here, ("aws:ResourceTag/konnichiwa:stack", "konnichiwa")],
                ),
            ],
        ),
        (
            "40-1. create a group of the stack's name on $Default",
            vec![(
                "autoscaling:CreateAutoScalingGroup",
                group.clone(),
                vec![here, ("autoscaling:LaunchTemplateVersionSpecified", "false")],
            )],
        ),
        (
            "40-1. move the group to $Latest through an instance refresh's desired configuration",
            vec![("autoscaling:StartInstanceRefresh", group.clone(), vec![here])],
        ),
        (
            "40. move the service onto Fargate in another VPC's subnets",
            vec![(
                "ecs:CreateService",
                arn("ecs", "service/konnichiwa/konnichiwa"),
                vec![here, ("ecs:task-definition", our_family.as_str()), ("ecs:subnet", "subnet-0production")],
            )],
        ),
        (
            "40. put the service on another capacity provider",
            vec![(
                "ecs:UpdateService",
                arn("ecs", "service/konnichiwa/konnichiwa"),
                vec![here, ("ecs:capacity-provider", their_provider.as_str())],
            )],
        ),
        (
            "40. a target-tracking alarm that publishes to another account's topic",
            vec![(
                "cloudwatch:PutMetricAlarm",
                arn("cloudwatch", "alarm:TargetTracking-service/konnichiwa/konnichiwa-AlarmHigh-1"),
                vec![here, ("cloudwatch:AlarmActions", "arn:aws:sns:ap-northeast-1:999988887777:exfiltrate")],
            )],
        ),
        (
            "40. name the stack's capacity provider and another's: the service may land on either",
            vec![(
                "ecs:CreateService",
                arn("ecs", "service/konnichiwa/konnichiwa"),
                vec![
                    here,
                    ("ecs:task-definition", our_family.as_str()),
                    ("ecs:capacity-provider", our_provider.as_str()),
                    ("ecs:capacity-provider", their_provider.as_str()),
                ],
            )],
        ),
        (
            "40. delete the cluster and create it again with another stack's capacity provider",
            vec![(
                "ecs:CreateCluster",
                our_cluster.clone(),
                vec![here, ("ecs:capacity-provider", their_provider.as_str())],
            )],
        ),
        (
            "40. raise the group's maximum past stack.yaml's and spend the account's vCPU quota",
            vec![(
                "autoscaling:UpdateAutoScalingGroup",
                group.clone(),
                vec![here, ("autoscaling:LaunchTemplateVersionSpecified", "true"), ("autoscaling:MaxSize", "500")],
            )],
        ),
        (
            "40. launch the group's instances into another team's capacity reservation",
            vec![(
                "autoscaling:UpdateAutoScalingGroup",
                group.clone(),
                vec![here, ("autoscaling:CapacityReservationIds", "cr-0production")],
            )],
        ),
        (
            "40-1. put the group on a launch configuration (no version check at all)",
            vec![(
                "autoscaling:UpdateAutoScalingGroup",
                group.clone(),
                vec![here, ("autoscaling:LaunchConfigurationName", "admin-profile-lc")],
            )],
        ),
        (
            "41ccd5f. run the stack's template as a far larger instance type (the account's vCPU quota)",
            vec![(
                "ec2:RunInstances",
                arn("ec2", "instance/*"),
                vec![here, ("ec2:LaunchTemplate", our_template.as_str()), ("ec2:InstanceType", "p5.48xlarge")],
            )],
        ),
        (
            "41ccd5f. launch instances into another team's capacity reservation",
            vec![("ec2:RunInstances", arn("ec2", "capacity-reservation/cr-0production"), vec![here])],
        ),
        (
            "41ccd5f. run load-test workers on another stack's capacity provider",
            vec![(
                "ecs:RunTask",
                arn("ecs", "task-definition/konnichiwa-loadtest:1"),
                vec![here, ("ecs:cluster", our_cluster.as_str()), ("ecs:capacity-provider", their_provider.as_str())],
            )],
        ),
        (
            "work from another region",
            vec![(
                "ec2:CreateVpc",
                format!("arn:aws:ec2:us-east-1:{a}:vpc/*"),
                vec![("aws:RequestedRegion", "us-east-1"), ours_tag],
            )],
        ),
    ];
    let mut let_through = Vec::new();
    for (path, steps) in &playbook {
        let refused = steps.iter().any(|(action, resource, context)| {
            !allows(&policy, &Request { action, resource: resource.as_str(), context })
        });
        if !refused {
            let_through.push(*path);
        }
    }
    assert!(let_through.is_empty(), "the deploy role's policy lets these through: {let_through:#?}");

    // What `up` sends to the service stays allowed: its family, its provider, no subnet.
    let service = arn("ecs", "service/konnichiwa/konnichiwa");
    let create_service =
        vec![here, ("ecs:task-definition", our_family.as_str()), ("ecs:capacity-provider", our_provider.as_str())];
    assert!(allows(&policy, &Request { action: "ecs:CreateService", resource: &service, context: &create_service }));
    // Contained, not refused (docs/POSTURE.md): a create that names no provider lands on the
    // stack's own cluster and instances.
    let no_provider = vec![here, ("ecs:task-definition", our_family.as_str())];
    assert!(allows(&policy, &Request { action: "ecs:CreateService", resource: &service, context: &no_provider }));
    assert!(allows(&policy, &Request { action: "ecs:UpdateService", resource: &service, context: &[here] }));
    // Load-test workers on Fargate name no provider.
    let workers = Request {
        action: "ecs:RunTask",
        resource: &arn("ecs", "task-definition/konnichiwa-loadtest:1"),
        context: &[here, ("ecs:cluster", our_cluster.as_str())],
    };
    assert!(allows(&policy, &workers));
    // ... whether ECS gives the key the provider's ARN or the name the request sends.
    let by_name = vec![here, ("ecs:capacity-provider", "konnichiwa-capacity")];
    assert!(allows(&policy, &Request { action: "ecs:UpdateService", resource: &service, context: &by_name }));
    for context in [vec![here], by_name.clone(), vec![here, ("ecs:capacity-provider", our_provider.as_str())]] {
        let r = Request { action: "ecs:PutClusterCapacityProviders", resource: &our_cluster, context: &context };
        assert!(allows(&policy, &r), "{context:?}");
    }
    assert!(allows(&policy, &Request { action: "ecs:CreateCluster", resource: &our_cluster, context: &[here] }));
    // What `up` sends to the group stays allowed: an explicit version and stack.yaml's maximum,
    // or no template at all (`down` scales to zero).
    let explicit = ("autoscaling:LaunchTemplateVersionSpecified", "true");
    for context in [vec![here, explicit, ("autoscaling:MaxSize", "4")], vec![here, ("autoscaling:MaxSize", "0")]] {
        let r = Request { action: "autoscaling:UpdateAutoScalingGroup", resource: &group, context: &context };
        assert!(allows(&policy, &r), "{context:?}");
    }
    let create = vec![
        here,
        ("autoscaling:LaunchTemplateVersionSpecified", "true"),
        ("autoscaling:VPCZoneIdentifiers", "subnet-0a"),
        ("autoscaling:MaxSize", "2"),
    ];
    assert!(allows(
        &policy,
        &Request { action: "autoscaling:CreateAutoScalingGroup", resource: &group, context: &create }
    ));

    // What the role may do because it is its job, the boundary contains: write `*` into the
    // task role (a commit can), and the task still reaches only the stack's own resources.
    assert!(allows(
        &policy,
        &Request { action: "iam:PutRolePolicy", resource: &role("konnichiwa-task"), context: &[bounded] }
    ));
    let everything = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let task_can = |action: &str, resource: &str, context: &[(&str, &str)]| {
        allows_within(&[&everything], &boundary, &Request { action, resource, context })
    };
    let outside: Vec<(&str, String)> = vec![
        ("iam:CreateUser", format!("arn:aws:iam::{a}:user/backdoor")),
        ("iam:PutRolePolicy", role("konnichiwa-deploy")),
        ("s3:GetObject", "arn:aws:s3:::company-backups/db.dump".into()),
        ("secretsmanager:GetSecretValue", arn("secretsmanager", "secret:konnichiwa-prod/api-key-AbCdEf")),
        ("ecs:RegisterContainerInstance", arn("ecs", "cluster/konnichiwa-prod")),
        ("ecr:BatchGetImage", arn("ecr", "repository/konnichiwa-prod")),
        ("logs:PutLogEvents", arn("logs", "log-group:/ecs/konnichiwa-prod:log-stream:x")),
        ("ec2:RunInstances", arn("ec2", "instance/*")),
        ("sts:AssumeRole", role("OrganizationAccountAccessRole")),
    ];
    for (action, resource) in &outside {
        assert!(!task_can(action, resource, &[here]), "a bounded role could {action} on {resource}");
    }
    // ... and still what the stack needs: the boundary is not too tight for the agent or the app.
    let inside: Vec<(&str, String)> = vec![
        ("ecs:RegisterContainerInstance", our_cluster.clone()),
        ("ecs:SubmitTaskStateChange", our_cluster.clone()),
        ("ecs:Poll", arn("ecs", "container-instance/konnichiwa/0123")),
        ("ecs:DiscoverPollEndpoint", "*".into()),
        ("ecr:GetAuthorizationToken", "*".into()),
        ("ecr:BatchGetImage", arn("ecr", "repository/konnichiwa")),
        ("logs:PutLogEvents", arn("logs", "log-group:/ecs/konnichiwa:log-stream:app/app/1")),
        ("secretsmanager:GetSecretValue", arn("secretsmanager", "secret:konnichiwa/api-key-AbCdEf")),
    ];
    for (action, resource) in &inside {
        assert!(
            task_can(action, resource, &[here]),
            "the boundary refuses what the stack needs: {action} on {resource}"
        );
    }

    // RunInstances as Auto Scaling checks it for the stack's own group passes, resource by resource.
    let ours = [here, ("aws:ResourceTag/konnichiwa:stack", "konnichiwa")];
    let template = arn("ec2", "launch-template/lt-1");
    let from_template = [here, ("ec2:LaunchTemplate", template.as_str())];
    let instance_of_type = [here, ("ec2:LaunchTemplate", template.as_str()), ("ec2:InstanceType", "t3.small")];
    let image = format!("arn:aws:ec2:{r}::image/ami-1");
    let amazon = [here, ("ec2:Owner", "amazon")];
    assert!(allows_each(
        &policy,
        "ec2:RunInstances",
        &[
            (&template, &ours),
            (&arn("ec2", "subnet/subnet-1"), &ours),
            (&arn("ec2", "security-group/sg-1"), &ours),
            (&image, &amazon),
            (&arn("ec2", "instance/*"), &instance_of_type),
            (&arn("ec2", "volume/*"), &from_template),
            (&arn("ec2", "network-interface/*"), &from_template),
        ],
    ));
}

/// Stack variants whose policies differ: the example, HTTPS on a domain with ECS Exec, Session
/// Manager, scaling on requests and the app's own statements, and HTTPS with a strategy that
/// shifts traffic (the load balancer role; it cannot scale on one target group's requests).
async fn variants() -> Vec<(&'static str, Account)> {
    let plain = Account::new();
    let full = Account::new();
    crate::https::zone(&full.clients().await, "example.com").await;
    full.edit_stack(|t| {
        crate::https::with_domain(t)
            .replace("ssm_access: false", "ssm_access: true")
            .replace("target_cpu_percent: 60 }", "target_cpu_percent: 60, requests_per_target: 500 }")
    });
    full.edit_stack(|t| {
        t.replacen("  # exec: true ", "  exec: true ", 1)
            + "iam:\n  task_role_statements:\n    - { Effect: Allow, Action: s3:GetObject, Resource: \"arn:aws:s3:::konnichiwa-assets/*\" }\n"
    });
    let shifting = Account::new();
    crate::https::zone(&shifting.clients().await, "example.com").await;
    shifting.edit_stack(|t| {
        crate::https::with_domain(t).replace("slo_alarms: true }", "slo_alarms: true, strategy: canary }")
    });
    vec![
        ("the example stack", plain),
        ("HTTPS, Exec, Session Manager, the app's statements", full),
        ("HTTPS and a canary strategy", shifting),
    ]
}

#[tokio::test]
async fn every_statement_of_the_policy_and_the_boundary_can_match_on_aws() {
    let reference = Reference::load();
    for (name, account) in variants().await {
        let (policy, boundary) = rendered(&account).await;
        let text = policy.to_string();
        assert!(text.contains("route53:") == name.contains("HTTPS"), "{name}: {text}");
        let mut problems = Vec::new();
        for doc in [&policy, &boundary] {
            for statement in doc["Statement"].as_array().expect("statements") {
                problems.extend(reference.problems(statement));
            }
        }
        assert!(problems.is_empty(), "{name}: statements that can never match on AWS:\n{}", problems.join("\n"));
    }
}

#[test]
fn the_reference_knows_a_statement_that_can_never_match() {
    let reference = Reference::load();
    let never = serde_json::json!({
        "Sid": "X", "Effect": "Allow", "Action": ["acm:RequestCertificate"],
        "Resource": ["arn:aws:acm:ap-northeast-1:123456789012:certificate/*"]
    });
    let problems = reference.problems(&never);
    assert!(problems.iter().any(|p| p.contains("acm:RequestCertificate takes no resource")), "{problems:?}");
    let wrong_key = serde_json::json!({
        "Sid": "Y", "Effect": "Allow", "Action": ["ecs:DeleteCluster"],
        "Resource": ["arn:aws:ecs:ap-northeast-1:123456789012:cluster/konnichiwa"],
        "Condition": { "ArnEquals": { "ecs:task-definition": "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/k:*" } }
    });
    let problems = reference.problems(&wrong_key);
    assert!(problems.iter().any(|p| p.contains("never carries the condition key ecs:task-definition")), "{problems:?}");
    // A plain operator on a key of several values: a second, foreign provider would pass.
    let any_one = serde_json::json!({
        "Sid": "W", "Effect": "Allow", "Action": ["ecs:PutClusterCapacityProviders"],
        "Resource": ["arn:aws:ecs:ap-northeast-1:123456789012:cluster/konnichiwa"],
        "Condition": { "ArnEquals": { "ecs:capacity-provider": "arn:aws:ecs:ap-northeast-1:123456789012:capacity-provider/k" } }
    });
    let problems = reference.problems(&any_one);
    assert!(problems.iter().any(|p| p.contains("ecs:capacity-provider has several values")), "{problems:?}");
    let fine = serde_json::json!({
        "Sid": "Z", "Effect": "Allow", "Action": ["ecs:UpdateService"],
        "Resource": ["arn:aws:ecs:ap-northeast-1:123456789012:service/konnichiwa/konnichiwa"],
        "Condition": { "ArnLikeIfExists": { "ecs:task-definition": "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/konnichiwa:*" } }
    });
    assert_eq!(reference.problems(&fine), Vec::<String>::new());
}

/// Why a parliament finding of HIGH or MEDIUM severity is by design, if it is: each is an
/// action the role needs whose reach the conditions (and the boundary) limit — played out by
/// `every_path_to_more_than_the_stack_is_refused_or_contained` — or a statement split on purpose.
fn explained(finding: &Value, policy: &Value) -> Option<&'static str> {
    let issue = finding["issue"].as_str().unwrap_or_default();
    let kind = finding["location"]["type"].as_str().unwrap_or_default();
    let detail = finding["detail"].to_string();
    let actions: Vec<&str> =
        finding["location"]["actions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    match issue {
        "PRIVILEGE_ESCALATION" if kind == "CreateEC2WithExistingIP" => Some(
            "iam:PassRole reaches only the stack's instance role (bounded), only for EC2; RunInstances only from the \
             stack's launch template into its subnets with its security groups",
        ),
        "PERMISSIONS_MANAGEMENT_ACTIONS" => Some(
            "the role writes the stack's roles' policies under the boundary only, passes them only to the services \
             that use them, and writes the policies of the stack's own secret and bucket",
        ),
        "RESOURCE_POLICY_PRIVILEGE_ESCALATION" if detail.contains("-alb-logs-") => Some(
            "the access-log bucket's policy must be written by `up` (Elastic Load Balancing's delivery needs it); \
             docs/POSTURE.md says what IAM cannot limit in it",
        ),
        "MISMATCHED_TYPE" if detail.contains("ecs:capacity-provider") && detail.contains("'konnichiwa-capacity'") => {
            Some(
                "the stack's provider by name and by ARN: the reference types the key as ARNs, requests name providers \
             by short name, and AWS does not say which the key carries (docs/POSTURE.md)",
            )
        }
        "CREDENTIALS_EXPOSURE" if actions == ["ecr:getauthorizationtoken"] => Some(
            "a registry login for pushing the image: what it can reach is the repository permissions, which name \
             the stack's repository only",
        ),
        "RESOURCE_MISMATCH" => {
            let all_covered = finding["detail"].as_array().into_iter().flatten().all(|d| {
                let action = d["action"].as_str().unwrap_or_default();
                let format = d["required_format"].as_str().unwrap_or_default();
                // Application Load Balancers only; public SSM parameters have no account in their ARN.
                format.contains(":listener/net/")
                    || format.contains(":listener-rule/net/")
                    || (action == "ssm:GetParameter" && format.contains(":parameter/"))
                    || granted_elsewhere(policy, action, format)
            });
            all_covered.then_some(
                "one action's resource types split over statements, each with its own condition (RunInstances \
                 resource by resource; creates in the stack's VPC by its tag)",
            )
        }
        _ => None,
    }
}

/// Whether some Allow statement grants `action` on a resource of the ARN `format`.
fn granted_elsewhere(policy: &Value, action: &str, format: &str) -> bool {
    policy["Statement"].as_array().into_iter().flatten().filter(|s| s["Effect"] == "Allow").any(|s| {
        crate::common::policy::list(&s["Action"]).iter().any(|a| a.eq_ignore_ascii_case(action))
            && crate::common::policy::list(&s["Resource"])
                .iter()
                .any(|r| crate::common::policy::glob(format, r) || crate::common::policy::glob(r, format))
    })
}

#[tokio::test]
async fn parliament_finds_nothing_unexplained_in_the_policy_or_the_boundary() {
    for (name, account) in variants().await {
        let (policy, boundary) = rendered(&account).await;
        for (what, doc) in [("the deploy policy", &policy), ("the boundary", &boundary)] {
            // parliament through scripts/lint_policy.py, which completes its table of key types.
            let python = format!(
                "{}/bin/python",
                std::env::var("KONNICHIWA_TOOLS").unwrap_or_else(|_| "/var/tmp/konnichiwa-tools".into())
            );
            let out = std::process::Command::new(python)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lint_policy.py"))
                .args(["--string", &doc.to_string(), "--include-community-auditors", "--json"])
                .args(["--minimum_severity", "MEDIUM"])
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run parliament ({e}): run the suite with scripts/test, which installs it, or `pip install parliament`")
                });
            let text = String::from_utf8_lossy(&out.stdout);
            // parliament exits 1 when it has findings; anything else is a failure of its own.
            assert!(
                matches!(out.status.code(), Some(0 | 1)) && !String::from_utf8_lossy(&out.stderr).contains("Traceback"),
                "{name}, {what}: parliament failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let unexplained: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|finding| explained(finding, doc).is_none())
                .collect();
            assert!(unexplained.is_empty(), "{name}, {what}: parliament finds {unexplained:#?}");
        }
    }
}

#[test]
fn posture_says_what_iam_cannot_express() {
    let posture = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/POSTURE.md"))
        .expect("docs/POSTURE.md");
    for limit in [
        "ecs:DeregisterTaskDefinition",
        "acm:AddTagsToCertificate",
        "application-autoscaling:TagResource",
        "user data",
        "s3:PutBucketPolicy",
        "aws:SourceArn",
    ] {
        assert!(posture.contains(limit), "docs/POSTURE.md does not say what IAM cannot express about {limit}");
    }
}

/// A context that meets `statement`'s condition: each positive operator's key with its value (a
/// pattern's wildcards as one character), the keys of negated operators left out.
fn meeting(statement: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (operator, keys) in statement["Condition"].as_object().into_iter().flatten() {
        if operator.contains("Not") || operator == "Null" {
            continue;
        }
        let every = operator.starts_with("ForAllValues:") || operator.starts_with("ForAnyValue:");
        for (key, expected) in keys.as_object().into_iter().flatten() {
            let values = crate::common::policy::list(expected);
            for v in if every { values } else { values.into_iter().take(1).collect() } {
                out.push((key.clone(), v.replace(['*', '?'], "x")));
            }
        }
    }
    out
}

#[test]
fn merging_the_deploy_statements_into_policies_allows_and_refuses_exactly_what_they_did() {
    use provisioner::reconcile::permission::{PolicyContext, statements};
    let stack = stack::Stack::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack.yaml")).expect("stack");
    let ctx = PolicyContext {
        partition: "aws".into(),
        account: "123456789012".into(),
        stack: &stack,
        hosted_zone_id: None,
        validation_record: None,
        subnets: vec!["subnet-0a".into(), "subnet-0b".into()],
    };
    let sources = provisioner::engine::walk::permission_sources();
    let one_by_one: Vec<Value> = sources
        .iter()
        .flat_map(|(_, ps)| ps.iter().filter(|p| p.deploy_role))
        .enumerate()
        .flat_map(|(i, p)| statements(&ctx, &format!("S{i}"), p))
        .collect();
    let before = serde_json::json!({ "Statement": one_by_one });
    let policies = provisioner::resources::ci_role::policies(&ctx, &sources);
    let merged: Vec<Value> =
        policies.iter().flat_map(|p| p.document["Statement"].as_array().cloned().unwrap_or_default()).collect();
    let after = serde_json::json!({ "Statement": merged });
    let mut asked = 0;
    for s in before["Statement"].as_array().expect("statements") {
        let ours = meeting(s);
        // The request the statement was written for, and the same from another stack and region.
        let theirs: Vec<(String, String)> = ours
            .iter()
            .map(|(k, v)| {
                (k.clone(), v.replace("konnichiwa", "konnichiwa-prod").replace("ap-northeast-1", "us-east-1"))
            })
            .collect();
        for action in crate::common::policy::list(&s["Action"]) {
            for resource in crate::common::policy::list(&s["Resource"]) {
                let resource = resource.replace(['*', '?'], "x");
                for context in [&ours, &theirs] {
                    let context: Vec<(&str, &str)> = context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let r = Request { action, resource: &resource, context: &context };
                    assert_eq!(allows(&before, &r), allows(&after, &r), "{action} on {resource} with {context:?}");
                    asked += 1;
                }
            }
        }
    }
    assert!(asked > 300, "{asked} requests compared");
}

/// Staging's deploy role (rendered for stack.staging.yaml, `konnichiwa-staging`) may change
/// nothing of production's stack (`konnichiwa`), whose names its own begin with: instances,
/// instance profile, roles, cluster, service, secret, bucket, topic, alarms, repository.
#[test]
fn staging_s_deploy_role_changes_nothing_of_production() {
    use provisioner::reconcile::permission::PolicyContext;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let staging = stack::Stack::load(root.join("stack.staging.yaml")).expect("staging");
    assert_eq!(staging.name, "konnichiwa-staging");
    let a = "123456789012";
    let ctx = PolicyContext {
        partition: "aws".into(),
        account: a.into(),
        stack: &staging,
        hosted_zone_id: None,
        validation_record: None,
        subnets: vec!["subnet-0staging0".into()],
    };
    let policies = provisioner::resources::ci_role::policies(&ctx, &provisioner::engine::walk::permission_sources());
    let statements: Vec<Value> =
        policies.iter().flat_map(|p| p.document["Statement"].as_array().cloned().unwrap_or_default()).collect();
    let policy = serde_json::json!({ "Statement": statements });
    let r = "ap-northeast-1";
    let arn = |service: &str, resource: &str| format!("arn:aws:{service}:{r}:{a}:{resource}");
    let production: Vec<String> = vec![
        arn("ec2", "instance/i-0123456789abcdef0"),
        arn("ec2", "launch-template/lt-0123456789abcdef0"),
        arn("ec2", "security-group/sg-0123456789abcdef0"),
        format!("arn:aws:iam::{a}:instance-profile/konnichiwa-instance"),
        format!("arn:aws:iam::{a}:role/konnichiwa-instance"),
        format!("arn:aws:iam::{a}:role/konnichiwa-execution"),
        format!("arn:aws:iam::{a}:role/konnichiwa-task"),
        arn("ecs", "cluster/konnichiwa"),
        arn("ecs", "service/konnichiwa/konnichiwa"),
        arn("ecs", "task-definition/konnichiwa:3"),
        arn("ecs", "task/konnichiwa/0123456789abcdef"),
        arn("ecs", "capacity-provider/konnichiwa-capacity"),
        arn("autoscaling", "autoScalingGroup:1:autoScalingGroupName/konnichiwa-instances"),
        arn("secretsmanager", "secret:konnichiwa/api-key-AbCdEf"),
        format!("arn:aws:s3:::konnichiwa-alb-logs-{a}-{r}"),
        format!("arn:aws:s3:::konnichiwa-alb-logs-{a}-{r}/AWSLogs/x"),
        arn("sns", "konnichiwa-alarms"),
        arn("cloudwatch", "alarm:konnichiwa-p95-latency"),
        arn("ecr", "repository/konnichiwa"),
        arn("logs", "log-group:/ecs/konnichiwa"),
        arn("elasticloadbalancing", "loadbalancer/app/konnichiwa-alb/0123"),
        arn("elasticloadbalancing", "targetgroup/konnichiwa-tg/0123"),
        arn("ssm", "parameter/konnichiwa/konnichiwa/lease"),
    ];
    // As production's resources are: its tag on them; the attacker adds staging's tag to a request.
    let here = ("aws:RequestedRegion", r);
    let contexts: Vec<Vec<(&str, &str)>> = vec![
        vec![here, ("aws:ResourceTag/konnichiwa:stack", "konnichiwa")],
        vec![
            here,
            ("aws:ResourceTag/konnichiwa:stack", "konnichiwa"),
            ("aws:RequestTag/konnichiwa:stack", "konnichiwa-staging"),
        ],
    ];
    let reference = Reference::load();
    let mut let_through = Vec::new();
    let mut tried = 0;
    for action in crate::common::policy::actions(&policy) {
        let name = action.split(':').nth(1).unwrap_or_default();
        // Reads may see what the account holds; a create names a new resource, not production's;
        // changes may touch nothing of production's.
        let reads = ["describe", "list", "get", "simulate"].iter().any(|r| name.starts_with(r));
        if reads || name.starts_with("create") {
            continue;
        }
        // Only resources of a type the action takes (an action that takes none cannot name one of
        // production's: docs/POSTURE.md says which those are).
        let types: Vec<String> = reference
            .action(&action)
            .map(|info| info.resource_types.iter().map(|t| t.arn.clone()).collect())
            .unwrap_or_default();
        for resource in production.iter().filter(|r| types.iter().any(|t| crate::common::policy::glob(t, r))) {
            for context in &contexts {
                tried += 1;
                if allows(&policy, &Request { action: &action, resource, context }) {
                    let_through.push(format!("{action} on {resource}"));
                }
            }
        }
    }
    assert!(tried > 150, "{tried} requests tried");
    assert!(let_through.is_empty(), "staging's deploy role may change production's: {let_through:#?}");
}
