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
