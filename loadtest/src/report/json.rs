//! The `--json` document: a stable shape (`format: "konnichiwa-loadtest/1"`) that carries every
//! figure of the text report plus the HDR histograms (base64, HdrHistogram V2), so
//! `loadtest merge` can combine runs exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::Generator;
use crate::slo::Verdict;
use crate::stats::{EndpointStats, RunStats, Second, decode_histogram, encode_histogram};

pub const FORMAT: &str = "konnichiwa-loadtest/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointDoc {
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub failures_by_kind: BTreeMap<String, u64>,
    pub rps: f64,
    pub latency_ms: Latency,
    pub histogram: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondDoc {
    pub second: usize,
    pub requests: u64,
    pub failures: u64,
    pub users: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub histogram: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportDoc {
    pub format: String,
    pub target: String,
    /// `{"kind": "closed", "users", "spawn_rate", "think_time"}`, `{"kind": "open", "rate",
    /// "connections"}`, or `{"kind": "merged", "runs": N}`.
    pub model: serde_json::Value,
    pub started_at_unix_ms: u64,
    pub duration_seconds: f64,
    pub endpoints: Vec<EndpointDoc>,
    pub total: EndpointDoc,
    pub history: Vec<SecondDoc>,
    #[serde(default)]
    pub slo: Vec<Verdict>,
    #[serde(default = "yes")]
    pub slo_met: bool,
    #[serde(default)]
    pub generator: Option<Generator>,
}

fn yes() -> bool {
    true
}

fn endpoint_doc(name: &str, e: &EndpointStats, duration: f64) -> EndpointDoc {
    EndpointDoc {
        name: name.to_owned(),
        requests: e.requests,
        failures: e.failure_count(),
        failures_by_kind: e.failures.clone(),
        rps: if duration > 0.0 { e.requests as f64 / duration } else { 0.0 },
        latency_ms: Latency {
            p50: e.percentile_ms(50.0),
            p90: e.percentile_ms(90.0),
            p95: e.percentile_ms(95.0),
            p99: e.percentile_ms(99.0),
            max: e.max_ms(),
            mean: e.mean_ms(),
        },
        histogram: encode_histogram(&e.latency),
    }
}

/// Builds the document of a run.
pub fn document(
    target: &str,
    model: serde_json::Value,
    started_at_unix_ms: u64,
    stats: &RunStats,
    slo: Vec<Verdict>,
    generator: Option<Generator>,
) -> ReportDoc {
    let d = stats.duration_seconds;
    ReportDoc {
        format: FORMAT.to_owned(),
        target: target.to_owned(),
        model,
        started_at_unix_ms,
        duration_seconds: d,
        endpoints: stats.endpoints.iter().map(|(n, e)| endpoint_doc(n, e, d)).collect(),
        total: endpoint_doc("Aggregated", &stats.total(), d),
        history: stats
            .history
            .iter()
            .enumerate()
            .map(|(i, s)| SecondDoc {
                second: i,
                requests: s.requests,
                failures: s.failures,
                users: s.users,
                p50_ms: s.percentile_ms(50.0),
                p95_ms: s.percentile_ms(95.0),
                p99_ms: s.percentile_ms(99.0),
                histogram: encode_histogram(&s.latency),
            })
            .collect(),
        slo_met: slo.iter().all(|v| v.met),
        slo,
        generator,
    }
}

/// Rebuilds the measurements of a document (for merge).
pub fn stats_of(doc: &ReportDoc) -> Result<RunStats, String> {
    if doc.format != FORMAT {
        return Err(format!("format {:?} is not {FORMAT:?}; was the file written by `loadtest --json`?", doc.format));
    }
    let mut stats = RunStats { duration_seconds: doc.duration_seconds, ..RunStats::default() };
    for e in &doc.endpoints {
        let latency = decode_histogram(&e.histogram).map_err(|err| format!("endpoint {}: {err}", e.name))?;
        stats.endpoints.push((
            e.name.clone(),
            EndpointStats { requests: e.requests, failures: e.failures_by_kind.clone(), latency },
        ));
    }
    for s in &doc.history {
        let latency = decode_histogram(&s.histogram).map_err(|err| format!("second {}: {err}", s.second))?;
        if stats.history.len() <= s.second {
            stats.history.resize_with(s.second + 1, Second::default);
        }
        stats.history[s.second] = Second { requests: s.requests, failures: s.failures, users: s.users, latency };
    }
    Ok(stats)
}
