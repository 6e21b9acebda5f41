//! Domain types: valid by construction, free of SQL and HTTP.

pub mod events;
pub mod id;
pub mod search;
pub mod time;
pub mod tweet;
pub mod user;

pub use id::{Id, IdGenerator};
pub use time::Timestamp;
pub use tweet::{AltText, Media, MediaKind, Tweet, TweetText};
pub use user::{DisplayName, Email, Password, User, Username};

use std::collections::BTreeMap;

/// Field-level validation failures: `{"field": ["message", …]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.0
    }

    /// Records the error of `result` under `field`, returning the value if any.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }
}
