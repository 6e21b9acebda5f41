use serde::Serialize;

use super::{Id, Timestamp, User};

/// Tweet text: trimmed, at most 280 Unicode characters (not bytes). Empty is
/// allowed here; a tweet needs text or media, which the service checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TweetText(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TweetTextError {
    #[error("must be at most 280 characters")]
    TooLong,
    #[error("must not contain control characters other than line breaks and tabs")]
    Control,
}

impl TweetText {
    pub const MAX: usize = 280;

    pub fn parse(raw: &str) -> Result<Self, TweetTextError> {
        let s = raw.trim();
        if s.chars().count() > Self::MAX {
            return Err(TweetTextError::TooLong);
        }
        if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(TweetTextError::Control);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            _ => None,
        }
    }
}

/// A stored image or video attached to a tweet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub id: Id,
    pub kind: MediaKind,
    pub content_type: String,
    /// Where the MediaStore keeps it; chosen by the server.
    pub key: String,
    pub thumbnail_key: Option<String>,
    pub size_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub duration_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tweet {
    pub id: Id,
    pub author: User,
    pub content: String,
    pub media: Vec<Media>,
    pub like_count: i64,
    pub view_count: i64,
    pub liked_by_me: bool,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(TweetText::parse("  hi  ").unwrap().as_str(), "hi");
        assert!(TweetText::parse(&"я".repeat(280)).is_ok());
        assert_eq!(TweetText::parse(&"я".repeat(281)), Err(TweetTextError::TooLong));
        assert!(TweetText::parse(&"🐦".repeat(280)).is_ok());
        assert!(TweetText::parse("line\nbreak").is_ok());
        assert_eq!(TweetText::parse("nul\0"), Err(TweetTextError::Control));
    }
}
