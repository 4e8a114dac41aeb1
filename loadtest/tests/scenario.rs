//! Scenarios against a real server on 127.0.0.1 (port 0): a POST with its body and headers
//! arrives as described, with the key filled in at run time and written nowhere; failed checks
//! are counted per request name and reason in the JSON, CSV, HTML and text reports and fail the
//! SLO gate; merging workers' results keeps them; think times pace users; a key written in the
//! scenario itself is refused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use app::testing::Server;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadtest");
const KEY: &str = "scenario-test-key-0123456789";

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("konnichiwa-scenario-{}-{name}", std::process::id()))
}

/// What the server saw of the last order: its method, headers and body, and how many came.
#[derive(Debug, Default)]
struct Seen {
    orders: u64,
    last: Option<(HeaderMap, String)>,
}

/// POST /orders answers 201 with an id; GET /plain answers 200 "plain text".
async fn shop() -> (Server, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let orders = Arc::clone(&seen);
    let router = Router::new()
        .route(
            "/orders",
            post(move |headers: HeaderMap, body: String| {
                let orders = Arc::clone(&orders);
                async move {
                    let mut seen = orders.lock().expect("lock");
                    seen.orders += 1;
                    seen.last = Some((headers, body));
                    (StatusCode::CREATED, r#"{"id": 7, "status": "created"}"#)
                }
            }),
        )
        .route("/plain", get(|| async { "plain text" }));
    (Server::start(router).await, seen)
}

/// Runs the binary in an empty directory with API_KEY set (or not); its exit code and output.
async fn loadtest(args: &[&str], api_key: Option<&str>) -> (Option<i32>, String) {
    let dir = temp("cwd");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut command = tokio::process::Command::new(BIN);
    command.args(args).env_clear().current_dir(&dir);
    if args.first() != Some(&"merge") {
        command.arg("--quiet");
    }
    if let Some(key) = api_key {
        command.env("API_KEY", key);
    }
    let out = command.output().await.expect("run loadtest");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), said)
}

fn read_json(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("json written")).expect("valid JSON")
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The endpoint entry named `name`.
fn named<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name}: {v:#}"))
}

const ORDER: &str = r#"
    - name: create order
      method: POST
      path: /orders
      headers:
        Authorization: Bearer ${API_KEY}
        Content-Type: application/json
        X-Trace: abc
      body: '{"item": 1, "note": "über"}'
      check:
        status: 201
        body_contains: '"id": 7'
"#;

/// The order, and two requests that fail their checks: one by status, one by body.
const FAILING: &str = r#"
- { name: create order, method: POST, path: /orders, body: '{}', check: { status: 201 } }
- { name: wrong status, path: /plain, check: { status: [201, 3xx] } }
- { name: wrong body, path: /plain, check: { body_contains: welcome } }
"#;

#[tokio::test]
async fn a_post_from_stack_yaml_arrives_with_its_body_and_headers_and_the_key_filled_in() {
    let (server, seen) = shop().await;
    let stack = temp("stack.yaml");
    std::fs::write(&stack, format!("loadtest:\n  scenario:{ORDER}")).expect("write stack");
    let json = temp("order.json");
    let (stack_s, json_s) = (stack.to_string_lossy().into_owned(), json.to_string_lossy().into_owned());
    let args = ["--host", &server.url(), "--stack", &stack_s, "--users", "2", "--duration", "1s", "--json", &json_s];
    let (code, said) = loadtest(&[&args[..], &["--slo", "errors<1%"]].concat(), Some(KEY)).await;
    assert_eq!(code, Some(0), "{said}");
    let v = read_json(&json);
    let order = named(&v, "create order");
    assert_eq!(n(&order["requests"]), seen.lock().expect("lock").orders, "every order counted, and only orders");
    assert!(n(&order["requests"]) > 10, "{order}");
    assert_eq!((n(&order["failures"]), &order["check_failures"]), (0, &serde_json::json!({"status": 0, "body": 0})));
    let (headers, body) = seen.lock().expect("lock").last.clone().expect("an order came");
    assert_eq!(body, r#"{"item": 1, "note": "über"}"#, "the body as written, its length right");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("authorization"), format!("Bearer {KEY}"));
    assert_eq!((header("content-type"), header("x-trace")), ("application/json".to_owned(), "abc".to_owned()));
    assert_eq!(header("content-length"), body.len().to_string());
    assert!(header("user-agent").starts_with("konnichiwa-loadtest/"));
    let written = std::fs::read_to_string(&json).expect("json");
    assert!(!said.contains(KEY) && !written.contains(KEY), "the key appears in no output");

    // Without API_KEY the run stops before any request, saying why.
    let before = seen.lock().expect("lock").orders;
    let (code, said) = loadtest(&args, None).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the scenario's headers use ${API_KEY} but API_KEY is not set"), "{said}");
    assert_eq!(seen.lock().expect("lock").orders, before);
    let _ = std::fs::remove_file(&stack);
    let _ = std::fs::remove_file(&json);
}

#[tokio::test]
async fn failed_checks_are_counted_per_name_and_reason_in_every_report_and_fail_the_gate() {
    let (server, _) = shop().await;
    let scenario = temp("failing.yaml");
    std::fs::write(&scenario, FAILING).expect("write scenario");
    let (json, html, csv) = (temp("checks.json"), temp("checks.html"), temp("checks").to_string_lossy().into_owned());
    let paths = [&scenario, &json, &html].map(|p| p.to_string_lossy().into_owned());
    let (code, said) = loadtest(
        &[
            "--host",
            &server.url(),
            "--scenario",
            &paths[0],
            "--users",
            "2",
            "--duration",
            "1s",
            "--json",
            &paths[1],
            "--html",
            &paths[2],
            "--csv",
            &csv,
            "--slo",
            "errors<1%",
        ],
        Some(KEY),
    )
    .await;
    assert_eq!(code, Some(3), "a failed check is an error for the SLO: {said}");
    let v = read_json(&json);
    let (order, status, body) = (named(&v, "create order"), named(&v, "wrong status"), named(&v, "wrong body"));
    assert_eq!(n(&order["failures"]), 0, "{order}");
    let (s, b) = (n(&status["requests"]), n(&body["requests"]));
    assert!(s > 0 && b > 0, "{v:#}");
    assert_eq!(status["check_failures"], serde_json::json!({"status": s, "body": 0}));
    assert_eq!(status["failures_by_kind"], serde_json::json!({"HTTP 200, not a status checked for": s}));
    assert_eq!(body["check_failures"], serde_json::json!({"status": 0, "body": b}));
    assert_eq!(body["failures_by_kind"], serde_json::json!({"body without the text checked for": b}));
    assert_eq!(v["total"]["check_failures"], serde_json::json!({"status": s, "body": b}));
    assert_eq!(n(&v["total"]["failures"]), s + b);
    let errors = v["slo"].as_array().expect("slo").iter().find(|o| o["objective"] == "errors<1%").expect("errors");
    assert_eq!(errors["met"], false, "{errors}");

    // The text report: a table of failed checks per name and reason.
    assert!(said.contains(&format!("{:<24} {:>10} {:>10}\n", "wrong status", s, 0)), "{said}");
    assert!(said.contains(&format!("{:<24} {:>10} {:>10}\n", "wrong body", 0, b)), "{said}");
    // The CSV: two columns of ours after locust's.
    let stats = std::fs::read_to_string(format!("{csv}_stats.csv")).expect("stats csv");
    let row = |name: &str| stats.lines().find(|l| l.split(',').nth(1) == Some(name)).unwrap_or_default().to_owned();
    assert!(stats.lines().next().is_some_and(|h| h.ends_with(",Status Check Failures,Body Check Failures")));
    assert!(row("wrong status").ends_with(&format!(",{s},0")), "{stats}");
    assert!(row("wrong body").ends_with(&format!(",0,{b}")), "{stats}");
    assert!(row("create order").ends_with(",0,0"), "{stats}");
    // The HTML: the same figures in the table.
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("<th>Status check failures</th><th>Body check failures</th>"), "{page}");
    assert!(page.contains(&format!("<td>wrong body</td><td>{b}</td><td>{b}</td><td>0</td><td>{b}</td>")), "{page}");
    for f in ["stats", "stats_history", "failures", "stages"].map(|f| format!("{csv}_{f}.csv")) {
        let _ = std::fs::remove_file(f);
    }
    for p in [scenario, json, html] {
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn merging_workers_results_keeps_the_checks_per_name() {
    let (server, _) = shop().await;
    // The workers' form: each request as JSON on the command line.
    let requests: Vec<stack::Request> = serde_yaml_like(FAILING);
    let mut args: Vec<String> =
        ["--host", &server.url(), "--users", "1", "--duration", "1s", "--slo", "rps>=1"].map(str::to_owned).to_vec();
    for r in &requests {
        args.extend(["--request".to_owned(), serde_json::to_string(r).expect("json")]);
    }
    let (a, b, merged) = (temp("worker-a.json"), temp("worker-b.json"), temp("merged-checks.json"));
    for path in [&a, &b] {
        let mut run: Vec<&str> = args.iter().map(String::as_str).collect();
        let p = path.to_string_lossy().into_owned();
        run.extend(["--json", &p]);
        let (code, said) = loadtest(&run, Some(KEY)).await;
        assert_eq!(code, Some(0), "{said}");
    }
    let [ap, bp, mp] = [&a, &b, &merged].map(|p| p.to_string_lossy().into_owned());
    let (code, said) = loadtest(&["merge", &ap, &bp, "--json", &mp, "--slo", "errors<1%"], None).await;
    assert_eq!(code, Some(3), "the merged checks fail the gate: {said}");
    let (va, vb, vm) = (read_json(&a), read_json(&b), read_json(&merged));
    for name in ["create order", "wrong status", "wrong body"] {
        for reason in ["status", "body"] {
            let count = |v: &Value| n(&named(v, name)["check_failures"][reason]);
            assert_eq!(count(&vm), count(&va) + count(&vb), "{name} {reason}");
        }
    }
    assert!(n(&named(&vm, "wrong body")["check_failures"]["body"]) > 0);
    assert!(said.contains("Checks failed"), "{said}");
    for p in [a, b, merged] {
        let _ = std::fs::remove_file(p);
    }
}

/// The scenario text as requests (through the stack crate, as the binary reads it).
fn serde_yaml_like(text: &str) -> Vec<stack::Request> {
    stack::scenario_from_yaml(text, std::path::Path::new("scenario.yaml")).expect("scenario")
}

#[tokio::test]
async fn a_requests_think_time_paces_its_user() {
    let (server, _) = shop().await;
    let paced = r#"[{"path": "/plain", "think_time": "300ms"}]"#;
    let json = temp("paced.json");
    let json_s = json.to_string_lossy().into_owned();
    let run = ["--host", &server.url(), "--users", "1", "--duration", "1s", "--json", &json_s, "--slo", "rps>=1"];
    let request = &serde_json::from_str::<Value>(paced).expect("json")[0].to_string();
    let (code, said) = loadtest(&[&run[..], &["--request", request]].concat(), Some(KEY)).await;
    assert_eq!(code, Some(0), "{said}");
    let requests = n(&read_json(&json)["total"]["requests"]);
    assert!((3..=4).contains(&requests), "one request every ~300 ms for 1 s: {requests}");
    let _ = std::fs::remove_file(&json);
}

#[tokio::test]
async fn a_key_written_in_the_scenario_itself_is_refused_without_saying_it() {
    let (server, seen) = shop().await;
    let scenario = temp("leaky.yaml");
    std::fs::write(&scenario, format!("- {{ name: leaky, path: /orders, headers: {{ X-Key: {KEY} }} }}\n"))
        .expect("write");
    let s = scenario.to_string_lossy().into_owned();
    let (code, said) = loadtest(&["--host", &server.url(), "--scenario", &s, "--duration", "1s"], Some(KEY)).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("request \"leaky\" holds the API key itself: write ${API_KEY} in its place"), "{said}");
    assert!(!said.contains(KEY), "{said}");
    assert_eq!(seen.lock().expect("lock").orders, 0, "refused before any request");
    let _ = std::fs::remove_file(&scenario);
}
