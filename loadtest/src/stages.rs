//! The shape of the load over time: stages (`--stage [NAME=]DURATION:TARGET`, or stack.yaml's
//! `loadtest.stages`), each ramping linearly from the previous stage's target (the first from 0,
//! as k6's ramping executors do) to its own. A target is an arrival rate (`1000/s`, open model)
//! or a number of users (`500`, closed model); a run's stages are all one or all the other.
//! A plain `--rate` or `--users/--spawn-rate` run is a profile too (a constant rate; a ramp at
//! the spawn rate, then a hold), so the engine has one way to follow the plan.
//!
//! For an open model the profile gives the arrival times exactly: the rate is piecewise linear,
//! so the number of arrivals by time t is piecewise quadratic, and the k-th arrival is where that
//! count reaches k.

use std::time::Duration;

/// What a stage's target counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Arrivals per second (open model).
    Rate,
    /// Concurrent users (closed model).
    Users,
}

/// One stage as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub duration: Duration,
    pub target: f64,
    pub unit: Unit,
}

impl Stage {
    /// `[NAME=]DURATION:TARGET`; unnamed stages get their position (1, 2, …) when the profile is
    /// made.
    pub fn parse(s: &str) -> Result<Stage, String> {
        let hint = "write [NAME=]DURATION:TARGET, e.g. 2m:1000/s (a rate) or warmup=30s:50 (users)";
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) => (n.trim(), r),
            None => ("", s),
        };
        if !name.is_empty() && !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("{s:?}: a stage name has letters, digits, - and _ only"));
        }
        let (duration, target) = rest.split_once(':').ok_or_else(|| format!("{s:?}: {hint}"))?;
        let duration = stack::parse_duration(duration.trim()).map_err(|e| format!("{s:?}: {e}"))?;
        let target = target.trim();
        let (number, unit) = match target.strip_suffix("/s") {
            Some(rate) => (rate.trim(), Unit::Rate),
            None => (target, Unit::Users),
        };
        let value: f64 = number.parse().map_err(|_| format!("{s:?}: {target:?} is not a target; {hint}"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("{s:?}: the target must be 0 or more"));
        }
        if unit == Unit::Users && value.fract() != 0.0 {
            return Err(format!("{s:?}: users come whole; write a rate as {value}/s"));
        }
        Ok(Stage { name: name.to_owned(), duration, target: value, unit })
    }

    /// As written on the command line (`hold=2m:1000/s`).
    pub fn to_arg(&self) -> String {
        let target = match self.unit {
            Unit::Rate => format!("{}/s", self.target),
            Unit::Users => format!("{}", self.target),
        };
        let name = if self.name.is_empty() { String::new() } else { format!("{}=", self.name) };
        format!("{name}{}ms:{target}", self.duration.as_millis())
    }
}

/// A stage placed in time: from `start` to `end` seconds, ramping `from` → `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub name: String,
    pub start: f64,
    pub end: f64,
    pub from: f64,
    pub to: f64,
}

impl Span {
    fn value_at(&self, t: f64) -> f64 {
        let length = self.end - self.start;
        if length <= 0.0 { self.to } else { self.from + (self.to - self.from) * (t - self.start) / length }
    }

    /// Arrivals (or user-seconds) from the span's start to `t`.
    fn area_until(&self, t: f64) -> f64 {
        let tau = (t - self.start).clamp(0.0, self.end - self.start);
        tau * (self.value_at(self.start) + self.value_at(self.start + tau)) / 2.0
    }

    /// Whether second `s` (the interval [s, s+1)) starts within the span.
    pub fn owns_second(&self, s: usize) -> bool {
        let t = s as f64;
        self.start <= t && t < self.end
    }
}

/// The planned load over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub unit: Unit,
    pub spans: Vec<Span>,
}

impl Profile {
    /// From stages (all of one unit, at least one, a total longer than zero).
    pub fn from_stages(stages: &[Stage]) -> Result<Profile, String> {
        let first = stages.first().ok_or("give at least one --stage")?;
        if let Some(other) = stages.iter().find(|s| s.unit != first.unit) {
            return Err(format!(
                "stage {:?} mixes a rate and a number of users: every stage of a run is a rate (N/s, open model) \
                 or every stage is users (N, closed model)",
                other.to_arg()
            ));
        }
        let mut spans = Vec::with_capacity(stages.len());
        let (mut at, mut level) = (0.0, 0.0);
        for (i, s) in stages.iter().enumerate() {
            let name = if s.name.is_empty() { (i + 1).to_string() } else { s.name.clone() };
            if spans.iter().any(|p: &Span| p.name == name) {
                return Err(format!("two stages are named {name:?}: give each its own name"));
            }
            let end = at + s.duration.as_secs_f64();
            spans.push(Span { name, start: at, end, from: level, to: s.target });
            (at, level) = (end, s.target);
        }
        if at <= 0.0 {
            return Err("the stages last 0s in all: give at least one a duration".into());
        }
        Ok(Profile { unit: first.unit, spans })
    }

    /// A constant rate for `duration` (`--rate`).
    pub fn constant_rate(rate: f64, duration: Duration) -> Profile {
        let end = duration.as_secs_f64();
        Profile { unit: Unit::Rate, spans: vec![Span { name: "hold".into(), start: 0.0, end, from: rate, to: rate }] }
    }

    /// `users` started at `spawn_rate` per second, then held until `duration` (`--users`).
    /// `--users N --spawn-rate R`: a stage `spawn` (users start at R/s) and a stage `hold` (all
    /// N run), which `--slo-stage hold` can judge alone.
    pub fn spawned_users(users: u32, spawn_rate: f64, duration: Duration) -> Profile {
        let (users, end) = (f64::from(users), duration.as_secs_f64());
        let ramp = (users / spawn_rate).min(end);
        let reached = if ramp < users / spawn_rate { ramp * spawn_rate } else { users };
        let mut spans = vec![Span { name: "spawn".into(), start: 0.0, end: ramp, from: 0.0, to: reached }];
        if end > ramp {
            spans.push(Span { name: "hold".into(), start: ramp, end, from: users, to: users });
        }
        Profile { unit: Unit::Users, spans }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.spans.last().map_or(0.0, |s| s.end))
    }

    /// The planned rate or users at `t` seconds (0 outside the run).
    pub fn value_at(&self, t: f64) -> f64 {
        self.spans.iter().find(|s| s.start <= t && t < s.end).map_or(0.0, |s| s.value_at(t))
    }

    /// The highest target of the run (sizes connections and user pools).
    pub fn peak(&self) -> f64 {
        self.spans.iter().map(|s| s.from.max(s.to)).fold(0.0, f64::max)
    }

    /// Arrivals planned from 0 to `t` (open model).
    pub fn arrivals_until(&self, t: f64) -> f64 {
        self.spans.iter().map(|s| s.area_until(t)).sum()
    }

    /// Arrivals planned in the whole run.
    pub fn total_arrivals(&self) -> u64 {
        let n = self.arrivals_until(f64::MAX);
        // Arrival k is due where the count reaches k: k = 0, 1, … while k < n.
        (n - 1e-9).ceil().max(0.0) as u64
    }

    /// When arrival `k` (0-based) is due, in seconds from the start; None past the run.
    pub fn arrival_time(&self, k: u64) -> Option<f64> {
        let k = k as f64;
        let mut before = 0.0;
        for s in &self.spans {
            let area = s.area_until(s.end);
            if k < before + area - 1e-9 {
                let need = k - before;
                let length = s.end - s.start;
                let (r0, slope) = (s.from, (s.to - s.from) / length);
                // r0·τ + slope·τ²/2 = need, solved in the form that is stable for either sign.
                let root = (r0 * r0 + 2.0 * slope * need).max(0.0).sqrt();
                let tau = if r0 + root > 0.0 { 2.0 * need / (r0 + root) } else { 0.0 };
                return Some(s.start + tau.clamp(0.0, length));
            }
            before += area;
        }
        None
    }

    /// The span second `s` belongs to (by where it starts).
    pub fn span_of_second(&self, s: usize) -> Option<&Span> {
        self.spans.iter().find(|p| p.owns_second(s))
    }

    /// What second `s` plans: arrivals in it (open model), or users at its end (closed).
    pub fn planned_in_second(&self, s: usize) -> f64 {
        let t = s as f64;
        match self.unit {
            Unit::Rate => self.arrivals_until(t + 1.0) - self.arrivals_until(t),
            Unit::Users => {
                // The users due at the second's end (approached from within it).
                let end = t + 1.0;
                let v = self.spans.iter().find(|p| p.start < end && end <= p.end).map_or(0.0, |p| p.value_at(end));
                (v - 1e-9).ceil().max(0.0)
            }
        }
    }

    /// Users due at `t` (closed model): user u runs while the profile is above u.
    pub fn users_at(&self, t: f64) -> u32 {
        let v = self.value_at(t);
        (v - 1e-9).ceil().max(0.0) as u32
    }

    /// The next time after `t` when `users_at` may change (closed model), at most 50 ms away.
    pub fn next_users_change(&self, t: f64) -> f64 {
        let now = self.users_at(t);
        let Some(s) = self.spans.iter().find(|s| s.start <= t && t < s.end) else { return t + 0.05 };
        let slope = (s.to - s.from) / (s.end - s.start).max(f64::MIN_POSITIVE);
        let next = if slope > 0.0 {
            s.start + (f64::from(now) - s.from) / slope
        } else if slope < 0.0 {
            s.start + (f64::from(now.saturating_sub(1)) - s.from) / slope
        } else {
            s.end
        };
        next.min(s.end).clamp(t + 0.001, t + 0.05)
    }
}

/// How the load was asked for; a worker is told its share in the same form.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `--rate R/s` for the run's duration.
    Rate(f64),
    /// `--users U --spawn-rate S` for the run's duration.
    Users { users: u32, spawn_rate: f64 },
    /// `--stage …` (the duration is theirs).
    Stages(Vec<Stage>),
}

/// Worker `index`'s part of `whole` when `workers` share it: whole numbers that add up to it.
fn split_whole(whole: u64, index: u32, workers: u32) -> u64 {
    let (i, n) = (u64::from(index), u64::from(workers.max(1)));
    whole / n + u64::from(i < whole % n)
}

impl Shape {
    pub fn profile(&self, duration: Duration) -> Result<Profile, String> {
        match self {
            Self::Rate(rate) => Ok(Profile::constant_rate(*rate, duration)),
            Self::Users { users, spawn_rate } => Ok(Profile::spawned_users(*users, *spawn_rate, duration)),
            Self::Stages(stages) => Profile::from_stages(stages),
        }
    }

    /// Worker `index`'s share when `workers` (1 or more) share the load: rates divided evenly;
    /// users split so that the shares add up to the whole (the first workers take one more
    /// while there is a remainder); a spawn rate in proportion, so that every ramp ends together.
    pub fn share(&self, index: u32, workers: u32) -> Shape {
        let n = f64::from(workers.max(1));
        match self {
            Self::Rate(rate) => Self::Rate(rate / n),
            Self::Users { users, spawn_rate } => {
                let mine = split_whole(u64::from(*users), index, workers) as u32;
                Self::Users { users: mine, spawn_rate: spawn_rate * f64::from(mine) / f64::from((*users).max(1)) }
            }
            Self::Stages(stages) => Self::Stages(
                stages
                    .iter()
                    .map(|s| Stage {
                        target: match s.unit {
                            Unit::Rate => s.target / n,
                            Unit::Users => split_whole(s.target as u64, index, workers) as f64,
                        },
                        ..s.clone()
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(stages: &[&str]) -> Profile {
        let stages: Vec<Stage> = stages.iter().map(|s| Stage::parse(s).expect("stage")).collect();
        Profile::from_stages(&stages).expect("profile")
    }

    #[test]
    fn stages_parse_with_names_units_and_clear_errors() {
        let s = Stage::parse("hold=2m:1000/s").expect("named");
        assert_eq!(
            (s.name.as_str(), s.duration, s.target, s.unit),
            ("hold", Duration::from_secs(120), 1000.0, Unit::Rate)
        );
        let s = Stage::parse("30s:50").expect("users");
        assert_eq!((s.name.as_str(), s.target, s.unit), ("", 50.0, Unit::Users));
        assert!(Stage::parse("30s").unwrap_err().contains("DURATION:TARGET"));
        assert!(Stage::parse("30s:fast").unwrap_err().contains("not a target"));
        assert!(Stage::parse("30s:1.5").unwrap_err().contains("users come whole"));
        assert!(Stage::parse("a b=30s:5").unwrap_err().contains("stage name"));
        let mixed = [Stage::parse("10s:5/s").expect("rate"), Stage::parse("10s:5").expect("users")];
        assert!(Profile::from_stages(&mixed).unwrap_err().contains("mixes a rate"));
        let twice = [Stage::parse("a=1s:5").expect("a"), Stage::parse("a=1s:6").expect("a")];
        assert!(Profile::from_stages(&twice).unwrap_err().contains("named \"a\""));
        assert!(Profile::from_stages(&[Stage::parse("0s:5/s").expect("jump")]).is_err());
    }

    #[test]
    fn ramps_are_linear_from_the_previous_target() {
        let p = profile(&["10s:100/s", "hold=10s:100/s", "10s:0/s"]);
        assert_eq!(p.spans[0].name, "1");
        assert!((p.value_at(5.0) - 50.0).abs() < 1e-9);
        assert!((p.value_at(15.0) - 100.0).abs() < 1e-9);
        assert!((p.value_at(25.0) - 50.0).abs() < 1e-9);
        // 500 on the way up, 1000 held, 500 on the way down.
        assert_eq!(p.total_arrivals(), 2000);
        assert!((p.arrivals_until(10.0) - 500.0).abs() < 1e-6);
    }

    #[test]
    fn arrival_times_invert_the_arrival_count_on_ramps_up_and_down() {
        let p = profile(&["10s:100/s", "10s:100/s", "10s:20/s", "0s:50/s", "5s:50/s"]);
        let total = p.total_arrivals();
        let mut last = -1.0;
        for k in 0..total {
            let t = p.arrival_time(k).expect("within the run");
            assert!(t >= last, "arrival {k} before the one before it");
            assert!((p.arrivals_until(t) - k as f64).abs() < 1e-6, "arrival {k} at {t}");
            last = t;
        }
        assert!(p.arrival_time(total).is_none());
        assert!(last < 35.0);
    }

    #[test]
    fn users_follow_the_profile_and_the_spawn_rate_model_is_a_ramp_then_a_hold() {
        let p = Profile::spawned_users(10, 5.0, Duration::from_secs(10));
        let names: Vec<&str> = p.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["spawn", "hold"], "named for what happens in them, not 1 and 2");
        assert_eq!(p.users_at(0.0), 0);
        assert_eq!(p.users_at(0.01), 1);
        assert_eq!(p.users_at(1.0), 5);
        assert_eq!(p.users_at(1.99), 10);
        assert_eq!(p.users_at(5.0), 10);
        let down = profile(&["0s:8", "4s:0"]);
        assert_eq!(down.users_at(0.0), 8);
        assert_eq!(down.users_at(2.0), 4);
        let next = down.next_users_change(2.0);
        assert!(next > 2.0 && next <= 2.05);
    }

    #[test]
    fn shares_add_up_to_the_whole() {
        let stages: Vec<Stage> = ["a=10s:7", "10s:10"].iter().map(|s| Stage::parse(s).expect("stage")).collect();
        let whole = Shape::Stages(stages.clone()).profile(Duration::ZERO).expect("profile");
        let shares: Vec<Profile> =
            (0..3).map(|i| Shape::Stages(stages.clone()).share(i, 3).profile(Duration::ZERO).expect("share")).collect();
        for (k, span) in whole.spans.iter().enumerate() {
            let sum: f64 = shares.iter().map(|s| s.spans[k].to).sum();
            assert_eq!(sum, span.to);
        }
        assert_eq!(shares[0].spans[0].to, 3.0);
        assert_eq!(Shape::Rate(1000.0).share(1, 4), Shape::Rate(250.0));
        assert_eq!(
            Shape::Users { users: 10, spawn_rate: 5.0 }.share(0, 4),
            Shape::Users { users: 3, spawn_rate: 1.5 },
            "the ramp ends when the whole one does"
        );
        // Stages written back parse to the same stages.
        let again: Vec<Stage> = stages.iter().map(|s| Stage::parse(&s.to_arg()).expect("reparse")).collect();
        assert_eq!(again[0], stages[0]);
        assert_eq!((again[1].duration, again[1].target), (stages[1].duration, stages[1].target));
    }
}
