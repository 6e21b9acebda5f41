//! The one error type of the services. The HTTP layer turns each variant into
//! a problem+json response with a stable `code`; causes of internal errors
//! are logged there once and never sent to clients.

use std::time::Duration;

use crate::domain::FieldErrors;
use crate::ports::cache::CacheError;
use crate::ports::mailer::MailError;
use crate::ports::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("{0}")]
    BadRequest(&'static str, String),
    /// A well-formed request that breaks a rule (422 with its own code).
    #[error("{1}")]
    Unprocessable(&'static str, String),
    #[error("not found")]
    NotFound,
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("the code is wrong, expired, or nothing is pending for this email")]
    InvalidCode,
    #[error("too many wrong codes: this registration is void, register again")]
    TooManyAttempts,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// A cookie-authenticated write without the session's CSRF token.
    #[error("this request needs the session's X-CSRF-Token header and must come from the same site")]
    CsrfFailed,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    #[error("{what} is unavailable")]
    Unavailable { what: &'static str, source: anyhow::Error },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(c) => Self::Conflict(c.code(), c.message().to_owned()),
            StoreError::Unavailable(source) => Self::Unavailable { what: "the database", source },
            StoreError::Other(source) => Self::Internal(source),
        }
    }
}

impl From<CacheError> for Error {
    fn from(e: CacheError) -> Self {
        Self::Unavailable { what: "the cache", source: e.into() }
    }
}

impl From<MailError> for Error {
    fn from(e: MailError) -> Self {
        Self::Unavailable { what: "the mail server", source: e.into() }
    }
}
