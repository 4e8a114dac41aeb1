//! The checks of one pass: /health (status and latency), the served certificate's days to expiry
//! (https URLs), and /inspect (CPU and memory against the container's own limits where the app
//! reports them).

pub mod certificate;
pub mod health;
pub mod inspect;

use std::time::Duration;

use crate::report::CheckResult;
use crate::thresholds::Thresholds;

/// Where and how to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL, e.g. http://127.0.0.1:4000 or the load balancer's URL.
    pub url: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

impl Target {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }
}

/// Runs every check once, concurrently.
pub async fn run_pass(client: &reqwest::Client, target: &Target, thresholds: &Thresholds) -> Vec<CheckResult> {
    let ((health, served), inspect) =
        tokio::join!(health::check(client, target, thresholds), inspect::check(client, target, thresholds));
    let mut results = vec![health];
    results.extend(certificate::check(target, &served, thresholds));
    results.extend(inspect);
    results
}

/// A one-line reason for a failed request: unreachable, timeout, or another transport error.
pub fn transport_reason(url: &str, err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        format!("no answer from {url} within {}", crate::report::seconds(timeout))
    } else if certificate::is_certificate_error(err) {
        certificate::untrusted(url)
    } else if err.is_connect() {
        format!("cannot connect to {url} (is the service running and the URL right?)")
    } else {
        let mut source: &dyn std::error::Error = err;
        while let Some(next) = source.source() {
            source = next;
        }
        format!("request to {url} failed: {source}")
    }
}
