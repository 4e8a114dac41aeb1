//! IAM, ECR, the API-key secret, the log group and the ECS cluster on EC2 capacity, against moto:
//! created tagged and as specified, a second `up` without mutations, drift repaired, the secret's
//! value never shown and never lost, an architecture mismatch refused, `down` complete.

use crate::common;

use std::collections::BTreeSet;

use crate::common::{Account, mutations, text};
use aws_sdk_ec2::types::Filter;
use serde_json::Value;

fn all_output(o: &std::process::Output) -> String {
    text(o)
}

#[tokio::test]
async fn up_creates_every_kind_as_specified_and_a_second_up_changes_nothing() {
    let account = Account::new();
    let first = account.json_with(&["up", "--yes"], &[("API_KEY", "first-key-for-platform-test-0001")], 0);
    assert_eq!(first["applied"], true);
    let kinds: BTreeSet<&str> =
        first["plan"]["resources"].as_array().expect("resources").iter().filter_map(|r| r["kind"].as_str()).collect();
    for k in [
        "vpc",
        "ecr-repository",
        "log-group",
        "secret",
        "iam-role",
        "instance-profile",
        "ecs-cluster",
        "launch-template",
        "auto-scaling-group",
        "capacity-provider",
        "cluster-strategy",
    ] {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
    let out = &first["outputs"];
    let c = account.clients().await;

    // IAM: least privilege, scoped to the real secret ARN.
    let secret_arn = out["secret"]["secret_arn"].as_str().expect("secret arn");
    let policy = c
        .iam
        .get_role_policy()
        .role_name("konnichiwa-execution")
        .policy_name("execution")
        .send()
        .await
        .expect("policy");
    let doc = provisioner::resources::iam::decode_policy(policy.policy_document());
    let read = doc["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .find(|s| s["Sid"] == "ReadOurApiKey")
        .expect("secret statement");
    assert_eq!(read["Resource"], secret_arn);
    let attached = c.iam.list_attached_role_policies().role_name("konnichiwa-instance").send().await.expect("attached");
    let arns: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
    assert_eq!(arns, [provisioner::resources::iam::ECS_FOR_EC2_POLICY]);
    let profile =
        c.iam.get_instance_profile().instance_profile_name("konnichiwa-instance").send().await.expect("profile");
    assert_eq!(profile.instance_profile().map(|p| p.roles().len()), Some(1));

    // ECR
    let repo = c.ecr.describe_repositories().repository_names("konnichiwa").send().await.expect("repo");
    let r = &repo.repositories()[0];
    assert_eq!(r.image_scanning_configuration().map(|s| s.scan_on_push()), Some(true));
    assert_eq!(r.image_tag_mutability().map(|m| m.as_str()), Some("IMMUTABLE"));
    let lifecycle = c.ecr.get_lifecycle_policy().repository_name("konnichiwa").send().await.expect("lifecycle");
    let lp: Value = serde_json::from_str(lifecycle.lifecycle_policy_text().expect("text")).expect("json");
    assert_eq!(lp["rules"][0]["selection"]["countNumber"], 20);

    // Logs
    let groups = c.logs.describe_log_groups().log_group_name_prefix("/ecs/konnichiwa").send().await.expect("groups");
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));

    // Secret holds API_KEY.
    let value = c.secrets.get_secret_value().secret_id("konnichiwa/api-key").send().await.expect("value");
    assert_eq!(value.secret_string(), Some("first-key-for-platform-test-0001"));

    // Launch template: AMI from the public SSM parameter, IMDSv2 hop 1, encrypted root, user data.
    let ami = c.ssm.get_parameter().name(RECOMMENDED).send().await.expect("ssm");
    let latest = latest_template_version(&c).await;
    let data = latest.launch_template_data().expect("data");
    assert_eq!(data.image_id(), ami.parameter().and_then(|p| p.value()));
    assert_eq!(data.metadata_options().and_then(|m| m.http_tokens()).map(|t| t.as_str()), Some("required"));
    assert_eq!(data.metadata_options().and_then(|m| m.http_put_response_hop_limit()), Some(1));
    let ebs = data.block_device_mappings()[0].ebs().expect("ebs");
    assert_eq!((ebs.encrypted(), ebs.volume_size()), (Some(true), Some(30)));
    use base64::Engine;
    let ud = base64::engine::general_purpose::STANDARD.decode(data.user_data().expect("user data")).expect("b64");
    assert!(String::from_utf8_lossy(&ud).contains("ECS_CLUSTER=konnichiwa"));

    // Auto Scaling group: across both subnets, protected from scale-in, tags propagated.
    let asg = c
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("konnichiwa-instances")
        .send()
        .await
        .expect("asg");
    let g = &asg.auto_scaling_groups()[0];
    assert_eq!((g.min_size(), g.max_size(), g.desired_capacity()), (Some(1), Some(4), Some(2)));
    assert_eq!(g.new_instances_protected_from_scale_in(), Some(true));
    assert_eq!(g.vpc_zone_identifier().map(|v| v.split(',').count()), Some(2));
    assert!(g.tags().iter().any(|t| t.key() == Some("konnichiwa:stack") && t.propagate_at_launch() == Some(true)));

    // Capacity provider with managed scaling and termination protection, the cluster's default.
    let cp = c.ecs.describe_capacity_providers().capacity_providers("konnichiwa-capacity").send().await.expect("cp");
    let asgp = cp.capacity_providers()[0].auto_scaling_group_provider().expect("asg provider");
    assert_eq!(asgp.managed_termination_protection().map(|m| m.as_str()), Some("ENABLED"));
    assert_eq!(asgp.managed_scaling().and_then(|m| m.status()).map(|s| s.as_str()), Some("ENABLED"));
    let cluster = c.ecs.describe_clusters().clusters("konnichiwa").send().await.expect("cluster");
    assert_eq!(cluster.clusters()[0].capacity_providers(), ["konnichiwa-capacity"]);

    let second = account.json_with(&["up", "--yes"], &[("API_KEY", "first-key-for-platform-test-0001")], 0);
    assert_eq!(second["applied"], false);
    assert_eq!(second["api_calls"]["mutating"], 0, "{:#}", second["api_calls"]);
    assert_eq!(
        account
            .run_with(&["plan", "--detailed-exitcode"], &[("API_KEY", "first-key-for-platform-test-0001")])
            .status
            .code(),
        Some(0)
    );
}

#[tokio::test]
async fn drift_in_every_kind_is_shown_and_repaired() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let c = account.clients().await;
    c.logs
        .put_retention_policy()
        .log_group_name("/ecs/konnichiwa")
        .retention_in_days(7)
        .send()
        .await
        .expect("retention");
    // (Not scan-on-push: the SDK leaves a false boolean out of the request and moto then keeps
    // the old value, so that drift cannot be made here.)
    c.ecr
        .put_image_tag_mutability()
        .repository_name("konnichiwa")
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Mutable)
        .send()
        .await
        .expect("mutable tags");
    c.iam
        .put_role_policy()
        .role_name("konnichiwa-task")
        .policy_name("sneaky")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .expect("inline");
    c.autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name("konnichiwa-instances")
        .max_size(9)
        .send()
        .await
        .expect("max");

    let plan = account.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let shown = text(&plan);
    for expected in ["retention_days: 7 -> 30", "immutable_tags: false -> true", "inline_policy.sneaky:", "max: 9 -> 4"]
    {
        assert!(shown.contains(expected), "plan lacks {expected:?}:\n{shown}");
    }
    let up = account.json(&["up", "--yes"], 0);
    let m = mutations(&up);
    for op in [
        "CloudWatch Logs:PutRetentionPolicy",
        "ECR:PutImageTagMutability",
        "IAM:DeleteRolePolicy",
        "Auto Scaling:UpdateAutoScalingGroup",
    ] {
        assert!(m.iter().any(|x| x == op), "{op} not in {m:?}");
    }
    assert_eq!(account.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0), "clean after repair");
}

/// StartInstanceRefresh's answer (moto lacks instance refreshes; AWS's shape).
const REFRESH_STARTED: &str = "<StartInstanceRefreshResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><StartInstanceRefreshResult><InstanceRefreshId>r-1</InstanceRefreshId></StartInstanceRefreshResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></StartInstanceRefreshResponse>";

fn refreshes(status: &str, version: &str) -> String {
    format!(
        "<DescribeInstanceRefreshesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeInstanceRefreshesResult><InstanceRefreshes><member><InstanceRefreshId>r-1</InstanceRefreshId><AutoScalingGroupName>konnichiwa-instances</AutoScalingGroupName><Status>{status}</Status><DesiredConfiguration><LaunchTemplate><Version>{version}</Version></LaunchTemplate></DesiredConfiguration></member></InstanceRefreshes></DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>"
    )
}

const NO_REFRESHES: &str = "<DescribeInstanceRefreshesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeInstanceRefreshesResult><InstanceRefreshes/></DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ami_rolls_out_by_an_instance_refresh_read_from_aws() {
    use common::faults::{Faults, Proxy, Script};
    let account = Account::new();
    let proxy = Proxy::start(&common::moto_url(), Faults::default()).await;
    let url = proxy.url.clone();
    account.edit_stack(|t| t.replace("ami: ecs-optimized-al2023", "ami: ami-0aaaaaaaaaaaaaaa1"));
    account.json_at(&url, &["up", "--yes"], &[], 0).await;
    account.edit_stack(|t| t.replace("ami: ami-0aaaaaaaaaaaaaaa1", "ami: ami-0bbbbbbbbbbbbbbb2"));
    let plan = account.run_at(&url, &["plan", "--detailed-exitcode"], &[]).await;
    assert_eq!(plan.status.code(), Some(2));
    assert!(text(&plan).contains("ami: ami-0aaaaaaaaaaaaaaa1 -> ami-0bbbbbbbbbbbbbbb2"), "{}", text(&plan));

    // The run that writes the new version is killed right after it: the version exists but is
    // not the default yet, and the group still runs version 1.
    let mut killed = proxy.stop_after_operation("CreateLaunchTemplateVersion");
    let mut child = tokio::process::Command::from(account.command(&url, &["up", "--yes"], &[])).spawn().expect("spawn");
    assert!(killed.recv().await.is_some());
    child.kill().await.expect("kill");
    let m = proxy.requests("CreateLaunchTemplateVersion");
    assert_eq!(m.len(), 1, "the version was written before the kill");

    // The next run reads from AWS what is left: make the version the default, and start a
    // refresh with the settings that replace protected instances and let ECS drain them.
    // `up` asks once, for its plan: its apply, before any change to Auto Scaling, is answered as
    // the plan was (`read_replay`).
    proxy.script(Script::body("DescribeInstanceRefreshes", 1, NO_REFRESHES));
    proxy.script(Script::body("StartInstanceRefresh", 1, REFRESH_STARTED));
    let up = account.json_at(&url, &["up", "--yes"], &[], 0).await;
    let m = mutations(&up);
    assert_eq!(m, ["EC2:ModifyLaunchTemplate", "Auto Scaling:StartInstanceRefresh"], "what is left to do: {m:?}");

    let sent = proxy.requests("StartInstanceRefresh").join("&");
    for expected in [
        "Preferences.ScaleInProtectedInstances=Refresh",
        "Preferences.SkipMatching=true",
        "DesiredConfiguration.LaunchTemplate.Version=2",
    ] {
        assert!(sent.contains(expected), "StartInstanceRefresh lacks {expected}: {sent}");
    }

    // While it runs, nothing is due; a refresh already under way is read as in progress.
    proxy.script(Script::body("DescribeInstanceRefreshes", 1, &refreshes("InProgress", "2")));
    assert_eq!(account.run_at(&url, &["plan", "--detailed-exitcode"], &[]).await.status.code(), Some(0));
    proxy.script(Script::body("DescribeInstanceRefreshes", 1, NO_REFRESHES));
    proxy.script(Script::error(
        "StartInstanceRefresh",
        1,
        "InstanceRefreshInProgress",
        "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
    ));
    let up = account.run_at(&url, &["up", "--yes"], &[]).await;
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    assert!(text(&up).contains("already in progress"), "{}", text(&up));

    let c = account.clients().await;
    let lt = c.ec2.describe_launch_templates().launch_template_names("konnichiwa-instances").send().await.expect("lt");
    assert_eq!(lt.launch_templates()[0].default_version_number(), Some(2), "the default says what should run");
    every_group_call_names_its_version(&proxy);
}

/// Asserts that no call that sets an Auto Scaling group's launch template left the version to
/// AWS (`$Latest`, `$Default`, or none): a group on those launches what is written later, unchecked.
fn every_group_call_names_its_version(proxy: &common::faults::Proxy) {
    for op in ["CreateAutoScalingGroup", "UpdateAutoScalingGroup", "StartInstanceRefresh"] {
        for request in proxy.requests(op) {
            assert!(!request.contains("%24Latest") && !request.contains("%24Default"), "{op}: {request}");
            if request.contains("LaunchTemplate.") {
                let version = request
                    .split('&')
                    .find_map(|kv| {
                        let (key, value) = kv.split_once('=')?;
                        key.ends_with("LaunchTemplate.Version").then_some(value)
                    })
                    .unwrap_or_else(|| panic!("{op} names no version: {request}"));
                assert!(version.chars().all(|c| c.is_ascii_digit()), "{op} version {version}: {request}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_role_pins_a_new_version_and_leaves_the_refresh_to_an_administrator() {
    use common::faults::{Faults, Proxy, Script};
    let account = Account::new();
    let proxy = Proxy::start(&common::moto_url(), Faults::default()).await;
    let url = proxy.url.clone();
    account.edit_stack(|t| t.replace("ami: ecs-optimized-al2023", "ami: ami-0aaaaaaaaaaaaaaa1"));
    account.json_at(&url, &["ci-role", "--github-repo", "octo-org/konnichiwa", "--yes"], &[], 0).await;
    account.json_at(&url, &["up", "--yes"], &[], 0).await;
    account.edit_stack(|t| t.replace("ami: ami-0aaaaaaaaaaaaaaa1", "ami: ami-0bbbbbbbbbbbbbbb2"));
    let session = account.session_of("konnichiwa-deploy").await;
    proxy.script(Script::body("DescribeInstanceRefreshes", 10, NO_REFRESHES));
    let up = account.run_at(&url, &["up", "--yes", "--json"], &common::env_refs(&session)).await;
    let said = text(&up);
    assert_eq!(up.status.code(), Some(0), "{said}");
    assert!(proxy.requests("StartInstanceRefresh").is_empty(), "the deploy role starts no refresh");
    let updates = proxy.requests("UpdateAutoScalingGroup");
    assert!(updates.iter().any(|r| r.contains("LaunchTemplate.Version=2")), "{updates:?}");
    assert!(said.contains("keep theirs until an administrator's `up` refreshes them"), "{said}");
    every_group_call_names_its_version(&proxy);
}

/// SSM's answer for the recommended ECS AMI once AWS has published `ami`.
fn recommended(ami: &str) -> String {
    serde_json::json!({ "Parameter": {
        "Name": RECOMMENDED, "Type": "String", "Value": ami, "Version": 99, "DataType": "aws:ec2:image",
        "ARN": format!("arn:aws:ssm:ap-northeast-1::parameter{RECOMMENDED}"),
    }})
    .to_string()
}

const RECOMMENDED: &str = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id";

/// The launch template's latest version.
async fn latest_template_version(c: &provisioner::aws::Clients) -> aws_sdk_ec2::types::LaunchTemplateVersion {
    let lt = c
        .ec2
        .describe_launch_template_versions()
        .launch_template_name("konnichiwa-instances")
        .versions("$Latest")
        .send()
        .await
        .expect("versions");
    lt.launch_template_versions()[0].clone()
}

/// The AMI and description of the launch template's latest version.
async fn template_ami(c: &provisioner::aws::Clients) -> (String, String) {
    let v = &latest_template_version(c).await;
    let ami = v.launch_template_data().and_then(|d| d.image_id()).unwrap_or_default().to_owned();
    (ami, v.version_description().unwrap_or_default().to_owned())
}

/// AWS publishes a new recommended ECS AMI: `up` keeps the fleet on the AMI it runs (no new
/// version, no instance refresh), `plan` and `status` say a newer one is out, and only
/// `up --update-ami` (or the stack's opt-in) moves to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_recommended_ami_changes_nothing_until_asked() {
    use common::faults::{Faults, Proxy, Script};
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let c = account.clients().await;
    let (running, source) = template_ami(&c).await;
    assert_eq!(source, format!("AMI: recommended by {RECOMMENDED}"), "the version says what chose its AMI");

    let newer = "ami-0f0f0f0f0f0f0f0f0";
    let proxy = Proxy::start(&common::moto_url(), Faults::default()).await;
    proxy.script(Script::body("GetParameter", 1000, &recommended(newer)));
    let url = proxy.url.clone();

    let plan = account.json_at(&url, &["plan"], &[], 0).await;
    assert_eq!(plan["changes_pending"], false, "{plan:#}");
    let note = plan["notes"][0].as_str().unwrap_or_default();
    assert!(note.contains(newer) && note.contains(&running) && note.contains("up --update-ami"), "{plan:#}");
    let text_plan = account.run_at(&url, &["plan"], &[]).await;
    assert!(text(&text_plan).contains(&format!("Note: AWS now recommends {newer}")), "{}", text(&text_plan));
    let up = account.json_at(&url, &["up", "--yes"], &[], 0).await;
    assert_eq!(up["api_calls"]["mutating"], 0, "the fleet stays: {:#}", up["api_calls"]);
    assert_eq!(template_ami(&c).await.0, running);
    let status = account.json_at(&url, &["status"], &[], 0).await;
    assert!(status["notes"][0].as_str().unwrap_or_default().contains(newer), "{status:#}");

    // Asked: the plan shows the move, and `up --update-ami` makes it.
    let preview = account.json_at(&url, &["plan", "--update-ami"], &[], 0).await;
    let template = preview["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["kind"] == "launch-template")
        .expect("the template")
        .clone();
    assert_eq!(template["action"], "update", "{template:#}");
    assert_eq!(template["fields"][0]["field"], "ami");
    assert_eq!(
        (template["fields"][0]["old"].as_str(), template["fields"][0]["new"].as_str()),
        (Some(running.as_str()), Some(newer))
    );
    // (moto has no instance refreshes: AWS's answers, as in the test above; the new version is
    // known, and a refresh to it looked for, only as it applies.)
    proxy.script(Script::body("DescribeInstanceRefreshes", 1, NO_REFRESHES));
    proxy.script(Script::body("StartInstanceRefresh", 1, REFRESH_STARTED));
    account.json_at(&url, &["up", "--yes", "--update-ami"], &[], 0).await;
    assert_eq!(template_ami(&c).await, (newer.to_owned(), format!("AMI: recommended by {RECOMMENDED}")));
    let refresh = proxy.requests("StartInstanceRefresh").join("&");
    assert!(refresh.contains("DesiredConfiguration.LaunchTemplate.Version=2"), "{refresh}");
    // Now on the recommended AMI (the refresh under way): nothing to say, nothing to do.
    proxy.script(Script::body("DescribeInstanceRefreshes", 1, &refreshes("InProgress", "2")));
    let after = account.json_at(&url, &["plan"], &[], 0).await;
    assert_eq!(
        (after["changes_pending"].as_bool(), after["notes"].as_array().map(Vec::len)),
        (Some(false), Some(0)),
        "{after:#}"
    );

    // Opted in: the next release moves it without the flag.
    account.edit_stack(|t| t.replace("follow_recommended_ami: false", "follow_recommended_ami: true"));
    let proxy = Proxy::start(&common::moto_url(), Faults::default()).await;
    proxy.script(Script::body("GetParameter", 1000, &recommended("ami-0e0e0e0e0e0e0e0e0")));
    proxy.script(Script::body("DescribeInstanceRefreshes", 1, NO_REFRESHES));
    proxy.script(Script::body("StartInstanceRefresh", 1, REFRESH_STARTED));
    account.json_at(&proxy.url, &["up", "--yes"], &[], 0).await;
    assert_eq!(template_ami(&c).await.0, "ami-0e0e0e0e0e0e0e0e0");
    account.json(&["down", "--yes", "--purge"], 0);
}

#[tokio::test]
async fn the_api_key_is_written_only_when_it_changes_never_shown_and_never_lost() {
    let account = Account::new();
    let key_a = "secret-value-a-3f9d2c1b7e6a5d4c";
    let key_b = "secret-value-b-8e7f6a5b4c3d2e1f";
    let mut everything = String::new();
    let mut run = |args: &[&str], key: &str| {
        let mut all = args.to_vec();
        all.push("--json");
        let o = account.run_with(&all, &[("API_KEY", key)]);
        everything.push_str(&all_output(&o));
        o
    };
    let first = run(&["up", "--yes"], key_a);
    assert_eq!(first.status.code(), Some(0), "{}", all_output(&first));
    let same = run(&["up", "--yes"], key_a);
    let v: Value = serde_json::from_slice(&same.stdout).expect("json");
    assert!(!mutations(&v).iter().any(|m| m.contains("PutSecretValue")), "same key, no new version");
    let plan = run(&["plan"], key_b);
    let v: Value = serde_json::from_slice(&plan.stdout).expect("json");
    let secret = v["resources"].as_array().expect("resources").iter().find(|r| r["kind"] == "secret").expect("secret");
    assert_eq!(secret["fields"][0]["new"], "value will change (from API_KEY)");
    let changed = run(&["up", "--yes"], key_b);
    let v: Value = serde_json::from_slice(&changed.stdout).expect("json");
    assert_eq!(mutations(&v).iter().filter(|m| m.contains("PutSecretValue")).count(), 1);
    assert!(
        mutations(&v).iter().any(|m| m == "ECS:UpdateService"),
        "tasks restart to read the new key: {:?}",
        mutations(&v)
    );
    let service = v["plan"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["kind"] == "ecs-service")
        .expect("service");
    assert_eq!(service["fields"][0]["field"], "tasks", "{service}");
    let c = account.clients().await;
    assert_eq!(
        c.secrets.get_secret_value().secret_id("konnichiwa/api-key").send().await.expect("v").secret_string(),
        Some(key_b)
    );

    // down schedules deletion; up restores the same secret and its value.
    let down = run(&["down", "--yes"], key_b);
    assert_eq!(down.status.code(), Some(0), "{}", all_output(&down));
    let d = c.secrets.describe_secret().secret_id("konnichiwa/api-key").send().await.expect("still there");
    assert!(d.deleted_date().is_some(), "scheduled for deletion, not deleted");
    let again = account.run(&["up", "--yes", "--json"]); // no API_KEY: keep what the secret holds
    everything.push_str(&all_output(&again));
    assert_eq!(again.status.code(), Some(0), "{}", all_output(&again));
    let v: Value = serde_json::from_slice(&again.stdout).expect("json");
    let m = mutations(&v);
    assert!(
        m.iter().any(|x| x == "Secrets Manager:RestoreSecret")
            && !m.iter().any(|x| x == "Secrets Manager:CreateSecret"),
        "{m:?}"
    );
    assert_eq!(
        c.secrets.get_secret_value().secret_id("konnichiwa/api-key").send().await.expect("v").secret_string(),
        Some(key_b),
        "no key lost"
    );

    for key in [key_a, key_b] {
        assert!(!everything.contains(key), "the key appeared in provisioner output");
    }
}

#[tokio::test]
async fn without_api_key_a_new_secret_gets_a_generated_key_that_is_not_printed() {
    let account = Account::new();
    let out = account.run(&["up", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c = account.clients().await;
    let value = c
        .secrets
        .get_secret_value()
        .secret_id("konnichiwa/api-key")
        .send()
        .await
        .expect("v")
        .secret_string()
        .expect("string")
        .to_owned();
    assert!(value.len() >= 32, "{} characters", value.len());
    let shown = text(&out);
    assert!(!shown.contains(&value), "the generated key was printed");
    assert!(shown.contains("aws secretsmanager get-secret-value --secret-id konnichiwa/api-key"), "{shown}");
}

#[tokio::test]
async fn a_graviton_instance_type_with_an_x86_image_is_refused_before_any_change() {
    let account = Account::new();
    account.edit_stack(|t| {
        let image_line = t.lines().find(|l| l.trim_start().starts_with("image:")).unwrap_or_default().to_owned();
        t.replace("instance_type: t3.small", "instance_type: t4g.small").replace(&image_line, "  image: build")
    });
    let out = account.run(&["up", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("t4g.small runs arm64 but the image is built for x86_64"), "{}", text(&out));
    let c = account.clients().await;
    let vpcs = c
        .ec2
        .describe_vpcs()
        .filters(Filter::builder().name("tag:konnichiwa:stack").values("konnichiwa").build())
        .send()
        .await
        .expect("vpcs");
    assert!(vpcs.vpcs().is_empty(), "nothing was created");
}

#[tokio::test]
async fn down_removes_every_kind_in_order_and_leaves_nothing() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let down = account.json(&["down", "--yes"], 0);
    assert_eq!(down["leftovers"], serde_json::json!([]));
    let order = mutations(&down);
    let pos = |op: &str| order.iter().position(|m| m == op).unwrap_or_else(|| panic!("{op} not in {order:?}"));
    assert!(pos("ECS:PutClusterCapacityProviders") < pos("ECS:DeleteCapacityProvider"));
    assert!(pos("ECS:DeleteCapacityProvider") < pos("Auto Scaling:DeleteAutoScalingGroup"));
    assert!(pos("Auto Scaling:SetInstanceProtection") < pos("Auto Scaling:DeleteAutoScalingGroup"));
    assert!(pos("Auto Scaling:DeleteAutoScalingGroup") < pos("ECS:DeleteCluster"));
    assert!(
        pos("ECS:DeleteCluster") < pos("EC2:DeleteLaunchTemplate")
            || pos("EC2:DeleteLaunchTemplate") < pos("ECS:DeleteCluster")
    );
    assert!(pos("ECR:DeleteRepository") < pos("IAM:DeleteRole"));
    assert!(pos("Secrets Manager:DeleteSecret") < pos("IAM:DeleteRole"));
    assert!(pos("IAM:DeleteRole") < pos("EC2:DeleteVpc"));
    let c = account.clients().await;
    let running = c
        .ec2
        .describe_instances()
        .filters(Filter::builder().name("instance-state-name").values("pending").values("running").build())
        .send()
        .await
        .expect("instances");
    assert_eq!(
        running.reservations().iter().map(|r| r.instances().len()).sum::<usize>(),
        0,
        "scale-in-protected instances were terminated too"
    );
    let again = account.json(&["down", "--yes"], 0);
    assert_eq!(again["api_calls"]["mutating"], 0);
}
