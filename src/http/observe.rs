//! The outermost API middleware: request metrics, error logging (once, with
//! the whole cause chain) and a problem body for every error response,
//! including those produced by axum itself (unknown route, wrong method).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::{self, InternalCause, Problem};

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());

    let mut response = next.run(request).await;
    let status = response.status();

    if let Some(InternalCause(cause)) = response.extensions_mut().remove::<InternalCause>() {
        tracing::error!(status = status.as_u16(), error = format!("{cause:#}"), "request failed");
    }
    if status.is_client_error() || status.is_server_error() {
        response = ensure_problem(response);
    } else if let Some(ct) = response.headers().get(header::CONTENT_TYPE)
        && ct == "application/json"
    {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    }

    let labels = [("method", method), ("route", route), ("status", status.as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

fn ensure_problem(response: Response) -> Response {
    let is_problem_or_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(problem::CONTENT_TYPE) || ct.starts_with("application/json"));
    if is_problem_or_json {
        return response;
    }
    let status = response.status();
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this method is not allowed on this resource"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "unsupported content type"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::SERVICE_UNAVAILABLE => ("service_unavailable", "try again shortly"),
        s if s.is_server_error() => ("internal_error", "something went wrong on our side"),
        _ => ("bad_request", "the request could not be understood"),
    };
    let (mut parts, _) = response.into_parts();
    let fresh = Problem::new(status, code, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    for name in [header::CONTENT_TYPE] {
        if let Some(v) = fresh.headers().get(&name) {
            parts.headers.insert(name, v.clone());
        }
    }
    Response::from_parts(parts, fresh.into_body())
}
