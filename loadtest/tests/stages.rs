//! Stages against local servers: the per-second history follows a ramp, users follow a users
//! profile, the SLOs can be judged on one stage, `--abort-on-fail` stops a failing run early with
//! exit 3, and a `--start-at` run waits for its time (or refuses when late).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::testing::Server;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadtest");

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("konnichiwa-stages-{}-{name}", std::process::id()))
}

/// Runs the binary (no stack.yaml around); the exit code, the JSON document and stdout.
async fn run(args: &[&str], name: &str) -> (i32, Value, String) {
    let path = temp(name);
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .args(["--quiet", "--endpoint", "/", "--json"])
        .arg(&path)
        .env_clear()
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .expect("run loadtest");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no JSON written: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    let _ = std::fs::remove_file(&path);
    (out.status.code().unwrap_or(-1), serde_json::from_str(&text).expect("valid JSON"), stdout)
}

/// Runs the binary where it must fail: its exit code and what it said on stderr.
async fn refused(args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(BIN).args(args).env_clear().output().await.expect("run loadtest");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn fast() -> Server {
    Server::start(Router::new().route("/", get(|| async { "ok" }))).await
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test]
async fn the_history_follows_a_ramp_and_a_hold() {
    let server = fast().await;
    let (code, v, stdout) = run(
        &["--host", &server.url(), "--stage", "up=4s:400/s", "--stage", "hold=2s:400/s", "--slo", "rps>=1"],
        "ramp.json",
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    // 800 arrivals on the way up (a triangle), 800 in the hold: every one of them sent.
    assert_eq!(count(&v["total"]["requests"]), 1600);
    let planned = [50.0, 150.0, 250.0, 350.0, 400.0, 400.0];
    let history = v["history"].as_array().expect("history");
    for (s, want) in planned.iter().enumerate() {
        let second = &history[s];
        assert!((second["planned"].as_f64().unwrap_or(0.0) - want).abs() < 1e-6, "planned in second {s}: {second}");
        let got = count(&second["requests"]) as f64;
        // Answers are counted in the second they finish: a few move across a boundary.
        assert!((got - want).abs() <= want * 0.1 + 5.0, "second {s}: {got} requests, planned {want}");
        assert_eq!(second["stage"], if s < 4 { "up" } else { "hold" });
    }
    let stages = v["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 2);
    assert_eq!((stages[0]["from"].as_f64(), stages[0]["to"].as_f64()), (Some(0.0), Some(400.0)));
    assert_eq!(stages[1]["unit"], "req/s");
    let hold_rps = stages[1]["rps"].as_f64().unwrap_or(0.0);
    assert!((hold_rps - 400.0).abs() < 40.0, "the hold ran at {hold_rps} req/s");
    assert!(stdout.contains("up ") && stdout.contains("0 → 400 req/s"), "the text report lists the stages: {stdout}");
    assert_eq!(v["model"]["stages"][1], "hold=2000ms:400/s");
}

#[tokio::test]
async fn users_follow_a_users_profile_up_and_down() {
    let server = fast().await;
    let (code, v, stdout) = run(
        &[
            "--host",
            &server.url(),
            "--stage",
            "0s:2",
            "--stage",
            "2s:6",
            "--stage",
            "1s:6",
            "--stage",
            "2s:0",
            "--slo",
            "rps>=1",
        ],
        "users.json",
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    let users: Vec<u64> = v["history"].as_array().expect("history").iter().map(|s| count(&s["users"])).collect();
    let planned: Vec<f64> =
        v["history"].as_array().expect("history").iter().map(|s| s["planned"].as_f64().unwrap_or(-1.0)).collect();
    assert_eq!(&planned[..5], [4.0, 6.0, 6.0, 3.0, 0.0], "users due at each second's end");
    assert!(users[2] == 6, "the hold runs 6 users: {users:?}");
    assert!((3..=5).contains(&users[0]), "from 2 to 4 users in the first second: {users:?}");
    assert!(users[3] <= 6 && users[3] >= 2, "on the way down: {users:?}");
    assert_eq!(v["model"]["kind"], "closed");
}

/// Slow (400 ms) for its first 1.5 s of life, then fast.
async fn slow_to_warm_up() -> Server {
    let born = Instant::now();
    Server::start(Router::new().route(
        "/",
        get(move || async move {
            if born.elapsed() < Duration::from_millis(1500) {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            "ok"
        }),
    ))
    .await
}

#[tokio::test]
async fn slos_are_judged_on_a_named_stage_so_a_warm_up_does_not_count() {
    let args = |url: &str| -> Vec<String> {
        ["--host", url, "--stage", "warmup=0s:40/s", "--stage", "warmup2=2s:40/s", "--stage", "hold=2s:40/s"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["--slo", "p95<300ms", "--slo", "errors<1%"].map(str::to_owned))
            .collect()
    };
    let server = slow_to_warm_up().await;
    let whole: Vec<String> = args(&server.url());
    let whole: Vec<&str> = whole.iter().map(String::as_str).collect();
    let (code, v, stdout) = run(&whole, "whole.json").await;
    assert_eq!(code, 3, "the slow warm-up misses p95 over the whole run: {stdout}");
    assert_eq!(v["slo_stage"], Value::Null, "present, null: judged on the whole run");

    let server = slow_to_warm_up().await;
    let mut staged = args(&server.url());
    staged.extend(["--slo-stage".to_owned(), "hold".to_owned()]);
    let staged: Vec<&str> = staged.iter().map(String::as_str).collect();
    let (code, v, stdout) = run(&staged, "staged.json").await;
    assert_eq!(code, 0, "the hold alone meets it: {stdout}");
    assert_eq!(v["slo_stage"], "hold");
    assert!(stdout.contains("SLOs (all met, judged on stage hold)"), "{stdout}");
    let hold = v["stages"].as_array().expect("stages").iter().find(|s| s["name"] == "hold").expect("hold").clone();
    assert!(hold["latency_ms"]["p95"].as_f64().unwrap_or(1e9) < 300.0, "{hold}");
    assert!(v["total"]["latency_ms"]["p95"].as_f64().unwrap_or(0.0) >= 300.0, "the whole run still shows the warm-up");
}

#[tokio::test]
async fn abort_on_fail_stops_a_failing_run_early_with_exit_3() {
    let server =
        Server::start(Router::new().route("/", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "no") }))).await;
    let began = Instant::now();
    let (code, v, stdout) = run(
        &["--host", &server.url(), "--rate", "100/s", "--duration", "30s", "--slo", "errors<1%", "--abort-on-fail"],
        "abort.json",
    )
    .await;
    assert_eq!(code, 3, "{stdout}");
    assert!(began.elapsed() < Duration::from_secs(10), "stopped early, not after 30 s");
    let why = v["aborted"].as_str().expect("the reason is in the document");
    assert!(why.starts_with("errors<1%: ") && why.contains("of the 3000 requests planned for the run"), "{why}");
    assert!(stdout.contains("Aborted after"), "{stdout}");
    assert_eq!(v["slo_met"], false);

    // Without the flag the same run goes on to the end of its (short) duration.
    let (code, v, _) =
        run(&["--host", &server.url(), "--rate", "50/s", "--duration", "2s", "--slo", "errors<1%"], "noabort.json")
            .await;
    assert_eq!((code, count(&v["total"]["requests"])), (3, 100));
    assert!(v.get("aborted").is_none());
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[tokio::test]
async fn start_at_waits_for_the_agreed_time_and_a_late_start_is_refused() {
    let server = fast().await;
    let at = now_ms() + 1500;
    let at_text = at.to_string();
    let (code, v, stdout) = run(
        &[
            "--host",
            &server.url(),
            "--rate",
            "20/s",
            "--duration",
            "1s",
            "--slo",
            "rps>=1",
            "--start-at",
            &at_text,
            "--result-lines",
        ],
        "at.json",
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(count(&v["started_at_unix_ms"]), at, "the document starts at the agreed time");
    let now = now_ms();
    // The 20th arrival is due 950 ms after the start.
    assert!(now >= at + 950, "the load began at the agreed time, not before: {now} < {at} + 950\n{stdout}");
    let back = loadtest::report::lines::decode(stdout.lines()).expect("lines").expect("a whole document");
    assert_eq!(back.total.requests, count(&v["total"]["requests"]), "stdout carries the result as lines");

    let late = (now_ms() - 10_000).to_string();
    let url = server.url();
    let (code, err) =
        refused(&["--host", &url, "--rate", "20/s", "--duration", "1s", "--endpoint", "/", "--start-at", &late]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("after the agreed start time"), "{err}");
}

#[tokio::test]
async fn stages_and_the_judged_stage_come_from_the_stack_file_too() {
    let server = fast().await;
    let dir = temp("stackdir");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("stack.yaml");
    std::fs::write(
        &file,
        "name: staged\nslo: { requests_per_second: 1, p95_latency: 300ms, max_error_rate: 1% }\n\
         loadtest: { stages: [\"warm=1s:20/s\", \"hold=1s:20/s\"], slo_stage: hold }\n",
    )
    .expect("stack file");
    let stack = file.to_string_lossy().into_owned();
    let (code, v, stdout) = run(&["--host", &server.url(), "--stack", &stack], "fromstack.json").await;
    assert_eq!(code, 0, "{stdout}");
    let names: Vec<&str> = v["stages"].as_array().expect("stages").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["warm", "hold"]);
    assert_eq!(v["slo_stage"], "hold");
    assert_eq!(count(&v["total"]["requests"]), 30, "10 on the ramp, 20 in the hold");

    std::fs::write(&file, "name: staged\nloadtest: { stages: [\"1s:fast\"] }\n").expect("stack file");
    let (code, err) = refused(&["--host", &server.url(), "--stack", &stack]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("loadtest.stages[0]") && err.contains("not a target"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn plain_runs_name_their_stages_and_an_open_models_seconds_show_requests_in_flight() {
    let server = fast().await;
    let (code, v, stdout) = run(
        &["--host", &server.url(), "--users", "2", "--spawn-rate", "2", "--duration", "2s", "--slo", "rps>=1"],
        "users.json",
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    let names: Vec<&str> =
        v["stages"].as_array().expect("stages").iter().map(|s| s["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["spawn", "hold"], "{stdout}");
    assert!(stdout.contains("\nspawn ") && stdout.contains("\nhold "), "{stdout}");
    assert_eq!(v["slo_stage"], Value::Null);

    // A local server answers in microseconds: sampled once a second, the requests in flight
    // would almost always read 0. Each second shows the most there were in it instead.
    let csv = temp("open").to_string_lossy().into_owned();
    let (code, v, stdout) = run(
        &["--host", &server.url(), "--rate", "200/s", "--duration", "2s", "--slo", "rps>=1", "--csv", &csv],
        "open.json",
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    let history = v["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history.iter().all(|s| count(&s["users"]) >= 1 && s["stage"] == "hold"), "{history:?}");
    let rows = std::fs::read_to_string(format!("{csv}_stats_history.csv")).expect("history csv");
    let user_counts: Vec<&str> = rows.lines().skip(1).map(|l| l.split(',').nth(1).expect("User Count")).collect();
    assert!(!user_counts.is_empty() && user_counts.iter().all(|c| *c != "0"), "{rows}");
    for suffix in ["stats", "stats_history", "failures", "stages"] {
        let _ = std::fs::remove_file(format!("{csv}_{suffix}.csv"));
    }
}
