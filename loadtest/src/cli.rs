//! The command line of `loadtest`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::scenario::{Endpoint, parse_endpoint};
use crate::slo::Objective;

/// Drives the Konnichiwa service and passes or fails its SLOs.
///
/// Closed model (locust's): `--users 500 --spawn-rate 50 --duration 60s [--think-time 1s..2s]`.
/// Open model (k6's constant arrival rate): `--rate 1000/s`, latency measured from each request's
/// intended send time. Default mix: GET / (6), /health (2), /inspect with the bearer key (2);
/// API_KEY comes from the environment or .env.
///
/// SLOs: `--slo` (repeatable), else stack.yaml's `slo:` (p95<300ms, rps>=1000, errors<1%).
///
/// Exit codes: 0 every SLO met; 3 an SLO missed (the report says which and by how much);
/// 1 the run itself failed (bad flags, target unreachable, unreadable files).
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about, long_about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Combine --json results of runs made at the same time from several machines (histograms
    /// merge exactly), report and gate them like one run.
    Merge {
        /// Result files written by `loadtest --json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The service's base URL (e.g. the load balancer's, from `provisioner outputs`).
    #[arg(long, env = "LOADTEST_HOST")]
    pub host: Option<String>,

    /// PEM file of a private CA to trust for an https:// target, besides the system's and
    /// Mozilla's roots.
    #[arg(long, value_name = "FILE", env = "LOADTEST_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// Closed model: number of users.
    #[arg(long, conflicts_with = "rate")]
    pub users: Option<u32>,

    /// Closed model: users started per second (default: all at once).
    #[arg(long, conflicts_with = "rate")]
    pub spawn_rate: Option<f64>,

    /// Closed model: pause between a user's requests, `1s` or a range `1s..2s`.
    #[arg(long, value_parser = parse_think_time, conflicts_with = "rate")]
    pub think_time: Option<(Duration, Duration)>,

    /// Open model: constant arrival rate, e.g. `1000/s`.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Open model: connections that carry the arrivals (default: rate / 10, 10–1000).
    #[arg(long, requires = "rate")]
    pub connections: Option<u32>,

    /// How long to apply load (default 60s, or stack.yaml's loadtest.duration).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// `PATH[=WEIGHT]`, repeatable: replaces the default mix.
    #[arg(long = "endpoint", value_parser = parse_endpoint)]
    pub endpoints: Vec<Endpoint>,

    /// Stack file for the `slo:` and `loadtest:` sections, with the files it extends (default
    /// ./stack.yaml when present); KONNICHIWA_STACK as for the provisioner.
    #[arg(long, env = "KONNICHIWA_STACK")]
    pub stack: Option<PathBuf>,

    /// No live progress on stderr.
    #[arg(long)]
    pub quiet: bool,

    /// Runtime threads. 1 (the default) is the most efficient per core: no cross-thread
    /// wake-ups; raise it where one core cannot generate enough load and more are free.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// An objective, repeatable: `p95<300ms`, `p99<=1s`, `rps>=1000`, `errors<1%`.
    #[arg(long = "slo")]
    pub slos: Vec<Objective>,

    /// Write the results as JSON (the documented `konnichiwa-loadtest/1` shape).
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write PREFIX_stats.csv and PREFIX_stats_history.csv.
    #[arg(long)]
    pub csv: Option<String>,

    /// Write a self-contained HTML report with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    stack::parse_duration(s)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 =
        s.trim().trim_end_matches("/s").parse().map_err(|_| format!("{s:?} is not a rate; write e.g. 1000/s"))?;
    if v > 0.0 && v.is_finite() { Ok(v) } else { Err(format!("{s:?}: the rate must be positive")) }
}

fn parse_think_time(s: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = match s.split_once("..") {
        Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
        None => {
            let d = parse_duration(s)?;
            (d, d)
        }
    };
    if lo > hi {
        return Err(format!("{s:?}: the range must go from low to high, e.g. 1s..2s"));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parsers() {
        assert_eq!(parse_rate("1000/s"), Ok(1000.0));
        assert!(parse_rate("-5/s").is_err());
        assert_eq!(parse_think_time("1s..2s"), Ok((Duration::from_secs(1), Duration::from_secs(2))));
        assert_eq!(parse_think_time("500ms"), Ok((Duration::from_millis(500), Duration::from_millis(500))));
        assert!(parse_think_time("2s..1s").is_err());
    }
}
