//! Canary, linear and blue/green deploys on the emulator, judged by the gate: a good revision
//! goes through the gate, its traffic slices and bakes to all of the traffic, the old tasks gone;
//! a bad one (the app answering 500 on `/`, or slowly) is rolled back at the gate, before any
//! production traffic reaches it, and `deploy` exits 3 with its figures beside the old one's. A
//! `deploy` killed mid-bake is seen by `status` and undone at once by `rollback`; a deployment an
//! earlier command left at the gate is judged by the next `deploy`.
//!
//! What stands for the load balancer: a local proxy that routes as the stack's listener rules do
//! — a request carrying the gate's header to the new revision's app, every other one to the old
//! one's — both real app servers on 127.0.0.1. The emulator's test clock moves the bakes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_ecs::types::ServiceDeployment;
use serde_json::Value;

use crate::common::Account;

const KEY: &str = "gate-test-key-0123456789abcdef";
const GATE_HEADER: &str = "x-konnichiwa-gate";

/// How a build of the app answers `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Good,
    /// 500 on `/` (the health check still passes: ECS would start it).
    Errors,
    /// `/` after 400 ms, above the SLO's p95 of 300 ms.
    Slow,
}

/// A real app server on 127.0.0.1, with `build`'s fault on `/`; stopped when dropped.
struct AppServer {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn fault(build: Build, req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    if req.uri().path() == "/" {
        match build {
            Build::Errors => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "broken build").into_response(),
            Build::Slow => tokio::time::sleep(Duration::from_millis(400)).await,
            Build::Good => {}
        }
    }
    next.run(req).await
}

async fn app(build: Build) -> AppServer {
    let config = <app::config::Cli as clap::Parser>::parse_from(["app", "--api-key", KEY]).server;
    let state = app::AppState::new(&app::config::ApiKey::new(KEY), &config);
    let router = app::router(state).layer(axum::middleware::from_fn(move |req, next| fault(build, req, next)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app::server::serve(listener, router, app::server::Settings::from(&config), async move {
        let _ = stopped.await;
    }));
    AppServer { url, _stop: stop }
}

/// The listener rules as a proxy: the gate's header to `test`, the rest to `production`.
struct FakeAlb {
    url: String,
    /// Requests that carried the gate's header, and its values.
    gate_requests: Arc<AtomicU64>,
    gate_values: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn fake_alb(production: &str, test: &str) -> FakeAlb {
    let (production, test) = (production.to_owned(), test.to_owned());
    let gate_requests = Arc::new(AtomicU64::new(0));
    let gate_values = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let client = reqwest::Client::new();
    let (counted, values) = (Arc::clone(&gate_requests), Arc::clone(&gate_values));
    let route = move |req: axum::extract::Request| {
        let (client, production, test, counted, values) =
            (client.clone(), production.clone(), test.clone(), Arc::clone(&counted), Arc::clone(&values));
        async move {
            let gate = req.headers().get(GATE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let base = match gate {
                Some(v) => {
                    counted.fetch_add(1, Ordering::Relaxed);
                    values.lock().expect("values").insert(v.clone());
                    if v == "konnichiwa" { test } else { production }
                }
                None => production,
            };
            let answer = client.get(format!("{base}{}", req.uri())).send().await.expect("the app answers");
            let status = answer.status().as_u16();
            let body = answer.bytes().await.expect("body");
            (axum::http::StatusCode::from_u16(status).expect("status"), body)
        }
    };
    let router = axum::Router::new().fallback(route);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    FakeAlb { url, gate_requests, gate_values, _stop: stop }
}

/// The example stack with `strategy` and a short gate (5% of 1,000 req/s for 2 s).
fn with_strategy(account: &Account, strategy: &str) {
    account.edit_stack(|t| {
        t.replace(
            "slo_alarms: true }",
            &format!("slo_alarms: true, {strategy}, gate: {{ share: 5%, duration: 2s }} }}"),
        )
    });
}

fn image(n: char) -> String {
    format!("127.0.0.1:5000/konnichiwa@sha256:{}", n.to_string().repeat(64))
}

/// The service's newest service deployment.
async fn newest(c: &provisioner::aws::Clients) -> Option<ServiceDeployment> {
    let list = c
        .ecs
        .list_service_deployments()
        .cluster("konnichiwa")
        .service("konnichiwa")
        .send()
        .await
        .expect("list service deployments");
    let arn = list.service_deployments().first()?.service_deployment_arn()?.to_owned();
    let out = c.ecs.describe_service_deployments().service_deployment_arns(arn).send().await.expect("describe");
    out.service_deployments().first().cloned()
}

/// What the newest service deployment was seen doing: (its ARN, stage, production weight to the
/// new revision).
type Seen = Vec<(String, String, f64)>;

/// Moves the test clock a minute at a time while a deployment bakes or rolls back (never while
/// it waits at a hook: that is the command's to answer), recording what it saw, until `done`.
async fn drive_clock(account: &Account, done: &tokio::sync::watch::Receiver<bool>, seen: &mut Seen) {
    let c = account.clients().await;
    while !*done.borrow() {
        if let Some(d) = newest(&c).await {
            let status = d.status().map(|s| s.as_str().to_owned()).unwrap_or_default();
            let stage = d.lifecycle_stage().map(|s| s.as_str().to_owned()).unwrap_or_default();
            let weight =
                d.target_service_revision().and_then(|t| t.requested_production_traffic_weight()).unwrap_or(0.0);
            let arn = d.service_deployment_arn().unwrap_or_default().to_owned();
            if seen.last() != Some(&(arn.clone(), stage.clone(), weight)) {
                seen.push((arn, stage, weight));
            }
            let waiting =
                d.lifecycle_hook_details().iter().any(|h| h.status().is_some_and(|s| s.as_str() == "AWAITING_ACTION"));
            let moving = matches!(status.as_str(), "IN_PROGRESS" | "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS");
            if moving && !waiting {
                crate::common::advance_ecs_clock(account, 1).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `provisioner ARGS --json` while the clock is driven: (exit code, answer, what was seen).
async fn run_driven(account: &Account, args: &[&str]) -> (i32, Value, Seen) {
    let mut args = args.to_vec();
    args.push("--json");
    let mut cmd = tokio::process::Command::from(account.command(&crate::common::moto_url(), &args, &[]));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let child = async {
        let out = cmd.output().await.expect("run provisioner");
        let _ = tx.send(true);
        out
    };
    let mut seen = Seen::new();
    let (out, ()) = tokio::join!(child, drive_clock(account, &rx, &mut seen));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("json: {stderr}"));
    (out.status.code().unwrap_or(-1), answer, seen)
}

/// The service's task definition.
async fn running(c: &provisioner::aws::Clients) -> String {
    let svc = c.ecs.describe_services().cluster("konnichiwa").services("konnichiwa").send().await.expect("svc");
    svc.services()[0].task_definition().expect("td").to_owned()
}

/// The production listener rule's weights: (target group name suffix, weight), sorted.
async fn production_weights(c: &provisioner::aws::Clients) -> Vec<(String, i32)> {
    let lb = c.elb.describe_load_balancers().names("konnichiwa-alb").send().await.expect("lb");
    let lb = lb.load_balancers()[0].load_balancer_arn().expect("arn").to_owned();
    let listeners = c.elb.describe_listeners().load_balancer_arn(&lb).send().await.expect("listeners");
    let listener = listeners.listeners()[0].listener_arn().expect("listener").to_owned();
    let rules = c.elb.describe_rules().listener_arn(&listener).send().await.expect("rules");
    let production = rules.rules().iter().find(|r| r.priority() == Some("20")).expect("the production rule");
    let mut weights: Vec<(String, i32)> = production.actions()[0]
        .forward_config()
        .expect("forward")
        .target_groups()
        .iter()
        .map(|t| {
            let arn = t.target_group_arn().unwrap_or_default();
            let name = arn.split('/').nth(1).unwrap_or_default().to_owned();
            (name, t.weight().unwrap_or_default())
        })
        .collect();
    weights.sort();
    weights
}

/// A strategy's whole life on the emulator: `up` leaves the first deployment at the gate; a good
/// revision passes (the first deployment is judged first), moves through `slices` of production
/// traffic to all of it; a `bad` one is rolled back at the gate, production never reaching it.
async fn good_then_bad(strategy: &str, slices: &[f64], bad: Build) {
    let account = Account::new();
    with_strategy(&account, strategy);
    let up = account.json(&["up", "--yes"], 0);
    assert!(up["rollout"].is_null(), "--no-wait leaves it at the gate: {up}");
    let again = account.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "a second plan changes nothing: {}", crate::common::text(&again));
    let c = account.clients().await;
    let first = newest(&c).await.expect("the first service deployment");
    assert_eq!(first.lifecycle_stage().map(|s| s.as_str()), Some("POST_TEST_TRAFFIC_SHIFT"), "{first:?}");

    let (old, good) = (app(Build::Good).await, app(Build::Good).await);
    let alb = fake_alb(&old.url, &good.url).await;
    let (code, answer, seen) = run_driven(&account, &["deploy", "--image", &image('1'), "--gate-url", &alb.url]).await;
    assert_eq!(code, 0, "{answer}");
    let rollout = &answer["rollout"];
    assert_eq!(rollout["result"], "completed", "{answer}");
    assert_eq!(rollout["gate"]["pass"], true, "{answer}");
    let new = &rollout["gate"]["new"];
    assert!(new["requests"].as_u64().unwrap_or(0) >= 50 && new["failures"] == 0, "{new}");
    assert!(rollout["gate"]["old"]["requests"].as_u64().unwrap_or(0) >= 50, "the old revision is driven beside it");
    let ours = rollout["deployment"].as_str().expect("service deployment").to_owned();
    // Production traffic moved through each slice, in order; a partial one holds for its bake
    // at PRODUCTION_TRAFFIC_SHIFT (the last, all of it, is seen once the bake after it began).
    let mut moved: Vec<f64> = seen.iter().filter(|s| s.0 == ours && s.2 > 0.0).map(|s| s.2).collect();
    moved.dedup();
    assert_eq!(moved, slices, "{seen:?}");
    for slice in slices.iter().filter(|s| **s < 100.0) {
        assert!(seen.iter().any(|s| s.0 == ours && s.1 == "PRODUCTION_TRAFFIC_SHIFT" && s.2 == *slice), "{seen:?}");
    }
    let done = newest(&c).await.expect("deployment");
    assert_eq!(done.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
    assert!(done.source_service_revisions().iter().all(|r| r.running_task_count() == 0), "the old tasks are gone");
    let weights = production_weights(&c).await;
    assert_eq!(weights.iter().map(|w| w.1).sum::<i32>(), 100);
    assert!(weights.iter().any(|w| w.1 == 100), "all production traffic on one group: {weights:?}");
    let good_td = running(&c).await;
    assert_eq!(alb.gate_values.lock().expect("values").iter().collect::<Vec<_>>(), ["konnichiwa"]);

    // The bad build behind the test route.
    let broken = app(bad).await;
    let alb = fake_alb(&old.url, &broken.url).await;
    let (code, answer, seen) = run_driven(&account, &["deploy", "--image", &image('2'), "--gate-url", &alb.url]).await;
    assert_eq!(code, 3, "{answer}");
    let rollout = &answer["rollout"];
    assert_eq!(rollout["result"], "rolled-back", "{answer}");
    assert_eq!(rollout["gate"]["pass"], false);
    let missed = rollout["gate"]["missed"].to_string();
    let expected = if bad == Build::Slow { "p95" } else { "errors" };
    assert!(missed.contains(expected), "{missed}");
    assert!(rollout["diagnostics"].to_string().contains("old revision (production)"), "figures side by side: {answer}");
    assert!(alb.gate_requests.load(Ordering::Relaxed) > 0);
    let ours = rollout["deployment"].as_str().expect("service deployment").to_owned();
    assert!(
        seen.iter().filter(|s| s.0 == ours).all(|s| s.2 == 0.0),
        "no production traffic ever reached the bad revision: {seen:?}"
    );
    assert_eq!(running(&c).await, good_td, "back on the good revision");
    let after = newest(&c).await.expect("deployment");
    assert_eq!(after.status().map(|s| s.as_str()), Some("ROLLBACK_SUCCESSFUL"), "nothing left in flight");
    assert_eq!(production_weights(&c).await, weights, "production traffic where it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_deploy_passes_the_gate_and_a_failing_build_is_rolled_back_before_its_slice() {
    good_then_bad(
        "strategy: canary, canary: { percent: 10%, bake: 3m }, blue_green: { bake: 1m }",
        &[10.0, 100.0],
        Build::Errors,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_deploy_moves_in_steps_and_a_slow_build_is_rolled_back_at_the_gate() {
    good_then_bad(
        "strategy: linear, linear: { step: 50%, step_bake: 1m }, blue_green: { bake: 0m }",
        &[50.0, 100.0],
        Build::Slow,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_deploy_switches_at_once_and_a_failing_build_never_gets_production_traffic() {
    good_then_bad("strategy: blue_green, blue_green: { bake: 2m }", &[100.0], Build::Errors).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_mid_bake_is_shown_by_status_and_undone_at_once_by_rollback() {
    let account = Account::new();
    with_strategy(&account, "strategy: canary, canary: { percent: 10%, bake: 30m }, blue_green: { bake: 0m }");
    account.json(&["up", "--yes"], 0);
    let c = account.clients().await;
    let (old, new) = (app(Build::Good).await, app(Build::Good).await);
    let alb = fake_alb(&old.url, &new.url).await;
    // The first deployment: judged and baked through by a deploy of its own image.
    let (code, answer, _) = run_driven(&account, &["deploy", "--image", &image('0'), "--gate-url", &alb.url]).await;
    assert_eq!(code, 0, "{answer}");
    let before = running(&c).await;

    // The next deploy passes its gate and starts its 30-minute canary bake; then it is killed.
    let mut child = tokio::process::Command::from(account.command(
        &crate::common::moto_url(),
        &["deploy", "--image", &image('3'), "--gate-url", &alb.url],
        &[],
    ))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("deploy");
    let mut baking = None;
    for _ in 0..300 {
        if let Some(d) = newest(&c).await
            && d.lifecycle_stage().map(|s| s.as_str()) == Some("PRODUCTION_TRAFFIC_SHIFT")
            && d.target_service_revision().and_then(|t| t.requested_production_traffic_weight()) == Some(10.0)
        {
            baking = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let baking = baking.expect("the canary slice");
    child.kill().await.expect("kill the deploy");
    let arn = baking.service_deployment_arn().expect("arn").to_owned();

    let status = account.json(&["status"], 0);
    let shifting = &status["service"]["shifting"];
    assert_eq!(shifting["service_deployment"], arn.as_str(), "{status}");
    assert_eq!(
        (shifting["stage"].as_str(), shifting["production_percent"].as_f64()),
        (Some("PRODUCTION_TRAFFIC_SHIFT"), Some(10.0))
    );

    // `up` changing the service meanwhile would start a second deployment mid-bake: refused.
    account.edit_stack(|t| t.replace("health_check_grace_period: 30s", "health_check_grace_period: 45s"));
    let refused = account.run(&["up", "--yes"]);
    let said = crate::common::text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("service deployment {arn} is in flight")) && said.contains("Nothing was changed"),
        "{said}"
    );
    account.edit_stack(|t| t.replace("health_check_grace_period: 45s", "health_check_grace_period: 30s"));

    let (code, answer, _) = run_driven(&account, &["rollback"]).await;
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["rollout"]["result"], "completed", "{answer}");
    assert_eq!(answer["deployment_id"], arn.as_str());
    let undone = newest(&c).await.expect("deployment");
    assert_eq!(undone.status().map(|s| s.as_str()), Some("ROLLBACK_SUCCESSFUL"));
    assert_eq!(running(&c).await, before, "the old revision serves again");
    assert_eq!(answer["to"]["task_definition"], before.as_str());

    // A rule planted on the stack's listener (the deploy role may create rules there): drift,
    // deleted by the next `up`; the strategy's own stay.
    let lb = c.elb.describe_load_balancers().names("konnichiwa-alb").send().await.expect("lb");
    let lb = lb.load_balancers()[0].load_balancer_arn().expect("arn").to_owned();
    let listeners = c.elb.describe_listeners().load_balancer_arn(&lb).send().await.expect("listeners");
    let listener = listeners.listeners()[0].listener_arn().expect("listener").to_owned();
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, FixedResponseActionConfig, RuleCondition};
    c.elb
        .create_rule()
        .listener_arn(&listener)
        .priority(1)
        .conditions(RuleCondition::builder().field("path-pattern").values("/login*").build())
        .actions(
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder().status_code("200").message_body("phish").build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("plant a rule");
    let plan = account.run(&["plan"]);
    assert!(
        crate::common::text(&plan).contains("- listener-rule konnichiwa-alb:priority-1"),
        "{}",
        crate::common::text(&plan)
    );
    account.json(&["up", "--yes"], 0);
    let rules = c.elb.describe_rules().listener_arn(&listener).send().await.expect("rules");
    let mut left: Vec<&str> = rules.rules().iter().filter_map(|r| r.priority()).collect();
    left.sort_unstable();
    assert_eq!(left, ["10", "20", "default"], "the planted rule is gone, the strategy's stay");
}

/// README's side-by-side figure is what the model prints (change the model, rerun it, paste).
#[test]
fn the_readmes_bad_revision_figure_is_the_models() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/bad-deploy-exposure"))
        .output()
        .expect("python3 scripts/bad-deploy-exposure");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let rows: Vec<&str> = printed.lines().filter(|l| l.starts_with('|')).collect();
    assert!(rows.len() >= 6, "the model prints its table: {printed}");
    for row in rows {
        assert!(
            readme.contains(row),
            "README's figure differs from the model's row {row:?}: rerun scripts/bad-deploy-exposure"
        );
    }
}
