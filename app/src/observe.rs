//! What every request passes on its way out: the request counter, the latency histogram and the
//! (sampled) access log, labelled by the route. A hand-written layer with its own future rather
//! than `middleware::from_fn`, which boxes a future and clones the next service for every request.
//!
//! The service's routes have no parameters, so a matched request's path is its route and the
//! label stays bounded: the fallback marks what matched no route (`Unmatched`), and those share
//! one label whatever the path.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{Request, StatusCode, Uri};
use axum::response::Response;

use crate::AppState;
use crate::metrics::{RequestLabels, UNMATCHED_ROUTE, method_label};

/// Put in the extensions of the fallback's answer: the request matched no route.
#[derive(Debug, Clone, Copy)]
pub struct Unmatched;

/// The service's routes as static labels: no allocation per request for them.
fn static_route(path: &str) -> Option<&'static str> {
    match path {
        "/" => Some("/"),
        "/health" => Some("/health"),
        "/inspect" => Some("/inspect"),
        "/metrics" => Some("/metrics"),
        _ => None,
    }
}

/// A request's path, kept for its label: static for the service's routes; other paths (routes
/// added beside them, or no route) keep the request's `Uri`, a cheap clone of shared bytes.
enum Path {
    Static(&'static str),
    Other(Uri),
}

impl Path {
    fn of(uri: &Uri) -> Self {
        static_route(uri.path()).map_or_else(|| Self::Other(uri.clone()), Self::Static)
    }

    fn label(&self) -> Cow<'static, str> {
        match self {
            Self::Static(route) => Cow::Borrowed(route),
            Self::Other(uri) => Cow::Owned(uri.path().to_owned()),
        }
    }
}

/// Layer of `Observe`.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    state: AppState,
}

impl ObserveLayer {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, state: self.state.clone() }
    }
}

/// Counts, measures and (sampled) logs every answer of `inner`.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    state: AppState,
}

impl<S, B> tower::Service<Request<B>> for Observe<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = method_label(request.method());
        let path = Path::of(request.uri());
        ObserveFuture {
            answer: self.inner.call(request),
            seen: Some(Seen { started, method, path, state: self.state.clone() }),
        }
    }
}

/// What `Observe` knows of a request before its answer.
struct Seen {
    started: Instant,
    method: &'static str,
    path: Path,
    state: AppState,
}

pin_project_lite::pin_project! {
    /// The answer of the wrapped service, recorded once it is ready.
    pub struct ObserveFuture<F> {
        #[pin]
        answer: F,
        seen: Option<Seen>,
    }
}

impl<F, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.answer.poll(cx));
        if let (Ok(response), Some(seen)) = (&answer, this.seen.take()) {
            record(seen, response);
        }
        Poll::Ready(answer)
    }
}

/// Access log, metrics and the request counter. Logs method, route, status and latency; never
/// headers (the Authorization header holds the key).
fn record(seen: Seen, response: &Response) {
    let Seen { started, method, path, state } = seen;
    let elapsed = started.elapsed();
    let status = response.status();
    let route =
        if response.extensions().get::<Unmatched>().is_some() { Cow::Borrowed(UNMATCHED_ROUTE) } else { path.label() };
    state.inspector.count_request();
    if state.access_log.wants(status.as_u16(), elapsed, &state.access_seen) {
        tracing::info!(
            target: "access",
            method,
            route = %route,
            status = status.as_u16(),
            // Microseconds are what a clock can tell here; more digits are float noise.
            latency_ms = elapsed.as_micros() as f64 / 1000.0,
        );
    }
    state.metrics.observe(RequestLabels { method, route, status: status.as_u16() }, elapsed.as_secs_f64());
    if status == StatusCode::REQUEST_TIMEOUT {
        tracing::warn!(method, "request timed out");
    }
}
