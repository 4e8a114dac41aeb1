//! The CI deploy role (`provisioner ci-role`): its trust matches the token the deploy workflow's
//! job gets (read from .github/workflows/deploy.yml), an adopted OIDC provider is given the
//! audience, a managed policy attached behind our back is detached, every call `up`, `deploy`,
//! `rollback` and `down` make as that role is in its policy, an administrator's change is
//! refused before any change, and the policy reaches nothing outside the stack.
//!
//! What is enforced where: moto enforces IAM for the actions a principal may call (it evaluates
//! resources only for IAM roles and ignores conditions and permissions boundaries), so
//! `with_exactly_the_declared_actions_*` runs the commands under moto's enforcement as the
//! deploy role with the policy's actions; the resource and condition limits (another stack's
//! VPC, roles, secret; the deploy role itself; the boundary; which managed policies, which
//! services a role is passed to) are checked against the policy document by the evaluator in
//! common/policy.rs, and what the role could become is attacker.rs's.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::policy::{Request, actions, allows, allows_each, glob, iam_action};
use crate::common::{Account, env_refs, mutations};
use serde_json::Value;

const REPO: &str = "octo-org/konnichiwa";

fn workflow(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows").join(file);
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("workflow")).expect("yaml")
}

/// The `sub` claim GitHub puts in the OIDC token of the job that deploys `stack_file`: deploy.yml
/// calls deploy-stack.yml with the file and an environment, and the called job runs in
/// `environment: ${{ inputs.environment }}`.
fn subject_for(stack_file: &str, repo: &str) -> String {
    let callee = workflow("deploy-stack.yml");
    assert_eq!(
        callee["jobs"]["deploy"]["environment"], "${{ inputs.environment }}",
        "the job runs in the environment given"
    );
    let caller = workflow("deploy.yml");
    let job = caller["jobs"]
        .as_object()
        .expect("jobs")
        .values()
        .find(|j| j["with"]["stack"] == stack_file)
        .unwrap_or_else(|| panic!("no job deploys {stack_file}"));
    let environment = job["with"]["environment"].as_str().expect("environment");
    format!("repo:{repo}:environment:{environment}")
}

async fn deploy_policy(account: &Account) -> Value {
    common::role_policy(&account.clients().await, "konnichiwa-deploy").await
}

#[tokio::test]
async fn the_trust_matches_the_token_the_workflow_job_gets() {
    let account = Account::new();
    // The documented command, exactly.
    let out = account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    let c = account.clients().await;
    let role = c.iam.get_role().role_name("konnichiwa-deploy").send().await.expect("role");
    let trust = provisioner::resources::iam::decode_policy(
        role.role().and_then(|r| r.assume_role_policy_document()).expect("trust"),
    );
    let cond = &trust["Statement"][0]["Condition"]["StringEquals"];
    assert_eq!(cond["token.actions.githubusercontent.com:sub"], subject_for("stack.yaml", REPO).as_str());
    assert_eq!(cond["token.actions.githubusercontent.com:aud"], "sts.amazonaws.com");
    assert_eq!(out["outputs"]["subject"], subject_for("stack.yaml", REPO).as_str());
    // The staging overlay's role trusts the staging job, and is a role of its own.
    let staging =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.staging.yaml")).expect("overlay");
    let staging = account.write_stack("stack.staging.yaml", &staging);
    let out = account.json_for(&staging, &["ci-role", "--github-repo", REPO, "--yes"], 0);
    assert_eq!(out["outputs"]["subject"], subject_for("stack.staging.yaml", REPO).as_str());
    assert!(
        out["outputs"]["role_arn"].as_str().is_some_and(|a| a.ends_with(":role/konnichiwa-staging-deploy")),
        "{out}"
    );
    assert_eq!(account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0)["api_calls"]["mutating"], 0);
    // A workflow without an environment: trust the branch instead.
    let branch = account.json(&["ci-role", "--github-repo", REPO, "--branch", "release", "--yes"], 0);
    assert!(mutations(&branch).iter().any(|m| m == "IAM:UpdateAssumeRolePolicy"));
    assert_eq!(branch["outputs"]["subject"], "repo:octo-org/konnichiwa:ref:refs/heads/release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_provider_gets_the_audience_and_a_stray_managed_policy_is_detached() {
    let account = Account::new();
    let c = account.clients().await;
    c.iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com")
        .client_id_list("some-other-audience")
        .thumbprint_list("6938fd4d98bab03faadb97b34396831e3780aea1")
        .send()
        .await
        .expect("provider");
    // moto lacks AddClientIDToOpenIDConnectProvider: the proxy answers it as AWS does.
    let proxy = common::faults::Proxy::start(&common::moto_url(), common::faults::Faults::default()).await;
    proxy.script(common::faults::Script::body(
        "AddClientIDToOpenIDConnectProvider",
        10,
        "<AddClientIDToOpenIDConnectProviderResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AddClientIDToOpenIDConnectProviderResponse>",
    ));
    let first = account.json_at(&proxy.url, &["ci-role", "--github-repo", REPO, "--yes"], &[], 0).await;
    assert!(mutations(&first).iter().any(|m| m == "IAM:AddClientIDToOpenIDConnectProvider"), "{:?}", mutations(&first));
    assert!(proxy.requests("AddClientIDToOpenIDConnectProvider")[0].contains("ClientID=sts.amazonaws.com"));
    assert!(!mutations(&first).iter().any(|m| m == "IAM:CreateOpenIDConnectProvider"), "adopted, not duplicated");

    // Someone makes the deploy role an administrator.
    c.iam
        .attach_role_policy()
        .role_name("konnichiwa-deploy")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .expect("attach");
    // `--plan` is the review: the change shown, exit 0, nothing changed.
    let before = proxy.mutating_calls();
    let plan = account.run_at(&proxy.url, &["ci-role", "--github-repo", REPO, "--plan"], &[]).await;
    let said = common::text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{said}");
    assert!(said.contains("managed_policy: arn:aws:iam::aws:policy/AdministratorAccess -> (none)"), "{said}");
    assert!(said.contains("Nothing was changed (--plan)"), "{said}");
    // Without --yes and nobody at a terminal: the same plan, and a refusal that says the plan was
    // the review and how to apply it (exit 1: what was asked for did not happen).
    let asked = account.run_at(&proxy.url, &["ci-role", "--github-repo", REPO], &[]).await;
    let said = common::text(&asked);
    assert_eq!(asked.status.code(), Some(1), "{said}");
    assert!(said.contains("AdministratorAccess -> (none)"), "{said}");
    assert!(said.contains("nothing was changed: the plan above is the review. Apply it with --yes"), "{said}");
    assert_eq!(proxy.mutating_calls(), before, "neither run changed anything");
    let fixed = account.json_at(&proxy.url, &["ci-role", "--github-repo", REPO, "--yes"], &[], 0).await;
    assert!(mutations(&fixed).iter().any(|m| m == "IAM:DetachRolePolicy"));
    let attached = c.iam.list_attached_role_policies().role_name("konnichiwa-deploy").send().await.expect("list");
    let attached: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_name()).collect();
    assert!(!attached.is_empty() && attached.iter().all(|n| n.starts_with("konnichiwa-deploy-")), "{attached:?}");
    // The review says how full each of the deploy role's policies is of IAM's limits.
    let review = account.run_at(&proxy.url, &["ci-role", "--github-repo", REPO, "--plan"], &[]).await;
    let said = common::text(&review);
    assert!(said.contains("The deploy role's policies, against IAM's limits"), "{said}");
    assert!(said.contains("konnichiwa-deploy-network") && said.contains("of 6144 characters ("), "{said}");
    assert!(said.contains(&format!("{} of 10 managed policies attached", attached.len())), "{said}");

    // `down` keeps the deploy role and says how to remove it; `ci-role --delete` does.
    account.json(&["up", "--yes"], 0);
    let down = account.json(&["down", "--yes"], 0);
    assert!(
        down["kept"][0].as_str().is_some_and(|k| k.contains("konnichiwa-deploy") && k.contains("--delete")),
        "{down:#}"
    );
    account.json_at(&proxy.url, &["ci-role", "--github-repo", REPO, "--delete", "--yes"], &[], 0).await;
    assert!(c.iam.get_role().role_name("konnichiwa-deploy").send().await.is_err());
    // … and its policies with it.
    let left = c.iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.expect("list");
    let left: Vec<&str> = left.policies().iter().filter_map(|p| p.policy_name()).collect();
    assert!(!left.iter().any(|n| n.starts_with("konnichiwa-deploy-")), "{left:?}");
}

/// The IAM actions behind every call the runs made (their own and their lease's).
pub fn called_actions(runs: &[Value]) -> BTreeSet<String> {
    let mut called = BTreeSet::new();
    for run in runs {
        for calls in [&run["api_calls"], &run["lease"]["api_calls"]] {
            called.extend(
                calls["by_operation"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(op, _)| iam_action(op).to_ascii_lowercase()),
            );
        }
    }
    called.remove("sts:getcalleridentity"); // needs no permission
    called
}

#[tokio::test]
async fn every_call_of_up_deploy_rollback_and_down_as_the_deploy_role_is_in_the_policy() {
    let account = Account::new();
    // The administrator's one-time step: the deploy role, and what it may not make itself.
    let admin = account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    let made: Vec<String> = mutations(&admin);
    for needed in ["IAM:CreatePolicy", "IAM:CreateRole", "IAM:CreateInstanceProfile", "IAM:AddRoleToInstanceProfile"] {
        assert!(made.iter().any(|m| m == needed), "ci-role made no {needed}: {made:?}");
    }
    // ... and the first `up`: what sets a resource policy (the log bucket's, the secret's) is an
    // administrator's too.
    account.json(&["up", "--yes"], 0);
    let policy = deploy_policy(&account).await;
    let allowed: BTreeSet<String> = actions(&policy).into_iter().collect();
    account.edit_stack(|t| t.replace("target_cpu_percent: 60 }", "target_cpu_percent: 60, requests_per_target: 500 }"));
    // Drift in the roles' policies, which the deploy role repairs.
    let c = account.clients().await;
    let execution = c.iam.list_role_policies().role_name("konnichiwa-execution").send().await.expect("inline");
    for name in execution.policy_names() {
        c.iam.delete_role_policy().role_name("konnichiwa-execution").policy_name(name).send().await.expect("drift");
    }
    let ecs_for_ec2 = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role";
    c.iam.detach_role_policy().role_name("konnichiwa-instance").policy_arn(ecs_for_ec2).send().await.expect("drift");
    let session = account.session_of("konnichiwa-deploy").await;
    let env = env_refs(&session);
    let image = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "4".repeat(64));
    let up = account.json_with(&["up", "--yes"], &env, 0);
    let deploy = account.json_with(&["deploy", "--image", &image, "--no-wait"], &env, 0);
    let rollback = account.json_with(&["rollback", "--no-wait"], &env, 0);
    let down = account.json_with(&["down", "--yes", "--purge"], &env, 0);
    let called = called_actions(&[up.clone(), deploy, rollback, down.clone()]);
    let missing: Vec<&String> = called.iter().filter(|a| !allowed.contains(*a)).collect();
    assert!(missing.is_empty(), "called but not in the deploy policy: {missing:?}");
    assert!(called.len() > 60, "{} actions called", called.len());
    assert!(called.contains("iam:putrolepolicy") && called.contains("iam:attachrolepolicy"), "{called:?}");
    // The deploy role leaves what it may not make again for the next deploy: the roles, their
    // boundary and the profile, the log bucket and the secret.
    let kept: Vec<&str> = down["kept"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for name in [
        "role/konnichiwa-task",
        "role/konnichiwa-execution",
        "role/konnichiwa-instance",
        "policy/konnichiwa-boundary",
        "bucket konnichiwa-alb-logs-",
        ":secret:konnichiwa/api-key",
    ] {
        assert!(kept.iter().any(|k| k.contains(name)), "{name} not kept: {kept:?}");
    }
    assert_eq!(down["leftovers"], serde_json::json!([]), "{down:#}");
    // The next deploy needs no administrator; an administrator's `down` removes all of it.
    account.json_with(&["up", "--yes"], &env, 0);
    account.json_with(&["down", "--yes", "--purge"], &env, 0);
    let removed = account.json(&["down", "--yes", "--purge"], 0);
    assert!(mutations(&removed).iter().any(|m| m == "IAM:DeletePolicy"), "{:?}", mutations(&removed));
    let census = crate::common::census::take(&account.clients().await, "konnichiwa").await;
    assert!(census.values().all(|n| *n == 0), "{census:?}");
}

#[tokio::test]
async fn as_the_deploy_role_up_refuses_an_administrators_change_before_changing_anything() {
    let account = Account::new();
    account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    let session = account.session_of("konnichiwa-deploy").await;
    let env = env_refs(&session);
    // A first deploy from CI: the log bucket and the secret carry resource policies only an
    // administrator may write, so the deploy role stops before anything is made.
    let first = account.run_with(&["up", "--yes"], &env);
    let said = common::text(&first);
    assert_eq!(first.status.code(), Some(1), "{said}");
    for pending in
        ["log-bucket konnichiwa-alb-logs-", "(create)", "secret konnichiwa/api-key (create)", "`provisioner up`"]
    {
        assert!(said.contains(pending), "{pending}: {said}");
    }
    account.json(&["up", "--yes"], 0);
    account.json_with(&["up", "--yes"], &env, 0);
    let refused = |out: &std::process::Output, what: &str| {
        let said = common::text(out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("need an administrator") && said.contains(what) && said.contains("ci-role"), "{said}");
    };
    // A commit turns on Session Manager: the boundary would have to grow.
    account.edit_stack(|t| t.replace("ssm_access: false", "ssm_access: true"));
    let out = account.run_with(&["up", "--yes", "--json"], &env);
    refused(&out, "iam-policy konnichiwa-boundary (document)");
    let body: Value = serde_json::from_slice(&out.stdout).expect("json error");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("Nothing was changed")), "{body}");
    // Whoever runs it, a refusal made no call that changes anything (the lease's aside).
    let c = account.clients().await;
    let boundary = c
        .iam
        .get_policy()
        .policy_arn(format!("arn:aws:iam::{}:policy/konnichiwa-boundary", account.id))
        .send()
        .await
        .expect("boundary");
    assert_eq!(boundary.policy().and_then(|p| p.default_version_id()), Some("v1"));
    // The administrator approves it; the deploy goes on.
    account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    account.json_with(&["up", "--yes"], &env, 0);
    // A role deleted by hand is an administrator's to make again.
    c.iam.delete_role().role_name("konnichiwa-task").send().await.expect("delete role");
    refused(&account.run_with(&["up", "--yes"], &env), "iam-role konnichiwa-task (create)");
    // Without the deploy role's credentials (an administrator), the same `up` repairs it.
    account.json(&["up", "--yes"], 0);
}

#[tokio::test]
async fn with_https_on_a_domain_the_role_writes_only_the_stacks_two_records() {
    let account = Account::new();
    let c = account.clients().await;
    let zone = crate::https::zone(&c, "example.com").await;
    let other_zone = crate::https::zone(&c, "example.net").await;
    account.edit_stack(crate::https::with_domain);
    let admin = account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    // ci-role asked ACM for the stack's certificate to learn the record it validates with.
    assert!(mutations(&admin).iter().any(|m| m == "ACM:RequestCertificate"), "{:?}", mutations(&admin));
    let certificates = c.acm.list_certificates().send().await.expect("certificates");
    let arn = certificates.certificate_summary_list()[0].certificate_arn().expect("arn").to_owned();
    let described = c.acm.describe_certificate().certificate_arn(&arn).send().await.expect("describe");
    let validation = described
        .certificate()
        .and_then(|cert| cert.domain_validation_options().first())
        .and_then(|o| o.resource_record())
        .map(|r| r.name().trim_end_matches('.').to_ascii_lowercase())
        .expect("validation record");
    let policy = deploy_policy(&account).await;
    let allowed: BTreeSet<String> = actions(&policy).into_iter().collect();
    // The first `up` is an administrator's (the log bucket's and the secret's resource policies).
    let first = account.json(&["up", "--yes"], 0);
    assert!(
        !mutations(&first).iter().any(|m| m == "ACM:RequestCertificate"),
        "the certificate ci-role asked for is adopted"
    );
    let session = account.session_of("konnichiwa-deploy").await;
    let env = env_refs(&session);
    let up = account.json_with(&["up", "--yes"], &env, 0);
    let runs = [up, account.json_with(&["down", "--yes", "--purge"], &env, 0)];
    let called = called_actions(&runs);
    let missing: Vec<&String> = called.iter().filter(|a| !allowed.contains(*a)).collect();
    assert!(missing.is_empty(), "called but not in the deploy policy: {missing:?}");
    for needed in ["acm:deletecertificate", "route53:changeresourcerecordsets"] {
        assert!(called.contains(needed), "{needed} not called: {called:?}");
    }

    let (a, r) = (&account.id, "ap-northeast-1");
    let here = ("aws:RequestedRegion", r);
    let zone_arn = |id: &str| format!("arn:aws:route53:::hostedzone/{id}");
    let names = "route53:ChangeResourceRecordSetsNormalizedRecordNames";
    let types = "route53:ChangeResourceRecordSetsRecordTypes";
    let change = "route53:ChangeResourceRecordSets";
    let request_tag = ("aws:RequestTag/konnichiwa:stack", "konnichiwa");
    let cases: Vec<Case> = vec![
        (change, zone_arn(&zone), vec![(names, "api.example.com"), (types, "A")], true),
        (change, zone_arn(&zone), vec![(names, validation.as_str()), (types, "CNAME")], true),
        // Another `_` name under the domain, or at the zone apex: an ACME challenge, DMARC.
        (
            change,
            zone_arn(&zone),
            vec![(names, "_0a1b2c3d4e5f60718293a4b5c6d7e8f9.api.example.com"), (types, "CNAME")],
            false,
        ),
        (change, zone_arn(&zone), vec![(names, "_acme-challenge.api.example.com"), (types, "CNAME")], false),
        (change, zone_arn(&zone), vec![(names, "_acme-challenge.example.com"), (types, "CNAME")], false),
        (change, zone_arn(&zone), vec![(names, "_dmarc.example.com"), (types, "CNAME")], false),
        (change, zone_arn(&zone), vec![(names, "api.example.com"), (types, "CNAME")], false),
        (change, zone_arn(&zone), vec![(names, validation.as_str()), (types, "TXT")], false),
        (change, zone_arn(&zone), vec![(names, "www.example.com"), (types, "A")], false),
        (change, zone_arn(&zone), vec![(names, "api.example.com"), (names, "example.com"), (types, "A")], false),
        (change, zone_arn(&zone), vec![(names, "api.example.com"), (types, "MX")], false),
        (change, zone_arn(&other_zone), vec![(names, "api.example.com"), (types, "A")], false),
        // RequestCertificate takes no resource: "*", with the conditions.
        (
            "acm:RequestCertificate",
            "*".into(),
            vec![here, request_tag, ("acm:ValidationMethod", "DNS"), ("acm:DomainNames", "api.example.com")],
            true,
        ),
        (
            "acm:RequestCertificate",
            "*".into(),
            vec![here, request_tag, ("acm:ValidationMethod", "DNS"), ("acm:DomainNames", "login.example.com")],
            false,
        ),
        (
            "acm:RequestCertificate",
            "*".into(),
            vec![here, request_tag, ("acm:ValidationMethod", "EMAIL"), ("acm:DomainNames", "api.example.com")],
            false,
        ),
        (
            "acm:DeleteCertificate",
            format!("arn:aws:acm:{r}:{a}:certificate/1"),
            vec![here, ("aws:ResourceTag/konnichiwa:stack", "konnichiwa-prod")],
            false,
        ),
    ];
    for (action, resource, context, expected) in &cases {
        let got = allows(&policy, &Request { action, resource, context });
        assert_eq!(got, *expected, "{action} on {resource} with {context:?}");
    }
}

/// (action, resource, condition context, allowed?)
pub type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, bool);

#[tokio::test]
async fn the_policy_reaches_nothing_outside_the_stack() {
    let account = Account::new();
    account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    let policy = deploy_policy(&account).await;
    let a = &account.id;
    let r = "ap-northeast-1";
    let here: (&str, &str) = ("aws:RequestedRegion", r);
    let ours = ("aws:ResourceTag/konnichiwa:stack", "konnichiwa");
    let theirs = ("aws:ResourceTag/konnichiwa:stack", "konnichiwa-prod");
    let boundary = format!("arn:aws:iam::{a}:policy/konnichiwa-boundary");
    let bounded = ("iam:PermissionsBoundary", boundary.as_str());
    let arn = |service: &str, resource: &str| format!("arn:aws:{service}:{r}:{a}:{resource}");
    let role = |name: &str| format!("arn:aws:iam::{a}:role/{name}");
    let (topic_ours, topic_theirs) = (arn("sns", "konnichiwa-alarms"), arn("sns", "someone-elses-topic"));
    let cases: Vec<Case> = vec![
        // IAM: only the stack's own roles, only while they carry the boundary, never the deploy
        // role, never a prefix, never their trust or the boundary itself.
        ("iam:PutRolePolicy", role("konnichiwa-task"), vec![bounded], true),
        ("iam:PutRolePolicy", role("konnichiwa-task"), vec![], false),
        (
            "iam:PutRolePolicy",
            role("konnichiwa-task"),
            vec![("iam:PermissionsBoundary", "arn:aws:iam::aws:policy/AdministratorAccess")],
            false,
        ),
        ("iam:PutRolePolicy", role("konnichiwa-deploy"), vec![bounded], false),
        ("iam:UpdateAssumeRolePolicy", role("konnichiwa-execution"), vec![], false),
        ("iam:UpdateAssumeRolePolicy", role("konnichiwa-deploy"), vec![], false),
        ("iam:PutRolePolicy", role("konnichiwa-prod-task"), vec![bounded], false),
        ("iam:CreateRole", role("konnichiwa-task"), vec![bounded], false),
        ("iam:CreateRole", role("konnichiwa-admin"), vec![bounded], false),
        ("iam:DeleteRolePermissionsBoundary", role("konnichiwa-task"), vec![bounded], false),
        ("iam:PutRolePermissionsBoundary", role("konnichiwa-task"), vec![bounded], false),
        ("iam:CreatePolicyVersion", boundary.clone(), vec![], false),
        ("iam:SetDefaultPolicyVersion", boundary.clone(), vec![], false),
        (
            "iam:AttachRolePolicy",
            role("konnichiwa-instance"),
            vec![
                bounded,
                ("iam:PolicyARN", "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"),
            ],
            true,
        ),
        (
            "iam:AttachRolePolicy",
            role("konnichiwa-instance"),
            vec![bounded, ("iam:PolicyARN", "arn:aws:iam::aws:policy/AdministratorAccess")],
            false,
        ),
        ("iam:PassRole", role("konnichiwa-execution"), vec![("iam:PassedToService", "ecs-tasks.amazonaws.com")], true),
        ("iam:PassRole", role("konnichiwa-execution"), vec![("iam:PassedToService", "ec2.amazonaws.com")], false),
        ("iam:PassRole", role("konnichiwa-instance"), vec![("iam:PassedToService", "ec2.amazonaws.com")], true),
        ("iam:PassRole", role("konnichiwa-deploy"), vec![("iam:PassedToService", "ec2.amazonaws.com")], false),
        (
            "iam:CreateServiceLinkedRole",
            role("aws-service-role/lambda.amazonaws.com/x"),
            vec![("iam:AWSServiceName", "lambda.amazonaws.com")],
            false,
        ),
        // EC2: only what carries our tag; creates only tagged ours; only in our region.
        ("ec2:DeleteVpc", arn("ec2", "vpc/vpc-1"), vec![here, ours], true),
        ("ec2:DeleteVpc", arn("ec2", "vpc/vpc-1"), vec![here, theirs], false),
        ("ec2:AuthorizeSecurityGroupIngress", arn("ec2", "security-group/sg-1"), vec![here, theirs], false),
        ("ec2:TerminateInstances", arn("ec2", "instance/i-1"), vec![here], false),
        ("ec2:CreateVpc", arn("ec2", "vpc/*"), vec![here, ("aws:RequestTag/konnichiwa:stack", "konnichiwa")], true),
        ("ec2:CreateVpc", arn("ec2", "vpc/*"), vec![here, ("aws:RequestTag/konnichiwa:stack", "other")], false),
        (
            "ec2:CreateVpc",
            format!("arn:aws:ec2:us-east-1:{a}:vpc/*"),
            vec![("aws:RequestedRegion", "us-east-1"), ("aws:RequestTag/konnichiwa:stack", "konnichiwa")],
            false,
        ),
        // Our resources can be re-tagged, never as another stack's.
        (
            "ec2:CreateTags",
            arn("ec2", "vpc/vpc-1"),
            vec![here, ours, ("aws:RequestTag/konnichiwa:stack", "konnichiwa")],
            true,
        ),
        (
            "ec2:CreateTags",
            arn("ec2", "vpc/vpc-1"),
            vec![here, ours, ("aws:RequestTag/konnichiwa:stack", "konnichiwa-prod")],
            false,
        ),
        (
            "ecr:TagResource",
            arn("ecr", "repository/konnichiwa"),
            vec![here, ("aws:RequestTag/konnichiwa:stack", "konnichiwa-prod")],
            false,
        ),
        // Named resources of the other services: exactly ours.
        ("secretsmanager:GetSecretValue", arn("secretsmanager", "secret:konnichiwa/api-key-AbCdEf"), vec![here], true),
        (
            "secretsmanager:GetSecretValue",
            arn("secretsmanager", "secret:konnichiwa-prod/api-key-AbCdEf"),
            vec![here],
            false,
        ),
        ("logs:DeleteLogGroup", arn("logs", "log-group:/ecs/konnichiwa-prod"), vec![here], false),
        ("logs:DeleteLogGroup", arn("logs", "log-group:/aws/lambda/x"), vec![here], false),
        (
            "ssm:GetParameter",
            format!("arn:aws:ssm:{r}::parameter/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"),
            vec![here],
            true,
        ),
        ("ssm:GetParameter", arn("ssm", "parameter/prod/database-password"), vec![here], false),
        ("ssm:PutParameter", arn("ssm", "parameter/konnichiwa/konnichiwa-prod/lease/0000000001"), vec![here], false),
        (
            "elasticloadbalancing:DeleteLoadBalancer",
            arn("elasticloadbalancing", "loadbalancer/app/konnichiwa-prod-alb/1"),
            vec![here],
            false,
        ),
        ("ecs:UpdateService", arn("ecs", "service/konnichiwa-prod/konnichiwa-prod"), vec![here], false),
        ("ecs:UpdateService", arn("ecs", "service/konnichiwa/konnichiwa"), vec![here], true),
        (
            "autoscaling:UpdateAutoScalingGroup",
            arn("autoscaling", "autoScalingGroup:1:autoScalingGroupName/konnichiwa-prod-instances"),
            vec![here],
            false,
        ),
        (
            "application-autoscaling:PutScalingPolicy",
            arn("application-autoscaling", "scalable-target/1"),
            vec![here, theirs],
            false,
        ),
        ("ecr:PutImage", arn("ecr", "repository/konnichiwa-prod"), vec![here], false),
        ("cloudwatch:DeleteAlarms", arn("cloudwatch", "alarm:production-pager"), vec![here], false),
        // S3: the stack's log bucket only, and never its policy or public access block (whose
        // content no condition sees), nor deleting it or its logs: an administrator's.
        ("s3:PutLifecycleConfiguration", format!("arn:aws:s3:::konnichiwa-alb-logs-{a}-{r}"), vec![here], true),
        ("s3:PutBucketPolicy", format!("arn:aws:s3:::konnichiwa-alb-logs-{a}-{r}"), vec![here], false),
        ("s3:PutBucketPublicAccessBlock", format!("arn:aws:s3:::konnichiwa-alb-logs-{a}-{r}"), vec![here], false),
        ("s3:DeleteObject", format!("arn:aws:s3:::konnichiwa-alb-logs-{a}-{r}/konnichiwa/x"), vec![here], false),
        ("s3:PutBucketPolicy", format!("arn:aws:s3:::konnichiwa-prod-alb-logs-{a}-{r}"), vec![here], false),
        // The secret's value (CI's key) but not its resource policy; the topic's tags but not the
        // topic (its attributes hold a policy).
        ("secretsmanager:PutSecretValue", arn("secretsmanager", "secret:konnichiwa/api-key-AbCdEf"), vec![], true),
        (
            "secretsmanager:PutResourcePolicy",
            arn("secretsmanager", "secret:konnichiwa/api-key-AbCdEf"),
            vec![("secretsmanager:BlockPublicPolicy", "true")],
            false,
        ),
        ("sns:CreateTopic", arn("sns", "konnichiwa-alarms"), vec![], false),
        // Alarms notify the stack's own topic (and stack.yaml's), not any other.
        (
            "cloudwatch:PutMetricAlarm",
            arn("cloudwatch", "alarm:konnichiwa-p95-latency"),
            vec![("cloudwatch:AlarmActions", &topic_ours)],
            true,
        ),
        (
            "cloudwatch:PutMetricAlarm",
            arn("cloudwatch", "alarm:konnichiwa-p95-latency"),
            vec![("cloudwatch:AlarmActions", &topic_ours), ("cloudwatch:AlarmActions", &topic_theirs)],
            false,
        ),
        // Scalable targets of ECS services only: a DynamoDB table's, tagged as ours, is not ours.
        (
            "application-autoscaling:DeregisterScalableTarget",
            arn("application-autoscaling", "scalable-target/2"),
            vec![
                here,
                ours,
                ("application-autoscaling:service-namespace", "dynamodb"),
                ("application-autoscaling:scalable-dimension", "dynamodb:table:ReadCapacityUnits"),
            ],
            false,
        ),
        (
            "application-autoscaling:DeregisterScalableTarget",
            arn("application-autoscaling", "scalable-target/1"),
            vec![
                here,
                ours,
                ("application-autoscaling:service-namespace", "ecs"),
                ("application-autoscaling:scalable-dimension", "ecs:service:DesiredCount"),
            ],
            true,
        ),
        // Role tags: the stack's own keys only.
        (
            "iam:TagRole",
            role("konnichiwa-task"),
            vec![("aws:RequestTag/konnichiwa:stack", "konnichiwa"), ("aws:TagKeys", "konnichiwa:stack")],
            true,
        ),
        (
            "iam:TagRole",
            role("konnichiwa-task"),
            vec![
                ("aws:RequestTag/konnichiwa:stack", "konnichiwa"),
                ("aws:TagKeys", "konnichiwa:stack"),
                ("aws:TagKeys", "access-level"),
            ],
            false,
        ),
        // An instance refresh could move the group to `$Latest`: never the deploy role's.
        (
            "autoscaling:StartInstanceRefresh",
            arn("autoscaling", "autoScalingGroup:1:autoScalingGroupName/konnichiwa-instances"),
            vec![],
            false,
        ),
        ("s3:DeleteBucket", "arn:aws:s3:::company-backups".to_owned(), vec![here], false),
        ("s3:DeleteObject", "arn:aws:s3:::company-backups/db.dump".to_owned(), vec![here], false),
    ];
    for (action, resource, context, expected) in &cases {
        let got = allows(&policy, &Request { action, resource, context });
        assert_eq!(got, *expected, "{action} on {resource} with {context:?}");
    }
    // No grant reaches every resource without a condition that scopes it.
    let unscoped_ok = ["ecs:deregistertaskdefinition", "ecr:getauthorizationtoken"];
    for s in policy["Statement"].as_array().expect("statements").iter().filter(|s| s["Effect"] == "Allow") {
        let star = s["Resource"].as_array().is_some_and(|r| r.iter().any(|x| x == "*"));
        let scoped = s["Condition"].as_object().is_some_and(|c| {
            c.values()
                .flat_map(|k| k.as_object().into_iter().flatten().map(|(k, _)| k.clone()))
                .any(|k| k != "aws:RequestedRegion")
        });
        if star && !scoped {
            for action in s["Action"].as_array().expect("actions").iter().filter_map(Value::as_str) {
                let a = action.to_ascii_lowercase();
                let read =
                    ["describe", "list", "get"].iter().any(|p| a.split(':').nth(1).is_some_and(|op| op.starts_with(p)));
                assert!(read || unscoped_ok.contains(&a.as_str()), "{action} on every resource: {s}");
            }
        }
    }
    // RunInstances, resource by resource: our template, subnets and groups, an Amazon image.
    let tagged = |t: &'static str| -> &'static [(&'static str, &'static str)] {
        if t == "ours" {
            &[("aws:RequestedRegion", "ap-northeast-1"), ("aws:ResourceTag/konnichiwa:stack", "konnichiwa")]
        } else {
            &[("aws:RequestedRegion", "ap-northeast-1"), ("aws:ResourceTag/konnichiwa:stack", "other")]
        }
    };
    let template = arn("ec2", "launch-template/lt-1");
    let from_template = [here, ("ec2:LaunchTemplate", template.as_str())];
    let instance_of_type = [here, ("ec2:LaunchTemplate", template.as_str()), ("ec2:InstanceType", "t3.small")];
    let image = format!("arn:aws:ec2:{r}::image/ami-1");
    let launch = |subnet: &'static str, group: &'static str, owner: &str| {
        let image_context = [here, ("ec2:Owner", owner)];
        allows_each(
            &policy,
            "ec2:RunInstances",
            &[
                (template.as_str(), tagged("ours")),
                (&arn("ec2", "subnet/subnet-1"), tagged(subnet)),
                (&arn("ec2", "security-group/sg-1"), tagged(group)),
                (&image, &image_context),
                (&arn("ec2", "instance/*"), &instance_of_type),
                (&arn("ec2", "volume/*"), &from_template),
                (&arn("ec2", "network-interface/*"), &from_template),
            ],
        )
    };
    assert!(launch("ours", "ours", "amazon"), "the stack's own launch");
    assert!(!launch("theirs", "ours", "amazon"), "into another VPC's subnet");
    assert!(!launch("ours", "theirs", "amazon"), "with another security group");
    assert!(!launch("ours", "ours", "999988887777"), "with someone's image");
}

#[test]
fn the_evaluator_follows_iam() {
    assert!(glob(
        "arn:aws:secretsmanager:r:1:secret:s/api-key-??????",
        "arn:aws:secretsmanager:r:1:secret:s/api-key-AbCdEf"
    ));
    assert!(!glob(
        "arn:aws:secretsmanager:r:1:secret:s/api-key-??????",
        "arn:aws:secretsmanager:r:1:secret:s/api-key-x-AbCdEf"
    ));
    assert!(glob("ec2:*", "ec2:createvpc") && !glob("ec2:create*", "ec2:deletevpc"));
    let policy = serde_json::json!({ "Statement": [
        { "Effect": "Allow", "Action": "ec2:DeleteVpc", "Resource": "*",
          "Condition": { "StringEquals": { "aws:ResourceTag/k": "v" } } },
        { "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
          "Condition": { "StringEqualsIfExists": { "aws:ResourceTag/k": "v" }, "Null": { "aws:RequestTag/x": "true" } } },
        { "Effect": "Deny", "Action": "ec2:*", "Resource": "arn:x" }
    ]});
    let r = |resource, context| Request { action: "ec2:DeleteVpc", resource, context };
    assert!(allows(&policy, &r("arn:y", &[("aws:ResourceTag/k", "v")])));
    assert!(!allows(&policy, &r("arn:y", &[("aws:ResourceTag/k", "w")])));
    assert!(!allows(&policy, &r("arn:y", &[])), "a missing key fails the condition");
    assert!(!allows(&policy, &r("arn:x", &[("aws:ResourceTag/k", "v")])), "deny wins");
    let t = |context| Request { action: "ec2:CreateTags", resource: "arn:y", context };
    assert!(allows(&policy, &t(&[])), "IfExists: a missing key passes");
    assert!(!allows(&policy, &t(&[("aws:ResourceTag/k", "w")])));
    assert!(!allows(&policy, &t(&[("aws:RequestTag/x", "1")])), "Null: the key must be absent");
    let sized = serde_json::json!({ "Statement": [
        { "Effect": "Allow", "Action": "autoscaling:UpdateAutoScalingGroup", "Resource": "*",
          "Condition": { "NumericLessThanEqualsIfExists": { "autoscaling:MaxSize": "4" } } }
    ]});
    let u = |context| Request { action: "autoscaling:UpdateAutoScalingGroup", resource: "arn:g", context };
    assert!(allows(&sized, &u(&[("autoscaling:MaxSize", "4")])) && allows(&sized, &u(&[])));
    assert!(!allows(&sized, &u(&[("autoscaling:MaxSize", "5")])), "compared as numbers");
    assert!(!allows(&sized, &u(&[("autoscaling:MaxSize", "x")])), "not a number: no match");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_exactly_the_declared_actions_moto_lets_the_deploy_role_deploy_and_refuses_the_rest() {
    let moto = common::OwnMoto::start();
    let account = Account::new();
    account.json_at(&moto.url, &["ci-role", "--github-repo", REPO, "--yes"], &[], 0).await;
    // The first `up` is an administrator's (resource policies); the deploy role's change all the rest.
    account.json_at(&moto.url, &["up", "--yes"], &[], 0).await;
    let admin = account.clients_at(&moto.url, ("test", "test", None)).await;
    // moto evaluates a statement's resources only for IAM roles, takes a condition it cannot
    // evaluate as a denial, and knows no permissions boundary: each of the role's policies gets a
    // version with the same actions on `*` (its unconditional denials kept), so what moto
    // enforces is the set of actions. A denial under a condition is dropped: moto would deny
    // unconditionally what AWS denies only when the condition holds.
    let moto_view = |policy: &Value| {
        let mut view = policy.clone();
        let statements = view["Statement"].as_array_mut().expect("statements");
        statements.retain(|s| s["Effect"] != "Deny" || s.get("Condition").is_none());
        for s in statements {
            if s["Effect"] == "Allow" {
                s["Resource"] = "*".into();
            }
            s.as_object_mut().expect("statement").remove("Condition");
            // moto names CloudWatch's actions by its signing name (`monitoring:`), IAM by `cloudwatch:`.
            let actions: Vec<Value> = s["Action"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .flat_map(|a| match a.as_str().and_then(|a| a.strip_prefix("cloudwatch:")) {
                    Some(op) => vec![a.clone(), Value::from(format!("monitoring:{op}"))],
                    None => vec![a],
                })
                .collect();
            s["Action"] = Value::from(actions);
        }
        view
    };
    let attached = admin.iam.list_attached_role_policies().role_name("konnichiwa-deploy").send().await;
    let attached = attached.expect("the deploy role's policies");
    assert!(attached.attached_policies().len() > 1, "the deploy role holds several managed policies");
    for arn in attached.attached_policies().iter().filter_map(|p| p.policy_arn()) {
        let got = admin.iam.get_policy().policy_arn(arn).send().await.expect("policy");
        let version = got.policy().and_then(|p| p.default_version_id()).expect("version").to_owned();
        let v = admin.iam.get_policy_version().policy_arn(arn).version_id(version).send().await.expect("version");
        let doc =
            provisioner::resources::iam::decode_policy(v.policy_version().and_then(|v| v.document()).expect("doc"));
        let r = admin.iam.create_policy_version().policy_arn(arn).policy_document(moto_view(&doc).to_string());
        r.set_as_default(true).send().await.expect("moto's view of the policy");
    }
    // CI's job assumes the role (moto checks no trust before enforcement is on).
    let session = admin
        .sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/konnichiwa-deploy", account.id))
        .role_session_name("ci")
        .send()
        .await
        .expect("assume the deploy role");
    let creds = session.credentials().expect("credentials");
    let (id, secret, token) =
        (creds.access_key_id().to_owned(), creds.secret_access_key().to_owned(), creds.session_token().to_owned());
    moto.enforce_iam(true).await;

    // moto checks signatures: a proxy signs each request again for moto's address (and in the
    // form moto rebuilds bodies in); it changes nothing else.
    let proxy = common::faults::Proxy::start(&moto.url, common::faults::Faults::default()).await;
    proxy.resign_for_moto(&id, &secret);
    let env = [
        ("AWS_ACCESS_KEY_ID", id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ("AWS_SESSION_TOKEN", token.as_str()),
        ("AWS_MAX_ATTEMPTS", "3"),
    ];
    let image = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "5".repeat(64));
    for args in [
        vec!["up", "--yes"],
        vec!["deploy", "--image", &image, "--no-wait"],
        vec!["rollback", "--no-wait"],
        vec!["down", "--yes", "--purge"],
    ] {
        let out = account.run_at(&proxy.url, &args, &env).await;
        assert_eq!(out.status.code(), Some(0), "{args:?} as the deploy role:\n{}", common::text(&out));
    }
    // The same credentials are refused what the policy does not grant, or denies.
    let outside = account.run_at(&proxy.url, &["ci-role", "--github-repo", REPO, "--yes"], &env).await;
    assert_eq!(outside.status.code(), Some(1));
    let said = common::text(&outside);
    assert!(said.contains("AccessDenied") || said.contains("not authorized"), "{said}");
    let deploy = account.clients_at(&proxy.url, (&id, &secret, Some(&token))).await;
    let boundary = format!("arn:aws:iam::{}:policy/konnichiwa-boundary", account.id);
    let admin_doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let trust_anyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}]}"#;
    let refused: Vec<(&str, bool)> = vec![
        (
            "UpdateAssumeRolePolicy",
            deploy
                .iam
                .update_assume_role_policy()
                .role_name("konnichiwa-execution")
                .policy_document(trust_anyone)
                .send()
                .await
                .is_err(),
        ),
        (
            "CreateRole",
            deploy
                .iam
                .create_role()
                .role_name("konnichiwa-admin")
                .assume_role_policy_document(trust_anyone)
                .send()
                .await
                .is_err(),
        ),
        (
            "DeleteRolePermissionsBoundary",
            deploy.iam.delete_role_permissions_boundary().role_name("konnichiwa-task").send().await.is_err(),
        ),
        (
            "PutRolePermissionsBoundary",
            deploy
                .iam
                .put_role_permissions_boundary()
                .role_name("konnichiwa-task")
                .permissions_boundary("arn:aws:iam::aws:policy/AdministratorAccess")
                .send()
                .await
                .is_err(),
        ),
        (
            "CreatePolicyVersion",
            deploy
                .iam
                .create_policy_version()
                .policy_arn(&boundary)
                .policy_document(admin_doc)
                .set_as_default(true)
                .send()
                .await
                .is_err(),
        ),
        (
            "PutRolePolicy on the deploy role",
            deploy
                .iam
                .put_role_policy()
                .role_name("konnichiwa-deploy")
                .policy_name("more")
                .policy_document(admin_doc)
                .send()
                .await
                .is_err(),
        ),
        ("CreateUser", deploy.iam.create_user().user_name("backdoor").send().await.is_err()),
        (
            "CreatePolicyVersion of its own policy",
            deploy
                .iam
                .create_policy_version()
                .policy_arn(format!("arn:aws:iam::{}:policy/konnichiwa-deploy-network", account.id))
                .policy_document(admin_doc)
                .set_as_default(true)
                .send()
                .await
                .is_err(),
        ),
        (
            "PutBucketPolicy handing the log bucket to another account",
            deploy
                .s3
                .put_bucket_policy()
                .bucket(format!("konnichiwa-alb-logs-{}-ap-northeast-1", account.id))
                .policy(
                    trust_anyone
                        .replace("sts:AssumeRole", "s3:*")
                        .replace("\"Principal\"", "\"Resource\":\"*\",\"Principal\""),
                )
                .send()
                .await
                .is_err(),
        ),
        (
            "PutResourcePolicy letting anyone read the API key",
            deploy
                .secrets
                .put_resource_policy()
                .secret_id("konnichiwa/api-key")
                .resource_policy(trust_anyone.replace("sts:AssumeRole", "secretsmanager:GetSecretValue"))
                .send()
                .await
                .is_err(),
        ),
        ("CreateTopic with its own policy", deploy.sns.create_topic().name("konnichiwa-alarms").send().await.is_err()),
        (
            "DetachRolePolicy of its denials",
            deploy
                .iam
                .detach_role_policy()
                .role_name("konnichiwa-deploy")
                .policy_arn(format!("arn:aws:iam::{}:policy/konnichiwa-deploy-account-wide", account.id))
                .send()
                .await
                .is_err(),
        ),
    ];
    let allowed: Vec<&str> = refused.iter().filter(|(_, r)| !r).map(|(what, _)| *what).collect();
    assert!(allowed.is_empty(), "moto let the deploy role do: {allowed:?}");
    moto.enforce_iam(false).await;
}

#[tokio::test]
async fn a_rewritten_policy_keeps_no_old_version_to_make_the_default_again() {
    let account = Account::new();
    account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    // ECS Exec adds statements to the boundary and to the deploy role's policies.
    account.edit_stack(|t| t.replace("  # exec: true ", "  exec: true "));
    let again = account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    assert!(mutations(&again).iter().any(|m| m == "IAM:CreatePolicyVersion"), "{:?}", mutations(&again));
    let c = account.clients().await;
    let listed = c.iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.expect("list");
    let ours: Vec<&str> =
        listed.policies().iter().filter_map(|p| p.arn()).filter(|a| a.contains("/konnichiwa-")).collect();
    assert!(ours.len() > 2, "{ours:?}");
    for arn in ours {
        let versions = c.iam.list_policy_versions().policy_arn(arn).send().await.expect("versions");
        let ids: Vec<&str> = versions.versions().iter().filter_map(|v| v.version_id()).collect();
        assert_eq!(ids.len(), 1, "{arn}: {ids:?}");
    }
}

/// The role ECS assumes to shift traffic, as IAM holds it: trust, boundary, attached policies.
async fn load_balancer_role(c: &provisioner::aws::Clients) -> Option<(Value, Option<String>, Vec<String>)> {
    let got = c.iam.get_role().role_name("konnichiwa-ecs-lb").send().await.ok()?;
    let role = got.role().expect("role");
    let trust = provisioner::resources::iam::decode_policy(role.assume_role_policy_document().expect("trust"));
    let boundary = role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_owned);
    let attached = c.iam.list_attached_role_policies().role_name("konnichiwa-ecs-lb").send().await.expect("attached");
    let managed = attached.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect();
    Some((trust, boundary, managed))
}

#[tokio::test]
async fn a_strategy_that_shifts_traffic_has_the_bounded_load_balancer_role_and_rolling_again_deletes_it() {
    let account = Account::new();
    let c = account.clients().await;
    let canary = |t: String| t.replace("slo_alarms: true }", "slo_alarms: true, strategy: canary }");
    let rolling = |t: String| t.replace("slo_alarms: true, strategy: canary }", "slo_alarms: true }");
    account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    let first = account.json(&["up", "--yes"], 0);
    assert!(load_balancer_role(&c).await.is_none(), "a rolling stack has none");
    assert_eq!(first["outputs"]["iam"]["load_balancer_role_arn"], Value::Null);
    let session = account.session_of("konnichiwa-deploy").await;
    let env = env_refs(&session);
    let refused = |out: &std::process::Output, what: &str| {
        let said = common::text(out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("need an administrator") && said.contains(what), "{said}");
    };

    // Turned on: CI may not make the role; the administrator's `ci-role` makes it and lets the
    // deploy role pass it to ECS, and CI's `up` attaches the policy.
    account.edit_stack(canary);
    refused(&account.run_with(&["up", "--yes"], &env), "iam-role konnichiwa-ecs-lb (create)");
    account.json(&["ci-role", "--github-repo", REPO, "--yes"], 0);
    let policy = deploy_policy(&account).await;
    let arn = format!("arn:aws:iam::{}:role/konnichiwa-ecs-lb", account.id);
    let to_ecs = [("iam:PassedToService", "ecs.amazonaws.com")];
    assert!(allows(&policy, &Request { action: "iam:PassRole", resource: &arn, context: &to_ecs }), "{policy:#}");
    let to_tasks = [("iam:PassedToService", "ecs-tasks.amazonaws.com")];
    assert!(!allows(&policy, &Request { action: "iam:PassRole", resource: &arn, context: &to_tasks }));
    let up = account.json_with(&["up", "--yes"], &env, 0);
    assert!(mutations(&up).iter().any(|m| m == "IAM:AttachRolePolicy"), "{:?}", mutations(&up));
    assert_eq!(up["outputs"]["iam"]["load_balancer_role_arn"], arn.as_str());
    let (trust, boundary, managed) = load_balancer_role(&c).await.expect("the role");
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "ecs.amazonaws.com");
    assert_eq!(boundary, Some(format!("arn:aws:iam::{}:policy/konnichiwa-boundary", account.id)));
    assert_eq!(managed, [provisioner::resources::iam::ECS_LOAD_BALANCERS_POLICY]);
    let again = account.json_with(&["up", "--yes"], &env, 0);
    assert!(mutations(&again).is_empty(), "a second up changes nothing: {:?}", mutations(&again));

    // Back on rolling: only an administrator deletes it; the plan shows the delete.
    account.edit_stack(rolling);
    refused(&account.run_with(&["up", "--yes"], &env), "iam-role konnichiwa-ecs-lb (delete)");
    let plan = account.json(&["plan"], 0);
    let row = common::entry(&plan["resources"], "name", "konnichiwa-ecs-lb");
    assert_eq!((row["kind"].as_str(), row["action"].as_str()), (Some("iam-role"), Some("delete")), "{row}");
    let off = account.json(&["up", "--yes"], 0);
    assert!(mutations(&off).iter().any(|m| m == "IAM:DeleteRole"), "{:?}", mutations(&off));
    assert!(load_balancer_role(&c).await.is_none(), "deleted");
    assert!(mutations(&account.json(&["up", "--yes"], 0)).is_empty(), "and nothing more to do");

    // `down` by the deploy role keeps it with the other roles; an administrator's deletes it.
    account.edit_stack(canary);
    account.json(&["up", "--yes"], 0);
    let kept = account.json_with(&["down", "--yes", "--purge"], &env, 0);
    assert!(kept["kept"].to_string().contains("role/konnichiwa-ecs-lb"), "{:#}", kept["kept"]);
    let down = account.json(&["down", "--yes", "--purge"], 0);
    assert_eq!(down["leftovers"], serde_json::json!([]), "{down:#}");
    assert!(load_balancer_role(&c).await.is_none(), "deleted with the stack");
}
