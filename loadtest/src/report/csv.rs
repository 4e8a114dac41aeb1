//! CSV files with locust's names and columns, so that tools written for locust's output read ours:
//! `PREFIX_stats.csv` (one row per endpoint, then `Aggregated`; after locust's columns, two of
//! ours: the answers that failed their check's status and its body text), `PREFIX_stats_history.csv` (one
//! `Aggregated` row per whole second: that second's rate and percentiles, the run's totals so far,
//! then two columns of ours, the stage and what the plan asked of the second),
//! `PREFIX_failures.csv`, and `PREFIX_stages.csv` (one row per stage). Times are milliseconds, as
//! locust writes them.

use std::io::Write;
use std::path::PathBuf;

use hdrhistogram::Histogram;

use crate::report::json::{EndpointDoc, ReportDoc};
use crate::stats::{decode_histogram, new_histogram};

/// Locust's percentile columns.
const PERCENTILES: [(f64, &str); 11] = [
    (50.0, "50%"),
    (66.0, "66%"),
    (75.0, "75%"),
    (80.0, "80%"),
    (90.0, "90%"),
    (95.0, "95%"),
    (98.0, "98%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (99.99, "99.99%"),
    (100.0, "100%"),
];

const STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s";
/// Ours, after locust's stats columns.
const CHECK_COLUMNS: &str = "Status Check Failures,Body Check Failures";
const HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s";
const HISTORY_TOTALS: &str = "Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size,Stage,Planned";
const STAGES_HEADER: &str =
    "Stage,Start (s),End (s),From,To,Unit,Request Count,Failure Count,Requests/s,Error %,50%,95%,99%,Max Response Time";

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// A millisecond figure with at most three decimals.
fn ms(us: f64) -> String {
    let s = format!("{:.3}", us / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn percentile_columns() -> String {
    PERCENTILES.iter().map(|(_, name)| *name).collect::<Vec<_>>().join(",")
}

fn percentiles(h: &Histogram<u64>) -> String {
    PERCENTILES
        .iter()
        .map(|(q, _)| if h.is_empty() { "0".to_owned() } else { ms(h.value_at_quantile(q / 100.0) as f64) })
        .collect::<Vec<_>>()
        .join(",")
}

/// Median, average, min and max of `h` in milliseconds.
fn summary(h: &Histogram<u64>) -> [String; 4] {
    if h.is_empty() {
        return ["0".into(), "0".into(), "0".into(), "0".into()];
    }
    [ms(h.value_at_quantile(0.5) as f64), ms(h.mean()), ms(h.min() as f64), ms(h.max() as f64)]
}

fn average_size(bytes: u64, requests: u64) -> String {
    if requests == 0 { "0".into() } else { format!("{:.2}", bytes as f64 / requests as f64) }
}

fn stats_row(e: &EndpointDoc, duration: f64) -> std::io::Result<String> {
    let h = decode_histogram(&e.histogram).map_err(std::io::Error::other)?;
    let (method, path) = e.method_and_path();
    let [median, mean, min, max] = summary(&h);
    let per_second = |n: u64| if duration > 0.0 { n as f64 / duration } else { 0.0 };
    Ok(format!(
        "{},{},{},{},{median},{mean},{min},{max},{},{:.6},{:.6},{},{},{}",
        method,
        quote(path),
        e.requests,
        e.failures,
        average_size(e.content_bytes, e.requests),
        per_second(e.requests),
        per_second(e.failures),
        percentiles(&h),
        e.check_failures.status,
        e.check_failures.body
    ))
}

/// Writes the three files; returns their paths.
pub fn write(prefix: &str, doc: &ReportDoc) -> std::io::Result<Vec<PathBuf>> {
    let stats_path = PathBuf::from(format!("{prefix}_stats.csv"));
    let mut f = std::fs::File::create(&stats_path)?;
    writeln!(f, "{STATS_HEADER},{},{CHECK_COLUMNS}", percentile_columns())?;
    for e in doc.endpoints.iter().chain(std::iter::once(&doc.total)) {
        writeln!(f, "{}", stats_row(e, doc.duration_seconds)?)?;
    }

    let history_path = PathBuf::from(format!("{prefix}_stats_history.csv"));
    let mut h = std::fs::File::create(&history_path)?;
    writeln!(h, "{HISTORY_HEADER},{},{HISTORY_TOTALS}", percentile_columns())?;
    let (mut total, mut failed, mut so_far) = (0, 0, new_histogram());
    let mean_size = average_size(doc.total.content_bytes, doc.total.requests);
    for s in doc.whole_seconds() {
        let second = decode_histogram(&s.histogram).map_err(std::io::Error::other)?;
        let _ = so_far.add(&second);
        total += s.requests;
        failed += s.failures;
        let ts = doc.started_at_unix_ms / 1000 + s.second as u64 + 1;
        let [median, mean, min, max] = summary(&so_far);
        writeln!(
            h,
            "{ts},{},,Aggregated,{:.6},{:.6},{},{total},{failed},{median},{mean},{min},{max},{mean_size},{},{}",
            s.users,
            s.requests as f64,
            s.failures as f64,
            percentiles(&second),
            quote(s.stage.as_deref().unwrap_or_default()),
            s.planned
        )?;
    }

    let failures_path = PathBuf::from(format!("{prefix}_failures.csv"));
    let mut fl = std::fs::File::create(&failures_path)?;
    writeln!(fl, "Method,Name,Error,Occurrences")?;
    for e in &doc.endpoints {
        let (method, path) = e.method_and_path();
        for (kind, n) in &e.failures_by_kind {
            writeln!(fl, "{method},{},{},{n}", quote(path), quote(kind))?;
        }
    }
    let stages_path = PathBuf::from(format!("{prefix}_stages.csv"));
    let mut st = std::fs::File::create(&stages_path)?;
    writeln!(st, "{STAGES_HEADER}")?;
    for s in &doc.stages {
        let l = &s.latency_ms;
        writeln!(
            st,
            "{},{},{},{},{},{},{},{},{:.6},{:.4},{},{},{},{}",
            quote(&s.name),
            s.start_seconds,
            s.end_seconds,
            s.from,
            s.to,
            s.unit,
            s.requests,
            s.failures,
            s.rps,
            s.error_percent,
            l.p50,
            l.p95,
            l.p99,
            l.max
        )?;
    }
    Ok(vec![stats_path, history_path, failures_path, stages_path])
}
