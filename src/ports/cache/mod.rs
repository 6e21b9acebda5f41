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
pub use self::timelines::{FollowChange, HomeTimelines, Kept, MemoryHomeTimelines, RedisHomeTimelines};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("cache is full")]
    Full,
}

/// The answer of a rate limit to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests that could follow at once.
    pub remaining: u32,
    /// When refused: how long until a request would be allowed.
    pub retry_after: Duration,
}

/// GCRA (the generic cell rate algorithm), all times in microseconds: a
/// limit of `burst` requests at once, refilled one every `interval`, kept
/// as one number per key, the theoretical arrival time `tat`. Returns the
/// decision and, when allowed, the new `tat` to store (it may be forgotten
/// once `now` passes it). The Redis adapter runs the same steps in Lua.
pub fn gcra(tat: Option<u64>, now: u64, interval: u64, burst: u32) -> (RateDecision, Option<u64>) {
    let interval = interval.max(1);
    let limit = interval * u64::from(burst);
    let new_tat = tat.unwrap_or(now).max(now) + interval;
    let ahead = new_tat - now;
    if ahead > limit {
        let retry_after = Duration::from_micros(ahead - limit);
        return (RateDecision { allowed: false, remaining: 0, retry_after }, None);
    }
    let remaining = u32::try_from((limit - ahead) / interval).unwrap_or(u32::MAX);
    (RateDecision { allowed: true, remaining, retry_after: Duration::ZERO }, Some(new_tat))
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

    /// Like `increment`, and also says how long the counter has left to live
    /// (its window, counted from the first increment).
    async fn increment_in_window(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError>;

    /// Counts one request against the GCRA limit at `key` (`burst` at once,
    /// one more every `interval`), atomically, in one round trip.
    async fn rate_limit(&self, key: &str, interval: Duration, burst: u32) -> Result<RateDecision, CacheError>;

    /// Version stamps, all `keys` in one round trip: each key's stamp, or
    /// `fresh` (stored for `ttl`) where it had none. A value read after its
    /// stamp is current for as long as the stamp stays the same, because a
    /// writer gives the stamp a new value ([`Cache::restamp`]) after it
    /// commits and before it answers.
    async fn stamps(&self, keys: &[String], fresh: u64, ttl: Duration) -> Result<Vec<u64>, CacheError>;

    /// Gives every key in `keys` the new stamp `fresh`, for `ttl`, in one
    /// round trip, and returns the stamps it replaced (`None`: the key had
    /// none). A writer that finds the stamp it last saw replaced knows no
    /// other write came between, so it may keep its own copy under `fresh`.
    async fn restamp(&self, keys: &[String], fresh: u64, ttl: Duration) -> Result<Vec<Option<u64>>, CacheError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_a_burst_then_one_per_interval() {
        let (interval, burst) = (20_000_000, 3);
        let mut tat = None;
        for remaining in [2, 1, 0] {
            let (decision, next) = gcra(tat, 0, interval, burst);
            assert_eq!((decision.allowed, decision.remaining), (true, remaining));
            tat = next;
        }
        let (refused, next) = gcra(tat, 1_000_000, interval, burst);
        assert!(!refused.allowed && next.is_none());
        assert_eq!(refused.retry_after, Duration::from_secs(19));
        let (later, _) = gcra(tat, interval, interval, burst);
        assert_eq!((later.allowed, later.remaining), (true, 0));
    }

    #[tokio::test]
    async fn a_stamp_stays_until_restamped() {
        let cache = MemoryCache::new(16);
        let ttl = Duration::from_secs(60);
        let keys = ["tv:1".to_owned(), "lv:2".to_owned()];
        assert_eq!(cache.stamps(&keys, 7, ttl).await.unwrap(), [7, 7]);
        assert_eq!(cache.stamps(&keys, 8, ttl).await.unwrap(), [7, 7], "an existing stamp is kept");
        assert_eq!(cache.restamp(&keys[..1], 9, ttl).await.unwrap(), [Some(7)], "the stamp it replaced");
        assert_eq!(cache.stamps(&keys, 10, ttl).await.unwrap(), [9, 7]);
        let fresh = ["tv:3".to_owned()];
        assert_eq!(cache.restamp(&fresh, 11, ttl).await.unwrap(), [None], "none was there");
    }
}
