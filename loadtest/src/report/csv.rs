//! CSV files like locust's: `PREFIX_stats.csv` (one row per endpoint plus Aggregated) and
//! `PREFIX_stats_history.csv` (one row per second).

use std::io::Write;
use std::path::PathBuf;

use crate::report::json::{EndpointDoc, ReportDoc};

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

fn stats_row(e: &EndpointDoc) -> String {
    let l = &e.latency_ms;
    format!(
        "GET,{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
        quote(&e.name),
        e.requests,
        e.failures,
        e.rps,
        l.mean,
        l.p50,
        l.p90,
        l.p95,
        l.p99,
        l.max
    )
}

/// Writes both files; returns their paths.
pub fn write(prefix: &str, doc: &ReportDoc) -> std::io::Result<Vec<PathBuf>> {
    let stats_path = PathBuf::from(format!("{prefix}_stats.csv"));
    let mut f = std::fs::File::create(&stats_path)?;
    writeln!(
        f,
        "Type,Name,Request Count,Failure Count,Requests/s,Average Response Time,50%,90%,95%,99%,Max Response Time"
    )?;
    for e in &doc.endpoints {
        writeln!(f, "{}", stats_row(e))?;
    }
    writeln!(f, "{}", stats_row(&doc.total).replacen("GET,", ",", 1))?;

    let history_path = PathBuf::from(format!("{prefix}_stats_history.csv"));
    let mut h = std::fs::File::create(&history_path)?;
    writeln!(h, "Timestamp,User Count,Requests/s,Failures/s,50%,95%,99%,Total Request Count,Total Failure Count")?;
    let (mut total, mut failed) = (0, 0);
    for s in &doc.history {
        total += s.requests;
        failed += s.failures;
        let ts = doc.started_at_unix_ms / 1000 + s.second as u64;
        writeln!(
            h,
            "{ts},{},{},{},{:.3},{:.3},{:.3},{total},{failed}",
            s.users, s.requests, s.failures, s.p50_ms, s.p95_ms, s.p99_ms
        )?;
    }
    Ok(vec![stats_path, history_path])
}
