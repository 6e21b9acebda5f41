//! Events that travel through the broker. Each carries an id and a schema
//! version; consumers skip versions they do not know.

use serde::{Deserialize, Serialize};

use super::{Id, Timestamp};

pub const LIKE_SCHEMA_VERSION: u32 = 1;
pub const TWEET_LIKED: &str = "tweet_liked";

/// `liker` liked `tweet`, whose author is `owner`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TweetLiked {
    pub schema_version: u32,
    pub event_id: Id,
    #[serde(rename = "type")]
    pub kind: String,
    pub tweet_id: Id,
    pub owner_id: Id,
    pub liker_id: Id,
    /// Milliseconds since the Unix epoch.
    pub liked_at_ms: i64,
}

impl TweetLiked {
    pub fn new(event_id: Id, tweet_id: Id, owner_id: Id, liker_id: Id, at: Timestamp) -> Self {
        Self {
            schema_version: LIKE_SCHEMA_VERSION,
            event_id,
            kind: TWEET_LIKED.to_owned(),
            tweet_id,
            owner_id,
            liker_id,
            liked_at_ms: at.as_millis(),
        }
    }
}

pub const TIMELINE_SCHEMA_VERSION: u32 = 1;
pub const TWEET_POSTED: &str = "tweet_posted";
pub const TWEET_DELETED: &str = "tweet_deleted";

/// A tweet entered or left its author's timeline: the fan-out worker
/// pushes it to (or drops it from) the home timelines kept for followers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub schema_version: u32,
    /// `tweet_posted` or `tweet_deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    pub tweet_id: Id,
    pub author_id: Id,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl TimelineEvent {
    pub fn posted(tweet_id: Id, author_id: Id, at: Timestamp) -> Self {
        Self::new(TWEET_POSTED, tweet_id, author_id, at)
    }

    pub fn deleted(tweet_id: Id, author_id: Id, at: Timestamp) -> Self {
        Self::new(TWEET_DELETED, tweet_id, author_id, at)
    }

    fn new(kind: &str, tweet_id: Id, author_id: Id, at: Timestamp) -> Self {
        Self { schema_version: TIMELINE_SCHEMA_VERSION, kind: kind.to_owned(), tweet_id, author_id, at_ms: at.as_millis() }
    }
}
