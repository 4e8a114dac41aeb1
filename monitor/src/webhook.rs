//! State-change notifications: a JSON POST with a Slack-compatible `text` field, retried with
//! backoff and bounded by a timeout, on a task of its own so it never delays the next check.

use std::time::Duration;

use serde_json::json;

use crate::alerting::{Notice, held_for};
use crate::report::State;

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

/// The message for what the alerting rules send: each check's state and how long the state before
/// it held (a change), or how long it has held (a reminder).
pub fn message(url: &str, overall: State, notices: &[Notice]) -> serde_json::Value {
    let line = |n: &Notice| {
        let r = &n.result;
        let held = match n.from {
            Some(from) => format!(" (was {} for {})", from.label(), held_for(n.held)),
            None if n.held.is_zero() => String::new(),
            None => format!(" (still, for {})", held_for(n.held)),
        };
        format!("{}: {} - {}{held}", r.state.label(), r.check, r.reason)
    };
    let lines: Vec<String> = notices.iter().map(line).collect();
    let changes: Vec<serde_json::Value> = notices
        .iter()
        .map(|n| {
            let mut v = serde_json::to_value(&n.result).unwrap_or_default();
            v["from"] = json!(n.from);
            v["held_seconds"] = json!(n.held.as_secs());
            v
        })
        .collect();
    json!({
        "text": format!("Konnichiwa {url} is {}:\n{}", overall.label(), lines.join("\n")),
        "url": url,
        "state": overall,
        "changes": changes,
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
