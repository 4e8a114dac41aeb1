//! Weekly maintenance windows in UTC (`Sun 02:00-04:00`, `daily 03:00-03:30`): the monitor's
//! `watch` sends nothing inside one; stack.yaml's `monitor.alerting.maintenance` names them and
//! validation checks their form.

use std::time::{SystemTime, UNIX_EPOCH};

/// A weekly window in UTC: `Sun 02:00-04:00` (ends past midnight wrap to the next day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Minutes since Monday 00:00 UTC at which it starts, and its length in minutes.
    start: u32,
    minutes: u32,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEK: u32 = 7 * 24 * 60;

impl Window {
    /// `DAY HH:MM-HH:MM` (DAY: Mon…Sun, or `daily`), in UTC.
    pub fn parse(text: &str) -> Result<Vec<Self>, String> {
        let bad = || {
            format!(
                "{text:?} is not a maintenance window: write e.g. \"Sun 02:00-04:00\" or \"daily 03:00-03:30\" (UTC)"
            )
        };
        let (day, times) = text.trim().split_once(' ').ok_or_else(bad)?;
        let (from, to) = times.trim().split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (from, to) = (minutes(from).ok_or_else(bad)?, minutes(to).ok_or_else(bad)?);
        let length = if to > from { to - from } else { to + 24 * 60 - from };
        let day = day.to_ascii_lowercase();
        let days: Vec<u32> = if day == "daily" {
            (0..7).collect()
        } else {
            vec![DAYS.iter().position(|d| day.starts_with(d)).ok_or_else(bad)? as u32]
        };
        Ok(days.into_iter().map(|d| Self { start: d * 24 * 60 + from, minutes: length }).collect())
    }

    /// Whether `at` falls inside it.
    pub fn contains(&self, at: SystemTime) -> bool {
        let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // 1970-01-01 was a Thursday: minutes since Monday 00:00 of that week.
        let minute_of_week = ((secs / 60 + 3 * 24 * 60) % u64::from(WEEK)) as u32;
        (minute_of_week + WEEK - self.start) % WEEK < self.minutes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_window_holds_its_week_minutes_and_wraps_past_midnight() {
        // 2027-01-03 was a Sunday: 02:30 UTC.
        let sunday = UNIX_EPOCH + Duration::from_secs(1_798_943_400);
        let w = Window::parse("Sun 02:00-04:00").expect("window");
        assert!(w[0].contains(sunday) && !w[0].contains(sunday + Duration::from_secs(2 * 3600)));
        let night = Window::parse("Sat 23:30-00:30").expect("window");
        assert!(
            night[0].contains(sunday - Duration::from_secs(2 * 3600 + 15 * 60)),
            "Sunday 00:15, past Saturday's midnight"
        );
        assert_eq!(Window::parse("daily 03:00-03:30").expect("daily").len(), 7);
        for bad in ["Funday 01:00-02:00", "Sun 2-3", "Sun 25:00-26:00", "Sun"] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }
}
