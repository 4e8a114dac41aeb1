//! The load balancer, task definition, service and auto scaling against moto: created as
//! specified, drift repaired, `deploy --image` registering exactly one revision, a rollout that
//! does not complete ending in exit 3 with diagnostics, `status`, and `down`.

use crate::common;

use crate::common::{Account, mutations, text};
use serde_json::Value;

#[tokio::test]
async fn up_puts_the_service_behind_the_load_balancer() {
    let account = Account::new();
    let up = account.json(&["up", "--yes"], 0);
    let out = &up["outputs"];
    let url = out["load_balancer"]["url"].as_str().expect("url");
    assert!(url.starts_with("http://") && url.contains("elb"), "{url}");
    let c = account.clients().await;

    let lbs = c.elb.describe_load_balancers().names("konnichiwa-alb").send().await.expect("lb");
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert_eq!(lb.security_groups(), [out["network"]["load_balancer_security_group_id"].as_str().expect("sg")]);
    let tgs = c.elb.describe_target_groups().names("konnichiwa-tg").send().await.expect("tg");
    let tg = &tgs.target_groups()[0];
    assert_eq!(tg.health_check_path(), Some("/health"));
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("instance"));
    let attrs = c
        .elb
        .describe_target_group_attributes()
        .target_group_arn(tg.target_group_arn().expect("arn"))
        .send()
        .await
        .expect("attrs");
    let delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value());
    assert_eq!(delay, Some("30"));
    let listeners = c
        .elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().expect("arn"))
        .send()
        .await
        .expect("listeners");
    assert_eq!(listeners.listeners().len(), 1);
    assert_eq!(listeners.listeners()[0].port(), Some(80));

    let td = c.ecs.describe_task_definition().task_definition("konnichiwa").send().await.expect("td");
    let td = td.task_definition().expect("td");
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("bridge"));
    let container = &td.container_definitions()[0];
    assert_eq!(container.port_mappings()[0].host_port(), Some(0), "dynamic host port");
    assert_eq!(container.image(), Some(format!("127.0.0.1:5000/konnichiwa@sha256:{}", "0".repeat(64)).as_str()));
    assert!(!container.environment().iter().any(|e| e.name() == Some("API_KEY")), "the key is never plain environment");
    assert_eq!(container.secrets()[0].value_from(), out["secret"]["secret_arn"].as_str().expect("secret arn"));
    assert_eq!(
        container.health_check().map(|h| h.command().to_vec()),
        Some(vec!["CMD".to_owned(), "/app".into(), "healthcheck".into()])
    );
    assert_eq!(container.stop_timeout(), Some(30));

    let svc = c.ecs.describe_services().cluster("konnichiwa").services("konnichiwa").send().await.expect("service");
    let s = &svc.services()[0];
    assert_eq!(s.load_balancers()[0].target_group_arn(), tg.target_group_arn());
    assert_eq!(s.desired_count(), 2);
    let targets = c
        .app_autoscaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .expect("targets");
    assert_eq!(targets.scalable_targets().first().map(|t| (t.min_capacity(), t.max_capacity())), Some((2, 8)));

    let second = account.json(&["up", "--yes"], 0);
    assert_eq!(second["api_calls"]["mutating"], 0, "no new revision, no update: {:#}", second["api_calls"]);
    let status = account.json(&["status"], 0);
    assert_eq!(status["service"]["desired"], 2);
    assert!(status["service"]["deployments"].as_array().is_some_and(|d| !d.is_empty()), "{status:#}");
}

#[tokio::test]
async fn drift_on_the_target_group_and_listener_is_repaired() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let c = account.clients().await;
    let tg = c.elb.describe_target_groups().names("konnichiwa-tg").send().await.expect("tg").target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_owned();
    c.elb
        .modify_target_group_attributes()
        .target_group_arn(&tg)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("300")
                .build(),
        )
        .send()
        .await
        .expect("delay");
    let lb = c.elb.describe_load_balancers().names("konnichiwa-alb").send().await.expect("lb").load_balancers()[0]
        .load_balancer_arn()
        .expect("arn")
        .to_owned();
    let listener = c.elb.describe_listeners().load_balancer_arn(&lb).send().await.expect("listeners").listeners()[0]
        .listener_arn()
        .expect("arn")
        .to_owned();
    c.elb.delete_listener().listener_arn(&listener).send().await.expect("delete listener");
    let plan = account.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2));
    let shown = text(&plan);
    assert!(shown.contains("deregistration_delay: 300 -> 30"), "{shown}");
    assert!(
        shown.contains("+ listener konnichiwa-alb:80") && shown.contains("listener: HTTP forward to konnichiwa-tg"),
        "{shown}"
    );
    account.json(&["up", "--yes"], 0);
    assert_eq!(account.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
}

#[tokio::test]
async fn deploy_registers_one_revision_updates_the_service_and_reports_a_stuck_rollout() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let image = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "1".repeat(64));
    let fast = account.json(&["deploy", "--image", &image, "--no-wait"], 0);
    assert_eq!(mutations(&fast), ["ECS:RegisterTaskDefinition", "ECS:UpdateService"]);
    let reads: Vec<&String> = fast["api_calls"]["by_operation"]
        .as_object()
        .expect("ops")
        .keys()
        .filter(|k| !k.contains("RegisterTaskDefinition") && !k.contains("UpdateService"))
        .collect();
    // The latest ACTIVE revision (listed, then described); nothing else is observed.
    assert_eq!(reads, ["ECS:DescribeTaskDefinition", "ECS:ListTaskDefinitions"], "nothing else is observed");
    let c = account.clients().await;
    let svc = c.ecs.describe_services().cluster("konnichiwa").services("konnichiwa").send().await.expect("svc");
    assert_eq!(svc.services()[0].task_definition(), fast["task_definition_arn"].as_str());

    // moto never completes a rollout: following it must end at the timeout, exit 3, diagnostics.
    let image2 = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "2".repeat(64));
    let out = account.run(&["deploy", "--image", &image2, "--timeout", "2s", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["rollout"]["result"], "timed-out");
    let m = mutations(&v);
    assert_eq!(m, ["ECS:RegisterTaskDefinition", "ECS:UpdateService"], "then describes only");
    assert!(text(&out).contains("timed-out"), "{}", text(&out));
    // Stack file untouched by deploy; the next plan shows the image drift back to stack.yaml.
    let plan = account.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2));
    assert!(text(&plan).contains(&format!("image: {image2} -> ")), "{}", text(&plan));
}

#[tokio::test]
async fn down_removes_the_service_its_revisions_and_the_load_balancer() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let down = account.json(&["down", "--yes"], 0);
    assert_eq!(down["leftovers"], serde_json::json!([]));
    let order = mutations(&down);
    let pos = |op: &str| order.iter().position(|m| m == op).unwrap_or_else(|| panic!("{op} not in {order:?}"));
    assert!(pos("ECS:UpdateService") < pos("ECS:DeleteService"), "scaled to 0 first");
    assert!(pos("ECS:DeleteService") < pos("ECS:DeregisterTaskDefinition"));
    assert!(pos("Elastic Load Balancing v2:DeleteListener") < pos("Elastic Load Balancing v2:DeleteLoadBalancer"));
    assert!(pos("Elastic Load Balancing v2:DeleteLoadBalancer") < pos("Elastic Load Balancing v2:DeleteTargetGroup"));
    assert!(pos("Elastic Load Balancing v2:DeleteTargetGroup") < pos("EC2:DeleteSecurityGroup"));
    let c = account.clients().await;
    let active = c
        .ecs
        .list_task_definitions()
        .family_prefix("konnichiwa")
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .expect("tds");
    assert!(active.task_definition_arns().is_empty(), "{:?}", active.task_definition_arns());
    // After down, up works again and the secret comes back rather than being recreated.
    let again = account.json(&["up", "--yes"], 0);
    assert!(mutations(&again).iter().any(|m| m == "Secrets Manager:RestoreSecret"));
    // The service runs a new ACTIVE revision: moto answers a bare family with the INACTIVE one
    // (AWS with the latest ACTIVE), which must never be taken for the current one.
    assert!(mutations(&again).iter().any(|m| m == "ECS:RegisterTaskDefinition"));
    let svc = c.ecs.describe_services().cluster("konnichiwa").services("konnichiwa").send().await.expect("svc");
    let td = svc.services()[0].task_definition().expect("td").to_owned();
    let described = c.ecs.describe_task_definition().task_definition(&td).send().await.expect("td");
    assert_eq!(described.task_definition().and_then(|t| t.status()).map(|s| s.as_str()), Some("ACTIVE"), "{td}");
}

#[tokio::test]
async fn a_revision_without_our_tag_in_our_family_is_never_touched() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let c = account.clients().await;
    // Someone registers into the family by hand, without the stack's tag.
    let foreign = c
        .ecs
        .register_task_definition()
        .family("konnichiwa")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder().name("app").image("busybox").memory(64).build(),
        )
        .send()
        .await
        .expect("register")
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("arn")
        .to_owned();
    let plan = account.run(&["plan"]);
    assert_eq!(plan.status.code(), Some(1), "refused: {}", text(&plan));
    assert!(text(&plan).contains("without the tag konnichiwa:stack=konnichiwa"), "{}", text(&plan));
    let down = account.json(&["down", "--yes"], 0);
    assert_eq!(down["leftovers"], serde_json::json!([]), "a revision not ours is not ours to report");
    assert!(!mutations(&down).is_empty());
    let described = c.ecs.describe_task_definition().task_definition(&foreign).send().await.expect("td");
    assert_eq!(described.task_definition().and_then(|t| t.status()).map(|s| s.as_str()), Some("ACTIVE"), "left alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_follows_its_rollout_through_throttling() {
    use common::faults::{Faults, Proxy, Script};
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let proxy = Proxy::start(&common::moto_url(), Faults::default()).await;
    proxy.complete_rollouts();
    proxy.script(Script::error("DescribeServices", 4, "ThrottlingException", "Rate exceeded"));
    let image = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "3".repeat(64));
    let v = account.json_at(&proxy.url, &["deploy", "--image", &image, "--timeout", "2m"], &[], 0).await;
    assert_eq!(v["rollout"]["result"], "completed", "{v:#}");
    assert_eq!(proxy.stats()["DescribeServices"].scripted, 4);
}

#[tokio::test]
async fn requests_per_target_adds_a_second_scaling_policy_on_the_load_balancer() {
    let account = Account::new();
    account.edit_stack(|t| t.replace("target_cpu_percent: 60 }", "target_cpu_percent: 60, requests_per_target: 500 }"));
    account.json(&["up", "--yes"], 0);
    let c = account.clients().await;
    let policies = c
        .app_autoscaling
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .expect("policies");
    let mut names: Vec<&str> = policies.scaling_policies().iter().map(|p| p.policy_name()).collect();
    names.sort();
    assert_eq!(names, ["konnichiwa-cpu", "konnichiwa-requests"]);
    let requests =
        policies.scaling_policies().iter().find(|p| p.policy_name() == "konnichiwa-requests").expect("policy");
    let label = requests
        .target_tracking_scaling_policy_configuration()
        .and_then(|t| t.predefined_metric_specification())
        .and_then(|m| m.resource_label())
        .expect("label");
    assert!(label.starts_with("app/konnichiwa-alb/") && label.contains("/targetgroup/konnichiwa-tg/"), "{label}");
    assert_eq!(account.json(&["up", "--yes"], 0)["api_calls"]["mutating"], 0);
}

/// A rollout nothing can move ends when it has stood still for the stall (KONNICHIWA_STALL_AFTER),
/// not at the 10-minute timeout: moto starts no task and says nothing; behind the proxy ECS says
/// it cannot place a task, which is stuck only while the instances are at capacity.max.
#[tokio::test]
async fn a_rollout_nothing_can_move_is_stuck_at_the_stall_not_the_timeout() {
    let account = Account::new();
    // Two instances, at their maximum.
    account.edit_stack(|t| t.replacen("  max: 4", "  max: 2", 1));
    let quick = [("KONNICHIWA_STALL_AFTER", "1s")];
    account.json(&["up", "--yes"], 0);
    let started = std::time::Instant::now();
    let image = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "2".repeat(64));
    let out = account.run_with(&["deploy", "--image", &image, "--json"], &quick);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["rollout"]["result"], "stuck", "{v:#}");
    let reason = v["rollout"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("started no task of this deployment") && reason.contains("--no-wait"), "{reason}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "not the 10m timeout: {:?}", started.elapsed());

    let proxy = common::faults::Proxy::start(&common::moto_url(), common::faults::Faults::default()).await;
    proxy.say_unplaceable();
    let image = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "3".repeat(64));
    let deploy = ["deploy", "--image", image.as_str(), "--timeout", "8s", "--json"];
    let out = account.run_at(&proxy.url, &deploy, &quick).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["rollout"]["result"], "stuck", "{v:#}");
    let reason = v["rollout"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("was unable to place a task"), "{reason}");
    assert!(reason.contains("at capacity.max (2, all in service): raise capacity.max"), "{reason}");
    assert!(text(&out).contains("event: (service konnichiwa) was unable to place a task"), "events as they come");

    // Room to grow: managed scaling can add an instance, so it follows on (to the timeout here).
    account.edit_stack(|t| t.replacen("  max: 2", "  max: 4", 1));
    account.json(&["up", "--yes"], 0);
    let out = account.run_at(&proxy.url, &deploy, &quick).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["rollout"]["result"], "timed-out", "{v:#}");
}
