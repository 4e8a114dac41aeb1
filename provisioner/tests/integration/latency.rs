//! The latency benchmark (issue #27), run by `scripts/bench-latency`, not by the suite: the same
//! stack through a proxy that answers every call a fixed delay late, as a region far from the
//! runner does, at each delay in `BENCH_LATENCY_MS` (default 0,50,100,200). For each of cold `up`,
//! no-op `plan`, no-op `up` and `down`: wall time, calls, the most calls in flight at once, and the
//! time the delay added over the 0 ms row against what it would add one call at a time. Then
//! the throttled calls under per-API rate limits, one call at a time against the default bound.
//! Prints a Markdown table, and writes it as JSON to `BENCH_LATENCY_OUT` when set; with
//! `BENCH_LATENCY_TRACE` set, also each call's start (what waits for what, read at a large delay).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::faults::{Faults, Proxy};
use crate::common::{Account, moto_url};

/// One step at one delay.
struct Row {
    delay_ms: u64,
    step: &'static str,
    seconds: f64,
    calls: usize,
    peak_in_flight: usize,
}

async fn step(account: &Account, proxy: &Proxy, args: &[&str], env: &[(&str, &str)]) -> (f64, usize, usize) {
    proxy.reset_counts();
    proxy.take_peak_in_flight();
    let started = Instant::now();
    let out = account.json_at(&proxy.url, args, env, 0).await;
    let seconds = started.elapsed().as_secs_f64();
    let calls = proxy.operations().len();
    assert!(out.is_object());
    if std::env::var_os("BENCH_LATENCY_TRACE").is_some() {
        eprintln!("{}", trace(&proxy.arrivals(), started));
    }
    (seconds, calls, proxy.take_peak_in_flight())
}

/// One line per call: milliseconds from the step's start, and the operation.
fn trace(arrivals: &[(Instant, String)], started: Instant) -> String {
    arrivals
        .iter()
        .map(|(at, op)| format!("  {:>6} ms  {op}", at.duration_since(started).as_millis()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn delays() -> Vec<u64> {
    let text = std::env::var("BENCH_LATENCY_MS").unwrap_or_else(|_| "0,50,100,200".into());
    text.split(',').map(|d| d.trim().parse().expect("BENCH_LATENCY_MS: milliseconds, comma-separated")).collect()
}

const STEPS: [(&str, &[&str]); 4] = [
    ("cold up", &["up", "--yes"]),
    ("no-op plan", &["plan"]),
    ("no-op up", &["up", "--yes"]),
    ("down", &["down", "--yes", "--purge"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark of minutes: run by scripts/bench-latency"]
async fn bench_latency() {
    // moto's first account of a run is slow to set up: one run, not measured, first.
    let warm_up = Account::new();
    warm_up.json(&["up", "--yes"], 0);
    warm_up.json(&["down", "--yes", "--purge"], 0);
    let mut rows = Vec::new();
    for delay_ms in delays() {
        let account = Account::new();
        let proxy = Proxy::start(&moto_url(), Faults::default()).await;
        proxy.set_latency(Duration::from_millis(delay_ms));
        for (name, args) in STEPS {
            let (seconds, calls, peak_in_flight) = step(&account, &proxy, args, &[]).await;
            eprintln!("{delay_ms:>4} ms  {name:<10} {seconds:>7.2} s  {calls:>4} calls  peak {peak_in_flight}");
            rows.push(Row { delay_ms, step: name, seconds, calls, peak_in_flight });
        }
    }
    println!("{}", table(&rows));
    println!("{}", throttling().await);
    if let Ok(path) = std::env::var("BENCH_LATENCY_OUT") {
        std::fs::write(&path, serde_json::to_string_pretty(&as_json(&rows)).expect("json")).expect("write");
    }
}

/// The reads a stack's plan makes most, each held to a few calls a second as AWS's per-API token
/// buckets would be on a busy account.
const RATE_LIMITED: [&str; 10] = [
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "DescribeRouteTables",
    "DescribeInternetGateways",
    "GetRole",
    "ListRolePolicies",
    "ListAttachedRolePolicies",
    "ListTagsForResource",
    "DescribeAlarms",
];

/// Throttled calls with one call at a time and with the default bound, through a proxy that
/// answers 50 ms late and lets each of `RATE_LIMITED` through `BENCH_RATE_LIMIT` times a second
/// (default 10; the rest get the service's throttling answer and are retried by the SDK): a
/// Markdown table.
async fn throttling() -> String {
    let per_second: usize = std::env::var("BENCH_RATE_LIMIT").map_or(10, |v| v.parse().expect("BENCH_RATE_LIMIT"));
    let mut out = format!(
        "Each of {} operations at most {per_second} a second:\n\n| in flight at most | step | wall | calls | \
         throttled |\n| ---: | --- | ---: | ---: | ---: |\n",
        RATE_LIMITED.len()
    );
    for parallelism in ["1", "16"] {
        let account = Account::new();
        let proxy = Proxy::start(&moto_url(), Faults::default()).await;
        proxy.set_latency(Duration::from_millis(50));
        for op in RATE_LIMITED {
            proxy.limit_rate(op, per_second);
        }
        for (name, args) in STEPS {
            let env = [("KONNICHIWA_PARALLELISM", parallelism)];
            // Each step starts with the whole allowance, however soon after the one before it.
            proxy.refill_rate_limits();
            let (seconds, calls, _) = step(&account, &proxy, args, &env).await;
            let stats = proxy.stats();
            let throttled: usize = stats.values().map(|s| s.throttled).sum();
            let by_operation: Vec<String> = RATE_LIMITED
                .iter()
                .filter_map(|op| stats.get(*op).map(|s| format!("{op} {}/{}", s.throttled, s.seen)))
                .collect();
            eprintln!("    throttled/calls: {}", by_operation.join(", "));
            eprintln!(
                "parallelism {parallelism:>2}  {name:<10} {seconds:>7.2} s  {calls:>4} calls  {throttled} throttled"
            );
            out += &format!("| {parallelism} | {name} | {seconds:.1} s | {calls} | {throttled} |\n");
        }
    }
    out
}

/// Seconds the delay added to `row` over the same step at 0 ms, when 0 ms was measured.
fn added(rows: &[Row], row: &Row) -> Option<f64> {
    let base = rows.iter().find(|r| r.delay_ms == 0 && r.step == row.step)?;
    Some(row.seconds - base.seconds)
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| delay | step | wall | calls | peak in flight | added over 0 ms | one at a time would add | ratio |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let sequential = r.calls as f64 * r.delay_ms as f64 / 1000.0;
        let (added, ratio) = match (added(rows, r), r.delay_ms) {
            (Some(a), d) if d > 0 => (format!("{a:.1} s"), format!("{:.2}", a / sequential)),
            _ => ("-".into(), "-".into()),
        };
        out += &format!(
            "| {} ms | {} | {:.1} s | {} | {} | {added} | {sequential:.1} s | {ratio} |\n",
            r.delay_ms, r.step, r.seconds, r.calls, r.peak_in_flight
        );
    }
    out
}

fn as_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({ "delay_ms": r.delay_ms, "step": r.step, "seconds": r.seconds, "calls": r.calls,
                        "peak_in_flight": r.peak_in_flight, "added_seconds": added(rows, r) })
            })
            .collect(),
    )
}
