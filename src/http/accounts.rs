//! Registration, verification, login, and the caller's own account.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{AuthUser, Json};
use super::users::UserBody;
use super::{ApiResult, AppState, Problem};
use crate::services::accounts::{Registration, Session};

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "alice@example.com")]
    email: Option<String>,
    /// 3–30 of `[A-Za-z0-9_]`, unique ignoring case.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "alice")]
    username: Option<String>,
    /// 1–50 characters after trimming.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "Alice Liddell")]
    name: Option<String>,
    /// 8–128 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterAccepted {
    /// Where the code was sent.
    email: String,
    /// Seconds until the code (and the pending registration) expires.
    expires_in: u64,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "alice@example.com")]
    email: Option<String>,
    /// The 6-digit code from the email.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "123456")]
    code: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "alice")]
    username: Option<String>,
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    password: Option<String>,
}

/// An access token and the account it belongs to.
#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    user: UserBody,
    /// A JWT (HS256); send it as `Authorization: Bearer <access_token>`.
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
}

impl SessionBody {
    fn new(s: Session, media_base: &str) -> Self {
        Self {
            user: UserBody::public(s.user, media_base),
            access_token: s.token.token,
            token_type: "Bearer",
            expires_in: s.token.expires_in,
        }
    }
}

/// Start a registration: a 6-digit code is emailed; no account exists until it is verified.
///
/// Registering again while a registration is pending for the email replaces it: the
/// earlier code stops working, and the new code's email names the username it is for.
/// An email gets at most five codes an hour.
#[utoipa::path(post, path = "/api/v1/register", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 202, description = "Code sent", body = RegisterAccepted),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`username_taken` or `email_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many requests from this address, or a sixth code for this email within the hour (see `Retry-After`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Mail or cache unavailable, or password hashing busy (see `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<RegisterAccepted>)> {
    let receipt = state
        .accounts
        .register(Registration { email: req.email, username: req.username, name: req.name, password: req.password })
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(RegisterAccepted { email: receipt.email, expires_in: receipt.expires_in })))
}

/// Finish a registration with the emailed code: creates the account and signs in.
#[utoipa::path(post, path = "/api/v1/verify-register", tag = "accounts", request_body = VerifyRequest,
    responses(
        (status = 201, description = "Account created", body = SessionBody),
        (status = 400, description = "`invalid_code`: wrong, expired, or nothing pending; or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username or email was taken meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` (registration void) or `rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or cache unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_register(
    State(state): State<AppState>,
    Json(req): Json<VerifyRequest>,
) -> ApiResult<(StatusCode, axum::Json<SessionBody>)> {
    let session = state.accounts.verify(req.email, req.code).await?;
    Ok((StatusCode::CREATED, axum::Json(SessionBody::new(session, &state.media_base))))
}

/// Sign in with username (any case) and password.
#[utoipa::path(post, path = "/api/v1/login", tag = "accounts", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = SessionBody),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_credentials` (the same for an unknown user and a wrong password)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable, or password checking busy (see `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(State(state): State<AppState>, Json(req): Json<LoginRequest>) -> ApiResult<axum::Json<SessionBody>> {
    let session = state.accounts.login(req.username, req.password).await?;
    Ok(axum::Json(SessionBody::new(session, &state.media_base)))
}

/// The caller's own account, with email.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(State(state): State<AppState>, AuthUser(id): AuthUser) -> ApiResult<axum::Json<UserBody>> {
    let user = state.accounts.user(id).await?;
    Ok(axum::Json(UserBody::private(user, &state.media_base)))
}
