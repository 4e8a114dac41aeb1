//! How many AWS calls a run has in flight at once: at most `TOTAL` in all and `PER_SERVICE` per
//! service, so that the engine can read and change independent resources concurrently without
//! tripping an account's request-rate limits (the retry policy is unchanged: a throttled call
//! waits and retries as before). The bound sits in the HTTP client every SDK client sends through,
//! so it counts every attempt, retries included. Here too, before a call takes its place, a read
//! the plan already asked may be answered from the plan's answers (`read_replay`) and an operation
//! AWS has throttled waits for its turn (`pacing`); a mutating call whose run lost the stack's
//! lease while it waited is refused, unsent (`fence`); an endpoint that refuses connections ends
//! the run's retries (`unreachable`). The bound is one of the seven ways a run retries or waits
//! (the list: `wait`).

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::sync::Semaphore;

use crate::fence::{Fence, Fenced};
use crate::pacing::Pacer;
use crate::read_replay::{IsFinal, Replay};

/// Calls in flight at once, in all, unless `KONNICHIWA_PARALLELISM` says otherwise (1: one call
/// at a time): Terraform's default parallelism is 10; AWS's read buckets (EC2: a burst of 100, 20
/// a second refilled) take far more.
pub const TOTAL: usize = 16;
/// The environment variable that sets the total (1–64), as `terraform -parallelism` does.
pub const PARALLELISM_ENV: &str = "KONNICHIWA_PARALLELISM";
/// Calls in flight at once to one service (IAM, the slowest to refill, included).
pub const PER_SERVICE: usize = 8;

/// The shared bound: one per run, handed to every service's client.
#[derive(Debug, Clone)]
pub struct Bound {
    inner: SharedHttpClient,
    total: Arc<Semaphore>,
    /// The run's operations that AWS has throttled, each with its pace.
    pub pacer: Arc<Pacer>,
    /// The plan's answers, for the apply's reads.
    pub replay: Arc<Replay>,
    /// Whether the endpoints answer at all.
    reach: Arc<crate::unreachable::Reach>,
}

/// What the SDK's interceptor (`aws`) tells this layer of each attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub service: Arc<str>,
    /// The pacer's name for it: service and operation.
    pub operation: Arc<str>,
    pub mutating: bool,
    /// The run's lease fence, which a mutating attempt meets again here.
    pub fence: Arc<Fence>,
}

impl Attempt {
    /// The refusal of a mutating attempt whose run has lost the stack's lease.
    fn refused(&self) -> Option<Fenced> {
        self.fence.refuses(self.mutating)
    }
}

impl Bound {
    /// Bounds the calls sent through `inner`; the plan's answers that `is_final` accepts may be
    /// replayed to the apply.
    pub fn new(inner: SharedHttpClient, is_final: IsFinal) -> Self {
        Self::with_total(inner, total_from_env(), is_final)
    }

    fn with_total(inner: SharedHttpClient, total: usize, is_final: IsFinal) -> Self {
        Self {
            inner,
            total: Arc::new(Semaphore::new(total)),
            pacer: Arc::default(),
            replay: Arc::new(Replay::new(is_final)),
            reach: Arc::default(),
        }
    }

    /// The HTTP client for one service's SDK client: its own per-service bound within the total.
    pub fn for_service(&self) -> SharedHttpClient {
        SharedHttpClient::new(self.service())
    }

    fn service(&self) -> ServiceClient {
        ServiceClient { bound: self.clone(), service: Arc::new(Semaphore::new(PER_SERVICE)) }
    }
}

/// `KONNICHIWA_PARALLELISM` when it is a number from 1 to 64 (else, with a warning, `TOTAL`).
fn total_from_env() -> usize {
    match std::env::var(PARALLELISM_ENV) {
        Err(_) => TOTAL,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                eprintln!("warning: {PARALLELISM_ENV}={text:?} is not a number from 1 to 64; using {TOTAL}");
                TOTAL
            }
        },
    }
}

#[derive(Debug)]
struct ServiceClient {
    bound: Bound,
    service: Arc<Semaphore>,
}

impl ServiceClient {
    /// `inner`, sending only within the service's and the run's bounds.
    fn around(&self, inner: SharedHttpConnector) -> SharedHttpConnector {
        SharedHttpConnector::new(BoundedConnector {
            inner,
            bound: self.bound.clone(),
            service: Arc::clone(&self.service),
        })
    }
}

impl HttpClient for ServiceClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.around(self.bound.inner.http_connector(settings, components))
    }
}

#[derive(Debug)]
struct BoundedConnector {
    inner: SharedHttpConnector,
    bound: Bound,
    service: Arc<Semaphore>,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, bound, service) = (self.inner.clone(), self.bound.clone(), Arc::clone(&self.service));
        HttpConnectorFuture::new(async move {
            let (mut keep, mut changes) = (None, None);
            let attempt = request.extension::<Attempt>().cloned();
            if let Some(attempt) = &attempt {
                if attempt.mutating {
                    changes = Some(Arc::clone(&attempt.service));
                } else if let Some(answer) = bound.replay.answer(&attempt.service, &attempt.operation, &request) {
                    return Ok(answer);
                } else {
                    keep = bound.replay.wants(&attempt.service, &attempt.operation, &request);
                }
                // A throttled operation's turn: a call spaced out holds no permit meanwhile.
                bound.pacer.wait_turn(&attempt.operation).await;
            }
            // The service's permit first: a busy service does not hold total permits others could use.
            let closed = |e: tokio::sync::AcquireError| ConnectorError::other(e.into(), None);
            let _service = service.acquire_owned().await.map_err(closed)?;
            let _total = bound.total.acquire_owned().await.map_err(closed)?;
            // The lease may have been lost while this mutating call waited for its turn.
            if let Some(refused) = attempt.as_ref().and_then(Attempt::refused) {
                return Err(ConnectorError::other(Box::new(refused), None));
            }
            let url = request.uri().to_owned();
            let answer = bound.reach.judge(&url, inner.call(request).await);
            // Once AWS has made the change, the plan's answers about that service are old (a read
            // sent meanwhile may be given them, as AWS itself might answer it either way).
            if let Some(service) = changes {
                bound.replay.mutation(&service);
            }
            match (answer?, keep) {
                (answer, Some(key)) => bound.replay.keep_answer(key, answer).await,
                (answer, None) => Ok(answer),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// A connector that answers after a moment and records the most calls it had at once.
    #[derive(Debug, Default)]
    struct Slow {
        now: AtomicUsize,
        peak: AtomicUsize,
        calls: AtomicUsize,
    }

    #[derive(Debug, Clone)]
    struct SlowClient(Arc<Slow>);

    impl HttpConnector for SlowClient {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            let slow = Arc::clone(&self.0);
            HttpConnectorFuture::new(async move {
                slow.calls.fetch_add(1, Ordering::SeqCst);
                let n = slow.now.fetch_add(1, Ordering::SeqCst) + 1;
                slow.peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                slow.now.fetch_sub(1, Ordering::SeqCst);
                Ok(HttpResponse::new(200.try_into().expect("status"), SdkBody::empty()))
            })
        }
    }

    async fn peak_of(calls_per_service: &[usize], total: usize) -> usize {
        let slow = Arc::new(Slow::default());
        // The inner client is never asked for a connector here: each service wraps the slow one.
        let never = aws_smithy_runtime_api::client::http::http_client_fn(|_, _| unreachable!("not asked"));
        let bound = Bound::with_total(never, total, crate::aws::is_final_answer);
        let mut calls = Vec::new();
        for &n in calls_per_service {
            let connector = bound.service().around(SharedHttpConnector::new(SlowClient(Arc::clone(&slow))));
            for _ in 0..n {
                let c = connector.clone();
                calls.push(tokio::spawn(async move { c.call(HttpRequest::empty()).await.map(|_| ()) }));
            }
        }
        for call in calls {
            call.await.expect("join").expect("answered");
        }
        slow.peak.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn one_service_has_at_most_its_share_in_flight() {
        assert_eq!(peak_of(&[40], TOTAL).await, PER_SERVICE);
    }

    #[tokio::test]
    async fn all_services_together_have_at_most_the_total_in_flight() {
        assert_eq!(peak_of(&[10, 10, 10, 10], TOTAL).await, TOTAL);
    }

    #[tokio::test]
    async fn a_mutating_call_that_waited_while_the_lease_was_lost_is_not_sent() {
        let slow = Arc::new(Slow::default());
        let never = aws_smithy_runtime_api::client::http::http_client_fn(|_, _| unreachable!("not asked"));
        let connector = Bound::with_total(never, 1, crate::aws::is_final_answer)
            .service()
            .around(SharedHttpConnector::new(SlowClient(Arc::clone(&slow))));
        let fence = Arc::new(Fence::default());
        // The first call holds the only permit; the second, a mutation, waits behind it.
        let first = tokio::spawn({
            let c = connector.clone();
            async move { c.call(HttpRequest::empty()).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        let mut mutation = HttpRequest::empty();
        let operation = "EC2 CreateVpc".into();
        mutation.add_extension(Attempt { service: "EC2".into(), operation, mutating: true, fence: Arc::clone(&fence) });
        let second = tokio::spawn({
            let c = connector.clone();
            async move { c.call(mutation).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        fence.close("the lease was taken over");
        first.await.expect("join").expect("the first call is answered");
        let refused = second.await.expect("join").expect_err("the queued mutation is refused");
        assert!(format!("{refused:?}").contains("the lease was taken over"), "{refused:?}");
        assert_eq!(slow.calls.load(Ordering::SeqCst), 1, "only the first call reached the connector");
    }

    #[tokio::test]
    async fn a_read_the_plan_asked_is_answered_once_from_its_answer_until_the_service_is_changed() {
        let slow = Arc::new(Slow::default());
        let never = aws_smithy_runtime_api::client::http::http_client_fn(|_, _| unreachable!("not asked"));
        let bound = Bound::with_total(never, TOTAL, crate::aws::is_final_answer);
        let connector = bound.service().around(SharedHttpConnector::new(SlowClient(Arc::clone(&slow))));
        let send = async |body: &str, mutating: bool| {
            let mut r = HttpRequest::new(SdkBody::from(body.to_owned()));
            r.add_extension(Attempt {
                service: "EC2".into(),
                operation: "EC2 Op".into(),
                mutating,
                fence: Arc::default(),
            });
            connector.call(r).await.expect("answered");
            slow.calls.load(Ordering::SeqCst)
        };
        bound.replay.keep();
        assert_eq!(send("Action=DescribeVpcs", false).await, 1);
        assert_eq!(send("Action=DescribeVpcs", false).await, 2, "a plan asks AWS each time");
        bound.replay.replay();
        assert_eq!(send("Action=DescribeVpcs", false).await, 2, "answered as the plan was");
        assert_eq!(send("Action=DescribeVpcs", false).await, 2, "the plan asked twice");
        assert_eq!(send("Action=DescribeVpcs", false).await, 3, "a third time: AWS");
        bound.replay.keep();
        send("Action=DescribeSubnets", false).await;
        send("Action=DescribeSubnets", false).await;
        bound.replay.replay();
        // A read sent while the change is in flight may be given the plan's answer; once EC2 has
        // answered the change, its reads go to AWS.
        let mut create = HttpRequest::new(SdkBody::from("Action=CreateVpc"));
        create.add_extension(Attempt {
            service: "EC2".into(),
            operation: "EC2 Op".into(),
            mutating: true,
            fence: Arc::default(),
        });
        let change = tokio::spawn(connector.call(create));
        while slow.now.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(send("Action=DescribeSubnets", false).await, 6, "answered as the plan was, the change in flight");
        change.await.expect("join").expect("answered");
        assert_eq!(send("Action=DescribeSubnets", false).await, 7, "after a change to EC2: AWS");
    }

    #[tokio::test(start_paused = true)]
    async fn an_operation_aws_throttled_waits_for_its_turn_and_no_other_does() {
        let slow = Arc::new(Slow::default());
        let never = aws_smithy_runtime_api::client::http::http_client_fn(|_, _| unreachable!("not asked"));
        let bound = Bound::with_total(never, TOTAL, crate::aws::is_final_answer);
        let connector = bound.service().around(SharedHttpConnector::new(SlowClient(Arc::clone(&slow))));
        let took = async |operation: &str| {
            let mut r = HttpRequest::empty();
            r.add_extension(Attempt {
                service: "EC2".into(),
                operation: operation.into(),
                mutating: false,
                fence: Arc::default(),
            });
            let start = tokio::time::Instant::now();
            connector.call(r).await.expect("answered");
            start.elapsed().as_millis()
        };
        for _ in 0..2 {
            bound.pacer.answered("EC2 DescribeVpcs", false);
        }
        bound.pacer.answered("EC2 DescribeVpcs", true);
        // 0.8 × the 2 that passed: one call each 625 ms, the first after that; the answer takes 20.
        assert_eq!(took("EC2 DescribeVpcs").await, 645);
        assert_eq!(took("EC2 DescribeSubnets").await, 20);
    }

    #[tokio::test]
    async fn a_total_of_one_sends_one_call_at_a_time() {
        assert_eq!(peak_of(&[5, 5], 1).await, 1);
    }
}
