//! Bearer-key authentication for /inspect and /metrics. The key is compared in constant time (as
//! SHA-256 digests, so neither content nor length leaks through timing) and never logged.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::config::ApiKey;
use crate::error::ApiError;

/// The expected key, kept only as its digest.
#[derive(Clone)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(key: &ApiKey) -> Self {
        Self(Sha256::digest(key.expose()).into())
    }

    /// True when `candidate` is the key, in time independent of where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate).into();
        self.0.ct_eq(&digest).into()
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDigest(<redacted>)")
    }
}

/// Checks an Authorization header value; Ok when it carries the right bearer key.
pub fn check(header_value: Option<&header::HeaderValue>, expected: &KeyDigest) -> Result<(), ApiError> {
    let value = header_value.ok_or(ApiError::MissingCredentials)?;
    let value = value.to_str().map_err(|_| ApiError::MalformedCredentials)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(if value.trim().eq_ignore_ascii_case("bearer") {
        ApiError::MalformedCredentials
    } else {
        ApiError::WrongScheme
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::WrongScheme);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(ApiError::MalformedCredentials);
    }
    if expected.matches(token.as_bytes()) { Ok(()) } else { Err(ApiError::InvalidKey) }
}

/// Extractor: present only when the request carries the right bearer key; otherwise the handler
/// is not run and the answer is the 401 that says why. Reads the header where it is, without
/// copying the request's headers.
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check(parts.headers.get(header::AUTHORIZATION), &state.key).map(|()| Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn every_header_form_gets_the_right_answer() {
        let key = KeyDigest::of(&ApiKey::new("0123456789abcdef"));
        let table: &[(Option<&str>, Result<(), ApiError>)] = &[
            (None, Err(ApiError::MissingCredentials)),
            (Some(""), Err(ApiError::WrongScheme)),
            (Some("Bearer"), Err(ApiError::MalformedCredentials)),
            (Some("Bearer "), Err(ApiError::MalformedCredentials)),
            (Some("Bearer a b"), Err(ApiError::MalformedCredentials)),
            (Some("Basic dXNlcjpwYXNz"), Err(ApiError::WrongScheme)),
            (Some("Token 0123456789abcdef"), Err(ApiError::WrongScheme)),
            (Some("Bearer wrong-key-wrong-key"), Err(ApiError::InvalidKey)),
            (Some("Bearer 0123456789abcdeF"), Err(ApiError::InvalidKey)),
            (Some("Bearer 0123456789abcdef0"), Err(ApiError::InvalidKey)),
            (Some("Bearer 0123456789abcdef"), Ok(())),
            (Some("bearer 0123456789abcdef"), Ok(())),
            (Some("BEARER  0123456789abcdef "), Ok(())),
        ];
        for (header, expected) in table {
            let value = header.map(|h| HeaderValue::from_str(h).expect("valid header"));
            assert_eq!(check(value.as_ref(), &key), *expected, "header {header:?}");
        }
    }

    #[test]
    fn non_ascii_header_is_malformed() {
        let key = KeyDigest::of(&ApiKey::new("0123456789abcdef"));
        let value = HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque bytes are a valid header");
        assert_eq!(check(Some(&value), &key), Err(ApiError::MalformedCredentials));
    }
}
