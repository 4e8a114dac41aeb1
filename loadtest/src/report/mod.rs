//! Reports of a run: the JSON document (stable, documented, mergeable), the text table, CSV files
//! like locust's, a self-contained HTML page with charts, and the JSON as numbered log lines (how
//! workers on ECS hand their results back).

pub mod csv;
pub mod html;
pub mod json;
pub mod lines;
pub mod text;

/// What the load generator itself used, to show it was not the bottleneck.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Generator {
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
}

impl Generator {
    /// This process's CPU time and peak RSS, from /proc.
    pub fn measure() -> Self {
        let ticks_per_second = 100.0; // USER_HZ on Linux
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                // Fields after the parenthesized command: utime is 14th, stime 15th overall.
                let rest = s.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks_per_second)
            })
            .unwrap_or(0.0);
        let peak_rss_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        Self { cpu_seconds, peak_rss_bytes }
    }
}
