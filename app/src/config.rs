//! Command line and environment configuration of the service: every server parameter has a flag,
//! an environment fallback and a default, and `.env` in the working directory is read first.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The shortest API key the service accepts.
pub const MIN_API_KEY_LEN: usize = 16;

/// Konnichiwa: a small web service with health, inspect and metrics endpoints.
///
/// Every option can also be set by the environment variable named beside it, and a `.env` file
/// in the working directory is read first (variables already set win).
///
/// Exit codes: 0 clean shutdown (or healthy, for `healthcheck`), 1 runtime error (or unhealthy),
/// 2 bad configuration.
#[derive(Debug, Parser)]
#[command(name = "app", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub server: ServerConfig,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default when no command is given).
    Serve,
    /// GET /health where the server listens (--bind, --port) and exit 0 if it answers 200, 1
    /// otherwise. For container health checks in images without curl.
    Healthcheck {
        /// How long to wait for the answer.
        #[arg(long, default_value = "3s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// Where `serve`'s own options are listed in `--help`: `healthcheck` shows them too (they are
/// global) but reads only the address and port.
const SERVE_ONLY: &str = "Options of serve (healthcheck ignores them)";

/// Server parameters (shared by `serve` and `healthcheck`, which reads the address and port).
#[derive(Clone, Args)]
pub struct ServerConfig {
    /// The address `serve` listens on and `healthcheck` asks (for 0.0.0.0 or ::, this machine's
    /// loopback): this machine only by default (a local run with the example key must not be
    /// reachable from the network); the image sets 0.0.0.0.
    #[arg(long, env = "BIND", default_value = "127.0.0.1", global = true)]
    pub bind: IpAddr,

    /// The port `serve` listens on (0 picks a free port) and `healthcheck` asks.
    #[arg(long, env = "PORT", default_value_t = 4000, global = true)]
    pub port: u16,

    /// The bearer key that protects /inspect and /metrics (at least 16 characters).
    #[arg(long = "api-key", env = "API_KEY", hide_env_values = true, global = true, help_heading = SERVE_ONLY)]
    pub api_key: Option<ApiKey>,

    /// Share the port with another process that listens on it with SO_REUSEPORT (a restart
    /// without a gap, then stop the old one): the kernel spreads connections over both. By
    /// default a port another process listens on is refused.
    #[arg(long, env = "SHARE_PORT", value_parser = clap::builder::BoolishValueParser::new(), global = true, help_heading = SERVE_ONLY)]
    pub share_port: bool,

    /// Serving threads, each with its own runtime and listening socket (default: one per core
    /// this process may use, cgroup quotas included).
    #[arg(long, env = "WORKER_THREADS", global = true, help_heading = SERVE_ONLY)]
    pub worker_threads: Option<usize>,

    /// A request that takes longer is answered 408 (e.g. 30s, 500ms).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true, help_heading = SERVE_ONLY)]
    pub request_timeout: Duration,

    /// Time allowed to receive a request's headers, and the longest a keep-alive connection may sit
    /// idle between requests (hyper uses one timer for both). Keep it above the load balancer's idle
    /// timeout (ALB: 60s), or the balancer reuses connections the app has closed and clients see 502s.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "75s", value_parser = parse_duration, global = true, help_heading = SERVE_ONLY)]
    pub header_read_timeout: Duration,

    /// Connections served at once; further connections wait in the kernel's accept queue.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000, global = true, help_heading = SERVE_ONLY)]
    pub max_connections: usize,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish (fit it inside ECS's
    /// stopTimeout, 30s by default).
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration, global = true, help_heading = SERVE_ONLY)]
    pub shutdown_grace: Duration,

    /// How often the background sampler refreshes the /inspect and process figures.
    #[arg(long, env = "SAMPLE_INTERVAL", default_value = "2s", value_parser = parse_duration, global = true, help_heading = SERVE_ONLY)]
    pub sample_interval: Duration,

    /// Log format: `json` (one object per line, for CloudWatch) or `pretty` (a terminal).
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", global = true, help_heading = SERVE_ONLY)]
    pub log_format: LogFormat,

    /// Log level or filter directives (e.g. `info`, `app=debug,tower=warn`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true, help_heading = SERVE_ONLY)]
    pub log_level: String,

    /// Access-log lines: `1/N` logs every server error (5xx) and every request slower than 1s,
    /// and one in N of the others; `all` every request; `off` none (the metrics count every
    /// request either way). The default keeps CloudWatch's ingestion bill proportionate (README).
    #[arg(long, env = "ACCESS_LOG", default_value = "1/100", value_parser = parse_access_log, global = true, help_heading = SERVE_ONLY)]
    pub access_log: AccessLog,
}

/// Which requests get an access-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    All,
    /// Every error and slow request, and one in N of the others (the first of each N).
    Sampled(u64),
    Off,
}

/// A request at least this slow is always logged (unless access logs are off).
pub const SLOW_REQUEST: Duration = Duration::from_secs(1);

impl AccessLog {
    /// Whether the request with `status` that took `elapsed` gets a line; `seen` counts the
    /// ordinary requests for sampling.
    pub fn wants(self, status: u16, elapsed: Duration, seen: &std::sync::atomic::AtomicU64) -> bool {
        match self {
            Self::All => true,
            Self::Off => false,
            Self::Sampled(n) => {
                status >= 500
                    || elapsed >= SLOW_REQUEST
                    || seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(n)
            }
        }
    }
}

fn parse_access_log(s: &str) -> Result<AccessLog, String> {
    match s.trim() {
        "all" => Ok(AccessLog::All),
        "off" => Ok(AccessLog::Off),
        other => {
            let n =
                other.strip_prefix("1/").and_then(|n| n.parse::<u64>().ok()).filter(|n| *n >= 1).ok_or_else(|| {
                    format!("{s:?}: write all, off, or 1/N (e.g. 1/100: errors, slow requests and one in 100 others)")
                })?;
            Ok(if n == 1 { AccessLog::All } else { AccessLog::Sampled(n) })
        }
    }
}

impl ServerConfig {
    /// The socket address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The API key, or an error that says how to provide one.
    pub fn require_api_key(&self) -> Result<ApiKey, ConfigError> {
        let key = self.api_key.clone().ok_or(ConfigError::MissingApiKey)?;
        if key.0.chars().count() < MIN_API_KEY_LEN {
            return Err(ConfigError::ShortApiKey { len: key.0.chars().count() });
        }
        Ok(key)
    }
}

// The derived Debug would print the key; this one does not.
impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("worker_threads", &self.worker_threads)
            .field("request_timeout", &self.request_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("sample_interval", &self.sample_interval)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("access_log", &self.access_log)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The bearer key. Its Debug and Display never show the value.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The key's bytes, for the constant-time comparison only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::str::FromStr for ApiKey {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Configuration the process refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "API_KEY is not set: the service needs a key to protect /inspect and /metrics. \
         Set it with `export API_KEY=...`, `--api-key`, or an API_KEY line in .env \
         (copy .env.example to .env for local use)"
    )]
    MissingApiKey,
    #[error(
        "API_KEY is too short ({len} characters): use at least {MIN_API_KEY_LEN}, \
         e.g. `openssl rand -hex 24`"
    )]
    ShortApiKey { len: usize },
    #[error("--worker-threads must be at least 1")]
    NoWorkerThreads,
    #[error("--max-connections must be at least 1")]
    NoConnections,
    #[error("--sample-interval must be at least 100ms, got {0:?}")]
    SampleIntervalTooShort(Duration),
}

/// Checks the values clap cannot check by type.
pub fn validate(config: &ServerConfig) -> Result<ApiKey, ConfigError> {
    let key = config.require_api_key()?;
    if config.worker_threads == Some(0) {
        return Err(ConfigError::NoWorkerThreads);
    }
    if config.max_connections == 0 {
        return Err(ConfigError::NoConnections);
    }
    if config.sample_interval < Duration::from_millis(100) {
        return Err(ConfigError::SampleIntervalTooShort(config.sample_interval));
    }
    Ok(key)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 500ms, 1m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_sampling_keeps_errors_and_slow_requests() {
        use std::sync::atomic::AtomicU64;
        let seen = AtomicU64::new(0);
        let sampled = parse_access_log("1/100").expect("1/100");
        let fast = Duration::from_millis(2);
        let logged = (0..300).filter(|_| sampled.wants(200, fast, &seen)).count();
        assert_eq!(logged, 3, "one in 100 ordinary requests");
        assert!(sampled.wants(503, fast, &seen), "a server error is always logged");
        assert!(sampled.wants(200, SLOW_REQUEST, &seen), "a slow request is always logged");
        assert!(!AccessLog::Off.wants(500, SLOW_REQUEST, &seen));
        assert_eq!(parse_access_log("1/1"), Ok(AccessLog::All));
        assert!(parse_access_log("1/0").is_err() && parse_access_log("half").is_err());
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("app").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = parse(&["--api-key", "0123456789abcdef"]).expect("parses");
        let c = &cli.server;
        assert_eq!(c.addr().to_string(), "127.0.0.1:4000");
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.header_read_timeout, Duration::from_secs(75));
        assert_eq!(c.shutdown_grace, Duration::from_secs(20));
        assert_eq!(c.sample_interval, Duration::from_secs(2));
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert!(validate(c).is_ok());
    }

    #[test]
    fn invalid_values_are_refused_with_the_fix() {
        let table: &[(&[&str], &str)] = &[
            (&["--api-key", "short"], "too short (5 characters)"),
            (&["--api-key", "0123456789abcdef", "--worker-threads", "0"], "at least 1"),
            (&["--api-key", "0123456789abcdef", "--max-connections", "0"], "at least 1"),
            (&["--api-key", "0123456789abcdef", "--sample-interval", "1ms"], "at least 100ms"),
        ];
        for (args, expected) in table {
            let cli = parse(args).expect("parses");
            let err = validate(&cli.server).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(expected), "{args:?}: {err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn a_missing_key_says_how_to_set_it() {
        let mut cli = parse(&[]).expect("parses");
        cli.server.api_key = None; // whatever the environment holds
        let err = validate(&cli.server).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("API_KEY is not set") && err.contains(".env.example"), "{err}");
    }

    #[test]
    fn bad_durations_are_rejected_by_the_parser() {
        let err = parse(&["--request-timeout", "soon"]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("examples: 30s"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let cli = parse(&["--api-key", "super-secret-value-123"]).expect("parses");
        let shown = format!("{:?}", cli);
        assert!(!shown.contains("super-secret-value-123"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
