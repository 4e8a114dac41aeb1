//! The `--json` document: a stable shape (`format: "konnichiwa-loadtest/1"`) that carries every
//! figure of the text report plus the HDR histograms (base64, HdrHistogram V2), so
//! `loadtest merge` can combine runs exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::Generator;
use crate::slo::Verdict;
use crate::stages::Unit;
use crate::stats::{
    CheckFailures, Connections, EndpointStats, RunStats, Second, StagePlan, decode_histogram, encode_histogram,
};

pub const FORMAT: &str = "konnichiwa-loadtest/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    #[serde(default)]
    pub min: f64,
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
    /// Answers that failed their check, by reason (also among the failures); absent in documents
    /// written before checks.
    #[serde(default)]
    pub check_failures: CheckFailures,
    pub rps: f64,
    pub latency_ms: Latency,
    /// Bytes of the response bodies, in all.
    #[serde(default)]
    pub content_bytes: u64,
    pub histogram: String,
}

impl EndpointDoc {
    /// The method and the path of `GET /inspect` (the aggregate has no method).
    pub fn method_and_path(&self) -> (&str, &str) {
        match self.name.split_once(' ') {
            Some((method, path)) if path.starts_with('/') => (method, path),
            _ => ("", self.name.as_str()),
        }
    }
}

/// The connections the run opened and how long each took to set up (TCP connect, plus the TLS
/// handshake for https targets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionsDoc {
    pub tls: bool,
    pub opened: u64,
    pub setup_ms: SetupLatency,
    pub histogram: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SetupLatency {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl ConnectionsDoc {
    fn of(c: &Connections) -> Self {
        Self {
            tls: c.tls,
            opened: c.opened,
            setup_ms: SetupLatency {
                p50: c.percentile_ms(50.0),
                p95: c.percentile_ms(95.0),
                max: c.percentile_ms(100.0),
            },
            histogram: encode_histogram(&c.setup),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondDoc {
    pub second: usize,
    pub requests: u64,
    pub failures: u64,
    /// Users (closed model), or the most requests in flight at once in the second (open).
    pub users: u64,
    /// What the plan asked of the second: arrivals (open model) or users (closed).
    #[serde(default)]
    pub planned: f64,
    /// The stage the second starts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub histogram: String,
}

/// A stage: its plan, and what the seconds that start within it measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageDoc {
    pub name: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    /// The target ramps from `from` to `to` over the stage.
    pub from: f64,
    pub to: f64,
    /// `req/s` (open model) or `users` (closed).
    pub unit: String,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub error_percent: f64,
    pub latency_ms: Latency,
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
    /// Absent in documents written before connections were measured.
    #[serde(default)]
    pub connections: Option<ConnectionsDoc>,
    #[serde(default)]
    pub slo: Vec<Verdict>,
    /// Every judged objective met, and at least one judged when there are objectives: a gate that
    /// could judge none of them does not pass (no objectives at all: true, nothing was asked).
    #[serde(default = "yes")]
    pub slo_met: bool,
    #[serde(default)]
    pub generator: Option<Generator>,
    /// Stopped early by SIGINT/SIGTERM: the figures cover `duration_seconds` of the
    /// `planned_seconds`, and the run is not a pass whatever the SLOs say.
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_seconds: Option<f64>,
    /// Stopped by `--abort-on-fail`, for this reason: not a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// The plan's stages (one for a constant rate).
    #[serde(default)]
    pub stages: Vec<StageDoc>,
    /// The stage the SLOs were judged on (null: the whole run).
    #[serde(default)]
    pub slo_stage: Option<String>,
}

impl ReportDoc {
    /// The load model in words: `closed model: 100 users, spawn 10/s`, `open model: 500 req/s
    /// over 50 connections`, `3 merged runs`.
    pub fn model_text(&self) -> String {
        let m = &self.model;
        let num = |k: &str| m.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        match m.get("kind").and_then(serde_json::Value::as_str) {
            Some("closed") => {
                let think = m.get("think_time").and_then(serde_json::Value::as_array).map(|r| {
                    let secs: Vec<f64> = r.iter().filter_map(serde_json::Value::as_f64).collect();
                    format!(", think {}–{}s", secs.first().copied().unwrap_or(0.0), secs.get(1).copied().unwrap_or(0.0))
                });
                let how = match m.get("spawn_rate") {
                    Some(_) => format!("{} users, spawn {}/s", num("users"), num("spawn_rate")),
                    None => format!("stages up to {} users", num("users")),
                };
                format!("closed model: {how}{}", think.unwrap_or_default())
            }
            Some("open") if m.get("stages").is_some() => {
                format!("open model: stages up to {} req/s over {} connections", num("rate"), num("connections"))
            }
            Some("open") => format!("open model: {} req/s over {} connections", num("rate"), num("connections")),
            Some("merged") => format!("{} merged runs", num("runs")),
            _ => m.to_string(),
        }
    }

    /// The history's whole seconds: the charts and the CSV history leave out the fraction of a
    /// second at the end (requests in flight at the deadline), which would read as a drop in
    /// throughput; the totals and `history` keep them.
    pub fn whole_seconds(&self) -> &[SecondDoc] {
        let whole = (self.duration_seconds + 1e-6).floor() as usize;
        &self.history[..self.history.len().min(whole)]
    }

    /// Whether the history's "users" are users (closed model) or requests in flight (open).
    pub fn is_open_model(&self) -> bool {
        self.model.get("kind").and_then(serde_json::Value::as_str) == Some("open")
    }
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
        check_failures: e.check_failures,
        rps: if duration > 0.0 { e.requests as f64 / duration } else { 0.0 },
        content_bytes: e.content_bytes,
        latency_ms: Latency {
            min: e.min_ms(),
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
                planned: s.planned,
                stage: stats.stages.iter().find(|p| p.seconds(f64::MAX).contains(&i)).map(|p| p.name.clone()),
                p50_ms: s.percentile_ms(50.0),
                p95_ms: s.percentile_ms(95.0),
                p99_ms: s.percentile_ms(99.0),
                histogram: encode_histogram(&s.latency),
            })
            .collect(),
        connections: Some(ConnectionsDoc::of(&stats.connections)),
        slo_met: slo_met(&slo),
        slo,
        generator,
        interrupted: false,
        planned_seconds: None,
        aborted: None,
        stages: stats.stages.iter().map(|p| stage_doc(p, stats)).collect(),
        slo_stage: None,
    }
}

fn unit_text(unit: Unit) -> &'static str {
    match unit {
        Unit::Rate => "req/s",
        Unit::Users => "users",
    }
}

fn stage_doc(p: &StagePlan, stats: &RunStats) -> StageDoc {
    let measured = stats.stage(&p.name);
    let (e, rps) = measured.map(|m| (m.stats.clone(), m.rps())).unwrap_or_default();
    let summary = endpoint_doc(&p.name, &e, 0.0);
    StageDoc {
        name: p.name.clone(),
        start_seconds: p.start,
        end_seconds: p.end,
        from: p.from,
        to: p.to,
        unit: unit_text(p.unit).to_owned(),
        requests: e.requests,
        failures: e.failure_count(),
        rps,
        error_percent: e.error_percent(),
        latency_ms: summary.latency_ms,
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
            EndpointStats {
                requests: e.requests,
                failures: e.failures_by_kind.clone(),
                check_failures: e.check_failures,
                latency,
                content_bytes: e.content_bytes,
            },
        ));
    }
    for s in &doc.history {
        let latency = decode_histogram(&s.histogram).map_err(|err| format!("second {}: {err}", s.second))?;
        if stats.history.len() <= s.second {
            stats.history.resize_with(s.second + 1, Second::default);
        }
        stats.history[s.second] =
            Second { requests: s.requests, failures: s.failures, users: s.users, planned: s.planned, latency };
    }
    stats.stages = doc
        .stages
        .iter()
        .map(|s| StagePlan {
            name: s.name.clone(),
            start: s.start_seconds,
            end: s.end_seconds,
            from: s.from,
            to: s.to,
            unit: if s.unit == "users" { Unit::Users } else { Unit::Rate },
        })
        .collect();
    if let Some(c) = &doc.connections {
        let setup = decode_histogram(&c.histogram).map_err(|err| format!("connections: {err}"))?;
        stats.connections = Connections { tls: c.tls, opened: c.opened, setup };
    }
    Ok(stats)
}

/// `slo_met` of a set of verdicts: every judged one met, and one judged at least when there are any.
pub fn slo_met(slo: &[crate::slo::Verdict]) -> bool {
    let judged: Vec<&crate::slo::Verdict> = slo.iter().filter(|v| v.judged).collect();
    judged.iter().all(|v| v.met) && (slo.is_empty() || !judged.is_empty())
}
