//! The Konnichiwa service as a library: the router (so tests drive it in-process), the server
//! loop, and `run`, which the thin `main.rs` calls.

pub mod auth;
pub mod config;
pub mod error;
pub mod healthcheck;
pub mod inspect;
pub mod metrics;
pub mod observe;
pub mod procfs;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeout;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use config::{ApiKey, Cli, Command, ServerConfig};
use inspect::Inspector;
use metrics::Metrics;

pub use routes::{router, router_with_routes};

/// Shared state of every handler, behind one reference count: axum clones the state for every
/// extractor and layer of every request, so a clone is one increment — and, with `for_thread`,
/// of a count no other serving thread touches (counts shared between cores measured several
/// percent of the service's CPU; docs/BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// What `AppState` holds.
#[derive(Debug)]
pub struct Shared {
    pub key: auth::KeyDigest,
    pub inspector: Arc<Inspector>,
    pub metrics: Arc<Metrics>,
    /// Requests running longer are answered 408.
    pub request_timeout: std::time::Duration,
    pub access_log: config::AccessLog,
    /// Ordinary requests seen by this state's thread, for access-log sampling.
    pub access_seen: AtomicU64,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State with a first sample already taken; call `inspector.spawn_sampler()` to keep it fresh.
    pub fn new(key: &ApiKey, config: &ServerConfig) -> Self {
        Self(Arc::new(Shared {
            key: auth::KeyDigest::of(key),
            inspector: Inspector::new(config.sample_interval),
            metrics: Arc::new(Metrics::new()),
            request_timeout: config.request_timeout,
            access_log: config.access_log,
            access_seen: AtomicU64::new(0),
        }))
    }

    /// The same inspector, metrics and settings behind a reference count (and a sampling counter)
    /// of its own, for one serving thread.
    pub fn for_thread(&self) -> Self {
        Self(Arc::new(Shared {
            key: self.key.clone(),
            inspector: Arc::clone(&self.inspector),
            metrics: Arc::clone(&self.metrics),
            request_timeout: self.request_timeout,
            access_log: self.access_log,
            access_seen: AtomicU64::new(0),
        }))
    }
}

/// Exit codes of the `app` binary.
pub mod exit {
    pub const OK: u8 = 0;
    pub const RUNTIME_ERROR: u8 = 1;
    pub const BAD_CONFIG: u8 = 2;
}

/// Runs the command line: serves until a shutdown signal, or runs the health check.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck { timeout } => healthcheck::run(cli.server.bind, cli.server.port, timeout),
        Command::Serve => serve_command(cli.server),
    }
}

fn serve_command(config: ServerConfig) -> ExitCode {
    let key = match config::validate(&config) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::BAD_CONFIG);
        }
    };
    if let Err(e) = telemetry::init(config.log_format, &config.log_level) {
        eprintln!("error: {e:#}");
        return ExitCode::from(exit::BAD_CONFIG);
    }
    // One serving runtime per core (server::serve_per_core); this one waits for the signal and
    // runs the sampler.
    let threads = config.worker_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let result = runtime.map_err(anyhow::Error::from).and_then(|rt| {
        rt.block_on(async {
            let state = AppState::new(&key, &config);
            let sampler = state.inspector.spawn_sampler();
            let settings = server::Settings::from(&config);
            let make_app = || router(state.for_thread());
            let served = server::serve_per_core(config.addr(), threads, make_app, settings, shutdown::signal()).await;
            sampler.abort();
            served.map_err(|e| anyhow::anyhow!("cannot serve on {}: {e}", config.addr()))
        })
    });
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "server failed");
            eprintln!("error: {e:#}");
            ExitCode::from(exit::RUNTIME_ERROR)
        }
    }
}
