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
    /// Up to 160 characters; may be empty.
    #[schema(example = "Curiouser and curiouser.")]
    bio: String,
    /// A 400x400 image; fetch with a plain GET. Null without an avatar.
    #[schema(example = "/media/7294638123456512-avatar.jpg")]
    avatar_url: Option<String>,
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
    /// `media_base` prefixes the avatar's URL, as it does media URLs.
    pub fn public(u: User, media_base: &str) -> Self {
        Self::build(u, media_base, false)
    }

    pub fn private(u: User, media_base: &str) -> Self {
        Self::build(u, media_base, true)
    }

    fn build(u: User, media_base: &str, with_email: bool) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            bio: u.bio,
            avatar_url: u.avatar_key.map(|key| format!("{media_base}/media/{key}")),
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
