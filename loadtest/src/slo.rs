//! Service-level objectives: parsing (`p95<300ms`, `rps>=1000`, `errors<1%`), the defaults from
//! stack.yaml's `slo:` section, and a pure evaluation that says which were missed and by how much.

use std::time::Duration;

use serde::Serialize;

use crate::stats::EndpointStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Metric {
    /// A latency percentile (50, 90, 95, 99) or 100 for max.
    Latency(u8),
    Rps,
    ErrorRate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, actual: f64, bound: f64) -> bool {
        match self {
            Self::Lt => actual < bound,
            Self::Le => actual <= bound,
            Self::Gt => actual > bound,
            Self::Ge => actual >= bound,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// One objective; latency bounds are in milliseconds, error rates in percent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    pub metric: Metric,
    pub op: Op,
    pub bound: f64,
    /// As written, e.g. `p95<300ms`.
    pub text: String,
}

impl std::str::FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let at = t
            .find(['<', '>'])
            .ok_or_else(|| format!("{s:?}: write METRIC OP VALUE, e.g. p95<300ms, rps>=1000, errors<1%"))?;
        let (name, rest) = t.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else {
            (Op::Gt, &rest[1..])
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        let (metric, bound) = match name.as_str() {
            "p50" | "p90" | "p95" | "p99" | "max" => {
                let q = if name == "max" { 100 } else { name[1..].parse().unwrap_or(95) };
                let d = humantime::parse_duration(value)
                    .map_err(|_| format!("{s:?}: {value:?} is not a duration; write e.g. 300ms or 1s"))?;
                (Metric::Latency(q), micros_to_ms(d))
            }
            "rps" => {
                let v = value
                    .trim_end_matches("/s")
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{s:?}: {value:?} is not a rate; write e.g. rps>=1000"))?;
                (Metric::Rps, v)
            }
            "errors" | "error_rate" => {
                let v = value
                    .trim_end_matches('%')
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{s:?}: {value:?} is not a percentage; write e.g. errors<1%"))?;
                (Metric::ErrorRate, v)
            }
            other => {
                return Err(format!("{s:?}: unknown metric {other:?}; use p50, p90, p95, p99, max, rps or errors"));
            }
        };
        Ok(Self { metric, op, bound, text: t.to_owned() })
    }
}

/// Milliseconds computed exactly as measured latencies are (whole microseconds / 1000), so a
/// latency equal to its bound compares equal.
fn micros_to_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// The objectives of stack.yaml's `slo:` section.
pub fn from_stack(slo: &stack::Slo) -> Vec<Objective> {
    let ms = micros_to_ms;
    vec![
        Objective {
            metric: Metric::Latency(95),
            op: Op::Lt,
            bound: ms(slo.p95_latency.get()),
            text: format!("p95<{}", slo.p95_latency.text()),
        },
        Objective {
            metric: Metric::Rps,
            op: Op::Ge,
            bound: slo.requests_per_second,
            text: format!("rps>={}", slo.requests_per_second),
        },
        Objective {
            metric: Metric::ErrorRate,
            op: Op::Lt,
            bound: slo.max_error_rate.get(),
            text: format!("errors<{}", slo.max_error_rate.text()),
        },
    ]
}

/// The verdict on one objective.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Verdict {
    pub objective: String,
    pub met: bool,
    pub actual: f64,
    pub bound: f64,
    pub unit: String,
    /// How far on the wrong side (0 when met), in the objective's unit.
    pub missed_by: f64,
    /// False when the run could not show the objective either way (an open-model run offering
    /// fewer requests per second than an rps objective asks): neither met nor missed, and not
    /// counted in `slo_met`.
    #[serde(default = "judged")]
    pub judged: bool,
    /// Why it was not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn judged() -> bool {
    true
}

/// `12.5ms`, `3%`, but `980.0 req/s`: a unit that is a word gets a space.
fn with_unit(value: f64, unit: &str) -> String {
    let space = if unit.starts_with(|c: char| c.is_ascii_alphabetic()) && unit != "ms" { " " } else { "" };
    format!("{value:.2}{space}{unit}")
}

impl Verdict {
    pub fn line(&self) -> String {
        if !self.judged {
            return format!("not judged  {}: {}", self.objective, self.note.as_deref().unwrap_or_default());
        }
        if self.met {
            format!("met     {}: {}", self.objective, with_unit(self.actual, &self.unit))
        } else {
            let pct = if self.bound != 0.0 { self.missed_by * 100.0 / self.bound.abs() } else { 0.0 };
            format!(
                "MISSED  {}: {}, off by {} ({pct:.1}%)",
                self.objective,
                with_unit(self.actual, &self.unit),
                with_unit(self.missed_by, &self.unit)
            )
        }
    }
}

/// Why a run offering `offered` requests per second (an open model's `--rate`) cannot show
/// objective `o`, if it cannot: the rate is the run's own choice, so `rps>=1000` at 500/s says
/// nothing about the service.
pub fn cannot_show(o: &Objective, offered: Option<f64>) -> Option<String> {
    let rate = offered?;
    let asks_at_least = matches!(o.op, Op::Ge | Op::Gt) && o.metric == Metric::Rps;
    (asks_at_least && rate < o.bound)
        .then(|| format!("this run offers {rate} req/s (--rate), below {}: it cannot show that objective", o.text))
}

/// Evaluates each objective on the aggregated results; `offered` is the open model's rate.
pub fn evaluate(objectives: &[Objective], total: &EndpointStats, rps: f64, offered: Option<f64>) -> Vec<Verdict> {
    objectives
        .iter()
        .map(|o| {
            let (actual, unit) = match o.metric {
                Metric::Latency(100) => (total.max_ms(), "ms"),
                Metric::Latency(q) => (total.percentile_ms(f64::from(q)), "ms"),
                Metric::Rps => (rps, "req/s"),
                Metric::ErrorRate => (total.error_percent(), "%"),
            };
            let note = cannot_show(o, offered);
            let met = note.is_none() && o.op.holds(actual, o.bound);
            Verdict {
                objective: o.text.clone(),
                met,
                actual,
                bound: o.bound,
                unit: unit.to_owned(),
                missed_by: if met || note.is_some() { 0.0 } else { (actual - o.bound).abs() },
                judged: note.is_none(),
                note,
            }
        })
        .collect()
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.op.symbol(), self.bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(latencies_ms: &[u64], failures: usize) -> EndpointStats {
        let mut e = EndpointStats::default();
        for (i, ms) in latencies_ms.iter().enumerate() {
            e.record(ms * 1000, (i < failures).then_some("HTTP 500"));
        }
        e
    }

    #[test]
    fn parses_objectives() {
        let o: Objective = "p95<300ms".parse().expect("p95");
        assert_eq!((o.metric, o.op, o.bound), (Metric::Latency(95), Op::Lt, 300.0));
        let o: Objective = "rps>=1000/s".parse().expect("rps");
        assert_eq!((o.metric, o.op, o.bound), (Metric::Rps, Op::Ge, 1000.0));
        let o: Objective = "errors<1%".parse().expect("errors");
        assert_eq!((o.metric, o.op, o.bound), (Metric::ErrorRate, Op::Lt, 1.0));
        let o: Objective = "max<=2s".parse().expect("max");
        assert_eq!((o.metric, o.bound), (Metric::Latency(100), 2000.0));
        for bad in ["p95", "p95<fast", "latency<3ms", "rps>=many"] {
            assert!(bad.parse::<Objective>().is_err(), "{bad}");
        }
    }

    #[test]
    fn each_objective_passes_and_fails_on_the_right_side() {
        // 100 requests at 100..=199 ms (p95 = 195 ms), 2 failures (2%).
        let lat: Vec<u64> = (100..200).collect();
        let e = stats(&lat, 2);
        let check = |text: &str, rps: f64| evaluate(&[text.parse().expect("objective")], &e, rps, None)[0].clone();
        let p95_us = e.latency.value_at_quantile(0.95);
        assert!((194_000..196_000).contains(&p95_us), "{p95_us}");
        assert!(check(&format!("p95<{}us", p95_us + 1), 0.0).met);
        assert!(!check(&format!("p95<{p95_us}us"), 0.0).met, "strictly below");
        assert!(check(&format!("p95<={p95_us}us"), 0.0).met);
        let missed = check("p95<150ms", 0.0);
        assert!(!missed.met && (missed.missed_by - 45.0).abs() < 1.0, "{missed:?}");
        assert!(missed.line().starts_with("MISSED  p95<150ms: 194.05ms, off by 44.05ms"), "{}", missed.line());
        assert!(check("rps>=1000", 1000.0).met);
        assert!(!check("rps>=1000", 999.9).met);
        assert!(check("errors<2.1%", 0.0).met);
        assert!(!check("errors<2%", 0.0).met);
    }

    #[test]
    fn an_open_model_below_the_rps_objective_leaves_it_unjudged() {
        let e = stats(&[100, 120], 0);
        let objectives: Vec<Objective> =
            ["rps>=1000", "p95<300ms"].iter().map(|t| t.parse().expect("objective")).collect();
        let v = evaluate(&objectives, &e, 480.0, Some(500.0));
        assert!(!v[0].judged && !v[0].met && v[0].missed_by == 0.0, "{:?}", v[0]);
        assert_eq!(
            v[0].line(),
            "not judged  rps>=1000: this run offers 500 req/s (--rate), below rps>=1000: it cannot show that objective"
        );
        assert!(v[1].judged && v[1].met);
        // At or above the objective, the rate can show it: judged as usual.
        let v = evaluate(&objectives, &e, 990.0, Some(1000.0));
        assert!(v[0].judged && !v[0].met, "{:?}", v[0]);
        assert_eq!(v[0].unit, "req/s");
        assert!(v[0].line().contains(": 990.00 req/s, off by 10.00 req/s"), "{}", v[0].line());
    }

    #[test]
    fn stack_defaults_are_the_documented_slos() {
        let texts: Vec<String> = from_stack(&stack::Slo::default()).into_iter().map(|o| o.text).collect();
        assert_eq!(texts, ["p95<300ms", "rps>=1000", "errors<1%"]);
    }
}
