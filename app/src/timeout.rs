//! The request timeout: a request still unanswered after the limit is answered 408. The timer is
//! armed only when the handler has not answered at its first poll: the service's own handlers
//! answer at once, and registering a timer for every request cost the serving thread a wake-up
//! write to its runtime's driver per request (a third of its system calls; docs/BENCHMARKS.md).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::time::Sleep;

/// Layer of `RequestTimeout`.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeoutLayer {
    limit: Duration,
}

impl RequestTimeoutLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> tower::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout { inner, limit: self.limit }
    }
}

/// Answers 408 when `inner` has not answered within the limit.
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    limit: Duration,
}

impl<S, R> tower::Service<R> for RequestTimeout<S>
where
    S: tower::Service<R, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        TimeoutFuture { answer: self.inner.call(request), limit: self.limit, timer: None }
    }
}

pin_project_lite::pin_project! {
    /// The handler's answer, or 408 once the timer (armed when the answer is not immediate) fires.
    pub struct TimeoutFuture<F> {
        #[pin]
        answer: F,
        limit: Duration,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<F, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(answer) = this.answer.poll(cx) {
            return Poll::Ready(answer);
        }
        if this.timer.is_none() {
            this.timer.set(Some(tokio::time::sleep(*this.limit)));
        }
        match this.timer.as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, ServiceExt};

    fn answer_after(
        delay: Duration,
    ) -> impl tower::Service<(), Response = Response, Error = std::convert::Infallible> + Clone {
        tower::service_fn(move |()| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::convert::Infallible>(StatusCode::OK.into_response())
        })
    }

    #[tokio::test]
    async fn a_slow_answer_is_replaced_by_408_at_the_limit() {
        let limit = Duration::from_millis(100);
        let service = RequestTimeoutLayer::new(limit).layer(answer_after(Duration::from_secs(30)));
        let started = std::time::Instant::now();
        let response = service.oneshot(()).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        let waited = started.elapsed();
        assert!(waited >= limit && waited < Duration::from_secs(10), "answered after {waited:?}");
    }

    #[tokio::test]
    async fn an_answer_within_the_limit_passes_through() {
        let service = RequestTimeoutLayer::new(Duration::from_secs(30)).layer(answer_after(Duration::from_millis(20)));
        assert_eq!(service.oneshot(()).await.expect("infallible").status(), StatusCode::OK);
    }

    /// Polls `future` once with a no-op waker.
    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[tokio::test]
    async fn the_timer_is_armed_only_for_an_answer_that_is_not_immediate() {
        let limit = Duration::from_secs(1);
        let ok = || Ok::<_, std::convert::Infallible>(StatusCode::OK.into_response());
        let mut immediate = std::pin::pin!(TimeoutFuture { answer: std::future::ready(ok()), limit, timer: None });
        assert!(poll_once(immediate.as_mut()).is_ready());
        assert!(immediate.timer.is_none(), "an immediate answer armed a timer");

        let mut waiting = std::pin::pin!(TimeoutFuture {
            answer: std::future::pending::<Result<Response, std::convert::Infallible>>(),
            limit,
            timer: None,
        });
        assert!(poll_once(waiting.as_mut()).is_pending());
        assert!(waiting.timer.is_some(), "a pending answer has no timer");
    }
}
