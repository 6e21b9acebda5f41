//! The MediaStore port: immutable blobs under server-chosen keys. A
//! directory by default (`$CHIRP_DATA_DIR/media`), or S3-compatible object
//! storage with `CHIRP_MEDIA_STORE=s3://bucket/prefix`.

mod dir;
mod s3;

use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use self::dir::DirMediaStore;
pub use self::s3::S3MediaStore;

#[derive(Debug, thiserror::Error)]
pub enum MediaStoreError {
    #[error("no such object")]
    NotFound,
    #[error("media store unavailable")]
    Unavailable(#[source] anyhow::Error),
}

pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Part of an object, and the size of the whole.
pub struct Opened {
    pub total: u64,
    pub stream: ByteStream,
}

/// Whether `key` is one the server could have made: `[A-Za-z0-9_-]+` and
/// one `.ext`. Anything else (paths, `..`, odd bytes) names nothing.
pub fn valid_key(key: &str) -> bool {
    let Some((stem, ext)) = key.split_once('.') else { return false };
    (1..=64).contains(&stem.len())
        && (1..=5).contains(&ext.len())
        && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && ext.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    async fn ping(&self) -> Result<(), MediaStoreError>;

    /// Stores the file at `path` under `key` (streamed, never read whole into memory).
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<(), MediaStoreError>;

    /// Bytes `range` (start, inclusive end) of the object, or all of it.
    async fn open(&self, key: &str, range: Option<(u64, u64)>) -> Result<Opened, MediaStoreError>;

    /// The object's size.
    async fn size(&self, key: &str) -> Result<u64, MediaStoreError>;

    /// Removes the object; removing a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), MediaStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_made_keys_are_valid() {
        assert!(valid_key("384000000000000-thumb.jpg"));
        for bad in ["../etc/passwd", "a/b.jpg", "x", ".jpg", "a.b.c", "a..jpg", "%2e%2e.jpg", "a.jpg\0", "a.jpegxx"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }
}
