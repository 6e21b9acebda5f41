//! The Cache port: short-lived keyed state with a time to live (pending
//! registrations, attempt counters). In-process by default, Redis to share it
//! between nodes. Every operation is atomic on its key.

mod memory;
mod redis;
pub mod timelines;

use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;
pub use self::timelines::{HomeTimelines, MemoryHomeTimelines, RedisHomeTimelines};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("cache is full")]
    Full,
}

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    async fn ping(&self) -> Result<(), CacheError>;

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Removes and returns the value: of several concurrent takers, one gets it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    async fn delete(&self, key: &str) -> Result<(), CacheError>;

    /// Adds one to the counter at `key` (created at 0 with `ttl`) and returns the new value.
    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError>;
}
