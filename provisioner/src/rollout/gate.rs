//! The gate of a canary, linear or blue/green deployment: while ECS holds the new revision at
//! POST_TEST_TRAFFIC_SHIFT (it takes the test traffic, no production traffic yet), the load
//! generator drives it through the test listener rule (requests carrying the gate's header) and,
//! at the same time and the same rate, the old revision through the production route; the new
//! revision's p95 latency, error share and throughput are judged against stack.yaml's `slo:`.
//! The rate is `gate.share` of `slo.requests_per_second`, for `gate.duration`. The mix is the
//! stack's load-test mix without what needs the API key: the gate judges serving, and sends no
//! key anywhere.

use std::time::Duration;

use loadtest::report::json::ReportDoc;
use serde::Serialize;

use crate::error::Error;
use crate::reconcile::Ctx;
use crate::resources::load_balancer::{GATE_HEADER, gate_header_value};

/// What the follow does at the gate.
#[derive(Debug, Clone)]
pub enum Gate {
    /// Drive both revisions at `url` (the stack's, or `deploy --gate-url`) and judge the new one.
    Judge { url: String },
    /// Let the revision through unjudged, for this reason (a rollback to a revision that ran).
    Skip(String),
}

/// One revision's figures at the gate.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Figures {
    pub requests: u64,
    pub failures: u64,
    pub error_percent: f64,
    pub p95_ms: f64,
    pub rps: f64,
}

impl Figures {
    fn of(doc: &ReportDoc) -> Self {
        let t = &doc.total;
        let error_percent = if t.requests == 0 { 0.0 } else { 100.0 * t.failures as f64 / t.requests as f64 };
        let rps = if doc.duration_seconds > 0.0 { t.requests as f64 / doc.duration_seconds } else { 0.0 };
        Self { requests: t.requests, failures: t.failures, error_percent, p95_ms: t.latency_ms.p95, rps }
    }

    fn line(&self) -> String {
        format!(
            "p95 {:.0} ms, errors {:.2}% ({} of {}), {:.1} req/s",
            self.p95_ms, self.error_percent, self.failures, self.requests, self.rps
        )
    }
}

/// What the gate found: the new revision's figures beside the old one's, and why it failed.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub pass: bool,
    /// The rate each revision was driven at, and for how long.
    pub rate: f64,
    pub seconds: f64,
    pub new: Figures,
    pub old: Figures,
    /// The objectives the new revision missed (empty when it passed).
    pub missed: Vec<String>,
    /// Why the gate did not judge (a rollback to a revision that ran before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl GateReport {
    /// A gate that had no time to judge before the hook's timeout: failed, as ECS would roll it
    /// back anyway.
    pub fn too_late(left_secs: i64, needs_secs: u64) -> Self {
        Self {
            pass: false,
            rate: 0.0,
            seconds: 0.0,
            new: Figures::default(),
            old: Figures::default(),
            missed: vec![format!(
                "the hook times out in {left_secs}s, too soon for the gate's {needs_secs}s: not judged, rolled back"
            )],
            skipped: None,
        }
    }

    /// The reason a failed gate gives.
    pub fn reason(&self) -> String {
        format!("the gate rolled it back: {}", self.missed.join("; "))
    }

    /// The figures as lines: new beside old.
    pub fn lines(&self) -> Vec<String> {
        if let Some(why) = &self.skipped {
            return vec![format!("gate: not judged ({why})")];
        }
        vec![
            format!("gate: {:.1} req/s to each revision for {:.0}s", self.rate, self.seconds),
            format!("  new revision (test route): {}", self.new.line()),
            format!("  old revision (production): {}", self.old.line()),
        ]
    }
}

/// What stack.yaml's `slo:` asks of the new revision, judged on what the gate measured.
pub fn missed(slo: &stack::Slo, rate: f64, new: &Figures) -> Vec<String> {
    let mut missed = Vec::new();
    let p95 = slo.p95_latency.get().as_secs_f64() * 1000.0;
    if new.requests == 0 {
        missed.push("no request was answered".into());
        return missed;
    }
    if new.p95_ms >= p95 {
        missed.push(format!("p95 {:.0} ms is not below slo.p95_latency {p95:.0} ms", new.p95_ms));
    }
    let max_errors = slo.max_error_rate.get();
    if new.error_percent > max_errors {
        missed.push(format!("errors {:.2}% are above slo.max_error_rate {max_errors}%", new.error_percent));
    }
    // The gate offers `rate`: a revision that answers less than 95% of it cannot keep up.
    if new.rps < 0.95 * rate {
        missed.push(format!("{:.1} req/s answered of the {rate:.1} req/s offered (below 95%)", new.rps));
    }
    missed
}

/// The requests the gate sends: the stack's mix without what needs the API key (what `deploy`
/// checks before it starts a deployment).
pub fn mix(stack: &stack::Stack) -> Result<loadtest::cli::RunArgs, Error> {
    let section = stack.loadtest.clone().unwrap_or_default();
    let mut args = loadtest::cli::RunArgs::from_flags(["--quiet"])
        .map_err(|e| Error::Refused(format!("the gate's load settings: {e}")))?;
    if !section.scenario.is_empty() {
        args.requests = section
            .scenario
            .iter()
            .filter(|r| !r.headers.values().chain(&r.body).any(|v| v.contains("${API_KEY}")))
            .cloned()
            .collect();
        if args.requests.is_empty() {
            return Err(Error::Refused(
                "every request of loadtest.scenario sends the API key: the gate sends no key, so it has nothing to \
                 send; add a request without it (e.g. GET /)"
                    .into(),
            ));
        }
    } else {
        let endpoints: Vec<loadtest::scenario::Endpoint> = if section.endpoints.is_empty() {
            loadtest::scenario::default_mix()
        } else {
            section
                .endpoints
                .iter()
                .map(|e| loadtest::scenario::Endpoint { path: e.path.clone(), weight: e.weight, auth: e.auth })
                .collect()
        };
        args.endpoints = endpoints.into_iter().filter(|e| !e.auth).collect();
        if args.endpoints.is_empty() {
            return Err(Error::Refused(
                "every endpoint of loadtest.endpoints needs the API key: the gate sends no key, so it has nothing to \
                 send; add one without it (e.g. { path: /, weight: 1 })"
                    .into(),
            ));
        }
    }
    Ok(args)
}

/// Drives `url` at `rate` for `duration`, through the test route when `header` is given.
async fn drive(
    base: &loadtest::cli::RunArgs,
    url: &str,
    header: Option<String>,
    rate: f64,
    duration: Duration,
) -> Result<ReportDoc, Error> {
    let mut args = base.clone();
    args.host = Some(url.to_owned());
    args.rate = Some(rate);
    args.duration = Some(duration);
    args.headers =
        header.map(|h| loadtest::header::Header::parse(&h)).transpose().map_err(Error::Refused)?.into_iter().collect();
    loadtest::measure(args).await.map_err(|e| Error::Refused(format!("the gate could not drive {url}: {e}")))
}

/// Runs the gate: both revisions at once, the new one judged.
pub async fn judge(ctx: &Ctx, gate: &Gate, json: bool) -> Result<GateReport, Error> {
    let url = match gate {
        Gate::Skip(why) => {
            if !json {
                eprintln!("  gate: not judged ({why})");
            }
            return Ok(GateReport {
                pass: true,
                rate: 0.0,
                seconds: 0.0,
                new: Figures::default(),
                old: Figures::default(),
                missed: Vec::new(),
                skipped: Some(why.clone()),
            });
        }
        Gate::Judge { url } => url,
    };
    let (stack, g) = (&ctx.stack, &ctx.stack.service.deployment.gate);
    let rate = stack.slo.requests_per_second * g.share.get() / 100.0;
    let duration = g.duration.get();
    if !json {
        eprintln!(
            "  gate: {rate:.1} req/s for {}s to the new revision (header {GATE_HEADER}) and to the old one, at {url}",
            duration.as_secs()
        );
    }
    let base = mix(stack)?;
    let header = format!("{GATE_HEADER}: {}", gate_header_value(stack));
    let (new, old) =
        tokio::try_join!(drive(&base, url, Some(header), rate, duration), drive(&base, url, None, rate, duration))?;
    let (new, old) = (Figures::of(&new), Figures::of(&old));
    let missed = missed(&stack.slo, rate, &new);
    let report =
        GateReport { pass: missed.is_empty(), rate, seconds: duration.as_secs_f64(), new, old, missed, skipped: None };
    if !json {
        for line in report.lines() {
            eprintln!("  {line}");
        }
        eprintln!("  gate: {}", if report.pass { "passed".to_owned() } else { report.reason() });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(requests: u64, failures: u64, p95_ms: f64, rps: f64) -> Figures {
        Figures { requests, failures, error_percent: 100.0 * failures as f64 / requests.max(1) as f64, p95_ms, rps }
    }

    #[test]
    fn the_new_revision_is_judged_on_the_slos_at_the_gates_rate() {
        let slo = crate::resources::test_stack().slo; // p95 < 300 ms, errors <= 1%
        assert!(missed(&slo, 100.0, &figures(6000, 6, 120.0, 100.0)).is_empty());
        let slow = missed(&slo, 100.0, &figures(6000, 0, 450.0, 99.0));
        assert_eq!(slow, ["p95 450 ms is not below slo.p95_latency 300 ms"]);
        let failing = missed(&slo, 100.0, &figures(6000, 3000, 10.0, 100.0));
        assert_eq!(failing, ["errors 50.00% are above slo.max_error_rate 1%"]);
        let behind = missed(&slo, 100.0, &figures(3000, 0, 10.0, 50.0));
        assert_eq!(behind, ["50.0 req/s answered of the 100.0 req/s offered (below 95%)"]);
        assert_eq!(missed(&slo, 100.0, &figures(0, 0, 0.0, 0.0)), ["no request was answered"]);
    }

    #[test]
    fn the_gate_sends_no_api_key() {
        let s = crate::resources::test_stack();
        let args = mix(&s).expect("the default mix");
        let paths: Vec<&str> = args.endpoints.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/", "/health"], "/inspect needs the key: left out");
        let mut only_keyed = s.clone();
        only_keyed.loadtest = Some(stack::Loadtest {
            endpoints: vec![stack::Endpoint { path: "/inspect".into(), weight: 1, auth: true }],
            ..Default::default()
        });
        let err = mix(&only_keyed).expect_err("nothing to send").to_string();
        assert!(err.contains("needs the API key") && err.contains("path: /"), "{err}");
    }
}
