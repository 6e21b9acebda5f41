//! Health, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when every dependency answered, `unavailable` otherwise.
    #[schema(example = "ok")]
    status: &'static str,
    /// Each dependency, by name, with `ok` or the reason it failed.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    checks: std::collections::BTreeMap<&'static str, String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// The database, cache, broker and media store all answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    const LIMIT: Duration = Duration::from_secs(2);
    async fn check<E: std::fmt::Display>(f: impl Future<Output = Result<(), E>>) -> String {
        match tokio::time::timeout(LIMIT, f).await {
            Ok(Ok(())) => "ok".into(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".into(),
        }
    }
    let (database, cache, broker, media) = tokio::join!(
        check(state.store.ping()),
        check(state.cache.ping()),
        check(state.broker.ping()),
        check(state.media.store().ping())
    );
    let checks =
        std::collections::BTreeMap::from([("database", database), ("cache", cache), ("broker", broker), ("media", media)]);
    let ready = checks.values().all(|v| v == "ok");
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(Readiness { status: if ready { "ok" } else { "unavailable" }, checks }))
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
