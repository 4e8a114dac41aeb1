//! Helpers shared by the app's integration tests: configuration, state and a server on port 0.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use app::config::{ApiKey, Cli};
use app::{AppState, server};
use clap::Parser;
use tokio::sync::oneshot;

pub const KEY: &str = "test-key-0123456789abcdef";

pub fn config(extra: &[&str]) -> app::config::ServerConfig {
    let args = ["app", "--api-key", KEY].into_iter().chain(extra.iter().copied());
    Cli::parse_from(args).server
}

pub fn state() -> AppState {
    AppState::new(&ApiKey::new(KEY), &config(&[]))
}

/// A server on 127.0.0.1:0 in this process; `stop` (or drop) shuts it down.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), server::ServeError>>>,
}

impl TestServer {
    pub async fn start(app: axum::Router, settings: server::Settings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, app, settings, async move {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops within 10 s")
                .expect("server task joins")
                .expect("server returns Ok");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn settings() -> server::Settings {
    server::Settings::from(&config(&[]))
}
