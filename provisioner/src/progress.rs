//! The waits in progress (what, since when), and the line that names them all every so often while
//! a run waits on several things at once: `still waiting: load balancer konnichiwa-alb to be active
//! (1m10s), certificate for api.example.com to be issued (40s)` — what Terraform's "Still
//! creating... [1m0s elapsed]" says of one resource. `wait::until` lists a wait from its first
//! "not yet" until it ends. This module waits on nothing itself: it reports the waits of
//! `wait::until`, the last of the seven ways a run retries or waits (the list: `wait`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A set of waits in progress; the process has one (`WAITS`).
#[derive(Debug, Default)]
pub struct Waits {
    next: AtomicU64,
    listed: Mutex<BTreeMap<u64, (String, Instant)>>,
}

/// Every wait of this process.
pub static WAITS: Waits = Waits::new();

impl Waits {
    pub const fn new() -> Self {
        Self { next: AtomicU64::new(0), listed: Mutex::new(BTreeMap::new()) }
    }

    /// Lists `what` as waited for from now until the returned guard is dropped.
    pub fn start(&self, what: &str) -> Waiting<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.listed.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (what.to_owned(), Instant::now()));
        Waiting { waits: self, id }
    }

    /// Every wait in progress at `now`, the longest first; None when nothing waits.
    pub fn line(&self, now: Instant) -> Option<String> {
        let listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        let mut waits: Vec<(Duration, &str)> =
            listed.values().map(|(what, since)| (now.saturating_duration_since(*since), what.as_str())).collect();
        if waits.is_empty() {
            return None;
        }
        waits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let named: Vec<String> = waits.iter().map(|(d, what)| format!("{what} ({})", elapsed(*d))).collect();
        Some(format!("still waiting: {}", named.join(", ")))
    }
}

/// A wait in progress; dropping it ends the listing.
#[derive(Debug)]
pub struct Waiting<'a> {
    waits: &'a Waits,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waits.listed.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

/// `40s`, `1m10s`, `1h2m`.
fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Says `WAITS`' line through `say` every `every` while something waits; stops when dropped.
pub fn report_every(every: Duration, say: impl Fn(&str) + Send + 'static) -> Reporting {
    Reporting(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            tick.tick().await;
            if let Some(line) = WAITS.line(Instant::now()) {
                say(&line);
            }
        }
    }))
}

/// The periodic line of `report_every`, until dropped.
#[derive(Debug)]
pub struct Reporting(tokio::task::JoinHandle<()>);

impl Drop for Reporting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_line_names_every_wait_longest_first_until_it_ends() {
        let waits = Waits::new();
        assert_eq!(waits.line(Instant::now()), None, "nothing waits");
        let lb = waits.start("load balancer konnichiwa-alb to be active");
        tokio::time::advance(Duration::from_secs(30)).await;
        let cert = waits.start("certificate for api.example.com to be issued");
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(
            waits.line(Instant::now()).as_deref(),
            Some(
                "still waiting: load balancer konnichiwa-alb to be active (1m10s), certificate for api.example.com to \
                 be issued (40s)"
            )
        );
        drop(lb);
        assert_eq!(
            waits.line(Instant::now()).as_deref(),
            Some("still waiting: certificate for api.example.com to be issued (40s)")
        );
        drop(cert);
        assert_eq!(waits.line(Instant::now()), None);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(elapsed(Duration::from_secs(40)), "40s");
        assert_eq!(elapsed(Duration::from_secs(70)), "1m10s");
        assert_eq!(elapsed(Duration::from_secs(3720)), "1h2m");
    }
}
