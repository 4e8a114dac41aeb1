//! The HTTP routes, and the layers every request passes: the request timeout, and the access log,
//! metrics and request counter (`observe`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::observe::{ObserveLayer, Unmatched};
use crate::timeout::RequestTimeoutLayer;

/// The body of `GET /`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greeting {
    pub message: String,
    pub service: String,
    pub version: String,
}

/// The whole service: public routes, bearer-protected routes (their handlers take `Authorized`),
/// JSON 404/405, the request timeout, and the outer layer that logs and measures every request.
pub fn router(state: AppState) -> Router {
    router_with_routes(state, Router::new())
}

/// The service plus `extra` routes that get the same layers (tests use it for slow handlers).
/// Routes have no path parameters: the path of a matched request is its metrics label.
pub fn router_with_routes(state: AppState, extra: Router<AppState>) -> Router {
    Router::new()
        .route("/", get(greeting))
        .route("/health", get(health))
        .route("/inspect", get(inspect))
        .route("/metrics", get(metrics))
        .merge(extra)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestTimeoutLayer::new(state.request_timeout))
        .layer(ObserveLayer::new(state.clone()))
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

/// The report as JSON, written into a buffer sized for it (about 500 bytes; `Json` starts at 128
/// and grows by copying).
async fn inspect(_: Authorized, State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(INSPECT_BODY_CAPACITY);
    serde_json::to_writer(&mut body, &state.inspector.report()).map_err(|e| {
        tracing::error!(error = %e, "encoding the inspect report failed");
        ApiError::Internal
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Room for an /inspect report with long figures and a long hostname.
const INSPECT_BODY_CAPACITY: usize = 1024;

/// The exposition format the scraper asks for, as Prometheus negotiates: OpenMetrics when the
/// `Accept` header names it (Prometheus does), the classic text format otherwise.
async fn metrics(
    _: Authorized,
    State(state): State<AppState>,
    headers: header::HeaderMap,
) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let format = crate::metrics::Format::from_accept(accept);
    let body = state.metrics.render(&state.inspector, format).map_err(|e| {
        tracing::error!(error = %e, "encoding metrics failed");
        ApiError::Internal
    })?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// The answer to a path no route matches, marked for `observe` to label it unmatched.
async fn not_found() -> Response {
    let mut response = ApiError::NotFound.into_response();
    response.extensions_mut().insert(Unmatched);
    response
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inspect_buffer_holds_a_report_without_growing() {
        use clap::Parser;
        let key = "0123456789abcdef";
        let config = crate::config::Cli::parse_from(["app", "--api-key", key]).server;
        let state = AppState::new(&crate::config::ApiKey::new(key), &config);
        let body = serde_json::to_vec(&state.inspector.report()).expect("serializes");
        // Room left for a 64-character hostname and figures with more digits than this machine's.
        assert!(body.len() + 200 < INSPECT_BODY_CAPACITY, "{} bytes: raise INSPECT_BODY_CAPACITY", body.len());
    }
}
