//! Cookie sessions for the web client: the browser never holds a token a
//! page script can read.
//!
//! `POST /session` (and `POST /session/verify-register`) answer with the
//! user and a CSRF token, and set the access token as an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` when `CHIRP_PUBLIC_URL` is https).
//! A cookie-authenticated request that changes anything (any method but
//! GET, HEAD, OPTIONS) must carry `X-CSRF-Token`: an HMAC of the session's
//! token under a key derived from the token secret, so it is bound to the
//! session and cannot be made without it; a `Sec-Fetch-Site: cross-site`
//! write is refused outright. Either failure is 403 `csrf_failed`. Logout
//! revokes the token (in the Cache, for its remaining lifetime) and clears
//! the cookie. `Authorization: Bearer` is untouched by all of this and wins
//! when both are sent.

use std::time::Duration;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::extract::Json;
use super::users::UserBody;
use super::{ApiResult, AppState, Problem};
use crate::domain::Id;
use crate::error::Error;
use crate::services::accounts::Session;

pub const COOKIE: &str = "chirp_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The cookie goes only to the API (the web client's pages and media need none).
const COOKIE_PATH: &str = "/api/v1";
const BAD_SESSION: &str = "the session has ended; sign in again";

/// What cookie sessions need beyond the token service: the CSRF key, whether
/// cookies are `Secure`, and how long a revocation must be remembered.
pub struct Sessions {
    csrf_key: [u8; 32],
    secure: bool,
    token_ttl: Duration,
}

impl Sessions {
    pub fn new(csrf_key: [u8; 32], public_url: Option<&str>, token_ttl: Duration) -> Self {
        let secure = public_url.is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://"));
        Self { csrf_key, secure, token_ttl }
    }

    fn mac(&self, token: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        mac
    }

    pub fn csrf_token(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(token).finalize().into_bytes())
    }

    /// Constant-time comparison of a presented CSRF token with the session's.
    fn csrf_matches(&self, token: &str, presented: &str) -> bool {
        URL_SAFE_NO_PAD.decode(presented.trim()).is_ok_and(|bytes| self.mac(token).verify_slice(&bytes).is_ok())
    }

    fn set_cookie(&self, token: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::try_from(format!(
            "{COOKIE}={token}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("a JWT is a valid header value")
    }

    fn clear_cookie(&self) -> HeaderValue {
        self.set_cookie("", 0)
    }
}

fn revocation_key(token: &str) -> String {
    format!("session:revoked:{:x}", Sha256::digest(token.as_bytes()))
}

/// The session token in the request's cookies, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// CSRF defence for a cookie-authenticated request that changes state.
fn check_csrf(sessions: &Sessions, headers: &HeaderMap, token: &str) -> Result<(), Error> {
    let cross_site = headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match presented {
        Some(p) if !cross_site && sessions.csrf_matches(token, p) => Ok(()),
        _ => Err(Error::CsrfFailed),
    }
}

/// The user of the session cookie `token`. A bad, expired or revoked token
/// is 401; a state-changing request without the session's CSRF token is 403.
pub async fn authenticate(parts: &Parts, state: &AppState, token: &str) -> Result<Id, Error> {
    let id = state.tokens.verify(token).map_err(|_| Error::Unauthorized(BAD_SESSION))?;
    if changes_state(&parts.method) {
        check_csrf(&state.sessions, &parts.headers, token)?;
    }
    if state.cache.get(&revocation_key(token)).await?.is_some() {
        return Err(Error::Unauthorized(BAD_SESSION));
    }
    Ok(id)
}

#[derive(Deserialize, ToSchema)]
pub struct SessionLogin {
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "alice")]
    username: Option<String>,
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SessionVerify {
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "alice@example.com")]
    email: Option<String>,
    /// The 6-digit code from the email.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "123456")]
    code: Option<String>,
}

/// A cookie session: the user (with email) and the token to send as
/// `X-CSRF-Token` on every request that changes state. No access token: it
/// is in the `HttpOnly` cookie.
#[derive(Serialize, ToSchema)]
pub struct CookieSession {
    user: UserBody,
    csrf_token: String,
    /// Seconds until the session ends.
    expires_in: u64,
}

fn start(state: &AppState, session: Session, status: StatusCode) -> Response {
    let token = session.token.token;
    let body = CookieSession {
        user: UserBody::private(session.user, &state.media_base),
        csrf_token: state.sessions.csrf_token(&token),
        expires_in: session.token.expires_in,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, state.sessions.set_cookie(&token, session.token.expires_in));
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Refuses a sign-in posted from another site (a login CSRF), where the browser says so.
fn same_site_only(headers: &HeaderMap) -> Result<(), Error> {
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        Some(b"cross-site") => Err(Error::CsrfFailed),
        _ => Ok(()),
    }
}

/// Sign in for a browser: like `POST /login`, but the token is set as an
/// `HttpOnly` cookie and only a CSRF token is returned.
#[utoipa::path(post, path = "/api/v1/session", tag = "accounts", request_body = SessionLogin,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie: chirp_session=…; HttpOnly; SameSite=Strict`", body = CookieSession),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_credentials`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`csrf_failed`: posted from another site", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(State(state): State<AppState>, headers: HeaderMap, Json(req): Json<SessionLogin>) -> ApiResult<Response> {
    same_site_only(&headers)?;
    let session = state.accounts.login(req.username, req.password).await?;
    Ok(start(&state, session, StatusCode::OK))
}

/// Finish a registration for a browser: like `POST /verify-register`, but
/// signs in with a cookie session instead of returning a token.
#[utoipa::path(post, path = "/api/v1/session/verify-register", tag = "accounts", request_body = SessionVerify,
    responses(
        (status = 201, description = "Account created and signed in (cookie set)", body = CookieSession),
        (status = 400, description = "`invalid_code`, or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`csrf_failed`: posted from another site", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username or email was taken meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` or `rate_limited`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<SessionVerify>,
) -> ApiResult<Response> {
    same_site_only(&headers)?;
    let session = state.accounts.verify(req.email, req.code).await?;
    Ok(start(&state, session, StatusCode::CREATED))
}

/// The cookie session: the caller and their CSRF token (how the web client
/// starts on a page load).
#[utoipa::path(get, path = "/api/v1/session", tag = "accounts", security(("cookie" = [])),
    responses(
        (status = 200, description = "Signed in", body = CookieSession),
        (status = 401, description = "No session cookie, or it has ended", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn current(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let token = cookie_token(&headers).ok_or(Error::Unauthorized(BAD_SESSION))?;
    let id = state.tokens.verify(token).map_err(|_| Error::Unauthorized(BAD_SESSION))?;
    if state.cache.get(&revocation_key(token)).await?.is_some() {
        return Err(Error::Unauthorized(BAD_SESSION));
    }
    let user = match state.accounts.user(id).await {
        Err(Error::NotFound) => return Err(Error::Unauthorized(BAD_SESSION)),
        other => other?,
    };
    let body = CookieSession {
        user: UserBody::private(user, &state.media_base),
        csrf_token: state.sessions.csrf_token(token),
        // The exact remaining lifetime is in the token; this is an upper bound.
        expires_in: state.sessions.token_ttl.as_secs(),
    };
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}

/// Sign out: revokes the session's token and clears the cookie. Needs the
/// CSRF token while the session is valid; without a valid session it only
/// clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "accounts", security(("cookie" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 403, description = "`csrf_failed`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = cookie_token(&headers)
        && state.tokens.verify(token).is_ok()
    {
        check_csrf(&state.sessions, &headers, token)?;
        state.cache.put(&revocation_key(token), b"1", state.sessions.token_ttl).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, state.sessions.clear_cookie());
    no_store(&mut response);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "theme=dark; chirp_session=abc.def.ghi".parse().unwrap());
        assert_eq!(cookie_token(&headers), Some("abc.def.ghi"));
        headers.clear();
        headers.append(header::COOKIE, "chirp_session=".parse().unwrap());
        assert_eq!(cookie_token(&headers), None);
    }

    #[test]
    fn a_csrf_token_matches_only_its_own_session() {
        let sessions = Sessions::new([7; 32], None, Duration::from_secs(60));
        let token = sessions.csrf_token("session-a");
        assert!(sessions.csrf_matches("session-a", &token));
        assert!(!sessions.csrf_matches("session-b", &token));
        assert!(!sessions.csrf_matches("session-a", "not base64!"));
        let other = Sessions::new([8; 32], None, Duration::from_secs(60));
        assert!(!other.csrf_matches("session-a", &token));
    }

    #[test]
    fn cookies_are_secure_behind_https_only() {
        let plain = Sessions::new([0; 32], Some("http://example.com"), Duration::from_secs(60));
        let tls = Sessions::new([0; 32], Some("https://example.com"), Duration::from_secs(60));
        let plain = plain.set_cookie("t", 60);
        let tls = tls.set_cookie("t", 60);
        assert!(plain.to_str().unwrap().contains("HttpOnly; SameSite=Strict"));
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
    }
}
