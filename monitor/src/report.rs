//! Check results and how they are reported: states with Nagios exit codes, one text line per
//! check with performance data in the Nagios format, and JSON for machines.

use serde::Serialize;

/// A check's state. Exit codes follow the Nagios plugin convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl State {
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
            Self::Unknown => 3,
        }
    }

    /// How bad: OK < WARNING < UNKNOWN < CRITICAL, so a service that is down (CRITICAL) is never
    /// hidden behind the UNKNOWN of a check that could not reach it.
    pub fn severity(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Unknown => 2,
            Self::Critical => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// One performance figure: `label=value[unit];warn;crit;min;max`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Perf {
    pub label: String,
    pub value: f64,
    pub unit: &'static str,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The thresholds are lower bounds (alert below them, as for days left): Nagios writes them
    /// `21:`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub alert_below: bool,
}

impl Perf {
    fn nagios(&self) -> String {
        let f = |v: Option<f64>| v.map(trim).unwrap_or_default();
        let bound = |v: Option<f64>| match v {
            Some(v) if self.alert_below => format!("{}:", trim(v)),
            other => f(other),
        };
        format!(
            "{}={}{};{};{};{};{}",
            self.label,
            trim(self.value),
            self.unit,
            bound(self.warning),
            bound(self.critical),
            f(self.min),
            f(self.max)
        )
        .trim_end_matches(';')
        .to_owned()
    }
}

/// A number with at most three decimals and no trailing zeros (`0.002`, `70`, `0.25`): the
/// form both `monitor` and `monitor.sh` print.
pub fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A duration as seconds in that form (`0.5s`, `2s`).
pub fn seconds(d: std::time::Duration) -> String {
    format!("{}s", trim(d.as_secs_f64()))
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub state: State,
    /// One line saying why, e.g. "memory 82% of the container's 256 MiB limit > 70%".
    pub reason: String,
    pub perfdata: Vec<Perf>,
}

impl CheckResult {
    pub fn new(check: &'static str, state: State, reason: impl Into<String>) -> Self {
        Self { check, state, reason: reason.into(), perfdata: Vec::new() }
    }

    pub fn with_perf(mut self, perf: Perf) -> Self {
        self.perfdata.push(perf);
        self
    }

    /// `STATE: check - reason`: a detail line of the plugin output.
    pub fn detail(&self) -> String {
        format!("{}: {} - {}", self.state.label(), self.check, self.reason)
    }

    /// The reason as the summary line shows it: with the check's name unless it starts with it.
    fn summary_item(&self) -> String {
        let starts_with_name = self.reason.to_ascii_lowercase().starts_with(self.check);
        if starts_with_name { self.reason.clone() } else { format!("{}: {}", self.check, self.reason) }
    }

    /// `STATE: check - reason | perfdata` (the stamped lines of `watch`).
    pub fn line(&self) -> String {
        let mut line = format!("{}: {} - {}", self.state.label(), self.check, self.reason);
        if !self.perfdata.is_empty() {
            line.push_str(" | ");
            line.push_str(&self.perfdata.iter().map(Perf::nagios).collect::<Vec<_>>().join(" "));
        }
        line
    }
}

/// A pass as a Nagios plugin reports it: the first line is the service's status — the worst
/// state, the reasons of the checks in that state, and every check's performance data after
/// `|` — then one detail line per check.
pub fn plugin_output(results: &[CheckResult]) -> String {
    let state = worst(results);
    let summary: Vec<String> = results.iter().filter(|r| r.state == state).map(CheckResult::summary_item).collect();
    let perf: Vec<String> = results.iter().flat_map(|r| r.perfdata.iter().map(Perf::nagios)).collect();
    let mut out = format!("{} - {}", state.label(), summary.join("; "));
    if !perf.is_empty() {
        out.push_str(" | ");
        out.push_str(&perf.join(" "));
    }
    out.push('\n');
    for r in results {
        out.push_str(&r.detail());
        out.push('\n');
    }
    out
}

/// The worst state of a pass (OK when empty).
pub fn worst(results: &[CheckResult]) -> State {
    results.iter().map(|r| r.state).max_by_key(|s| s.severity()).unwrap_or(State::Ok)
}

/// The `--json` shape of one pass.
#[derive(Debug, Serialize)]
pub struct PassReport<'a> {
    pub url: &'a str,
    pub state: State,
    pub exit_code: u8,
    pub checks: &'a [CheckResult],
    pub checked_at_unix_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nagios_line_with_perfdata() {
        let r = CheckResult::new("memory", State::Warning, "memory 82% of the container's 256 MiB limit > 70%")
            .with_perf(Perf {
                label: "memory_used".into(),
                value: 82.0,
                unit: "%",
                warning: Some(70.0),
                critical: Some(90.0),
                min: Some(0.0),
                max: Some(100.0),
                alert_below: false,
            });
        assert_eq!(
            r.line(),
            "WARNING: memory - memory 82% of the container's 256 MiB limit > 70% | memory_used=82%;70;90;0;100"
        );
        let latency = Perf {
            label: "latency".into(),
            value: 0.0034,
            unit: "s",
            warning: Some(0.5),
            critical: Some(2.0),
            min: Some(0.0),
            max: None,
            alert_below: false,
        };
        assert_eq!(latency.nagios(), "latency=0.003s;0.5;2;0");
    }

    #[test]
    fn critical_outranks_unknown() {
        let r = |s| CheckResult::new("x", s, "");
        assert_eq!(worst(&[r(State::Ok), r(State::Warning)]), State::Warning);
        assert_eq!(worst(&[r(State::Unknown), r(State::Critical)]), State::Critical);
        assert_eq!(worst(&[r(State::Warning), r(State::Unknown)]), State::Unknown);
        assert_eq!(worst(&[]), State::Ok);
    }
}
