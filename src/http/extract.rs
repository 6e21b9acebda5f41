//! Extractors whose rejections are problem responses.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::{FieldErrors, Id};
use crate::error::Error;
use crate::http::{AppState, session};

/// A JSON body. Syntax errors are 400 `malformed_json`; a well-formed body of
/// the wrong shape is 422 `validation_failed` naming the field; a body over
/// the limit is 413; a non-JSON content type is 415.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(Error::UnsupportedMediaType(format!("expected Content-Type: application/json, got {essence:?}")));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("the request body is too large".into())
            } else {
                Error::BadRequest("malformed_body", "the request body could not be read".into())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                let message = inner.to_string();
                // "invalid type: integer `1`, expected a string at line 1 column 9" -> without the position.
                let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
                Error::Validation(FieldErrors::single(field, message))
            }
            _ => Error::BadRequest("malformed_json", format!("the body is not valid JSON: {inner}")),
        }
    })?;
    Ok(value)
}

/// The user a valid bearer token (or session cookie) was issued to. Missing, malformed, expired,
/// badly signed tokens and tokens of unknown users are all 401.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub Id);

/// Like `AuthUser`, but no `Authorization` header (and no session cookie) at
/// all is `None`. A bad token is still 401: a client sending a token expects
/// it to count.
#[derive(Clone, Copy, Debug)]
pub struct MaybeAuthUser(pub Option<Id>);

const BAD_TOKEN: &str = "a valid bearer token is required";

/// A bearer token when `Authorization` is sent (API clients); otherwise the
/// web client's session cookie (see `session`), with its CSRF check.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<Id>, Error> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        let Some(token) = session::cookie_token(&parts.headers) else {
            return Ok(None);
        };
        let id = session::authenticate(parts, state, token).await?;
        if !state.accounts.exists(id).await? {
            return Err(Error::Unauthorized(BAD_TOKEN));
        }
        return Ok(Some(id));
    };
    let value = value.to_str().map_err(|_| Error::Unauthorized(BAD_TOKEN))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Error::Unauthorized(BAD_TOKEN))?;
    let id = state.tokens.verify(token).map_err(|_| Error::Unauthorized(BAD_TOKEN))?;
    if !state.accounts.exists(id).await? {
        return Err(Error::Unauthorized(BAD_TOKEN));
    }
    Ok(Some(id))
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        authenticate(parts, &AppState::from_ref(state)).await?.map(AuthUser).ok_or(Error::Unauthorized(BAD_TOKEN))
    }
}

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuthUser(authenticate(parts, &AppState::from_ref(state)).await?))
    }
}

/// An id from a path: anything that is not one names nothing, so 404.
pub fn parse_id(raw: &str) -> Result<Id, Error> {
    raw.parse().map_err(|_| Error::NotFound)
}
