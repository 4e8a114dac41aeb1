//! The command line of `loadtest`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::header::{Header, HeaderParser};
use crate::scenario::{Endpoint, parse_endpoint};
use crate::slo::Objective;
use crate::stages::Stage;

/// Drives the Konnichiwa service and passes or fails its SLOs.
///
/// Closed model (locust's): `--users 500 --spawn-rate 50 --duration 60s [--think-time 1s..2s]`.
/// With no load flags (and no `loadtest:` section in the stack file): 10 users, all at once, no
/// think time, for 60 s — as fast as the service answers (12–15k req/s against the sandbox on 2
/// cores), which is a stress test: give `--rate` to offer a steady load instead.
/// Open model (k6's constant arrival rate): `--rate 1000/s`, latency measured from each request's
/// intended send time. Stages (k6's ramping executors, locust's load shapes): `--stage 30s:100/s
/// --stage hold=2m:1000/s` (rates, open model) or `--stage 1m:500` (users), each ramping
/// linearly from the previous target. Default mix: GET / (6), /health (2), /inspect with the bearer key (2);
/// API_KEY comes from the environment or .env.
///
/// SLOs: `--slo` (repeatable), else stack.yaml's `slo:` (p95<300ms, rps>=1000, errors<1%); judged
/// on the whole run, or on one stage with `--slo-stage NAME`.
///
/// Exit codes: 0 every SLO met; 3 an SLO missed (the report says which and by how much), none of
/// the objectives could be judged (a gate that judged nothing does not pass: e.g. an open model
/// whose --rate is below every rps>= objective), or the run stopped by `--abort-on-fail`;
/// 1 the run itself failed (bad flags, target unreachable, unreadable files); 130 interrupted
/// (Ctrl-C or SIGTERM: the reports are written for the time run, which is never a pass).
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
    /// Compare two runs' --json results (k6 and locust have no such command): per endpoint and
    /// overall, p50/p95/p99/max, throughput and error share, and a verdict on the whole run: a
    /// figure regresses when it passes its limit *and* the difference is beyond noise (the
    /// percentiles' 95% intervals, from each run's histogram, do not overlap; the error shares
    /// differ by Fisher's exact test while failures are few, a z-test beyond). Exit 0 no
    /// regression, 3 regressed, 1 the comparison failed.
    Compare {
        /// The earlier run (e.g. the last staging run's result).
        base: PathBuf,
        /// The run to judge.
        new: PathBuf,
        /// A p50 rise that regresses, in percent (`off`: shown, not judged).
        #[arg(long, value_name = "PERCENT", default_value = "off", value_parser = parse_limit)]
        max_p50_regression: Limit,
        /// A p95 rise that regresses, in percent.
        #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_limit)]
        max_p95_regression: Limit,
        /// A p99 rise that regresses, in percent.
        #[arg(long, value_name = "PERCENT", default_value = "off", value_parser = parse_limit)]
        max_p99_regression: Limit,
        /// A fall of requests a second that regresses, in percent (a closed model's throughput
        /// follows the service; an open model's is its own --rate).
        #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_limit)]
        max_throughput_drop: Limit,
        /// A rise of the error share that regresses, in percentage points.
        #[arg(long, value_name = "POINTS", default_value = "1", value_parser = parse_limit)]
        max_error_increase: Limit,
        /// Write the comparison as JSON (`konnichiwa-loadtest-compare/1`).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a self-contained HTML page: both runs' latency by percentile on one chart, and
        /// the table.
        #[arg(long)]
        html: Option<PathBuf>,
    },
}

/// A limit of `compare`: a number (a trailing % allowed), or `off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit(pub Option<f64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    let text = s.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(Limit(None));
    }
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Limit(Some(v))),
        _ => Err(format!("{s:?} is not a limit: write e.g. 10% or off")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The service's base URL (e.g. the load balancer's, from `provisioner outputs`); HOST[:PORT]
    /// alone means http://HOST[:PORT], as for the monitor.
    #[arg(long, env = "LOADTEST_HOST")]
    pub host: Option<String>,

    /// Send the API key (the mix's /inspect or /metrics) over plain http:// to a host that is not
    /// this machine. By default that is refused (exit 1, before any connection): anyone on the
    /// way could read the key. Use the service's https:// URL instead.
    #[arg(long)]
    pub send_key_over_http: bool,

    /// PEM file of a private CA to trust for an https:// target, besides the system's and
    /// Mozilla's roots.
    #[arg(long, value_name = "FILE", env = "LOADTEST_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// Closed model: number of users.
    #[arg(long, conflicts_with_all = ["rate", "stages"])]
    pub users: Option<u32>,

    /// Closed model: users started per second (default: all at once).
    #[arg(long, conflicts_with_all = ["rate", "stages"])]
    pub spawn_rate: Option<f64>,

    /// Closed model: pause between a user's requests, `1s` or a range `1s..2s`.
    #[arg(long, value_parser = parse_think_time, conflicts_with = "rate")]
    pub think_time: Option<(Duration, Duration)>,

    /// Open model: constant arrival rate, e.g. `1000/s`.
    #[arg(long, value_parser = parse_rate, conflicts_with = "stages")]
    pub rate: Option<f64>,

    /// `[NAME=]DURATION:TARGET`, repeatable: a stage that ramps linearly from the previous
    /// target (the first from 0) to TARGET, a rate (`1000/s`, open model) or users (`500`,
    /// closed model); a 0s stage jumps. Replaces --rate/--users/--duration and stack.yaml's
    /// loadtest.stages. Unnamed stages are named 1, 2, ….
    #[arg(long = "stage", value_name = "STAGE", value_parser = Stage::parse)]
    pub stages: Vec<Stage>,

    /// Open model: connections that carry the arrivals (default: peak rate / 10, 10–1000).
    #[arg(long)]
    pub connections: Option<u32>,

    /// How long to apply load (default 60s, or stack.yaml's loadtest.duration).
    #[arg(long, value_parser = parse_duration, conflicts_with = "stages")]
    pub duration: Option<Duration>,

    /// Stop early, exit 3, once an SLO can no longer be met: failures beyond the error budget
    /// of the requests planned, or a latency percentile above its bound for --abort-window.
    #[arg(long)]
    pub abort_on_fail: bool,

    /// How long a latency objective must be missed, second after second, to abort.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub abort_window: Duration,

    /// Start the load at this time (Unix milliseconds or RFC 3339), so that several machines
    /// start together; refused when this machine is more than 2s late (`provisioner loadtest`
    /// sets it for its workers).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start_at: Option<u64>,

    /// Also print the JSON result on stdout as numbered `konnichiwa-loadtest/1 result` lines
    /// short enough for a log stream (how `provisioner loadtest` collects its workers').
    #[arg(long)]
    pub result_lines: bool,

    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// `PATH[=WEIGHT]`, repeatable: replaces the default mix with weighted GETs.
    #[arg(long = "endpoint", value_parser = parse_endpoint, conflicts_with_all = ["scenario", "requests"])]
    pub endpoints: Vec<Endpoint>,

    /// A YAML file listing the requests users send, the shape of stack.yaml's loadtest.scenario
    /// (name, method, path, headers, body, weight, think_time, check per request): replaces the
    /// mix. `${API_KEY}` in a header value is the key from the environment.
    #[arg(long, value_name = "FILE", conflicts_with = "requests")]
    pub scenario: Option<PathBuf>,

    /// One request of a scenario as JSON (an entry of --scenario's list), repeatable: how
    /// `provisioner loadtest` hands a scenario to its workers.
    #[arg(long = "request", value_name = "JSON", value_parser = parse_request)]
    pub requests: Vec<stack::Request>,

    /// `'NAME: VALUE'`, repeatable: a header every request carries, e.g. the one a load balancer's
    /// rule routes on (`--header 'X-Canary: green'`). It replaces the request's own header of
    /// that name (the mix's Authorization, a scenario's, User-Agent), as curl's -H does; `${API_KEY}`
    /// in a value is the key from the environment. Host, Content-Length, Transfer-Encoding and
    /// Connection are the generator's to write. Values are never printed; `provisioner loadtest`
    /// passes the headers to its workers in their command, so put a credential there only as
    /// `${API_KEY}`.
    #[arg(long = "header", value_name = "HEADER", value_parser = HeaderParser)]
    pub headers: Vec<Header>,

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

impl RunArgs {
    /// The run's arguments from `loadtest`'s flags (without the program's name), as the command
    /// reads them (LOADTEST_HOST, LOADTEST_CA_CERT and KONNICHIWA_STACK included), for
    /// [`crate::measure`]. The error is clap's first line, without its `error: ` (`unexpected
    /// argument '--bogus' found`); `merge` and `compare` are refused: they are not runs.
    pub fn from_flags<I, T>(flags: I) -> Result<RunArgs, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let flags = std::iter::once(std::ffi::OsString::from("loadtest")).chain(flags.into_iter().map(Into::into));
        let cli = Cli::try_parse_from(flags).map_err(|e| {
            let text = e.render().to_string();
            text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned()
        })?;
        match cli.command {
            None => Ok(cli.run),
            Some(_) => Err("`merge` and `compare` are loadtest's own commands, not flags of a run".into()),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// An objective, repeatable: `p95<300ms`, `p99<=1s`, `rps>=1000`, `errors<1%`.
    #[arg(long = "slo")]
    pub slos: Vec<Objective>,

    /// Judge the SLOs on this stage only (its name, or its number), e.g. the hold after a
    /// warm-up; default: the whole run.
    #[arg(long, value_name = "NAME")]
    pub slo_stage: Option<String>,

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

/// Unix milliseconds, or an RFC 3339 time.
fn parse_time(s: &str) -> Result<u64, String> {
    if let Ok(ms) = s.trim().parse::<u64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s.trim())
        .map_err(|_| format!("{s:?} is not a time: write Unix milliseconds or e.g. 2026-11-28T09:00:00Z"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

fn parse_request(s: &str) -> Result<stack::Request, String> {
    serde_json::from_str(s).map_err(|e| {
        format!(
            "{e}: write one request as JSON, e.g. {{\"method\": \"POST\", \"path\": \"/orders\", \"body\": \"{{}}\"}}"
        )
    })
}

fn parse_think_time(s: &str) -> Result<(Duration, Duration), String> {
    stack::parse_duration_range(s)
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
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert!(parse_time("soon").is_err());
        assert_eq!(parse_request(r#"{"path": "/x", "method": "PUT"}"#).map(|r| r.name()), Ok("PUT /x".to_owned()));
        assert!(parse_request(r#"{"path": "/x", "headerz": {}}"#).unwrap_err().contains("unknown field `headerz`"));
    }

    #[test]
    fn run_args_come_from_flags_and_a_bad_header_is_named_without_its_value() {
        let args =
            RunArgs::from_flags(["--rate", "50/s", "--header", "X-Canary: green", "--header", "X-B:1"]).expect("flags");
        let headers: Vec<String> = args.headers.iter().map(crate::header::Header::to_arg).collect();
        assert_eq!((args.rate, headers), (Some(50.0), vec!["X-Canary: green".to_owned(), "X-B: 1".to_owned()]));
        assert_eq!(RunArgs::from_flags(["--bogus"]).unwrap_err(), "unexpected argument '--bogus' found");
        assert!(RunArgs::from_flags(["merge", "a.json"]).unwrap_err().contains("not flags of a run"));
        for (header, says) in [
            ("Authorization Bearer s3cret-token", "--header takes `Name: value`"),
            ("Proxy-Authorization: s3cret-token\r\nX: 1", "--header Proxy-Authorization: the value holds a line break"),
            ("Host: s3cret-token", "--header Host: the load generator writes Host itself"),
        ] {
            let e = RunArgs::from_flags(["--header", header]).unwrap_err();
            assert!(e.starts_with(says), "{header:?}: {e}");
            let full = Cli::try_parse_from(["loadtest", "--header", header]).unwrap_err().render().to_string();
            assert!(!full.contains("s3cret"), "clap's whole message does not repeat the value: {full}");
        }
    }
}
