//! `monitor watch`: only state changes after the first pass, and webhook deliveries (retried,
//! never blocking the next check) to a local receiver.

mod common;

use std::time::{Duration, Instant};

use common::{BIN, KEY, container, fake_app, healthy, receiver, report, stdout};

async fn watch(url: &str, hook: Option<&str>, extra: &[&str]) -> std::process::Output {
    let mut c = tokio::process::Command::new(BIN);
    c.args(["watch", "--url", url, "--interval", "200ms", "--cpu-warning", "100", "--cpu-critical", "100"])
        .args(extra)
        .env_clear()
        .env("API_KEY", KEY)
        .current_dir(std::env::temp_dir());
    if let Some(h) = hook {
        c.args(["--webhook", h]);
    }
    c.output().await.expect("run watch")
}

#[tokio::test]
async fn prints_changes_only_and_posts_each_change() {
    let mut r = report();
    r.container = Some(container(50.0, Some(5.0)));
    let (server, shared) = fake_app(healthy(r.clone())).await;
    let (hook, got) = receiver(1).await; // the first delivery fails once, then succeeds
    let url = server.url();
    let hook_url = format!("{}/hook", hook.url());
    let flip = {
        let shared = shared.clone();
        let mut warm = r.clone();
        warm.container = Some(container(82.0, Some(5.0)));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(450)).await;
            shared.lock().expect("lock").inspect = common::Inspect::Report(Box::new(warm));
        })
    };
    let out = watch(&url, Some(&hook_url), &["--passes", "5", "--webhook-timeout", "1s"]).await;
    flip.await.expect("flip");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(out.status.code(), Some(1), "last pass is WARNING: {text}");
    assert_eq!(lines.len(), 5, "the first pass as a plugin reports it (summary and 3 checks), then 1 change:\n{text}");
    assert!(lines[0].starts_with("OK - health: 200 in"), "{text}");
    assert!(lines[4].contains("WARNING: memory - memory 82%"), "{text}");
    assert!(lines[4].chars().next().is_some_and(|c| c.is_ascii_digit()), "changes carry a timestamp: {}", lines[4]);

    let bodies = got.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "one change after an all-OK first pass (delivered on the retry): {bodies:?}");
    let msg = bodies[0]["text"].as_str().expect("Slack text");
    assert!(msg.contains("is WARNING") && msg.contains("memory 82%"), "{msg}");
    assert_eq!(bodies[0]["state"], "WARNING");
}

#[tokio::test]
async fn a_dead_webhook_never_delays_the_checks() {
    let mut r = report();
    r.container = Some(container(95.0, Some(5.0)));
    let (server, _) = fake_app(healthy(r)).await;
    // A receiver that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hook_url = format!("http://{}/hook", silent.local_addr().expect("addr"));
    let started = Instant::now();
    let out = watch(
        &server.url(),
        Some(&hook_url),
        &["--passes", "4", "--webhook-timeout", "500ms", "--webhook-attempts", "2"],
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    // 4 passes at 200 ms = ~0.6 s of checks; the one delivery gives up after 2 × 0.5 s + backoff.
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gave up on"), "{err}");
    drop(silent);
}

/// A target whose /health fails every other request (one request a pass) and whose /inspect
/// refuses the key (a steady UNKNOWN): the webhook deliveries of ten passes.
async fn flapping_deliveries(extra: &[&str]) -> Vec<serde_json::Value> {
    use axum::routing::get;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = axum::Router::new().route(
        "/health",
        get(move || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n.is_multiple_of(2) {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let server = common::Server::start(router).await;
    let (hook, got) = receiver(0).await;
    let hook_url = format!("{}/hook", hook.url());
    let mut args = vec!["--passes", "10", "--webhook-timeout", "1s"];
    args.extend_from_slice(extra);
    let out = watch(&server.url(), Some(&hook_url), &args).await;
    assert!(out.status.code().is_some(), "{}", stdout(&out));
    got.lock().expect("lock").clone()
}

#[tokio::test]
async fn a_flapping_target_pages_on_every_flap_without_thresholds_and_once_with_them() {
    let without = flapping_deliveries(&[]).await;
    // The first pass (the steady UNKNOWN of /inspect), then each of the nine flaps of /health.
    assert_eq!(without.len(), 10, "{without:#?}");
    let with = flapping_deliveries(&["--failure-threshold", "3", "--success-threshold", "2"]).await;
    assert_eq!(with.len(), 1, "only the first pass's steady problem: {with:#?}");
    // The same rules from stack.yaml's monitor.alerting.
    let stack = std::env::temp_dir().join(format!("konnichiwa-watch-alerting-{}.yaml", std::process::id()));
    std::fs::write(&stack, "monitor:\n  alerting: { failure_threshold: 3, success_threshold: 2 }\n").expect("stack");
    let from_stack = flapping_deliveries(&["--stack", &stack.to_string_lossy()]).await;
    assert_eq!(from_stack.len(), 1, "{from_stack:#?}");
    std::fs::remove_file(&stack).expect("clean up");
    // Each change says what it was and for how long (deliveries may arrive in any order).
    let down = without
        .iter()
        .find(|b| b["text"].as_str().is_some_and(|t| t.contains("CRITICAL: health") && t.contains("(was OK for")))
        .expect("a change to CRITICAL saying what it was");
    assert!(down["changes"][0]["held_seconds"].is_u64() && down["changes"][0]["from"] == "OK", "{down}");
}
