//! RFC 9457 problem details: the one shape of every error response.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// An error response. `code` is stable and meant for programs; `detail` is for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` tells problems apart.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    /// The HTTP status phrase.
    #[schema(example = "Unprocessable Content")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "the request has invalid fields")]
    pub detail: String,
    #[schema(example = "validation_failed")]
    pub code: String,
    /// Field name to messages; only for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, Vec<String>>>)]
    pub errors: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

impl Problem {
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.into(),
            errors: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

/// The cause of a 5xx, left in the response for the logging layer and never sent.
#[derive(Clone)]
pub struct InternalCause(pub Arc<anyhow::Error>);

fn retry_after(response: &mut Response, after: Duration) {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let detail = self.to_string();
        let (problem, wait, cause) = match self {
            Error::Validation(errors) => {
                let mut p = Problem::new(S::UNPROCESSABLE_ENTITY, "validation_failed", "the request has invalid fields");
                p.errors = Some(errors.fields().clone());
                (p, None, None)
            }
            Error::Unprocessable(code, _) => (Problem::new(S::UNPROCESSABLE_ENTITY, code, detail), None, None),
            Error::BadRequest(code, _) => (Problem::new(S::BAD_REQUEST, code, detail), None, None),
            Error::NotFound => (Problem::new(S::NOT_FOUND, "not_found", "no such resource"), None, None),
            Error::Conflict(code, _) => (Problem::new(S::CONFLICT, code, detail), None, None),
            Error::InvalidCode => (Problem::new(S::BAD_REQUEST, "invalid_code", detail), None, None),
            Error::TooManyAttempts => {
                (Problem::new(S::TOO_MANY_REQUESTS, "too_many_attempts", detail), Some(Duration::from_secs(60)), None)
            }
            Error::InvalidCredentials => (Problem::new(S::UNAUTHORIZED, "invalid_credentials", detail), None, None),
            Error::Unauthorized(_) => (Problem::new(S::UNAUTHORIZED, "unauthorized", detail), None, None),
            Error::Forbidden(_) => (Problem::new(S::FORBIDDEN, "forbidden", detail), None, None),
            Error::CsrfFailed => (Problem::new(S::FORBIDDEN, "csrf_failed", detail), None, None),
            Error::PayloadTooLarge(_) => (Problem::new(S::PAYLOAD_TOO_LARGE, "payload_too_large", detail), None, None),
            Error::UnsupportedMediaType(_) => {
                (Problem::new(S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", detail), None, None)
            }
            Error::RateLimited { retry_after } => (
                Problem::new(S::TOO_MANY_REQUESTS, "rate_limited", "too many requests from this address; slow down"),
                Some(retry_after),
                None,
            ),
            Error::Unavailable { what, source } => (
                Problem::new(S::SERVICE_UNAVAILABLE, "service_unavailable", format!("{what} is unavailable; try again shortly")),
                Some(Duration::from_secs(5)),
                Some(source.context(what)),
            ),
            Error::Internal(source) => {
                (Problem::new(S::INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side"), None, Some(source))
            }
        };
        let unauthorized = problem.status == 401 && problem.code == "unauthorized";
        let mut response = problem.into_response();
        if let Some(wait) = wait {
            retry_after(&mut response, wait);
        }
        if unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(cause) = cause {
            response.extensions_mut().insert(InternalCause(Arc::new(cause)));
        }
        response
    }
}
