//! The one retry policy: exponential backoff with jitter for throttling and for the
//! eventual-consistency errors a call site names (a role not yet visible, an ENI not yet gone),
//! until the run's deadline. Validation errors are never retried.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, THROTTLING_CODES};

/// Backoff bounds.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { first: Duration::from_millis(250), max: Duration::from_secs(15) }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based), with ±20% jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.first.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(self.max);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let jitter = 0.8 + f64::from(nanos % 400) / 1000.0;
        base.mul_f64(jitter)
    }
}

/// Runs `op` until it succeeds, fails with a code that is neither throttling nor in `retry_on`,
/// or the deadline passes (then the last error is returned, wrapped to say what was awaited).
pub async fn retry<T, F, Fut>(deadline: Instant, waiting_for: &str, retry_on: &[&str], op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    retry_if(deadline, waiting_for, |e| e.code().is_some_and(|c| retry_on.contains(&c)), op).await
}

/// Like `retry`, for errors recognized by `transient` (e.g. an IAM propagation message that
/// comes with a generic validation code). Throttling is always retried.
pub async fn retry_if<T, F, Fut>(
    deadline: Instant,
    waiting_for: &str,
    transient: impl Fn(&Error) -> bool,
    mut op: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let started = Instant::now();
    let backoff = Backoff::default();
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let retryable = e.code().is_some_and(|c| THROTTLING_CODES.contains(&c)) || transient(&e);
                if !retryable {
                    return Err(e);
                }
                let delay = backoff.delay(attempt);
                if Instant::now() + delay > deadline {
                    tracing::warn!(error = %e, "deadline reached while retrying");
                    return Err(Error::Deadline {
                        waiting_for: format!("{waiting_for} ({e})"),
                        elapsed: started.elapsed(),
                    });
                }
                tracing::info!(code = e.code().unwrap_or_default(), ?delay, "{waiting_for}: retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn aws(code: &str) -> Error {
        Error::Aws { action: "test", resource: "r".into(), code: Some(code.into()), message: code.into() }
    }

    #[tokio::test]
    async fn retries_named_and_throttling_codes_only() {
        let tries = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(30);
        let r = retry(deadline, "x", &["DependencyViolation"], || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(aws("Throttling")),
                1 => Err(aws("DependencyViolation")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(r.ok(), Some(7));
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        let tries = AtomicU32::new(0);
        let r: Result<(), _> = retry(deadline, "x", &[], || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(aws("InvalidParameterValue"))
        })
        .await;
        assert_eq!(r.err().and_then(|e| e.code().map(str::to_owned)).as_deref(), Some("InvalidParameterValue"));
        assert_eq!(tries.load(Ordering::SeqCst), 1, "validation errors are not retried");
    }

    #[tokio::test]
    async fn stops_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(600);
        let r: Result<(), _> =
            retry(deadline, "the ENI to go", &["DependencyViolation"], || async { Err(aws("DependencyViolation")) })
                .await;
        let e = r.expect_err("gives up");
        assert!(matches!(e, Error::Deadline { .. }), "{e}");
        assert!(e.to_string().contains("the ENI to go"), "{e}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff::default();
        assert!(b.delay(0) <= Duration::from_millis(300));
        assert!(b.delay(3) >= Duration::from_millis(1600));
        assert!(b.delay(30) <= Duration::from_secs(18));
    }
}
