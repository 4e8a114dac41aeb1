//! Test servers for the monitor: the real app on port 0, a fake app that answers chosen /inspect
//! figures (or slow, failing, malformed answers), and a webhook receiver. All on 127.0.0.1.
#![allow(dead_code)]

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::inspect::{Container, InspectReport};
pub use app::testing::Server;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub const KEY: &str = "monitor-test-key-0123456789";
pub const BIN: &str = env!("CARGO_BIN_EXE_monitor");

/// The real app, with a fast sampler so CPU figures exist within a few hundred ms.
pub async fn real_app() -> Server {
    let config =
        <app::config::Cli as clap::Parser>::parse_from(["app", "--api-key", KEY, "--sample-interval", "100ms"]).server;
    let state = app::AppState::new(&app::config::ApiKey::new(KEY), &config);
    let sampler = state.inspector.spawn_sampler();
    let server = Server::start(app::router(state)).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    // The sampler ends with the test's runtime.
    drop(sampler);
    server
}

/// What the fake app answers.
#[derive(Debug, Clone)]
pub enum Inspect {
    Report(Box<InspectReport>),
    Malformed,
    Status(u16),
}

#[derive(Debug, Clone)]
pub struct Behaviour {
    pub health_delay: Duration,
    pub health_status: u16,
    pub inspect: Inspect,
}

pub type Shared = Arc<Mutex<Behaviour>>;

/// A real report from this machine with a host CPU figure, then adjusted by the test.
pub fn report() -> InspectReport {
    let mut r = app::inspect::Inspector::new(Duration::from_secs(1)).report();
    r.cpu.used_percent = Some(5.0);
    r
}

pub fn container(memory_percent: f64, cpu_percent: Option<f64>) -> Container {
    let max = 256 * 1024 * 1024u64;
    Container {
        cgroup_version: 2,
        memory_max_bytes: Some(max),
        memory_current_bytes: (max as f64 * memory_percent / 100.0) as u64,
        memory_used_percent: Some(memory_percent),
        cpu_limit_cores: Some(0.25),
        cpu_quota_micros: Some(25_000),
        cpu_period_micros: Some(100_000),
        cpu_used_percent: cpu_percent,
    }
}

pub async fn fake_app(behaviour: Behaviour) -> (Server, Shared) {
    let (router, shared) = fake_router(behaviour);
    (Server::start(router).await, shared)
}

/// The fake app over TLS with `cert`.
pub async fn fake_app_tls(behaviour: Behaviour, cert: app::testing::ServerCert) -> (Server, Shared) {
    let (router, shared) = fake_router(behaviour);
    (Server::start_tls(router, cert).await, shared)
}

fn fake_router(behaviour: Behaviour) -> (Router, Shared) {
    let shared: Shared = Arc::new(Mutex::new(behaviour));
    let h = Arc::clone(&shared);
    let i = Arc::clone(&shared);
    let router = Router::new()
        .route(
            "/health",
            get(move || {
                let b = h.lock().expect("lock").clone();
                async move {
                    tokio::time::sleep(b.health_delay).await;
                    (StatusCode::from_u16(b.health_status).unwrap_or(StatusCode::OK), "ok")
                }
            }),
        )
        .route(
            "/inspect",
            get(move |headers: axum::http::HeaderMap| {
                let b = i.lock().expect("lock").clone();
                async move {
                    let authorized =
                        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {KEY}"));
                    if !authorized {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    match b.inspect {
                        Inspect::Report(r) => axum::Json(*r).into_response(),
                        Inspect::Malformed => (StatusCode::OK, "{\"service\": \"not what you think").into_response(),
                        Inspect::Status(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::OK).into_response(),
                    }
                }
            }),
        );
    (router, shared)
}

pub fn healthy(report: InspectReport) -> Behaviour {
    Behaviour { health_delay: Duration::ZERO, health_status: 200, inspect: Inspect::Report(Box::new(report)) }
}

/// A webhook receiver that records bodies and fails the first `failures` deliveries with 500.
pub async fn receiver(failures: usize) -> (Server, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(0usize));
    let g = Arc::clone(&got);
    let router = Router::new().route(
        "/hook",
        post(move |body: axum::Json<serde_json::Value>| {
            let g = Arc::clone(&g);
            let seen = Arc::clone(&seen);
            async move {
                let n = {
                    let mut s = seen.lock().expect("lock");
                    *s += 1;
                    *s
                };
                if n <= failures {
                    return Response::builder().status(500).body(axum::body::Body::empty()).expect("response");
                }
                g.lock().expect("lock").push(body.0);
                StatusCode::OK.into_response()
            }
        }),
    );
    (Server::start(router).await, got)
}

/// Runs `monitor ARGS` with API_KEY `key` in an empty working directory.
pub async fn monitor(args: &[&str], key: Option<&str>) -> Output {
    let mut c = tokio::process::Command::new(BIN);
    c.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(std::env::temp_dir());
    if let Some(k) = key {
        c.env("API_KEY", k);
    }
    c.output().await.expect("run monitor")
}

/// Runs monitor/monitor.sh with API_URL, API_KEY and extra environment.
pub async fn monitor_sh(url: &str, key: Option<&str>, env: &[(&str, &str)]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/monitor.sh");
    let mut c = tokio::process::Command::new("bash");
    c.arg(script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("API_URL", url)
        .current_dir(std::env::temp_dir());
    if let Some(k) = key {
        c.env("API_KEY", k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().await.expect("run monitor.sh")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
