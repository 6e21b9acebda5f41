//! Deciding a file's type from its first bytes, never from its name or declared type.

use image::ImageFormat;

use crate::domain::MediaKind;

/// How many leading bytes `sniff` needs to decide.
pub const SNIFF_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Image(ImageFormat),
    Video(VideoContainer),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoContainer {
    Mp4,
    QuickTime,
    WebM,
}

impl VideoContainer {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::QuickTime => "video/quicktime",
            Self::WebM => "video/webm",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::QuickTime => "mov",
            Self::WebM => "webm",
        }
    }
}

impl Sniffed {
    /// The kind of media an upload of this type becomes (an animated image may still become a gifv).
    pub fn kind(self) -> MediaKind {
        match self {
            Self::Image(_) => MediaKind::Image,
            Self::Video(_) => MediaKind::Video,
        }
    }
}

/// The type of a file from its first bytes.
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    let at = |i: usize, magic: &[u8]| head.len() >= i + magic.len() && &head[i..i + magic.len()] == magic;
    Some(if at(0, &[0xFF, 0xD8, 0xFF]) {
        Sniffed::Image(ImageFormat::Jpeg)
    } else if at(0, b"\x89PNG\r\n\x1a\n") {
        Sniffed::Image(ImageFormat::Png)
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Sniffed::Image(ImageFormat::Gif)
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Sniffed::Image(ImageFormat::WebP)
    } else if at(4, b"ftyp") {
        Sniffed::Video(if at(8, b"qt  ") { VideoContainer::QuickTime } else { VideoContainer::Mp4 })
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Sniffed::Video(VideoContainer::WebM)
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_decided_by_their_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Sniffed::Image(ImageFormat::Jpeg)));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Sniffed::Image(ImageFormat::WebP)));
        assert_eq!(sniff(b"\0\0\0\x20ftypisom"), Some(Sniffed::Video(VideoContainer::Mp4)));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  "), Some(Sniffed::Video(VideoContainer::QuickTime)));
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(sniff(b"MZ\x90\0"), None);
        assert_eq!(sniff(b""), None);
    }
}
