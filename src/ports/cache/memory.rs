//! In-process cache: one map behind one lock, so every operation is atomic.
//! Expired entries are dropped when touched and by a sweep when the map is full.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Cache, CacheError, RateDecision, gcra};

struct Entry {
    value: Vec<u8>,
    expires_at: Instant,
}

pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
    max_entries: usize,
    /// Rate limits count time from here.
    origin: Instant,
}

impl MemoryCache {
    pub fn new(max_entries: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), max_entries, origin: Instant::now() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut map, Instant::now())
    }

    fn make_room(&self, map: &mut HashMap<String, Entry>, now: Instant, key: &str) -> Result<(), CacheError> {
        if map.len() >= self.max_entries && !map.contains_key(key) {
            map.retain(|_, e| e.expires_at > now);
            if map.len() >= self.max_entries {
                return Err(CacheError::Full);
            }
        }
        Ok(())
    }
}

/// A version stamp as the map keeps it (little-endian bytes).
fn stamp_entry(stamp: u64, expires_at: Instant) -> Entry {
    Entry { value: stamp.to_le_bytes().to_vec(), expires_at }
}

fn live(map: &mut HashMap<String, Entry>, key: &str, now: Instant) -> Option<Vec<u8>> {
    match map.get(key) {
        Some(e) if e.expires_at > now => Some(e.value.clone()),
        Some(_) => {
            map.remove(key);
            None
        }
        None => None,
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.with(|map, now| {
            self.make_room(map, now, key)?;
            map.insert(key.to_owned(), Entry { value: value.to_vec(), expires_at: now + ttl });
            Ok(())
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.with(|map, now| live(map, key, now)))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.with(|map, now| {
            let value = live(map, key, now);
            map.remove(key);
            value
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.with(|map, _| map.remove(key));
        Ok(())
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        self.increment_in_window(key, ttl).await.map(|(n, _)| n)
    }

    async fn rate_limit(&self, key: &str, interval: Duration, burst: u32) -> Result<RateDecision, CacheError> {
        self.with(|map, now| {
            let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            let now_us = micros(now.duration_since(self.origin));
            let tat = live(map, key, now).and_then(|v| v.try_into().ok()).map(u64::from_le_bytes);
            let (decision, new_tat) = gcra(tat, now_us, micros(interval), burst);
            if let Some(new_tat) = new_tat {
                self.make_room(map, now, key)?;
                let expires_at = now + Duration::from_micros(new_tat - now_us);
                map.insert(key.to_owned(), Entry { value: new_tat.to_le_bytes().to_vec(), expires_at });
            }
            Ok(decision)
        })
    }

    async fn increment_in_window(&self, key: &str, ttl: Duration) -> Result<(u64, Duration), CacheError> {
        self.with(|map, now| {
            let current = live(map, key, now).and_then(|v| v.try_into().ok()).map(u64::from_le_bytes);
            let next = current.unwrap_or(0) + 1;
            match map.get_mut(key) {
                Some(e) => e.value = next.to_le_bytes().to_vec(),
                None => {
                    self.make_room(map, now, key)?;
                    map.insert(key.to_owned(), Entry { value: next.to_le_bytes().to_vec(), expires_at: now + ttl });
                }
            }
            let left = map.get(key).map_or(ttl, |e| e.expires_at.saturating_duration_since(now));
            Ok((next, left))
        })
    }

    async fn stamps(&self, keys: &[String], fresh: u64, ttl: Duration) -> Result<Vec<u64>, CacheError> {
        Ok(self.with(|map, now| {
            keys.iter()
                .map(|key| {
                    let kept = live(map, key, now).and_then(|v| Some(u64::from_le_bytes(v.try_into().ok()?)));
                    kept.unwrap_or_else(|| {
                        // Full: not stored, so the next reader's stamp differs (safe).
                        if self.make_room(map, now, key).is_ok() {
                            map.insert(key.clone(), stamp_entry(fresh, now + ttl));
                        }
                        fresh
                    })
                })
                .collect()
        }))
    }

    async fn restamp(&self, keys: &[String], fresh: u64, ttl: Duration) -> Result<Vec<Option<u64>>, CacheError> {
        Ok(self.with(|map, now| {
            keys.iter()
                .map(|key| {
                    let old = live(map, key, now).and_then(|v| Some(u64::from_le_bytes(v.try_into().ok()?)));
                    // Full: the old stamp is dropped instead, which changes it too.
                    match self.make_room(map, now, key) {
                        Ok(()) => {
                            map.insert(key.clone(), stamp_entry(fresh, now + ttl));
                        }
                        Err(_) => {
                            map.remove(key);
                        }
                    }
                    old
                })
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_and_counters_count() {
        let cache = MemoryCache::new(10);
        cache.put("a", b"1", Duration::from_millis(30)).await.unwrap();
        assert_eq!(cache.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("a").await.unwrap(), None);
        assert_eq!(cache.increment("n", Duration::from_secs(5)).await.unwrap(), 1);
        assert_eq!(cache.increment("n", Duration::from_secs(5)).await.unwrap(), 2);
        let (n, left) = cache.increment_in_window("n", Duration::from_secs(60)).await.unwrap();
        assert_eq!(n, 3);
        assert!(left <= Duration::from_secs(5), "the window runs from the first increment: {left:?}");
        cache.put("t", b"x", Duration::from_secs(5)).await.unwrap();
        assert!(cache.take("t").await.unwrap().is_some());
        assert!(cache.take("t").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_full_cache_refuses_new_keys_but_keeps_old_ones() {
        let cache = MemoryCache::new(2);
        cache.put("a", b"1", Duration::from_secs(5)).await.unwrap();
        cache.put("b", b"1", Duration::from_secs(5)).await.unwrap();
        assert!(matches!(cache.put("c", b"1", Duration::from_secs(5)).await, Err(CacheError::Full)));
        cache.put("a", b"2", Duration::from_secs(5)).await.unwrap();
    }
}
