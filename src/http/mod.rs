//! The HTTP layer: routes, extractors, problem responses, OpenAPI. Handlers
//! are thin: extract, call a service, shape the response.

pub mod accounts;
pub mod extract;
pub mod graph;
pub mod media;
pub mod notifications;
pub mod observe;
pub mod ops;
pub mod pages;
pub mod problem;
pub mod profile;
pub mod rate_limit;
pub mod session;
pub mod tweets;
pub mod users;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use problem::Problem;

use crate::error::Error;
use crate::ports::broker::Broker;
use crate::ports::cache::Cache;
use crate::ports::store::Store;
use crate::services::media::{MediaPipeline, Renditions};
use crate::services::notifications::Notifications;
use crate::services::{Accounts, Graph, Profiles, Search, Tokens, Tweets};
use rate_limit::RateLimit;

pub type ApiResult<T> = Result<T, Error>;

/// What every handler can reach: cloned for every request, so it is one
/// reference count to the [`Services`].
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind every handler, and what they share.
pub struct Services {
    pub accounts: Arc<Accounts>,
    pub tweets: Arc<Tweets>,
    pub graph: Arc<Graph>,
    pub profiles: Arc<Profiles>,
    pub search: Arc<Search>,
    pub notifications: Arc<Notifications>,
    pub media: Arc<MediaPipeline>,
    /// gifv MP4s made after the tweet is answered.
    pub renditions: Arc<Renditions>,
    pub broker: Arc<dyn Broker>,
    /// Prefix of media URLs: empty (relative URLs) or `CHIRP_PUBLIC_URL`.
    pub media_base: Arc<str>,
    pub json_body_limit: usize,
    pub tokens: Arc<Tokens>,
    /// Cookie sessions of the web client (CSRF key, cookie flags).
    pub sessions: Arc<session::Sessions>,
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn Cache>,
    pub metrics: PrometheusHandle,
    /// Cancelled at the shutdown signal: endless responses (event streams)
    /// end then, so that clients reconnect elsewhere and the drain is quick.
    pub draining: tokio_util::sync::CancellationToken,
}

/// Rate limits for the endpoints that guess at secrets; `None` is off.
#[derive(Clone, Default)]
pub struct AuthLimits {
    pub register: Option<Arc<RateLimit>>,
    pub verify: Option<Arc<RateLimit>>,
    pub login: Option<Arc<RateLimit>>,
}

pub struct HttpSettings {
    pub json_body_limit: usize,
    pub request_timeout: Duration,
    pub limits: AuthLimits,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chirp",
        description = "A Twitter-style social network API. Errors are RFC 9457 problem details \
                       (`application/problem+json`) with a stable `code`. IDs are strings.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, login and the caller's account"),
        (name = "tweets", description = "Tweets, media, likes, views and the home timeline"),
        (name = "users", description = "Users, search and follows"),
        (name = "notifications", description = "Like notifications, delivered through the message broker"),
        (name = "operations", description = "Health, readiness, metrics"),
    ),
    components(schemas(Problem)),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        // The web client's session (POST /api/v1/session): any bearer endpoint
        // also takes the cookie; writes then need `X-CSRF-Token` (403 `csrf_failed`).
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                session::COOKIE,
                "HttpOnly, SameSite=Strict session cookie set by POST /api/v1/session; requests other than \
                 GET/HEAD/OPTIONS also need the header X-CSRF-Token (from the session's answer), else 403 csrf_failed",
            ))),
        );
    }
}

fn limited(router: OpenApiRouter<AppState>, limit: &Option<Arc<RateLimit>>) -> OpenApiRouter<AppState> {
    match limit {
        Some(limit) => router.route_layer(from_fn_with_state(limit.clone(), rate_limit::limit)),
        None => router,
    }
}

/// The OpenAPI document and the router it describes.
fn api(limits: &AuthLimits) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(limited(OpenApiRouter::new().routes(routes!(accounts::register)), &limits.register))
        .merge(limited(OpenApiRouter::new().routes(routes!(accounts::verify_register)), &limits.verify))
        .merge(limited(OpenApiRouter::new().routes(routes!(accounts::login)), &limits.login))
        .merge(limited(OpenApiRouter::new().routes(routes!(session::create)), &limits.login))
        .merge(limited(OpenApiRouter::new().routes(routes!(session::verify_register)), &limits.verify))
        .routes(routes!(session::current, session::delete))
        .routes(routes!(accounts::me, profile::edit_me))
        // The avatar streams through the media pipeline under the image size limit.
        .merge(
            OpenApiRouter::new().routes(routes!(profile::put_avatar, profile::delete_avatar)).layer(DefaultBodyLimit::disable()),
        )
        // Uploads stream through the media pipeline under its own per-file limits.
        .merge(OpenApiRouter::new().routes(routes!(tweets::post_tweet, tweets::list_tweets)).layer(DefaultBodyLimit::disable()))
        .routes(routes!(tweets::get_tweet, tweets::delete_tweet))
        .routes(routes!(tweets::timeline))
        .routes(routes!(tweets::like))
        .routes(routes!(tweets::unlike))
        .routes(routes!(tweets::view))
        .routes(routes!(media::describe))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(notifications::unread_count))
        .routes(routes!(notifications::stream))
        .routes(routes!(graph::list_users))
        .routes(routes!(profile::lookup))
        .routes(routes!(graph::get_user))
        .routes(routes!(graph::follow))
        .routes(routes!(graph::unfollow))
        .routes(routes!(graph::followers))
        .routes(routes!(graph::followings))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    (router, with_cookie_alternative(doc))
}

/// Every operation that takes a bearer token also takes the web client's
/// session cookie (`session`): say so, as an alternative requirement.
fn with_cookie_alternative(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let takes_bearer = |r: &SecurityRequirement| serde_json::to_value(r).is_ok_and(|v| v.get("bearer").is_some());
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten() {
            if let Some(security) = &mut op.security
                && security.iter().any(takes_bearer)
            {
                security.push(SecurityRequirement::new("cookie", Vec::<String>::new()));
            }
        }
    }
    doc
}

/// The OpenAPI document alone (for tools and tests).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api(&AuthLimits::default()).1
}

pub fn router(state: AppState, settings: HttpSettings) -> Router {
    let (api, doc) = api(&settings.limits);
    let media_base = state.media_base.clone();
    // Media answers are bytes, and its errors are problems already: inside the
    // layers all the same, so that its requests are traced, counted and given an id.
    let routes =
        api.route("/media/{*key}", axum::routing::get(media::serve)).fallback(|| async { Error::NotFound }).with_state(state);
    layered(routes, &settings).merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", doc)).merge(web::router(&media_base))
}

/// The layers every response goes through, outermost last.
fn layered(routes: Router, settings: &HttpSettings) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    routes
        .layer(DefaultBodyLimit::max(settings.json_body_limit))
        // Inside `observe`, so that a panic is answered, counted and logged like any internal error.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(observe::observe))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, settings.request_timeout))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // Any origin may call with a bearer token; none with credentials, so the web client's
        // session cookie is never sent cross-origin (and its writes need the CSRF token too).
        .layer(CorsLayer::new().allow_origin(Any).allow_methods(Any).allow_headers(Any).max_age(Duration::from_secs(3600)))
}

/// A handler panicked: a generic 500 problem, the panic's message kept for
/// `observe` to log (never sent), and the connection kept.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    Error::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    fn settings() -> HttpSettings {
        HttpSettings { json_body_limit: 1024, request_timeout: Duration::from_secs(5), limits: AuthLimits::default() }
    }

    /// No production route panics on purpose: this one exists only in this
    /// test, behind the same layers as the real routes.
    #[tokio::test]
    async fn a_panicking_handler_is_answered_with_a_generic_500_problem() {
        async fn boom() -> &'static str {
            panic!("secret detail of the panic")
        }
        let routes = Router::new().route("/boom", axum::routing::get(boom));
        let app = layered(routes, &settings());

        let response = app.oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["content-type"], problem::CONTENT_TYPE);
        assert!(response.headers().contains_key("x-request-id"));
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal_error");
        assert_eq!(body["status"], 500);
        assert!(!body.to_string().contains("secret detail"), "the cause is not sent: {body}");
    }

    #[test]
    fn a_panics_message_is_kept_for_the_log_only() {
        for panic in [Box::new("static text") as Box<dyn std::any::Any + Send>, Box::new(String::from("formatted text"))] {
            let response = panic_response(panic);
            let cause = response.extensions().get::<problem::InternalCause>().expect("a cause for observe to log");
            assert!(format!("{:#}", cause.0).contains("text"), "{:#}", cause.0);
        }
    }
}
