//! The command line of `monitor`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Checks the Konnichiwa service's health and resource use, for cron, CI, Nagios/Icinga and people.
///
/// Checks: GET /health (status and latency), and GET /inspect with the bearer key (API_KEY from the
/// environment or .env): CPU and memory used %, against the container's own limits where the app
/// reports them; for https:// URLs, the days until the served certificate expires.
///
/// Exit codes (Nagios plugin convention), the worst state of the pass: 0 OK, 1 WARNING,
/// 2 CRITICAL, 3 UNKNOWN. Worst means CRITICAL > UNKNOWN > WARNING > OK. A usage error is
/// UNKNOWN (3), its `UNKNOWN - …` line on stdout as for any other problem.
///
/// As a Nagios/Icinga plugin: `monitor check -H URL -w 0.5 -c 2 -t 10` (-w/-c the /health
/// latency, -t the timeout, bare numbers in seconds); `-V` and `-h` as every plugin answers them.
#[derive(Debug, Parser)]
#[command(name = "monitor", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Print one JSON object per pass instead of text lines (before or after the subcommand, as
    /// in the provisioner: `monitor --json check` or `monitor check --json`).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One pass over every check; exit code = the worst state.
    Check(CheckArgs),
    /// Repeat the checks; after the first pass print only state changes.
    ///
    /// Exit codes: when stopped (SIGINT/SIGTERM, or after --passes), the worst state of the last
    /// pass (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, as `check`); 3 at once on a usage or
    /// configuration error, before any pass.
    Watch {
        #[command(flatten)]
        check: CheckArgs,
        /// Time between passes.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        interval: Duration,
        /// POST a JSON message (Slack-compatible `text`) here on each state change.
        #[arg(long, env = "WEBHOOK_URL")]
        webhook: Option<String>,
        /// Per-attempt timeout of a webhook delivery.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        webhook_timeout: Duration,
        /// Attempts per webhook delivery (with exponential backoff between them).
        #[arg(long, default_value_t = 3)]
        webhook_attempts: u32,
        /// Stop after this many passes (default: until SIGINT/SIGTERM); the exit code is then the
        /// last pass's worst state.
        #[arg(long)]
        passes: Option<u64>,
        /// Results in a row, worse than a check's state, before it changes and is sent (a
        /// flapping target then pages once, not on every flap); default: stack.yaml's
        /// `monitor.alerting`, else 1. The same for the options below.
        #[arg(long, value_name = "N")]
        failure_threshold: Option<u32>,
        /// Results in a row, better than a check's state, before it recovers.
        #[arg(long, value_name = "N")]
        success_threshold: Option<u32>,
        /// While a check is not OK, send it again this often (e.g. 30m; default: once).
        #[arg(long, value_parser = parse_duration)]
        reminder: Option<Duration>,
        /// Do not send recoveries (a check back to OK), only problems.
        #[arg(long)]
        no_send_on_resolved: bool,
        /// A weekly maintenance window in UTC in which nothing is sent (the checks still run and
        /// print), repeatable: `--maintenance "Sun 02:00-04:00"`, `--maintenance "daily 03:00-03:30"`;
        /// given, it replaces stack.yaml's.
        #[arg(long, value_name = "WINDOW")]
        maintenance: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The service's base URL (e.g. the load balancer's, from `provisioner outputs`), or
    /// HOST[:PORT] for http://HOST[:PORT]; the environment variable API_URL works too, as for
    /// monitor.sh.
    #[arg(short = 'H', long, env = "API_URL")]
    pub url: Option<String>,

    /// Per-request timeout (`5s`, `500ms`; a bare number is seconds).
    #[arg(short = 't', long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// PEM file of a private CA to trust for an https:// URL, besides the system's roots.
    #[arg(long, value_name = "FILE", env = "CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// Send the API key to /inspect over plain http:// to a host that is not this machine. By
    /// default that is refused (UNKNOWN, before any request): the key would cross the network
    /// readable by anyone on the way. Use the service's https:// URL instead (SEND_KEY_OVER_HTTP:
    /// 1/0, yes/no, true/false, on/off).
    #[arg(long, env = "SEND_KEY_OVER_HTTP", value_parser = clap::builder::BoolishValueParser::new())]
    pub send_key_over_http: bool,

    /// Stack file whose `monitor:` section gives the thresholds, with the files it extends
    /// (default ./stack.yaml when present); KONNICHIWA_STACK as for the provisioner.
    #[arg(long, env = "KONNICHIWA_STACK")]
    pub stack: Option<PathBuf>,

    /// CPU % at which the cpu check is WARNING.
    #[arg(long)]
    pub cpu_warning: Option<f64>,
    /// CPU % at which the cpu check is CRITICAL.
    #[arg(long)]
    pub cpu_critical: Option<f64>,
    /// Memory % at which the memory check is WARNING.
    #[arg(long)]
    pub memory_warning: Option<f64>,
    /// Memory % at which the memory check is CRITICAL.
    #[arg(long)]
    pub memory_critical: Option<f64>,
    /// /health latency at which the health check is WARNING (e.g. 500ms; a bare number is seconds).
    #[arg(short = 'w', long, value_parser = parse_duration)]
    pub latency_warning: Option<Duration>,
    /// /health latency at which the health check is CRITICAL (e.g. 2s; a bare number is seconds).
    #[arg(short = 'c', long, value_parser = parse_duration)]
    pub latency_critical: Option<Duration>,
    /// Days before the served certificate expires at which the certificate check is WARNING.
    #[arg(long)]
    pub certificate_warning_days: Option<u32>,
    /// Days before the served certificate expires at which it is CRITICAL.
    #[arg(long)]
    pub certificate_critical_days: Option<u32>,
}

/// A duration with its unit (`500ms`, `2s`), or a bare number of seconds as Nagios plugins take
/// their `-t`, `-w` and `-c`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{s:?} is not a duration: write e.g. 2s, 500ms or 2 (seconds)")),
        Err(_) => stack::parse_duration(s),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_take_a_unit_or_bare_seconds() {
        let ms = |s: &str| super::parse_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("2s"), Ok(2000));
        assert_eq!(ms("0.5"), Ok(500));
        assert_eq!(ms("10"), Ok(10_000));
        assert!(ms("-1").is_err_and(|e| e.contains("2 (seconds)")));
        assert!(ms("soon").is_err());
    }
}
