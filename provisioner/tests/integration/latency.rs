//! The latency benchmark (issue #27), run by `scripts/bench-latency`, not by the suite: the same
//! stack through a proxy that answers every call a fixed delay late, as a region far from the
//! runner does, at each delay in `BENCH_LATENCY_MS` (default 0,50,100,200). For each of cold `up`,
//! no-op `plan`, no-op `up` and `down`: wall time, calls, the most calls in flight at once, and the
//! time the delay added over the 0 ms row against what it would add one call at a time. Then
//! the throttled calls under AWS's documented request rates, one call at a time against the
//! default bound.
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

/// Throttled calls with one call at a time and with the default bound, through a proxy that
/// answers 50 ms late and throttles as AWS's documented token buckets would (each share of
/// `BENCH_RATE_SHARE`, default 1 and 0.1: the whole bucket, and a tenth of it on a busy account) (`aws_rates`: EC2 per
/// action, ECS per category, ELB per category within its account-wide bucket, Route 53's account
/// bucket, Parameter Store's 3 writes a second, CloudWatch's 3 alarm writes a second…; for
/// services that publish no rate, as IAM, an assumed 20 at once and 5 a second per action; the
/// throttled calls are retried by the SDK): a Markdown table, and the throttled operations.
async fn throttling() -> String {
    let shares = std::env::var("BENCH_RATE_SHARE").unwrap_or_else(|_| "1,0.1".into());
    let mut out = String::from(
        "Under AWS's documented request rates (share: of each bucket, left to this run):\n\n| share | in flight at \
         most | step | wall | calls | throttled | throttled operations (throttled/calls) |\n| ---: | ---: | --- | ---: | \
         ---: | ---: | --- |\n",
    );
    let shares: Vec<f64> = shares.split(',').map(|s| s.trim().parse().expect("BENCH_RATE_SHARE: fractions")).collect();
    for (share, parallelism) in shares.iter().flat_map(|s| ["1", "16"].map(|p| (*s, p))) {
        let account = Account::new();
        let proxy = Proxy::start(&moto_url(), Faults::default()).await;
        proxy.set_latency(Duration::from_millis(50));
        proxy.documented_rates(share);
        for (name, args) in STEPS {
            let env = [("KONNICHIWA_PARALLELISM", parallelism)];
            // Each step starts with every bucket full, however soon after the one before it.
            proxy.refill_rate_limits();
            let (seconds, calls, _) = step(&account, &proxy, args, &env).await;
            let stats = proxy.stats();
            let throttled: usize = stats.values().map(|s| s.throttled).sum();
            let by_operation: Vec<String> = stats
                .iter()
                .filter(|(_, s)| s.throttled > 0)
                .map(|(op, s)| format!("{op} {}/{}", s.throttled, s.seen))
                .collect();
            eprintln!(
                "share {share} parallelism {parallelism:>2}  {name:<10} {seconds:>7.2} s  {calls:>4} calls  {throttled} \
                 throttled  {}",
                by_operation.join(", ")
            );
            out += &format!(
                "| {share} | {parallelism} | {name} | {seconds:.1} s | {calls} | {throttled} | {} |\n",
                if by_operation.is_empty() { "-".to_owned() } else { by_operation.join(", ") }
            );
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
