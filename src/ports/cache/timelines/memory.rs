//! In-process home timelines, bounded in bytes: each kept timeline weighs
//! its capacity, and the least recently used are dropped first (moka).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{BuildTicket, FollowChange, HomeTimelines, Kept, KeptPage};
use crate::domain::Id;
use crate::ports::cache::CacheError;

struct Entry {
    token: u64,
    ready: bool,
    complete: bool,
    /// Oldest first, no duplicates.
    ids: Vec<i64>,
}

impl Entry {
    /// Whether a ready timeline can take `id` (see [`HomeTimelines::push`]).
    fn takes(&self, id: i64) -> bool {
        !self.ready || self.complete || self.ids.first().is_some_and(|&oldest| id >= oldest)
    }

    fn insert(&mut self, id: i64, cap: usize) {
        if !self.takes(id) {
            return;
        }
        if let Err(at) = self.ids.binary_search(&id) {
            self.ids.insert(at, id);
        }
        if self.ids.len() > cap {
            let excess = self.ids.len() - cap;
            self.ids.drain(..excess);
            self.complete = false;
        }
    }

    fn remove(&mut self, id: i64) {
        if let Ok(at) = self.ids.binary_search(&id) {
            self.ids.remove(at);
        }
    }

    /// Keeps nothing older than `floor`: what is older is no longer known complete.
    fn raise_floor(&mut self, floor: i64) {
        let older = self.ids.partition_point(|&id| id < floor);
        self.ids.drain(..older);
        self.complete = false;
    }

    /// A ready timeline with no id that is not complete says nothing: it is built again.
    fn says_nothing(&self) -> bool {
        self.ready && !self.complete && self.ids.is_empty()
    }
}

pub struct MemoryHomeTimelines {
    kept: moka::sync::Cache<i64, Arc<Mutex<Entry>>>,
    cap: usize,
    tokens: AtomicU64,
}

impl MemoryHomeTimelines {
    /// Keeps up to `cap` ids per user, in about `max_bytes` in all.
    pub fn new(max_bytes: u64, cap: usize) -> Self {
        let weight = u32::try_from(cap * 8 + 96).unwrap_or(u32::MAX);
        let kept = moka::sync::Cache::builder().max_capacity(max_bytes).weigher(move |_, _| weight).build();
        Self { kept, cap, tokens: AtomicU64::new(1) }
    }

    fn lock(entry: &Mutex<Entry>) -> std::sync::MutexGuard<'_, Entry> {
        entry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl HomeTimelines for MemoryHomeTimelines {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn page(&self, user: Id, before: Option<Id>, limit: usize) -> Result<Option<KeptPage>, CacheError> {
        let Some(entry) = self.kept.get(&user.as_i64()) else { return Ok(None) };
        let kept = Self::lock(&entry);
        if !kept.ready {
            return Ok(None);
        }
        let end = match before {
            Some(before) => kept.ids.partition_point(|&id| id < before.as_i64()),
            None => kept.ids.len(),
        };
        let ids: Vec<Id> = kept.ids[..end].iter().rev().take(limit).copied().map(Id::from_i64).collect();
        let exhaustive = ids.len() == limit || kept.complete;
        Ok(Some(KeptPage { ids, exhaustive }))
    }

    async fn kept(&self, user: Id) -> Result<Kept, CacheError> {
        let Some(entry) = self.kept.get(&user.as_i64()) else { return Ok(Kept::No) };
        let kept = Self::lock(&entry);
        Ok(match kept.ids.first() {
            Some(&oldest) if kept.ready && !kept.complete => Kept::From(Id::from_i64(oldest)),
            _ => Kept::Whole,
        })
    }

    async fn begin_build(&self, user: Id) -> Result<BuildTicket, CacheError> {
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        let entry = Entry { token, ready: false, complete: false, ids: Vec::new() };
        self.kept.insert(user.as_i64(), Arc::new(Mutex::new(entry)));
        Ok(BuildTicket { user, token })
    }

    async fn finish_build(&self, ticket: BuildTicket, newest: &[Id], complete: bool) -> Result<(), CacheError> {
        let Some(entry) = self.kept.get(&ticket.user.as_i64()) else { return Ok(()) };
        let mut kept = Self::lock(&entry);
        if kept.token != ticket.token || kept.ready {
            return Ok(());
        }
        kept.complete = complete;
        if !complete {
            // Pushes made during the build that are older than what was read
            // may have gaps below them.
            if let Some(oldest) = newest.iter().map(|id| id.as_i64()).min() {
                kept.ids.retain(|&id| id >= oldest);
            }
        }
        for id in newest {
            kept.insert(id.as_i64(), self.cap);
        }
        kept.ready = true;
        Ok(())
    }

    async fn push_each(&self, pushes: &[(Id, Id)]) -> Result<(), CacheError> {
        for (user, tweet) in pushes {
            if let Some(entry) = self.kept.get(&user.as_i64()) {
                Self::lock(&entry).insert(tweet.as_i64(), self.cap);
            }
        }
        Ok(())
    }

    async fn remove(&self, users: &[Id], tweet: Id) -> Result<(), CacheError> {
        for user in users {
            if let Some(entry) = self.kept.get(&user.as_i64()) {
                let drop = {
                    let mut kept = Self::lock(&entry);
                    kept.remove(tweet.as_i64());
                    kept.says_nothing()
                };
                if drop {
                    self.kept.invalidate(&user.as_i64());
                }
            }
        }
        Ok(())
    }

    async fn follows_changed(&self, user: Id, change: FollowChange<'_>) -> Result<(), CacheError> {
        let Some(entry) = self.kept.get(&user.as_i64()) else { return Ok(()) };
        let drop = {
            let mut kept = Self::lock(&entry);
            if kept.ready {
                for id in change.newest {
                    if change.followed {
                        kept.insert(id.as_i64(), self.cap);
                    } else {
                        kept.remove(id.as_i64());
                    }
                }
                if let Some(floor) = change.floor() {
                    kept.raise_floor(floor.as_i64());
                }
            }
            !kept.ready || kept.says_nothing()
        };
        if drop {
            self.kept.invalidate(&user.as_i64());
        }
        Ok(())
    }
}
