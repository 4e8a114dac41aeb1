//! GET /inspect with the bearer key: CPU and memory used %, judged against the container's own
//! limits when the app reports them (what matters on ECS), else the host's figures.

use app::inspect::InspectReport;

use super::{Target, transport_reason};
use crate::report::{CheckResult, Perf, State, trim};
use crate::thresholds::Thresholds;

const MIB: f64 = 1024.0 * 1024.0;

/// Two results (cpu, memory), or one UNKNOWN `inspect` result when the figures cannot be had.
pub async fn check(client: &reqwest::Client, target: &Target, t: &Thresholds) -> Vec<CheckResult> {
    match fetch(client, target).await {
        Ok(report) => vec![cpu(&report, t), memory(&report, t)],
        Err(reason) => vec![CheckResult::new("inspect", State::Unknown, reason)],
    }
}

async fn fetch(client: &reqwest::Client, target: &Target) -> Result<InspectReport, String> {
    let url = target.endpoint("/inspect");
    let key = target.api_key.as_deref().ok_or("API_KEY is not set: export it or put it in .env to read /inspect")?;
    let response = client
        .get(&url)
        .bearer_auth(key)
        .timeout(target.timeout)
        .send()
        .await
        .map_err(|e| transport_reason(&url, &e, target.timeout))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err("the service refused the API key (401): check that API_KEY matches the deployed key".into());
    }
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET /inspect answered {}", status.as_u16()));
    }
    let body = response.bytes().await.map_err(|e| transport_reason(&url, &e, target.timeout))?;
    // What was wrong with it is for --json and the logs of the service; the line stays the same
    // as monitor.sh's.
    serde_json::from_slice::<InspectReport>(&body)
        .map_err(|_| format!("malformed /inspect answer; is {} a Konnichiwa service?", target.url))
}

/// Above a threshold (strictly, as the reason says: "82% > 70%").
fn judge(value: f64, warning: f64, critical: f64) -> State {
    if value > critical {
        State::Critical
    } else if value > warning {
        State::Warning
    } else {
        State::Ok
    }
}

/// A percentage with the digits that tell it from the thresholds: `82`, `4.5`, `0.45` (a
/// threshold of 0.1% next to "0%" read as a contradiction).
fn figure(percent: f64) -> String {
    match percent.abs() {
        p if p >= 10.0 => format!("{percent:.0}"),
        p if p >= 1.0 => trim((percent * 10.0).round() / 10.0),
        _ => trim((percent * 100.0).round() / 100.0),
    }
}

fn verdict(state: State, figure: String, warning: f64, critical: f64) -> String {
    match state {
        State::Critical => format!("{figure} > {}%", trim(critical)),
        State::Warning => format!("{figure} > {}%", trim(warning)),
        _ => figure,
    }
}

fn percent_perf(label: &str, value: f64, warning: f64, critical: f64) -> Perf {
    Perf {
        label: label.into(),
        value,
        unit: "%",
        warning: Some(warning),
        critical: Some(critical),
        min: Some(0.0),
        max: Some(100.0),
        alert_below: false,
    }
}

fn cpu(r: &InspectReport, t: &Thresholds) -> CheckResult {
    let container = r.container.as_ref().and_then(|c| c.cpu_used_percent.map(|p| (p, c.cpu_limit_cores)));
    let (value, figure) = match (container, r.cpu.used_percent) {
        (Some((p, Some(cores))), _) => (p, format!("CPU {}% of the container's {cores} vCPU limit", figure(p))),
        (Some((p, None)), _) => (p, format!("CPU {}% of one core (container without a CPU limit)", figure(p))),
        (None, Some(p)) => (p, format!("CPU {}% of the host's {} cores", figure(p), r.cpu.logical_cores)),
        (None, None) => {
            return CheckResult::new(
                "cpu",
                State::Unknown,
                "no CPU figure yet: the app needs two samples after it starts",
            );
        }
    };
    let state = judge(value, t.cpu_warning, t.cpu_critical);
    CheckResult::new("cpu", state, verdict(state, figure, t.cpu_warning, t.cpu_critical)).with_perf(percent_perf(
        "cpu_used",
        value,
        t.cpu_warning,
        t.cpu_critical,
    ))
}

fn memory(r: &InspectReport, t: &Thresholds) -> CheckResult {
    let limited = r.container.as_ref().and_then(|c| Some((c.memory_used_percent?, c.memory_max_bytes?)));
    let (value, figure) = match limited {
        Some((p, max)) => (p, format!("memory {}% of the container's {:.0} MiB limit", figure(p), max as f64 / MIB)),
        None => (
            r.memory.used_percent,
            format!(
                "memory {}% of the host's {:.0} MiB",
                figure(r.memory.used_percent),
                r.memory.total_bytes as f64 / MIB
            ),
        ),
    };
    let state = judge(value, t.memory_warning, t.memory_critical);
    CheckResult::new("memory", state, verdict(state, figure, t.memory_warning, t.memory_critical))
        .with_perf(percent_perf("memory_used", value, t.memory_warning, t.memory_critical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_percentage_keeps_the_digits_that_set_it_apart_from_its_threshold() {
        assert_eq!(figure(82.4), "82");
        assert_eq!(figure(4.46), "4.5");
        assert_eq!(figure(0.45), "0.45");
        assert_eq!(figure(0.0), "0");
        let state = judge(0.45, 0.1, 0.9);
        assert_eq!(verdict(state, format!("memory {}%", figure(0.45)), 0.1, 0.9), "memory 0.45% > 0.1%");
    }
}
