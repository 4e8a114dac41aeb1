//! JSON error answers: a stable machine-readable `error` code and a `message` that names the fix.
//! Internal details are logged, never sent to the client.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    MissingCredentials,
    MalformedCredentials,
    WrongScheme,
    InvalidKey,
    NotFound,
    MethodNotAllowed,
    Internal,
}

impl ApiError {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::MissingCredentials => (
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
                "this endpoint needs the header `Authorization: Bearer <API_KEY>`",
            ),
            Self::MalformedCredentials => (
                StatusCode::UNAUTHORIZED,
                "malformed_credentials",
                "the Authorization header must be `Bearer <API_KEY>` with a non-empty key",
            ),
            Self::WrongScheme => (
                StatusCode::UNAUTHORIZED,
                "unsupported_scheme",
                "only the Bearer scheme is accepted: send `Authorization: Bearer <API_KEY>`",
            ),
            Self::InvalidKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the bearer key is not valid for this service: send `Authorization: Bearer <API_KEY>` with its key",
            ),
            Self::NotFound => {
                (StatusCode::NOT_FOUND, "not_found", "no such route; try GET /, /health, /inspect or /metrics")
            }
            Self::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not accept that method")
            }
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; it has been logged"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let body = Json(ErrorBody { error: code.to_owned(), message: message.to_owned() });
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match self {
                Self::InvalidKey | Self::MalformedCredentials => r#"Bearer realm="konnichiwa", error="invalid_token""#,
                _ => r#"Bearer realm="konnichiwa""#,
            };
            return (status, [(header::WWW_AUTHENTICATE, challenge)], body).into_response();
        }
        (status, body).into_response()
    }
}
