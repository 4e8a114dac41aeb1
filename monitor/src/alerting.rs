//! When `monitor watch` tells anyone (Gatus's alerting rules): a check's state changes only after
//! `failure_threshold` results in a row worse than it is (or `success_threshold` results in a row
//! better), so a flapping target does not page on every flap; while a problem lasts, a reminder
//! every `reminder`; a recovery is sent only with `send_on_resolved`; and nothing is sent inside a
//! maintenance window (the checks still run and print). `watch` keeps this state; a single
//! `monitor check` and `monitor.sh` stay one pass, one result.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

pub use stack::schedule::Window;

use crate::report::{CheckResult, State};

/// The rules, from the command line or stack.yaml's `monitor.alerting`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub reminder: Option<Duration>,
    pub send_on_resolved: bool,
    pub maintenance: Vec<Window>,
}

impl Default for Rules {
    /// stack.yaml's defaults: every change at once, no reminder, recoveries sent.
    fn default() -> Self {
        let a = stack::Alerting::default();
        Self {
            failure_threshold: a.failure_threshold,
            success_threshold: a.success_threshold,
            reminder: None,
            send_on_resolved: a.send_on_resolved,
            maintenance: Vec::new(),
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub result: CheckResult,
    /// The state before (None for a reminder).
    pub from: Option<State>,
    /// How long the state now reported has held (for a change: the state left behind).
    pub held: Duration,
}

#[derive(Debug, Clone)]
struct Tracked {
    confirmed: State,
    since: SystemTime,
    /// Results in a row on one side of the confirmed state (worse: true), and how many.
    candidate: Option<(bool, u32)>,
    last_sent: Option<SystemTime>,
}

/// Each check's confirmed state.
#[derive(Debug, Default)]
pub struct Alerting {
    rules: Rules,
    checks: HashMap<&'static str, Tracked>,
}

impl Alerting {
    pub fn new(rules: Rules) -> Self {
        Self { rules, checks: HashMap::new() }
    }

    /// Whether `at` is inside a maintenance window.
    pub fn in_maintenance(&self, at: SystemTime) -> bool {
        self.rules.maintenance.iter().any(|w| w.contains(at))
    }

    /// The results of one pass: the changes that are confirmed now, and the reminders that are due
    /// (none inside a maintenance window). A check's first result is its state, told when not OK.
    pub fn observe(&mut self, results: &[CheckResult], now: SystemTime) -> Vec<Notice> {
        let quiet = self.in_maintenance(now);
        let mut out = Vec::new();
        for r in results {
            let Some(t) = self.checks.get_mut(r.check) else {
                // A first result inside a window is taken after it (then told if not OK).
                if quiet {
                    continue;
                }
                self.checks.insert(
                    r.check,
                    Tracked {
                        confirmed: r.state,
                        since: now,
                        candidate: None,
                        last_sent: (r.state != State::Ok).then_some(now),
                    },
                );
                if r.state != State::Ok {
                    out.push(Notice { result: r.clone(), from: None, held: Duration::ZERO });
                }
                continue;
            };
            // Inside a window nothing changes: what happened in it is confirmed, and sent, after.
            if quiet {
                continue;
            }
            if r.state == t.confirmed {
                t.candidate = None;
                let due = self
                    .rules
                    .reminder
                    .zip(t.last_sent)
                    .is_some_and(|(every, last)| now.duration_since(last).unwrap_or_default() >= every);
                if t.confirmed != State::Ok && due {
                    t.last_sent = Some(now);
                    out.push(Notice {
                        result: r.clone(),
                        from: None,
                        held: now.duration_since(t.since).unwrap_or_default(),
                    });
                }
                continue;
            }
            // Results in a row on the same side (worse, or better) count together: a check that
            // alternates WARNING and CRITICAL is not OK all along.
            let worse = r.state.severity() > t.confirmed.severity();
            let seen = match t.candidate {
                Some((was_worse, n)) if was_worse == worse => n + 1,
                _ => 1,
            };
            let needed = if worse { self.rules.failure_threshold } else { self.rules.success_threshold };
            if seen < needed.max(1) {
                t.candidate = Some((worse, seen));
                continue;
            }
            let (from, held) = (t.confirmed, now.duration_since(t.since).unwrap_or_default());
            *t = Tracked { confirmed: r.state, since: now, candidate: None, last_sent: t.last_sent };
            if r.state == State::Ok && !self.rules.send_on_resolved {
                continue;
            }
            t.last_sent = Some(now);
            out.push(Notice { result: r.clone(), from: Some(from), held });
        }
        out
    }
}

/// `5m`, `1h 2m`, `40s`: how long a state held, for people.
pub fn held_for(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, _) => format!("{m}m"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn result(state: State) -> CheckResult {
        CheckResult::new("health", state, "x")
    }

    /// A target that fails every other pass, 20 passes 30 s apart: the notices sent.
    fn flapping(rules: Rules) -> usize {
        let mut a = Alerting::new(rules);
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        (0..20)
            .map(|i| {
                let state = if i % 2 == 1 { State::Critical } else { State::Ok };
                a.observe(&[result(state)], start + Duration::from_secs(30 * i)).len()
            })
            .sum()
    }

    #[test]
    fn a_flapping_target_pages_on_every_flap_without_thresholds_and_never_with_them() {
        assert_eq!(flapping(Rules::default()), 19, "every change after the first OK");
        assert_eq!(flapping(Rules { failure_threshold: 3, success_threshold: 2, ..Rules::default() }), 0);
    }

    #[test]
    fn an_outage_is_told_once_confirmed_then_reminded_and_its_end_told_when_asked() {
        let rules = Rules { failure_threshold: 2, reminder: Some(Duration::from_secs(600)), ..Rules::default() };
        let mut a = Alerting::new(rules.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |minutes: u64| t0 + Duration::from_secs(60 * minutes);
        assert!(a.observe(&[result(State::Ok)], at(0)).is_empty());
        assert!(a.observe(&[result(State::Critical)], at(1)).is_empty(), "one result is not confirmed");
        let told = a.observe(&[result(State::Critical)], at(2));
        assert_eq!(told.len(), 1);
        assert_eq!((told[0].from, told[0].held), (Some(State::Ok), Duration::from_secs(120)));
        assert!(a.observe(&[result(State::Critical)], at(5)).is_empty(), "no reminder before 10 minutes");
        let reminder = a.observe(&[result(State::Critical)], at(12));
        assert_eq!((reminder.len(), reminder[0].from), (1, None));
        assert_eq!(held_for(reminder[0].held), "10m");
        let resolved = a.observe(&[result(State::Ok)], at(13));
        assert_eq!(resolved[0].from, Some(State::Critical));

        let mut silent = Alerting::new(Rules { send_on_resolved: false, ..rules });
        silent.observe(&[result(State::Critical)], at(0));
        assert!(silent.observe(&[result(State::Ok)], at(1)).is_empty(), "recovery not sent");
    }

    #[test]
    fn a_check_alternating_warning_and_critical_is_confirmed_not_ok() {
        let mut a = Alerting::new(Rules { failure_threshold: 3, ..Rules::default() });
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        a.observe(&[result(State::Ok)], t0);
        let states = [State::Warning, State::Critical, State::Warning];
        let sent: Vec<Notice> = states
            .iter()
            .enumerate()
            .flat_map(|(i, s)| a.observe(&[result(*s)], t0 + Duration::from_secs(30 * (i as u64 + 1))))
            .collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].result.state, State::Warning);
    }

    #[test]
    fn nothing_is_sent_inside_a_maintenance_window() {
        // 2027-01-03 was a Sunday: 02:30 UTC is inside "Sun 02:00-04:00".
        let sunday = UNIX_EPOCH + Duration::from_secs(1_798_943_400);
        let windows = Window::parse("Sun 02:00-04:00").expect("window");
        let mut a = Alerting::new(Rules { maintenance: windows, ..Rules::default() });
        assert!(a.in_maintenance(sunday));
        assert!(!a.in_maintenance(sunday + Duration::from_secs(2 * 3600)), "04:30 is after it");
        // A watch started inside the window on a failing check tells it after the window.
        let mut late =
            Alerting::new(Rules { maintenance: Window::parse("Sun 02:00-04:00").expect("w"), ..Rules::default() });
        assert!(late.observe(&[result(State::Critical)], sunday).is_empty());
        assert_eq!(late.observe(&[result(State::Critical)], sunday + Duration::from_secs(2 * 3600)).len(), 1);
        assert!(a.observe(&[result(State::Ok)], sunday - Duration::from_secs(3600)).is_empty());
        assert!(a.observe(&[result(State::Critical)], sunday + Duration::from_secs(60)).is_empty(), "quiet");
        // After the window, the outage that began in it is sent.
        let after = a.observe(&[result(State::Critical)], sunday + Duration::from_secs(2 * 3600));
        assert_eq!((after.len(), after[0].from), (1, Some(State::Ok)), "{after:?}");
        assert_eq!(Window::parse("daily 23:30-00:30").expect("daily").len(), 7);
        assert!(Window::parse("Funday 1-2").is_err());
    }
}
