//! `loadtest::measure`, the library's entry point, against a real server on 127.0.0.1 (port 0):
//! it returns the run's report, prints nothing, installs no signal handler (checked in a child
//! process, which a SIGTERM after the run must still kill), and `measure_until` stops on the
//! caller's word with an interrupted report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use app::testing::Server;
use axum::Router;
use loadtest::cli::RunArgs;
use loadtest::engine::{Stop, StopReason};

/// Counts the requests it answers (200 to any path), and says when the count changes.
async fn counting() -> (Server, Arc<AtomicU64>, Arc<tokio::sync::Notify>) {
    let count = Arc::new(AtomicU64::new(0));
    let changed = Arc::new(tokio::sync::Notify::new());
    let (c, n) = (Arc::clone(&count), Arc::clone(&changed));
    let router = Router::new().fallback(move || {
        let (c, n) = (Arc::clone(&c), Arc::clone(&n));
        async move {
            c.fetch_add(1, Ordering::Relaxed);
            n.notify_one();
            "ok"
        }
    });
    (Server::start(router).await, count, changed)
}

fn args(url: &str, duration: &str) -> RunArgs {
    RunArgs::from_flags([
        "--host",
        url,
        "--rate",
        "50/s",
        "--duration",
        duration,
        "--endpoint",
        "/",
        "--slo",
        "p95<1s",
        "--slo",
        "errors<1%",
        "--quiet",
    ])
    .expect("flags")
}

/// The whole check, run in this process (`measure_returns_…`) and in a child process whose
/// output and signal handling the parent judges (`measure_prints_nothing_…`).
async fn measure_and_check() {
    let (server, served, _) = counting().await;
    let doc = loadtest::measure(args(&server.url(), "1s")).await.expect("measured");
    assert_eq!(doc.total.requests, 50, "50/s for 1 s");
    assert_eq!(doc.total.requests, served.load(Ordering::Relaxed), "what the server answered");
    assert_eq!(doc.total.failures, 0);
    let p95 = doc.total.latency_ms.p95;
    assert!(p95 > 0.0 && p95 < 1000.0, "{p95}");
    assert!((doc.total.rps - 50.0).abs() < 10.0, "{}", doc.total.rps);
    let names: Vec<&str> = doc.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["GET /"]);
    assert_eq!(doc.slo.len(), 2);
    assert!(doc.slo_met && !doc.interrupted && doc.aborted.is_none(), "{:?}", doc.slo);
}

#[tokio::test]
async fn measure_returns_the_report_of_the_run() {
    measure_and_check().await;
}

const CHILD: &str = "KONNICHIWA_MEASURE_CHILD";

/// In the child process only: measures, then sends itself SIGTERM, which must end it (no
/// handler of the run's catches it).
#[tokio::test]
async fn child_measures_then_is_terminated() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    measure_and_check().await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill (procps or coreutils) is needed: install it");
    assert!(status.success());
    // Only reached when a handler caught the signal: a default SIGTERM ends the process at once.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
}

#[tokio::test]
async fn measure_prints_nothing_and_leaves_signals_to_the_caller() {
    use std::os::unix::process::ExitStatusExt;
    let out = tokio::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "child_measures_then_is_terminated", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("KONNICHIWA_STACK")
        .env_remove("LOADTEST_HOST")
        .output()
        .await
        .expect("run the child");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.signal(), Some(15), "ended by SIGTERM: {:?}\n{stdout}{stderr}", out.status);
    assert_eq!(stderr, "", "nothing on stderr");
    // The harness names the test and, killed, says no more; anything after the name is the run's.
    let rest = stdout.replace("test child_measures_then_is_terminated ... ", "");
    let printed: Vec<&str> = rest.lines().filter(|l| !l.is_empty() && !l.starts_with("running ")).collect();
    assert!(printed.is_empty(), "nothing on stdout but the test harness's lines: {printed:?}");
}

#[tokio::test]
async fn measure_until_stops_when_the_caller_says_and_reports_the_time_run() {
    let (server, served, changed) = counting().await;
    let stop = Stop::default();
    let run = tokio::spawn(loadtest::measure_until(args(&server.url(), "30s"), stop.clone()));
    while served.load(Ordering::Relaxed) < 10 {
        changed.notified().await;
    }
    stop.request(StopReason::Interrupted);
    let doc = run.await.expect("joined").expect("measured");
    assert!(doc.interrupted && !doc.slo_met, "an interrupted run is not a pass");
    assert_eq!(doc.planned_seconds, Some(30.0));
    assert!((10..100).contains(&doc.total.requests), "stopped after ~10 of 1500: {}", doc.total.requests);
}
