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
    /// An animated image served as a looping video, the original kept beside it.
    Gifv,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Gifv => "gifv",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "gifv" => Some(Self::Gifv),
            _ => None,
        }
    }

    /// Whether it counts as one of a tweet's (up to four) images rather than its one video.
    pub fn is_image_like(self) -> bool {
        matches!(self, Self::Image | Self::Gifv)
    }
}

/// A media item's description for people who cannot see it (alt text):
/// trimmed, 1 to 1,500 characters, no control characters but line breaks and tabs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AltText(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AltTextError {
    #[error("must be at most 1500 characters")]
    TooLong,
    #[error("must not contain control characters other than line breaks and tabs")]
    Control,
}

impl AltText {
    pub const MAX: usize = 1500;

    /// `None` for a blank text: no description.
    pub fn parse(raw: &str) -> Result<Option<Self>, AltTextError> {
        let s = raw.trim();
        if s.chars().count() > Self::MAX {
            return Err(AltTextError::TooLong);
        }
        if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(AltTextError::Control);
        }
        Ok((!s.is_empty()).then(|| Self(s.to_owned())))
    }

    /// A text that was valid when it was stored.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored image, video or gifv attached to a tweet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub id: Id,
    pub kind: MediaKind,
    /// The type of what `key` holds (a gifv's MP4 rendition).
    pub content_type: String,
    /// Where the MediaStore keeps it; chosen by the server.
    pub key: String,
    /// A gifv's original animated GIF or WebP.
    pub original_key: Option<String>,
    /// A JPEG: an image's thumbnail, a video's or gifv's poster frame.
    pub thumbnail_key: Option<String>,
    pub size_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumbnail_width: Option<i64>,
    pub thumbnail_height: Option<i64>,
    pub duration_ms: Option<i64>,
    pub description: Option<AltText>,
    /// A BlurHash of the picture (or poster), for a placeholder before the bytes arrive.
    pub blurhash: Option<String>,
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

    #[test]
    fn alt_text_is_trimmed_bounded_and_blank_means_none() {
        assert_eq!(AltText::parse("  a cat  ").unwrap().unwrap().as_str(), "a cat");
        assert_eq!(AltText::parse("   "), Ok(None));
        assert!(AltText::parse(&"я".repeat(1500)).unwrap().is_some());
        assert_eq!(AltText::parse(&"я".repeat(1501)), Err(AltTextError::TooLong));
        assert_eq!(AltText::parse("bell\u{7}"), Err(AltTextError::Control));
    }
}
