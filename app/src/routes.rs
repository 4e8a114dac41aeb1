//! The HTTP routes and the middleware every request passes: access log, metrics, request counter.

use std::borrow::Cow;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::require_bearer;
use crate::error::ApiError;
use crate::inspect::InspectReport;
use crate::metrics::{RequestLabels, UNMATCHED_ROUTE, method_label};
use crate::timeout::RequestTimeoutLayer;

/// The body of `GET /`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greeting {
    pub message: String,
    pub service: String,
    pub version: String,
}

/// The whole service: public routes, bearer-protected routes, JSON 404/405, the request timeout,
/// and the outer layer that logs and measures every request.
pub fn router(state: AppState) -> Router {
    router_with_routes(state, Router::new())
}

/// The service plus `extra` routes that get the same layers (tests use it for slow handlers).
pub fn router_with_routes(state: AppState, extra: Router<AppState>) -> Router {
    let protected = Router::new()
        .route("/inspect", get(inspect))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_bearer));
    Router::new()
        .route("/", get(greeting))
        .route("/health", get(health))
        .merge(protected)
        .merge(extra)
        .route_layer(middleware::from_fn(tag_matched_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestTimeoutLayer::new(state.request_timeout))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn greeting() -> Json<Greeting> {
    Json(Greeting {
        message: "Konnichiwa".to_owned(),
        service: env!("CARGO_PKG_NAME").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok")
}

async fn inspect(State(state): State<AppState>) -> Json<InspectReport> {
    Json(state.inspector.report())
}

/// The exposition format the scraper asks for, as Prometheus negotiates: OpenMetrics when the
/// `Accept` header names it (Prometheus does), the classic text format otherwise.
async fn metrics(State(state): State<AppState>, headers: header::HeaderMap) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let format = crate::metrics::Format::from_accept(accept);
    let body = state.metrics.render(&state.inspector, format).map_err(|e| {
        tracing::error!(error = %e, "encoding metrics failed");
        ApiError::Internal
    })?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The matched route, carried from inside routing (where it is known) out to `observe`.
#[derive(Clone)]
struct RouteTag(Cow<'static, str>);

/// The service's routes as static labels: no allocation per request for them.
fn route_label(path: &str) -> Cow<'static, str> {
    match path {
        "/" => Cow::Borrowed("/"),
        "/health" => Cow::Borrowed("/health"),
        "/inspect" => Cow::Borrowed("/inspect"),
        "/metrics" => Cow::Borrowed("/metrics"),
        other => Cow::Owned(other.to_owned()),
    }
}

async fn tag_matched_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| route_label(p.as_str()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTag(route));
    }
    response
}

/// Access log, metrics and the request counter. Logs method, route, status and latency; never
/// headers (the Authorization header holds the key).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // A cheap clone (shared bytes): the path is read only for a 405.
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    let route = match response.extensions().get::<RouteTag>() {
        Some(tag) => tag.0.clone(),
        // Axum answers 405 only for a path some route matches, outside the route layers; our
        // routes have no parameters, so the path is the route (and the label stays bounded).
        None if status == StatusCode::METHOD_NOT_ALLOWED => route_label(uri.path()),
        None => Cow::Borrowed(UNMATCHED_ROUTE),
    };
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
    response
}
