//! The final table: per endpoint and aggregated — requests, failures, req/s, p50/p90/p95/p99/max —
//! then the stages (when there are several), failures by kind, the failed checks by request and
//! reason (when any failed), the connections opened and their setup time, and the SLO verdicts.

use std::fmt::Write;

use crate::report::json::{EndpointDoc, ReportDoc};

fn row(e: &EndpointDoc) -> String {
    let l = &e.latency_ms;
    format!(
        "{:<24} {:>10} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
        e.name, e.requests, e.failures, e.rps, l.p50, l.p90, l.p95, l.p99, l.max
    )
}

pub fn render(doc: &ReportDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Target {} for {:.1}s ({})", doc.target, doc.duration_seconds, doc.model_text());
    if let Some(planned) = doc.planned_seconds.filter(|_| doc.interrupted) {
        // An open model's offer is its arrivals due by then, not the whole plan's.
        let offered = (doc.model.get("kind").and_then(serde_json::Value::as_str) == Some("open")).then(|| {
            let due = crate::stats::planned_until(doc.history.iter().map(|s| s.planned), doc.duration_seconds);
            format!(" of the {due:.0} offered by then ({:.1} req/s)", due / doc.duration_seconds.max(f64::MIN_POSITIVE))
        });
        let _ = writeln!(
            out,
            "Interrupted after {:.1}s of {planned:.0}s, {} requests sent{}: the figures cover that time, and an \
             interrupted run is not a pass",
            doc.duration_seconds,
            doc.total.requests,
            offered.unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:>10} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "Endpoint", "Requests", "Failures", "Req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"
    );
    for e in &doc.endpoints {
        let _ = writeln!(out, "{}", row(e));
    }
    let _ = writeln!(out, "{}", "-".repeat(105));
    let _ = writeln!(out, "{}", row(&doc.total));
    if let Some(why) = &doc.aborted {
        let _ = writeln!(out, "\nAborted after {:.1}s (--abort-on-fail): {why}", doc.duration_seconds);
    }
    stages(&mut out, doc);
    let failures: Vec<String> = doc
        .endpoints
        .iter()
        .flat_map(|e| e.failures_by_kind.iter().map(move |(k, n)| format!("{k} × {n} ({})", e.name)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nFailures: {}", failures.join(", "));
    }
    checks(&mut out, doc);
    if let Some(c) = &doc.connections {
        let _ = writeln!(
            out,
            "\nConnections: {} opened; {} p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            c.opened,
            if c.tls { "setup with TLS handshake" } else { "connect" },
            c.setup_ms.p50,
            c.setup_ms.p95,
            c.setup_ms.max
        );
    }
    if let Some(g) = &doc.generator {
        let _ = writeln!(
            out,
            "\nGenerator: {:.1} CPU-seconds ({:.0}% of one core), peak RSS {:.1} MiB",
            g.cpu_seconds,
            g.cpu_seconds * 100.0 / doc.duration_seconds.max(0.001),
            g.peak_rss_bytes as f64 / 1048576.0
        );
    }
    slos(&mut out, doc);
    out
}

/// The failed checks per request name and reason, when any failed.
fn checks(out: &mut String, doc: &ReportDoc) {
    if doc.total.check_failures.count() == 0 {
        return;
    }
    let _ = writeln!(out, "\n{:<24} {:>10} {:>10}", "Checks failed", "Status", "Body");
    for e in doc.endpoints.iter().chain(std::iter::once(&doc.total)) {
        let _ = writeln!(out, "{:<24} {:>10} {:>10}", e.name, e.check_failures.status, e.check_failures.body);
    }
}

/// The per-stage table of a staged run.
fn stages(out: &mut String, doc: &ReportDoc) {
    if doc.stages.len() > 1 {
        let _ = writeln!(
            out,
            "\n{:<12} {:>13} {:>22} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}",
            "Stage", "Seconds", "Target", "Requests", "Req/s", "p50 ms", "p95 ms", "p99 ms", "Errors"
        );
        for s in &doc.stages {
            let target = if s.from == s.to {
                format!("{} {}", s.to, s.unit)
            } else {
                format!("{} → {} {}", s.from, s.to, s.unit)
            };
            let _ = writeln!(
                out,
                "{:<12} {:>13} {:>22} {:>10} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>7.2}%",
                s.name,
                format!("{}–{}", s.start_seconds, s.end_seconds),
                target,
                s.requests,
                s.rps,
                s.latency_ms.p50,
                s.latency_ms.p95,
                s.latency_ms.p99,
                s.error_percent
            );
        }
    }
}

/// The SLO verdicts, and which stage they were judged on.
fn slos(out: &mut String, doc: &ReportDoc) {
    if !doc.slo.is_empty() {
        let judged = doc.slo.iter().filter(|v| v.judged).count();
        let verdict = match (doc.slo_met, judged) {
            _ if doc.interrupted => "interrupted: not a pass, whatever these say",
            (_, 0) => "none judged",
            (true, n) if n < doc.slo.len() => "all judged ones met",
            (true, _) => "all met",
            (false, _) => "MISSED",
        };
        let scope = match &doc.slo_stage {
            Some(stage) => format!(", judged on stage {stage}"),
            None => String::new(),
        };
        let _ = writeln!(out, "\nSLOs ({verdict}{scope}):");
        for v in &doc.slo {
            let _ = writeln!(out, "  {}", v.line());
        }
    }
}
