//! The loadtest binary against the real app (in-process on port 0) and deliberately slow,
//! stalling and erroring servers: counts add up, percentiles match, the open model shows
//! queueing, the SLO gate decides the exit code, JSON shape, merge, bad flags.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use app::testing::Server;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadtest");
const KEY: &str = "loadtest-test-key-0123456789";

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("konnichiwa-loadtest-{}-{name}", std::process::id()))
}

/// Runs the binary in an empty directory (no stack.yaml: default SLOs unless --slo).
async fn loadtest(args: &[&str]) -> std::process::Output {
    let quiet: &[&str] = if matches!(args.first(), Some(&"merge" | &"compare")) { &[] } else { &["--quiet"] };
    tokio::process::Command::new(BIN)
        .args(args)
        .args(quiet)
        .env_clear()
        .env("API_KEY", KEY)
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .expect("run loadtest")
}

async fn loadtest_json(args: &[&str], name: &str, code: i32) -> Value {
    let path = temp(name);
    let mut all = args.to_vec();
    let p = path.to_string_lossy().into_owned();
    all.extend_from_slice(&["--json", &p]);
    let out = loadtest(&all).await;
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("json written")).expect("valid JSON");
    let _ = std::fs::remove_file(&path);
    v
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test]
async fn counts_add_up_against_the_real_app() {
    let config = <app::config::Cli as clap::Parser>::parse_from(["app", "--api-key", KEY]).server;
    let state = app::AppState::new(&app::config::ApiKey::new(KEY), &config);
    let served = Arc::clone(&state.inspector);
    let server = Server::start(app::router(state)).await;
    let v = loadtest_json(
        &["--host", &server.url(), "--users", "8", "--spawn-rate", "40", "--duration", "2s", "--slo", "rps>=1"],
        "counts.json",
        0,
    )
    .await;
    let total = n(&v["total"]["requests"]);
    assert!(total > 100, "{total}");
    let by_endpoint: u64 = v["endpoints"].as_array().expect("endpoints").iter().map(|e| n(&e["requests"])).sum();
    let by_second: u64 = v["history"].as_array().expect("history").iter().map(|s| n(&s["requests"])).sum();
    assert_eq!(by_endpoint, total);
    assert_eq!(by_second, total);
    assert_eq!(served.requests_served(), total, "the app answered exactly what the report counts");
    assert_eq!(n(&v["total"]["failures"]), 0, "/inspect got the key: {v:#}");
    let names: Vec<&str> =
        v["endpoints"].as_array().expect("endpoints").iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["GET /", "GET /health", "GET /inspect"]);
    let share = n(&v["endpoints"][0]["requests"]) as f64 / total as f64;
    assert!((share - 0.6).abs() < 0.1, "GET / weighs 6 of 10: {share}");
    let users: Vec<u64> = v["history"].as_array().expect("history").iter().map(|s| n(&s["users"])).collect();
    assert!(users.contains(&8), "users over time: {users:?}");
    let c = &v["connections"];
    assert_eq!((c["tls"].as_bool(), n(&c["opened"])), (Some(false), 8), "one kept-alive connection per user: {c}");
}

fn real_app_router() -> Router {
    let config = <app::config::Cli as clap::Parser>::parse_from(["app", "--api-key", KEY]).server;
    app::router(app::AppState::new(&app::config::ApiKey::new(KEY), &config))
}

#[tokio::test]
async fn https_targets_are_verified_against_a_private_ca_given_by_ca_cert_and_connections_are_reused() {
    let ca = app::testing::TestCa::new("konnichiwa test CA");
    let server = Server::start_tls(real_app_router(), ca.server_cert(&["127.0.0.1", "localhost"], 30)).await;
    let ca_file = temp("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    let ca_path = ca_file.to_string_lossy().into_owned();
    let run = ["--host", &server.url(), "--users", "4", "--duration", "2s", "--slo", "rps>=1"];

    // Without the CA: a clear error before any load, exit 1.
    let untrusted = loadtest(&run).await;
    let said = format!("{}{}", String::from_utf8_lossy(&untrusted.stdout), String::from_utf8_lossy(&untrusted.stderr));
    assert_eq!(untrusted.status.code(), Some(1), "{said}");
    assert!(said.contains("TLS handshake with 127.0.0.1:"), "{said}");
    assert!(said.contains("not signed by a CA this machine trusts (for a private CA, pass --ca-cert FILE)"), "{said}");

    // With it: the same command works, over few connections, with their handshakes measured.
    let mut trusted = run.to_vec();
    trusted.extend_from_slice(&["--ca-cert", &ca_path]);
    let json = temp("https.json");
    let json_path = json.to_string_lossy().into_owned();
    trusted.extend_from_slice(&["--json", &json_path]);
    let out = loadtest(&trusted).await;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{said}");
    let doc = std::fs::read_to_string(&json).expect("json written");
    let v: Value = serde_json::from_str(&doc).expect("json");
    assert_eq!(n(&v["total"]["failures"]), 0, "/inspect got the key over TLS: {v:#}");
    let c = &v["connections"];
    assert_eq!((c["tls"].as_bool(), n(&c["opened"])), (Some(true), 4), "{c}");
    assert!(n(&v["total"]["requests"]) > 40, "connections are reused: {}", v["total"]["requests"]);
    let p50 = c["setup_ms"]["p50"].as_f64().unwrap_or(0.0);
    assert!(p50 > 0.0 && p50 < 1000.0, "handshake time measured: {c}");
    assert!(said.contains("Connections: 4 opened; setup with TLS handshake p50 "), "{said}");
    assert!(!said.contains(KEY) && !doc.contains(KEY), "the key appears in no output");

    // A certificate for another name is refused whatever the CA.
    let other = Server::start_tls(real_app_router(), ca.server_cert(&["api.example.com"], 30)).await;
    let wrong = loadtest(&["--host", &other.url(), "--duration", "1s", "--ca-cert", &ca_path]).await;
    let said = format!("{}{}", String::from_utf8_lossy(&wrong.stdout), String::from_utf8_lossy(&wrong.stderr));
    assert_eq!(wrong.status.code(), Some(1), "{said}");
    assert!(said.contains("the certificate does not name this host"), "{said}");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&ca_file);
}

/// A server whose every 10th request takes 200 ms and the others 10 ms.
async fn bimodal() -> Server {
    let count = Arc::new(AtomicU64::new(0));
    Server::start(Router::new().route(
        "/",
        get(move || {
            let i = count.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(if i % 10 == 9 { 200 } else { 10 })).await;
                "ok"
            }
        }),
    ))
    .await
}

#[tokio::test]
async fn percentiles_match_a_known_distribution() {
    let server = bimodal().await;
    let v = loadtest_json(
        &["--host", &server.url(), "--users", "1", "--duration", "2s", "--endpoint", "/", "--slo", "rps>=1"],
        "bimodal.json",
        0,
    )
    .await;
    let l = &v["total"]["latency_ms"];
    let (p50, p90, p95, max) = (
        l["p50"].as_f64().unwrap_or(0.0),
        l["p90"].as_f64().unwrap_or(0.0),
        l["p95"].as_f64().unwrap_or(0.0),
        l["max"].as_f64().unwrap_or(0.0),
    );
    // Bands wide enough for a busy 2-core machine, narrow enough to tell the two modes apart.
    assert!((10.0..40.0).contains(&p50), "p50 {p50}");
    assert!((10.0..40.0).contains(&p90), "p90 {p90}: 90% of requests take 10 ms");
    assert!((200.0..260.0).contains(&p95), "p95 {p95}: the slowest 10% take 200 ms");
    assert!((200.0..300.0).contains(&max), "max {max}");
}

#[tokio::test]
async fn the_open_model_reports_the_queueing_a_stall_causes() {
    // Every request arriving between 0.5 s and 1.5 s after the server starts waits until 1.5 s.
    let born = Instant::now();
    let stall_server = || {
        Server::start(Router::new().route(
            "/",
            get(move || async move {
                let t = born.elapsed();
                if t >= Duration::from_millis(500) && t < Duration::from_millis(1500) {
                    tokio::time::sleep(Duration::from_millis(1500) - t).await;
                }
                "ok"
            }),
        ))
    };
    let server = stall_server().await;
    let open = loadtest_json(
        &[
            "--host",
            &server.url(),
            "--rate",
            "200/s",
            "--connections",
            "4",
            "--duration",
            "2s",
            "--endpoint",
            "/",
            "--slo",
            "rps>=1",
        ],
        "open.json",
        0,
    )
    .await;
    let p90_open = open["total"]["latency_ms"]["p90"].as_f64().unwrap_or(0.0);
    // Arrivals kept coming on schedule during the stall: a good share of them waited.
    assert!(p90_open >= 300.0, "open model p90 {p90_open} ms hides the stall: {:#}", open["total"]);
    assert_eq!(n(&open["total"]["requests"]), 400, "every scheduled arrival was sent");
}

#[tokio::test]
async fn a_stalled_request_times_out_at_its_own_deadline_after_many_quick_ones() {
    // Quick answers for the first second — longer than the timeout, so the connection's one
    // timer has fired and been moved on by then — and after it answers that never come in time.
    let born = Instant::now();
    let server = Server::start(Router::new().route(
        "/",
        get(move || async move {
            if born.elapsed() >= Duration::from_secs(1) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            "ok"
        }),
    ))
    .await;
    let v = loadtest_json(
        &[
            "--host",
            &server.url(),
            "--users",
            "1",
            "--duration",
            "3s",
            "--timeout",
            "400ms",
            "--endpoint",
            "/",
            "--slo",
            "rps>=1",
        ],
        "timeouts.json",
        0,
    )
    .await;
    let endpoint = &v["endpoints"][0];
    let timeouts = n(&endpoint["failures_by_kind"]["timeout"]);
    // About 2 s of stalls cut every 400 ms: a timer fired late (or not at all) gives fewer.
    assert!((3..=6).contains(&timeouts), "{timeouts} timeouts: {:#}", endpoint);
    let max = endpoint["latency_ms"]["max"].as_f64().unwrap_or(f64::MAX);
    // Each was cut at its own deadline, not a later one.
    assert!((400.0..1000.0).contains(&max), "slowest {max} ms: {:#}", endpoint);
    assert!(n(&endpoint["requests"]) > timeouts * 10, "the quick second was served: {:#}", endpoint);
}

#[tokio::test]
async fn errors_are_counted_by_kind_and_gate_the_exit_code() {
    let count = Arc::new(AtomicU64::new(0));
    let server = Server::start(Router::new().route(
        "/",
        get(move || {
            let i = count.fetch_add(1, Ordering::SeqCst);
            async move { if i % 4 == 3 { (StatusCode::INTERNAL_SERVER_ERROR, "boom") } else { (StatusCode::OK, "ok") } }
        }),
    ))
    .await;
    let url = server.url();
    let v = loadtest_json(
        &["--host", &url, "--users", "2", "--duration", "1s", "--endpoint", "/", "--slo", "errors<1%"],
        "errors.json",
        3,
    )
    .await;
    let failures = n(&v["total"]["failures"]);
    let requests = n(&v["total"]["requests"]);
    assert_eq!(v["total"]["failures_by_kind"]["HTTP 500"], failures);
    let rate = failures as f64 / requests as f64;
    assert!((rate - 0.25).abs() < 0.02, "{rate}");
    assert_eq!(v["slo_met"], false);
    assert_eq!(v["slo"][0]["met"], false);
    let out =
        loadtest(&["--host", &url, "--users", "2", "--duration", "1s", "--endpoint", "/", "--slo", "errors<30%"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = loadtest(&[
        "--host",
        &url,
        "--users",
        "2",
        "--duration",
        "1s",
        "--endpoint",
        "/",
        "--slo",
        "errors<1%",
        "--slo",
        "p95<5s",
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MISSED  errors<1%") && text.contains("met     p95<5s"), "{text}");
    assert!(text.contains("HTTP 500 × "), "{text}");
}

#[tokio::test]
async fn slow_answers_miss_a_latency_slo() {
    let server = bimodal().await;
    let out = loadtest(&[
        "--host",
        &server.url(),
        "--users",
        "2",
        "--duration",
        "1s",
        "--endpoint",
        "/",
        "--slo",
        "p95<50ms",
    ])
    .await;
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MISSED  p95<50ms") && text.contains("off by"), "{text}");
}

#[tokio::test]
async fn json_csv_and_html_outputs() {
    let server = bimodal().await;
    let csv = temp("out").to_string_lossy().into_owned();
    let html = temp("report.html");
    let html_s = html.to_string_lossy().into_owned();
    let v = loadtest_json(
        &[
            "--host",
            &server.url(),
            "--users",
            "2",
            "--duration",
            "1s",
            "--endpoint",
            "/",
            "--csv",
            &csv,
            "--html",
            &html_s,
            "--slo",
            "rps>=1",
        ],
        "shape.json",
        0,
    )
    .await;
    let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "connections",
            "duration_seconds",
            "endpoints",
            "format",
            "generator",
            "history",
            "interrupted",
            "model",
            "slo",
            "slo_met",
            "slo_stage",
            "stages",
            "started_at_unix_ms",
            "target",
            "total"
        ]
    );
    assert_eq!(v["format"], "konnichiwa-loadtest/1");
    assert_eq!(v["model"]["kind"], "closed");
    let mut e: Vec<&str> = v["total"].as_object().expect("total").keys().map(String::as_str).collect();
    e.sort();
    assert_eq!(
        e,
        [
            "check_failures",
            "content_bytes",
            "failures",
            "failures_by_kind",
            "histogram",
            "latency_ms",
            "name",
            "requests",
            "rps"
        ]
    );
    let mut l: Vec<&str> = v["total"]["latency_ms"].as_object().expect("latency").keys().map(String::as_str).collect();
    l.sort();
    assert_eq!(l, ["max", "mean", "min", "p50", "p90", "p95", "p99"]);
    let mut s: Vec<&str> = v["history"][0].as_object().expect("second").keys().map(String::as_str).collect();
    s.sort();
    assert_eq!(
        s,
        ["failures", "histogram", "p50_ms", "p95_ms", "p99_ms", "planned", "requests", "second", "stage", "users"]
    );

    let stats = std::fs::read_to_string(format!("{csv}_stats.csv")).expect("stats csv");
    // locust's columns, in locust's order; Name without the method, which has its own column.
    assert!(
        stats.starts_with("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Status Check Failures,Body Check Failures\n"),
        "{stats}"
    );
    assert!(stats.lines().nth(1).is_some_and(|l| l.starts_with("GET,/,")), "{stats}");
    assert!(stats.lines().any(|l| l.starts_with(",Aggregated,")), "{stats}");
    let history = std::fs::read_to_string(format!("{csv}_stats_history.csv")).expect("history csv");
    assert!(history.lines().count() >= 2, "{history}");
    assert!(
        history.starts_with("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size,Stage,Planned\n"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 2, "one whole second, no partial one: {history}");
    assert!(history.lines().nth(1).is_some_and(|l| l.split(',').nth(3) == Some("Aggregated")), "{history}");
    let failures = std::fs::read_to_string(format!("{csv}_failures.csv")).expect("failures csv");
    assert_eq!(failures, "Method,Name,Error,Occurrences\n");
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.starts_with("<!doctype html>") && page.matches("<svg").count() == 3, "three charts");
    assert!(
        !page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http"),
        "self-contained"
    );
    assert!(page.contains("closed model: 2 users") && !page.contains("{&quot;kind"), "the model in words");
    assert!(page.contains(r#"style="fill: #1f6feb" class="legend">requests"#), "legends keep their colour");
    assert!(!page.contains(".legend {{ font-size: 11px; fill"), "no rule greys the legends");
    assert!(page.contains(r#"text-anchor="middle">0</text>"#), "seconds on the x axis");
    assert_eq!(v["slo"][0]["unit"], "req/s");
    for f in ["stats", "stats_history", "failures", "stages"].map(|f| format!("{csv}_{f}.csv")) {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(html);
}

#[tokio::test]
async fn an_interrupted_run_stops_and_still_writes_its_reports() {
    let config = <app::config::Cli as clap::Parser>::parse_from(["app", "--api-key", KEY]).server;
    let state = app::AppState::new(&app::config::ApiKey::new(KEY), &config);
    let served = Arc::clone(&state.inspector);
    let server = Server::start(app::router(state)).await;
    let (json, html) = (temp("interrupted.json"), temp("interrupted.html"));
    let (json_s, html_s) = (json.to_string_lossy().into_owned(), html.to_string_lossy().into_owned());
    let url = server.url();
    let child = tokio::process::Command::new(BIN)
        .args(["--host", &url, "--rate", "200/s", "--duration", "60s", "--quiet", "--json", &json_s, "--html", &html_s])
        .args(["--slo", "p95<300ms", "--slo", "rps>=1000"])
        .env_clear()
        .env("API_KEY", KEY)
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn loadtest");
    // Load is flowing: the app has answered some requests.
    let deadline = Instant::now() + Duration::from_secs(10);
    while served.requests_served() < 200 {
        assert!(Instant::now() < deadline, "no load reached the app");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("pid").to_string();
    let interrupted_at = Instant::now();
    std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill -INT");
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("it stops well before the 60 s")
        .expect("wait");
    let stopped_after = interrupted_at.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "an interrupted run is not a pass: {stderr}");
    assert!(stopped_after < Duration::from_secs(5), "{stopped_after:?}");
    assert!(stderr.contains("interrupted: stopping the load and writing the report"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Interrupted after") && stdout.contains("of 60s"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("JSON");
    assert_eq!(v["interrupted"], true);
    // p95 met, yet an interrupted run never passes the gate.
    assert_eq!(v["slo_met"], false, "{stdout}");
    assert!(stdout.contains("SLOs (interrupted: not a pass"), "{stdout}");
    // What was offered is the arrivals due by the stop (200/s), not the 60 s plan over the seconds run.
    let seconds = v["duration_seconds"].as_f64().expect("duration");
    assert!(stdout.contains(&format!("{} requests sent of the ", n(&v["total"]["requests"]))), "{stdout}");
    let due: f64 = stdout
        .split("requests sent of the ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|d| d.parse().ok())
        .expect("the arrivals offered by then");
    assert!((due - 200.0 * seconds).abs() <= 2.0, "{due} offered in {seconds} s: {stdout}");
    let note = v["slo"][1]["note"].as_str().expect("rps>=1000 not judged");
    let offered: f64 = note.split_whitespace().nth(3).and_then(|r| r.parse().ok()).expect(note);
    assert!((190.0..=210.0).contains(&offered), "{note}");
    assert_eq!(v["planned_seconds"], 60.0);
    assert!(v["duration_seconds"].as_f64().is_some_and(|d| d < 15.0), "{}", v["duration_seconds"]);
    let total = n(&v["total"]["requests"]);
    assert!(total >= 200 && total <= served.requests_served(), "{total} of {}", served.requests_served());
    assert!(std::fs::read_to_string(&html).expect("html written").contains("Interrupted after"));
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(html);
}

#[tokio::test]
async fn a_run_that_could_judge_none_of_its_objectives_does_not_pass() {
    let server = bimodal().await;
    let url = server.url();
    let json = temp("unjudged.json");
    let json_s = json.to_string_lossy().into_owned();
    let args = ["--host", &url, "--rate", "40", "--duration", "1s", "--endpoint", "/", "--slo", "rps>=1000"];
    let out = loadtest(&[&args[..], &["--json", &json_s]].concat()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "a gate that judged nothing: {stdout}");
    assert!(stdout.contains("SLOs (none judged)") && stdout.contains("not judged  rps>=1000"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert_eq!(v["slo_met"], false);
    let _ = std::fs::remove_file(json);
}

#[tokio::test]
async fn an_open_model_below_the_rps_objective_says_so_and_leaves_it_unjudged() {
    let server = bimodal().await;
    let url = server.url();
    let (json, html) = (temp("open.json"), temp("open.html"));
    let (json_s, html_s) = (json.to_string_lossy().into_owned(), html.to_string_lossy().into_owned());
    let out = loadtest(&[
        "--host",
        &url,
        "--rate",
        "40",
        "--duration",
        "1s",
        "--endpoint",
        "/",
        "--slo",
        "rps>=1000",
        "--slo",
        "errors<1%",
        "--json",
        &json_s,
        "--html",
        &html_s,
    ])
    .await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "the judged objective is met: {stdout}{stderr}");
    assert!(
        stderr.contains("note: this run offers 40 req/s (--rate), below rps>=1000"),
        "said before the run: {stderr}"
    );
    assert!(stdout.contains("not judged  rps>=1000") && stdout.contains("SLOs (all judged ones met)"), "{stdout}");
    assert!(stdout.contains("(open model: 40 req/s over 10 connections)"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert_eq!(v["slo"][0]["judged"], false);
    assert_eq!(v["slo_met"], true);
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("Requests in flight") && !page.contains(">Users<"), "no users chart for an open model");
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(html);
}

#[tokio::test]
async fn another_hdrhistogram_implementation_decodes_the_histograms() {
    let server = bimodal().await;
    let json = temp("hdr.json");
    let json_s = json.to_string_lossy().into_owned();
    let out = loadtest(&[
        "--host",
        &server.url(),
        "--users",
        "4",
        "--duration",
        "1s",
        "--endpoint",
        "/",
        "--slo",
        "rps>=1",
        "--json",
        &json_s,
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    // HdrHistogram's Python port (scripts/test-deps installs it) lists every recorded bucket.
    let script = r#"
import json, sys
from hdrh.histogram import HdrHistogram
doc = json.load(open(sys.argv[1]))
h = HdrHistogram.decode(doc["total"]["histogram"])
print(h.get_total_count())
for item in h.get_recorded_iterator():
    print(item.value_iterated_to, item.count_at_value_iterated_to)
"#;
    let decoded = std::process::Command::new("python3").args(["-c", script, &json_s]).output().expect("python3");
    assert!(
        decoded.status.success(),
        "the Python port could not decode it (scripts/test-deps installs `hdrhistogram`): {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let text = String::from_utf8_lossy(&decoded.stdout).into_owned();
    let mut lines = text.lines();
    let count: u64 = lines.next().and_then(|l| l.trim().parse().ok()).expect("count");
    assert_eq!(count, n(&v["total"]["requests"]), "the same count");
    let theirs: Vec<(u64, u64)> = lines
        .map(|l| {
            let mut f = l.split_whitespace().map(|x| x.parse::<u64>().expect("number"));
            (f.next().expect("value"), f.next().expect("count"))
        })
        .collect();
    let ours = loadtest::stats::decode_histogram(v["total"]["histogram"].as_str().expect("histogram")).expect("ours");
    let ours: Vec<(u64, u64)> = ours.iter_recorded().map(|b| (b.value_iterated_to(), b.count_at_value())).collect();
    assert!(!ours.is_empty());
    assert_eq!(theirs, ours, "every bucket the same in both implementations");
    let _ = std::fs::remove_file(json);
}

#[tokio::test]
async fn merge_of_two_runs_adds_up_exactly() {
    let server = bimodal().await;
    let url = server.url();
    let (a, b) = (temp("a.json"), temp("b.json"));
    for path in [&a, &b] {
        let p = path.to_string_lossy().into_owned();
        let out = loadtest(&[
            "--host",
            &url,
            "--users",
            "2",
            "--duration",
            "1s",
            "--endpoint",
            "/",
            "--json",
            &p,
            "--slo",
            "rps>=1",
        ])
        .await;
        assert_eq!(out.status.code(), Some(0));
    }
    let merged_path = temp("merged.json");
    let (ap, bp, mp) = (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
        merged_path.to_string_lossy().into_owned(),
    );
    let out = loadtest(&["merge", &ap, &bp, "--json", &mp, "--slo", "rps>=1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let read =
        |p: &PathBuf| -> Value { serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json") };
    let (va, vb, vm) = (read(&a), read(&b), read(&merged_path));
    assert_eq!(n(&vm["total"]["requests"]), n(&va["total"]["requests"]) + n(&vb["total"]["requests"]));
    assert_eq!(vm["model"]["kind"], "merged");
    // The merged histogram is the sum of both: its count equals both counts and its max the larger.
    let max = |v: &Value| v["total"]["latency_ms"]["max"].as_f64().unwrap_or(0.0);
    assert_eq!(max(&vm), max(&va).max(max(&vb)));
    let out = loadtest(&["merge", &ap, "--slo", "rps>=1000000"]).await;
    assert_eq!(out.status.code(), Some(3), "merge gates on SLOs too");
    let garbage = temp("garbage.json");
    std::fs::write(&garbage, "{\"format\": \"something-else\"}").expect("write");
    let out = loadtest(&["merge", &garbage.to_string_lossy()]).await;
    assert_eq!(out.status.code(), Some(1));
    for p in [a, b, merged_path, garbage] {
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn bad_flags_and_unreachable_targets_fail_the_run_clearly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let cases: &[(&[&str], &str)] = &[
        (&["--users", "1"], "--host is required"),
        (&["--host", "https://127.0.0.1:1", "--users", "1"], "cannot reach https://127.0.0.1:1"),
        (&["--host", "ftp://127.0.0.1:80"], "must start with http:// or https://"),
        // HOST:PORT alone is http://, as the monitor takes it.
        (&["--host", &dead[7..], "--users", "1", "--duration", "1s"], &format!("cannot reach {dead}")),
        (&["--host", "https://127.0.0.1:1", "--ca-cert", "/nonexistent/ca.pem"], "--ca-cert /nonexistent/ca.pem:"),
        (&["--host", "https://127.0.0.1:1", "--ca-cert", "/etc/passwd"], "holds no certificate"),
        (&["--host", "http://127.0.0.1:1", "--users", "0"], "at least 1"),
        (&["--host", "http://127.0.0.1:1", "--rate", "lots"], "not a rate"),
        (&["--host", "http://127.0.0.1:1", "--endpoint", "health"], "must start with /"),
        (&["--host", &dead, "--endpoint", "/", "--endpoint", "/=3"], "\"GET /\" twice in the mix"),
        (&["--host", "http://127.0.0.1:1", "--slo", "p95<fast"], "not a duration"),
        (&["--host", "http://127.0.0.1:1", "--users", "5", "--rate", "5/s"], "cannot be used with"),
        (&["--host", &dead, "--users", "1", "--duration", "1s"], "cannot reach"),
    ];
    for (args, fragment) in cases {
        let out = loadtest(args).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(fragment), "{args:?}: {err:?} lacks {fragment:?}");
    }
    let out = tokio::process::Command::new(BIN)
        .args(["--host", "http://127.0.0.1:1", "--duration", "1s"])
        .env_clear()
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("API_KEY is not set"));
}

#[tokio::test]
async fn a_bad_value_outside_the_tools_sections_does_not_stop_the_run() {
    let server = bimodal().await;
    let file = temp("stack.yaml");
    let example = include_str!("../../stack.yaml");
    std::fs::write(&file, example.replace("cidr: 10.40.0.0/16", "cidr: 10.40.0.0/33")).expect("write");
    let path = file.to_string_lossy().into_owned();
    let args = ["--host", &server.url(), "--users", "1", "--duration", "1s", "--endpoint", "/", "--stack", &path];
    let out = loadtest(&args).await;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The stack's SLOs were read (rps>=1000 is missed by one user): exit 3, not a config failure.
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("rps>=1000") && !said.contains("network.cidr"), "{said}");
    std::fs::write(&file, example.replace("p95_latency: 300ms", "p95_latency: 0ms")).expect("write");
    let out = loadtest(&args).await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("slo.p95_latency"), "{said}");
    let _ = std::fs::remove_file(file);
}

/// Runs the binary in an empty network namespace (`unshare -n`): nothing it does can leave this
/// machine, whatever a regression makes it try.
async fn offline(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("unshare")
        .arg("-n")
        .arg(BIN)
        .args(args)
        .arg("--quiet")
        .env_clear()
        .env("API_KEY", KEY)
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run `unshare -n` ({e}): util-linux's unshare and root are needed"))
}

#[tokio::test]
async fn the_key_is_refused_over_plain_http_to_another_machine_before_any_connection() {
    // TEST-NET-3: never routed; and the namespace has no network at all.
    let far = "http://203.0.113.7:8080";
    let out = offline(&["--host", far, "--rate", "5/s", "--duration", "1s"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to send the API key to http://203.0.113.7:8080 over plain HTTP")
            && err.contains("--send-key-over-http"),
        "{err}"
    );
    // Without the key in the mix, or when told to send it, the run goes on to connect (and, with
    // no network here, cannot): the refusal is about the key, not the URL.
    for args in [
        &["--host", far, "--rate", "5/s", "--duration", "1s", "--endpoint", "/"][..],
        &["--host", far, "--rate", "5/s", "--duration", "1s", "--send-key-over-http"][..],
    ] {
        let out = offline(args).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("refusing") && err.contains("cannot reach"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn a_closed_stdout_ends_the_run_quietly() {
    let server = Server::start(Router::new().route("/", get(|| async { "ok" }))).await;
    // `loadtest … | head -0`: the reader is gone before the report is written.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    // std's Command: tokio's `output` would replace the given stdout with a pipe of its own.
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["--host", &url, "--rate", "20/s", "--duration", "1s", "--endpoint", "/", "--quiet"])
            .env_clear()
            .current_dir(std::env::temp_dir())
            .stdout(writer)
            .output()
            .expect("run loadtest")
    })
    .await
    .expect("join");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

/// A service whose every answer takes `ms`.
async fn taking(ms: u64) -> Server {
    Server::start(Router::new().route(
        "/",
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            "ok"
        }),
    ))
    .await
}

#[tokio::test]
async fn compare_flags_a_known_regression_and_not_two_runs_of_the_same_target() {
    let (steady, slower) = (taking(50).await, taking(100).await);
    let run = async |url: String, name: &str| {
        let path = temp(name);
        let p = path.to_string_lossy().into_owned();
        // 400 samples: the p95's interval is then a few ranks wide, not the run's maximum.
        let args = ["--host", &url, "--rate", "200/s", "--duration", "2s", "--endpoint", "/", "--json", &p];
        let out = loadtest(&args).await;
        // The default SLOs' rps>=1000 cannot be judged at 50/s: a gate that judged nothing is 3.
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", String::from_utf8_lossy(&out.stderr));
        p
    };
    let base = run(steady.url(), "compare-base.json").await;
    let again = run(steady.url(), "compare-again.json").await;
    let slow = run(slower.url(), "compare-slow.json").await;
    let compare = |new: &str| {
        let (base, new) = (base.clone(), new.to_owned());
        async move { loadtest(&["compare", &base, &new]).await }
    };

    let same = compare(&again).await;
    let said = String::from_utf8_lossy(&same.stdout).into_owned();
    assert_eq!(same.status.code(), Some(0), "two runs of one target: {said}");
    assert!(said.contains("No regression"), "{said}");

    let json = temp("compare.json").to_string_lossy().into_owned();
    let html = temp("compare.html").to_string_lossy().into_owned();
    let regressed = loadtest(&["compare", &base, &slow, "--json", &json, "--html", &html]).await;
    let said = String::from_utf8_lossy(&regressed.stdout).into_owned();
    assert_eq!(regressed.status.code(), Some(3), "50 ms → 100 ms: {said}");
    assert!(said.contains("REGRESSED"), "{said}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    let p95 =
        v["endpoints"][0]["figures"].as_array().expect("figures").iter().find(|f| f["metric"] == "p95").expect("p95");
    assert_eq!(p95["regressed"], true, "{p95}");
    assert_eq!(p95["beyond_noise"], true, "{p95}");
    assert!(p95["change_percent"].as_f64().is_some_and(|c| c > 50.0), "{p95}");
    // Both distributions on one chart, the regressed row marked.
    let page = std::fs::read_to_string(&html).expect("html written");
    assert_eq!(page.matches("<polyline").count(), 2, "base and new");
    assert!(page.contains(">p95<") && page.contains("REGRESSED"), "{page}");
    assert_eq!(v["curve"].as_array().map(Vec::len), Some(10), "{}", v["curve"]);

    // With the limit off, the same difference is shown and not judged.
    let off = loadtest(&["compare", &base, &slow, "--max-p95-regression", "off"]).await;
    assert_eq!(off.status.code(), Some(0), "{}", String::from_utf8_lossy(&off.stdout));
    let bad = loadtest(&["compare", &base, "/nonexistent.json"]).await;
    assert_eq!(bad.status.code(), Some(1));
    for p in [base, again, slow, json, html] {
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn compare_refuses_a_malformed_or_hostile_base_with_exit_1_and_says_why() {
    // The base is often an earlier CI run's artifact: data to check, never to trust.
    let server = taking(1).await;
    let good = temp("hostile-good.json").to_string_lossy().into_owned();
    let out =
        loadtest(&["--host", &server.url(), "--rate", "100/s", "--duration", "1s", "--endpoint", "/", "--json", &good])
            .await;
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&good).expect("json")).expect("JSON");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        edit(&mut d);
        d.to_string()
    };
    let b64 = |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    // A V2 histogram header claiming a 4 GiB payload it does not carry.
    let mut four_gib = vec![0x1c, 0x84, 0x93, 0x13, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3];
    four_gib.extend_from_slice(&1_u64.to_be_bytes());
    four_gib.extend_from_slice(&600_000_000_u64.to_be_bytes());
    four_gib.extend_from_slice(&1.0_f64.to_be_bytes());
    let mut huge = " ".repeat(65 << 20);
    huge.push_str(&doc.to_string());
    // A histogram of three values each counted i64::MAX times: its total overflows u64.
    let mut overflowing = loadtest::stats::new_histogram();
    for ms in [1_000, 2_000, 3_000] {
        overflowing.record_n(ms, i64::MAX as u64).expect("record");
    }
    let overflowing = loadtest::stats::encode_histogram(&overflowing);
    let endpoint = doc["endpoints"][0].clone();
    let named = |name: String| {
        let mut e = endpoint.clone();
        e["name"] = name.into();
        e
    };
    let many: Vec<Value> = (0..=256).map(|i| named(format!("GET /{i}"))).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("not JSON", "{\"format\": \"konnichiwa-loadtest/1\", $(touch pwned)".to_owned(), "not a loadtest result"),
        ("another document", "{\"format\": \"konnichiwa-loadtest/1\"}".to_owned(), "missing field"),
        ("another format", with(&|d| d["format"] = "konnichiwa-loadtest/9".into()), "format \"konnichiwa-loadtest/9\""),
        ("more failures than requests", with(&|d| d["total"]["failures"] = (u64::MAX).into()), "failures of"),
        ("a histogram claiming 4 GiB", with(&|d| d["total"]["histogram"] = b64(&four_gib).into()), "cut short"),
        ("a histogram of garbage", with(&|d| d["total"]["histogram"] = "AAAA".into()), "not HdrHistogram's V2"),
        (
            "a name that would print a workflow command",
            with(&|d| d["endpoints"][0]["name"] = "GET /\n::error::forged".into()),
            "not a line of text",
        ),
        ("over 64 MiB", huge, "larger than 64 MiB"),
        ("u64::MAX requests", with(&|d| d["total"]["requests"] = u64::MAX.into()), "more than a run makes"),
        (
            "an endpoint's 10^12 + 1 requests",
            with(&|d| d["endpoints"][0]["requests"] = 1_000_000_000_001_u64.into()),
            "1000000000001 requests, more than a run makes",
        ),
        (
            "a histogram whose counts overflow",
            with(&|d| d["total"]["histogram"] = overflowing.clone().into()),
            "samples, more than a run makes",
        ),
        (
            "one endpoint twice",
            with(&|d| {
                let first = d["endpoints"][0].clone();
                d["endpoints"].as_array_mut().expect("endpoints").push(first);
            }),
            "twice",
        ),
        ("257 endpoints", with(&|d| d["endpoints"] = many.clone().into()), "257 endpoints, more than a run has"),
    ];
    for (what, text, says) in cases {
        let base = temp("hostile-base.json");
        std::fs::write(&base, text).expect("write");
        let base_s = base.to_string_lossy().into_owned();
        let out = tokio::time::timeout(Duration::from_secs(60), loadtest(&["compare", &base_s, &good]))
            .await
            .unwrap_or_else(|_| panic!("{what}: compare did not finish"));
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}{stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(says), "{what}: {stderr}");
        assert!(!stderr.contains("panicked") && !stdout.contains("::error::"), "{what}: {stdout}{stderr}");
    }
    assert!(!std::env::temp_dir().join("pwned").exists(), "nothing in a document is run");
    let _ = std::fs::remove_file(temp("hostile-base.json"));
    let _ = std::fs::remove_file(&good);
}
