//! State-change notifications: a JSON POST with a Slack-compatible `text` field, retried with
//! backoff and bounded by a timeout, on a task of its own so it never delays the next check.

use std::time::Duration;

use serde_json::json;

use crate::report::{CheckResult, State};

/// How deliveries are attempted.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub attempts: u32,
    pub timeout: Duration,
    pub first_backoff: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self { attempts: 3, timeout: Duration::from_secs(5), first_backoff: Duration::from_millis(500) }
    }
}

/// The message for a set of changed checks.
pub fn message(url: &str, overall: State, changed: &[CheckResult]) -> serde_json::Value {
    let lines: Vec<String> =
        changed.iter().map(|r| format!("{}: {} - {}", r.state.label(), r.check, r.reason)).collect();
    json!({
        "text": format!("Konnichiwa {url} is {}:\n{}", overall.label(), lines.join("\n")),
        "url": url,
        "state": overall,
        "changes": changed,
    })
}

/// Posts `body` in the background; the task reports whether a delivery succeeded.
pub fn send(
    client: reqwest::Client,
    webhook: String,
    body: serde_json::Value,
    d: Delivery,
) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        let mut backoff = d.first_backoff;
        for attempt in 1..=d.attempts {
            match client.post(&webhook).json(&body).timeout(d.timeout).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => eprintln!("webhook: attempt {attempt}/{}: {webhook} answered {}", d.attempts, r.status()),
                Err(e) => eprintln!(
                    "webhook: attempt {attempt}/{}: {}",
                    d.attempts,
                    crate::checks::transport_reason(&webhook, &e, d.timeout)
                ),
            }
            if attempt < d.attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        eprintln!("webhook: gave up on {webhook} after {} attempts", d.attempts);
        false
    })
}
