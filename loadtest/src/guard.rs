//! `--abort-on-fail`: stops a run once an SLO can no longer be met, instead of loading a failing
//! service to the end. Two signs count, judged on the seconds the SLOs are judged on (the whole
//! run, or the `--slo-stage`):
//! - errors beyond the budget: more failures than the error objective allows of every request
//!   the plan will send (open model: known exactly; closed model: the rate so far over the
//!   scope's length, a projection);
//! - latency beyond a latency objective for a sustained window: every second of the last
//!   `window` seconds (each with answers) has that percentile above the bound.
//!
//! Throughput objectives are never aborted on: a slow start can still be made up.

use crate::slo::{Metric, Objective, Op};
use crate::stats::{RunStats, new_histogram};

#[derive(Debug, Clone)]
pub struct Guard {
    pub objectives: Vec<Objective>,
    /// The stage the SLOs are judged on (None: the whole run).
    pub stage: Option<String>,
    /// Seconds a latency objective must be missed in a row.
    pub window: usize,
    /// Open model: the arrivals the plan sends (the projection is for closed models).
    pub open: bool,
}

impl Guard {
    /// Why the run should stop, judged when `now` whole seconds have passed; None to go on.
    pub fn verdict(&self, stats: &RunStats, now: usize) -> Option<String> {
        let (scope, whole_scope, label) = match &self.stage {
            Some(name) => {
                let plan = stats.stages.iter().find(|s| &s.name == name)?;
                let range = plan.seconds(f64::MAX);
                (range.start..range.end.min(now), range, format!("stage {name}"))
            }
            None => (0..now.min(stats.history.len()), 0..stats.history.len(), "the run".to_owned()),
        };
        if scope.is_empty() {
            return None;
        }
        let seconds = stats.history.get(scope.clone())?;
        let (requests, failures) = seconds.iter().fold((0u64, 0u64), |(r, f), s| (r + s.requests, f + s.failures));
        for o in &self.objectives {
            match o.metric {
                Metric::ErrorRate if failures > 0 => {
                    let planned = if self.open {
                        stats.history.get(whole_scope.clone()).map_or(0.0, |all| all.iter().map(|s| s.planned).sum())
                    } else {
                        requests as f64 * whole_scope.len() as f64 / scope.len() as f64
                    };
                    let share = failures as f64 * 100.0 / planned.max(1.0);
                    let over = match o.op {
                        Op::Lt => share >= o.bound,
                        Op::Le => share > o.bound,
                        Op::Gt | Op::Ge => false,
                    };
                    if over {
                        let how = if self.open { "planned" } else { "projected" };
                        return Some(format!(
                            "{}: {failures} failures are already {share:.2}% of the {planned:.0} requests {how} for {label}",
                            o.text
                        ));
                    }
                }
                Metric::Latency(q) if matches!(o.op, Op::Lt | Op::Le) && scope.len() >= self.window => {
                    let last = &seconds[seconds.len() - self.window..];
                    let above = |s: &crate::stats::Second| {
                        if s.latency.is_empty() {
                            return false;
                        }
                        let ms = s.latency.value_at_quantile(f64::from(q) / 100.0) as f64 / 1000.0;
                        if o.op == Op::Lt { ms >= o.bound } else { ms > o.bound }
                    };
                    if last.iter().all(above) {
                        let mut h = new_histogram();
                        for s in last {
                            let _ = h.add(&s.latency);
                        }
                        let ms = h.value_at_quantile(f64::from(q) / 100.0) as f64 / 1000.0;
                        return Some(format!(
                            "{}: above it in each of the last {} s of {label} ({ms:.1} ms over them)",
                            o.text, self.window
                        ));
                    }
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::{Shape, Stage};

    fn stats(stages: &[&str], slow_from: usize, failing_from: usize, seconds: usize) -> RunStats {
        let stages: Vec<Stage> = stages.iter().map(|s| Stage::parse(s).expect("stage")).collect();
        let profile = Shape::Stages(stages).profile(std::time::Duration::ZERO).expect("profile");
        let mut st = RunStats::new(&["GET /".to_owned()], false);
        st.plan(&profile);
        for s in 0..seconds {
            for i in 0..100u64 {
                let latency = if s >= slow_from { 500_000 } else { 10_000 };
                let failed = s >= failing_from && i < 5;
                st.record(0, latency + i, failed.then_some("HTTP 500"), s, 0);
            }
        }
        st.duration_seconds = seconds as f64;
        st
    }

    fn guard(objectives: &[&str], stage: Option<&str>, open: bool) -> Guard {
        Guard {
            objectives: objectives.iter().map(|o| o.parse().expect("objective")).collect(),
            stage: stage.map(str::to_owned),
            window: 3,
            open,
        }
    }

    #[test]
    fn latency_must_be_missed_for_the_whole_window() {
        let g = guard(&["p95<300ms"], None, true);
        let st = stats(&["20s:100/s"], 5, usize::MAX, 7);
        assert_eq!(g.verdict(&st, 7), None, "two slow seconds are not a window of three");
        let st = stats(&["20s:100/s"], 5, usize::MAX, 8);
        let why = g.verdict(&st, 8).expect("three slow seconds");
        assert!(why.starts_with("p95<300ms: above it in each of the last 3 s of the run"), "{why}");
        // Judged on a later stage only: the slow warm-up does not count.
        let st = stats(&["warmup=5s:100/s", "hold=20s:100/s"], 0, usize::MAX, 4);
        assert!(guard(&["p95<300ms"], None, true).verdict(&st, 4).is_some());
        assert_eq!(guard(&["p95<300ms"], Some("hold"), true).verdict(&st, 4), None);
    }

    #[test]
    fn errors_abort_once_they_exceed_the_budget_of_the_planned_requests() {
        // 10 s at 100/s: 1000 planned, 1% = 10 failures; 5 a second from second 0.
        let g = guard(&["errors<1%"], None, true);
        let st = stats(&["0s:100/s", "10s:100/s"], usize::MAX, 0, 1);
        assert_eq!(g.verdict(&st, 1), None, "5 failures of 1000 planned");
        let st = stats(&["0s:100/s", "10s:100/s"], usize::MAX, 0, 2);
        let why = g.verdict(&st, 2).expect("10 failures are 1% of 1000");
        assert!(why.contains("10 failures are already 1.00% of the 1000 requests planned"), "{why}");
        assert_eq!(guard(&["errors<=1%"], None, true).verdict(&st, 2), None, "1% is allowed by <=");
    }
}
