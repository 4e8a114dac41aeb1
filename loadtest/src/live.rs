//! Live progress while a run goes: one updating line on a terminal, plain lines every few
//! seconds otherwise (CI logs); on stderr so stdout stays for the report.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::stats::RunStats;

#[derive(Debug)]
pub struct Progress {
    terminal: bool,
    quiet: bool,
    ticks: u64,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self { terminal: std::io::stderr().is_terminal(), quiet, ticks: 0 }
    }

    /// Called once a second with the stats so far.
    pub fn tick(&mut self, stats: &RunStats, elapsed: Duration, users: u64) {
        self.ticks += 1;
        if self.quiet || (!self.terminal && !self.ticks.is_multiple_of(5)) {
            return;
        }
        // The last complete second.
        let second = elapsed.as_secs().saturating_sub(1) as usize;
        let last = stats.history.get(second);
        let rps = last.map_or(0, |s| s.requests);
        let p95 = last.map_or(0.0, |s| s.percentile_ms(95.0));
        let total = stats.total();
        let line = format!(
            "elapsed {:>4}s | users {users:>5} | {rps:>7} req/s | p95 {p95:>8.2} ms | errors {} ({:.2}%)",
            elapsed.as_secs(),
            total.failure_count(),
            total.error_percent()
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    pub fn finish(&mut self) {
        if self.terminal && !self.quiet && self.ticks > 0 {
            eprintln!();
        }
    }
}
