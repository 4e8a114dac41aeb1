//! `monitor check` and `monitor/monitor.sh` against the real app on port 0 and a fake app that
//! answers chosen figures: every state, every failure mode, the same exit codes from both.

mod common;

use std::time::Duration;

use common::{Inspect, KEY, container, fake_app, healthy, monitor, monitor_sh, real_app, report, stdout};

/// Thresholds at 100% keep the real-app tests independent of how busy this machine is; the
/// threshold logic itself is driven by the fake app below.
const CALM: &[&str] =
    &["--cpu-warning", "100", "--cpu-critical", "100", "--memory-warning", "100", "--memory-critical", "100"];

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["check", "--url", url];
    a.extend_from_slice(extra);
    a
}

#[tokio::test]
async fn the_real_app_is_ok() {
    let app = real_app().await;
    let url = app.url();
    let out = monitor(&args(&url, CALM), Some(KEY)).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("OK: health - 200 OK in ") && lines[0].contains("| health_latency="), "{text}");
    assert!(lines[1].starts_with("OK: cpu - CPU ") && lines[1].contains("cpu_used="), "{text}");
    assert!(lines[2].starts_with("OK: memory - memory ") && lines[2].contains("of the host's"), "{text}");

    let sh = monitor_sh(
        &url,
        Some(KEY),
        &[("CPU_WARNING", "100"), ("CPU_CRITICAL", "100"), ("MEMORY_WARNING", "100"), ("MEMORY_CRITICAL", "100")],
    )
    .await;
    assert_eq!(sh.status.code(), Some(0), "{}{}", stdout(&sh), String::from_utf8_lossy(&sh.stderr));
    assert_eq!(stdout(&sh).lines().count(), 3, "{}", stdout(&sh));
}

#[tokio::test]
async fn a_wrong_key_is_unknown_and_says_so() {
    let app = real_app().await;
    let url = app.url();
    let out = monitor(&args(&url, CALM), Some("not-the-key-at-all")).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("UNKNOWN: inspect - the service refused the API key (401)"), "{}", stdout(&out));
    let sh = monitor_sh(&url, Some("not-the-key-at-all"), &[]).await;
    assert_eq!(sh.status.code(), Some(3));
    assert!(stdout(&sh).contains("UNKNOWN: inspect - the service refused the API key (401)"), "{}", stdout(&sh));

    let no_key = monitor(&args(&url, CALM), None).await;
    assert_eq!(no_key.status.code(), Some(3));
    assert!(stdout(&no_key).contains("API_KEY is not set"), "{}", stdout(&no_key));
}

#[tokio::test]
async fn a_stopped_app_is_critical() {
    let app = real_app().await;
    let url = app.url();
    drop(app);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = monitor(&args(&url, &[]), Some(KEY)).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "CRITICAL outranks the UNKNOWN of /inspect: {text}");
    assert!(text.contains("CRITICAL: health - cannot connect to"), "{text}");
    assert!(text.contains("UNKNOWN: inspect - cannot connect to"), "{text}");
    assert!(!text.contains("panicked") && !String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let sh = monitor_sh(&url, Some(KEY), &[]).await;
    assert_eq!(sh.status.code(), Some(2), "{}", stdout(&sh));
    assert!(stdout(&sh).contains("CRITICAL: health - cannot connect to"));
}

#[tokio::test]
async fn each_threshold_state_with_its_reason() {
    // (container memory %, container CPU %, expected exit, expected line fragment)
    let table: &[(f64, Option<f64>, i32, &str)] = &[
        (50.0, Some(10.0), 0, "OK: memory - memory 50% of the container's 256 MiB limit"),
        (82.0, Some(10.0), 1, "WARNING: memory - memory 82% of the container's 256 MiB limit > 70%"),
        (95.0, Some(10.0), 2, "CRITICAL: memory - memory 95% of the container's 256 MiB limit > 90%"),
        (10.0, Some(75.0), 1, "WARNING: cpu - CPU 75% of the container's 0.25 vCPU limit > 70%"),
        (10.0, Some(91.0), 2, "CRITICAL: cpu - CPU 91% of the container's 0.25 vCPU limit > 90%"),
    ];
    for (memory, cpu, code, fragment) in table {
        let mut r = report();
        r.container = Some(container(*memory, *cpu));
        let (server, _) = fake_app(healthy(r)).await;
        let url = server.url();
        let out = monitor(&args(&url, &[]), Some(KEY)).await;
        assert_eq!(out.status.code(), Some(*code), "{fragment}: {}", stdout(&out));
        assert!(stdout(&out).contains(fragment), "expected {fragment:?} in:\n{}", stdout(&out));
        let sh = monitor_sh(&url, Some(KEY), &[]).await;
        assert_eq!(sh.status.code(), Some(*code), "monitor.sh for {fragment}: {}", stdout(&sh));
        assert!(stdout(&sh).contains(fragment), "monitor.sh: expected {fragment:?} in:\n{}", stdout(&sh));
    }
}

#[tokio::test]
async fn host_figures_are_used_outside_a_container_and_flags_set_thresholds() {
    let mut r = report();
    r.container = None;
    r.cpu.used_percent = Some(40.0);
    r.memory.used_percent = 75.0;
    let (server, _) = fake_app(healthy(r)).await;
    let url = server.url();
    let out =
        monitor(&args(&url, &["--cpu-warning", "30", "--cpu-critical", "50", "--memory-warning", "80"]), Some(KEY))
            .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("WARNING: cpu - CPU 40% of the host's"), "{text}");
    assert!(text.contains("OK: memory - memory 75% of the host's"), "{text}");
    let sh =
        monitor_sh(&url, Some(KEY), &[("CPU_WARNING", "30"), ("CPU_CRITICAL", "50"), ("MEMORY_WARNING", "80")]).await;
    assert_eq!(sh.status.code(), Some(1), "{}", stdout(&sh));
}

#[tokio::test]
async fn no_cpu_sample_yet_is_unknown() {
    let mut r = report();
    r.container = None;
    r.cpu.used_percent = None;
    let (server, _) = fake_app(healthy(r)).await;
    let out = monitor(&args(&server.url(), &[]), Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("UNKNOWN: cpu - no CPU figure yet"), "{}", stdout(&out));
}

#[tokio::test]
async fn slow_health_warns_then_times_out() {
    let mut b = healthy(report());
    b.health_delay = Duration::from_millis(300);
    let (server, _) = fake_app(b).await;
    let url = server.url();
    let calm_latency = ["--latency-warning", "100ms", "--latency-critical", "2s"];
    let mut a = args(&url, &calm_latency);
    a.extend_from_slice(CALM);
    let out = monitor(&a, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("WARNING: health - 200 OK in 3"), "{}", stdout(&out));

    let mut a = args(&url, &["--timeout", "150ms"]);
    a.extend_from_slice(CALM);
    let out = monitor(&a, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("CRITICAL: health - no answer from") && stdout(&out).contains("within 150ms"),
        "{}",
        stdout(&out)
    );

    let sh = monitor_sh(
        &url,
        Some(KEY),
        &[
            ("LATENCY_WARNING", "0.1"),
            ("CPU_WARNING", "100"),
            ("CPU_CRITICAL", "100"),
            ("MEMORY_WARNING", "100"),
            ("MEMORY_CRITICAL", "100"),
        ],
    )
    .await;
    assert_eq!(sh.status.code(), Some(1), "{}", stdout(&sh));
}

#[tokio::test]
async fn failing_and_malformed_answers_are_distinct() {
    let (server, shared) = fake_app(healthy(report())).await;
    let url = server.url();
    let cases: &[(Inspect, u16, i32, &str)] = &[
        (Inspect::Malformed, 200, 3, "UNKNOWN: inspect - malformed /inspect answer"),
        (Inspect::Status(500), 200, 3, "UNKNOWN: inspect - GET /inspect answered 500"),
        (Inspect::Report(Box::new(report())), 503, 2, "CRITICAL: health - GET /health answered 503"),
    ];
    for (inspect, health_status, code, fragment) in cases {
        {
            let mut b = shared.lock().expect("lock");
            b.inspect = inspect.clone();
            b.health_status = *health_status;
        }
        let mut a = args(&url, &[]);
        a.extend_from_slice(CALM);
        let out = monitor(&a, Some(KEY)).await;
        assert_eq!(out.status.code(), Some(*code), "{fragment}: {}", stdout(&out));
        assert!(stdout(&out).contains(fragment), "{fragment}: {}", stdout(&out));
        let sh = monitor_sh(
            &url,
            Some(KEY),
            &[("CPU_WARNING", "100"), ("CPU_CRITICAL", "100"), ("MEMORY_WARNING", "100"), ("MEMORY_CRITICAL", "100")],
        )
        .await;
        assert_eq!(sh.status.code(), Some(*code), "monitor.sh {fragment}: {}", stdout(&sh));
    }
}

#[tokio::test]
async fn json_output_has_the_documented_shape() {
    let mut r = report();
    r.container = Some(container(82.0, Some(10.0)));
    let (server, _) = fake_app(healthy(r)).await;
    let out = monitor(&args(&server.url(), &["--json"]), Some(KEY)).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["checked_at_unix_ms", "checks", "exit_code", "state", "url"]);
    assert_eq!(v["state"], "WARNING");
    assert_eq!(v["exit_code"], 1);
    let memory = v["checks"].as_array().expect("checks").iter().find(|c| c["check"] == "memory").expect("memory check");
    assert_eq!(memory["state"], "WARNING");
    assert_eq!(memory["perfdata"][0]["label"], "memory_used");
    assert_eq!(memory["perfdata"][0]["value"], 82.0);
    assert_eq!(memory["perfdata"][0]["warning"], 70.0);
}

#[tokio::test]
async fn usage_errors_are_unknown_not_critical() {
    let out = monitor(&["check"], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3), "clap's 2 would read as CRITICAL");
    let out = monitor(&["check", "--url", "127.0.0.1:4000"], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("must start with http://"), "{}", stdout(&out));
    let sh = tokio::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/monitor.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .expect("run");
    assert_eq!(sh.status.code(), Some(3));
    assert!(stdout(&sh).contains("API_URL is not set"));
}
