//! User objects as clients see them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Id, Timestamp, User};

/// A user. `email` only on the caller's own account (`GET /me`).
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    #[schema(value_type = String, example = "7294638123456512")]
    id: Id,
    #[schema(example = "alice")]
    username: String,
    #[schema(example = "Alice Liddell")]
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "alice@example.com")]
    email: Option<String>,
    #[schema(value_type = String, format = DateTime, example = "2026-11-24T10:00:00.123Z")]
    created_at: Timestamp,
    followers_count: i64,
    followings_count: i64,
    tweets_count: i64,
    /// Whether the caller follows this user; only with a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    followed_by_me: Option<bool>,
}

impl UserBody {
    pub fn public(u: User) -> Self {
        Self::build(u, false)
    }

    pub fn private(u: User) -> Self {
        Self::build(u, true)
    }

    fn build(u: User, with_email: bool) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            email: with_email.then_some(u.email),
            created_at: u.created_at,
            followers_count: u.followers_count,
            followings_count: u.followings_count,
            tweets_count: u.tweets_count,
            followed_by_me: None,
        }
    }

    pub fn followed_by_me(mut self, followed: Option<bool>) -> Self {
        self.followed_by_me = followed;
        self
    }
}
