//! An endpoint that does not answer. The run says so on stderr at the first failed connection
//! (which endpoint, what failed, that it tries again), and connections refused several times in a
//! row end the call at once instead of after the minutes of retries a throttled call is given —
//! where nothing listens: an emulator on this machine (stopped, or a mistyped port), or any
//! endpoint before the run has had one answer (a mistyped AWS_ENDPOINT_URL, a proxy down). Once
//! AWS has answered, a refusal on the way to it (a proxy or VPN restarting) is retried as before:
//! a long `up` is not given up half-way for a second's outage.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;

/// Connections refused in a row (any call of the run) after which a call is not retried.
pub const REFUSALS_TO_GIVE_UP: usize = 3;

/// What the run has seen of its endpoints' reachability.
#[derive(Debug, Default)]
pub struct Reach {
    refused_in_a_row: AtomicUsize,
    told: AtomicBool,
    /// Some endpoint of the run has answered.
    answered: AtomicBool,
}

impl Reach {
    /// `answer` as the SDK should see it: a refusal that has happened `REFUSALS_TO_GIVE_UP` times
    /// in a row becomes an error no retry classifier retries, naming the endpoint and the fix.
    pub fn judge(
        &self,
        url: &str,
        answer: Result<HttpResponse, ConnectorError>,
    ) -> Result<HttpResponse, ConnectorError> {
        let endpoint = endpoint_of(url);
        match answer {
            Ok(response) => {
                self.refused_in_a_row.store(0, Ordering::Relaxed);
                self.answered.store(true, Ordering::Relaxed);
                Ok(response)
            }
            Err(e) if is_refused(&e) => {
                let n = self.refused_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                let nothing_there = !self.answered.load(Ordering::Relaxed) || stack::net::is_loopback_url(endpoint);
                if n >= REFUSALS_TO_GIVE_UP && nothing_there {
                    return Err(ConnectorError::other(nothing_listens(endpoint, n).into(), None));
                }
                self.tell(&format!("{endpoint} refused the connection; trying again"));
                Err(e)
            }
            Err(e) if e.is_timeout() => {
                self.tell(&format!("no connection to {endpoint} yet (it does not answer); trying again"));
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Says it once per run: a silent wait looks hung.
    fn tell(&self, what: &str) {
        if !self.told.swap(true, Ordering::Relaxed) {
            eprintln!("waiting for AWS: {what} (Ctrl-C stops)");
        }
    }
}

fn nothing_listens(endpoint: &str, times: usize) -> String {
    let fix = if stack::net::is_loopback_url(endpoint) {
        "is the emulator running? (scripts/sandbox up; AWS_ENDPOINT_URL names where the tools look)"
    } else {
        "check AWS_ENDPOINT_URL, the proxy (HTTPS_PROXY) and the network"
    };
    format!("nothing listens at {endpoint}: the connection was refused {times} times in a row; {fix}")
}

/// `scheme://host:port` of a request's URL.
fn endpoint_of(url: &str) -> &str {
    let host_start = url.find("://").map_or(0, |i| i + 3);
    url[host_start..].find('/').map_or(url, |end| &url[..host_start + end])
}

/// True when the error, or one it wraps, is a refused connection.
fn is_refused(e: &ConnectorError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn refused() -> Result<HttpResponse, ConnectorError> {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused (os error 111)");
        Err(ConnectorError::io(Box::new(io)))
    }

    #[test]
    fn refusals_in_a_row_end_the_retries_and_an_answer_starts_the_count_again() {
        let reach = Reach::default();
        let url = "http://127.0.0.1:9/?Action=GetCallerIdentity";
        for _ in 1..REFUSALS_TO_GIVE_UP {
            let e = reach.judge(url, refused()).expect_err("refused");
            assert!(e.is_io(), "retried as the SDK retries an io error");
        }
        let ok = || HttpResponse::new(200.try_into().expect("status"), SdkBody::empty());
        assert!(reach.judge(url, Ok(ok())).is_ok());
        for _ in 1..REFUSALS_TO_GIVE_UP {
            assert!(reach.judge(url, refused()).expect_err("refused").is_io(), "counted again from zero");
        }
        let last = reach.judge(url, refused()).expect_err("refused");
        assert!(!last.is_io() && !last.is_timeout(), "not retried");
        let said = aws_smithy_types::error::display::DisplayErrorContext(&last).to_string();
        assert!(said.contains("nothing listens at http://127.0.0.1:9: the connection was refused 3 times"), "{said}");
        assert!(said.contains("scripts/sandbox up"), "{said}");

        // AWS itself, once it has answered: a refusal on the way (a proxy restarting) is retried.
        let aws = Reach::default();
        let remote = "https://ecs.ap-northeast-1.amazonaws.com/";
        assert!(aws.judge(remote, Ok(ok())).is_ok());
        for _ in 0..10 {
            assert!(aws.judge(remote, refused()).expect_err("refused").is_io(), "still retried");
        }
        // Before any answer, a remote endpoint that refuses is given up on too.
        let fresh = Reach::default();
        let last = (0..REFUSALS_TO_GIVE_UP).map(|_| fresh.judge(remote, refused())).last().expect("answers");
        assert!(!last.expect_err("refused").is_io(), "nothing has ever answered there");
    }

    #[test]
    fn the_endpoint_is_the_scheme_and_authority() {
        assert_eq!(
            endpoint_of("https://ecs.ap-northeast-1.amazonaws.com/"),
            "https://ecs.ap-northeast-1.amazonaws.com"
        );
        assert_eq!(endpoint_of("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }
}
