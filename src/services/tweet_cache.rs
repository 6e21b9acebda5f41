//! Hydration from memory: tweets by id as a viewer sees them, from bounded
//! in-process caches in front of the Store. Bodies (text, media, time) do
//! not change; authors, counters and the viewer's likes do, so each of
//! those has a freshness:
//!
//! - **Exclusive** (no shared cache configured: this process is the only
//!   writer, as on the embedded defaults): every write goes through this
//!   process and marks what it changed, so cached values stay exact and
//!   are never refreshed by time.
//! - **Shared** (several nodes may write): values are trusted for
//!   [`SHARED_FRESHNESS`], then read again in one batched query per kind.
//!   A single tweet read (`GET /tweet/{id}`) reads counters and the viewer's
//!   like from the database every time, so it is exact.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{Id, Media, Timestamp, Tweet, User};
use crate::ports::store::{Store, StoreError};

/// How long a shared deployment trusts a cached author, counter or like.
pub const SHARED_FRESHNESS: Duration = Duration::from_secs(1);

/// How long a shared deployment keeps a tweet's body (text, media, alt text).
const SHARED_BODY_FRESHNESS: Duration = Duration::from_secs(30);

/// At most this many of a viewer's likes are kept (the newest tweets); older
/// ones are looked up when a page reaches them.
const VIEWER_LIKES_KEPT: u32 = 4096;

/// What does not change about a tweet, and its counters.
struct CachedTweet {
    author: Id,
    content: String,
    media: Vec<Media>,
    created_at: Timestamp,
    like_count: AtomicI64,
    view_count: AtomicI64,
    /// Milliseconds after `epoch` until which the counters are trusted.
    fresh_until: AtomicI64,
}

/// The tweets a viewer likes, exactly for tweet ids at or above `floor`.
struct ViewerLikes {
    floor: i64,
    fresh_until: Instant,
    ids: HashSet<i64>,
}

/// Change counters, sharded by id: a value read from the database while a
/// write to the same shard happened may predate the write, so it is kept
/// but trusted no further (read again when next needed).
struct Generations(Box<[std::sync::atomic::AtomicU64]>);

impl Generations {
    fn new() -> Self {
        Self((0..4096).map(|_| std::sync::atomic::AtomicU64::new(0)).collect())
    }

    fn slot(&self, id: Id) -> &std::sync::atomic::AtomicU64 {
        &self.0[(id.as_i64() as u64 % self.0.len() as u64) as usize]
    }

    fn of(&self, id: Id) -> u64 {
        self.slot(id).load(Ordering::Acquire)
    }

    fn bump(&self, id: Id) {
        self.slot(id).fetch_add(1, Ordering::AcqRel);
    }
}

pub struct TweetCache {
    store: Arc<dyn Store>,
    shared: bool,
    epoch: Instant,
    tweet_changes: Generations,
    user_changes: Generations,
    like_changes: Generations,
    bodies: moka::sync::Cache<i64, Arc<CachedTweet>>,
    authors: moka::sync::Cache<i64, Arc<User>>,
    likes: moka::sync::Cache<i64, Arc<Mutex<ViewerLikes>>>,
}

/// Sizes of the caches, in bytes (approximate).
#[derive(Clone, Copy, Debug)]
pub struct TweetCacheLimits {
    pub bodies_bytes: u64,
    pub authors_bytes: u64,
    pub likes_bytes: u64,
}

impl TweetCache {
    pub fn new(store: Arc<dyn Store>, shared: bool, limits: TweetCacheLimits) -> Self {
        let bodies = moka::sync::Cache::builder()
            // Bodies change only by alt text edits: other nodes see one within this.
            .time_to_live(if shared { SHARED_BODY_FRESHNESS } else { Duration::from_secs(365 * 24 * 3600) })
            .max_capacity(limits.bodies_bytes)
            .weigher(|_, t: &Arc<CachedTweet>| {
                let media: usize = t.media.iter().map(|m| 160 + m.key.len() + m.content_type.len()).sum();
                u32::try_from(128 + t.content.len() + media).unwrap_or(u32::MAX)
            })
            .build();
        let authors = moka::sync::Cache::builder()
            .max_capacity(limits.authors_bytes)
            .weigher(|_, u: &Arc<User>| u32::try_from(160 + u.username.len() + u.name.len() + u.email.len()).unwrap_or(u32::MAX));
        let authors = if shared { authors.time_to_live(SHARED_FRESHNESS) } else { authors }.build();
        let likes = moka::sync::Cache::builder()
            .max_capacity(limits.likes_bytes)
            .weigher(|_, l: &Arc<Mutex<ViewerLikes>>| {
                u32::try_from(64 + 16 * l.lock().map(|l| l.ids.len()).unwrap_or(0)).unwrap_or(u32::MAX)
            })
            .build();
        Self {
            store,
            shared,
            epoch: Instant::now(),
            tweet_changes: Generations::new(),
            user_changes: Generations::new(),
            like_changes: Generations::new(),
            bodies,
            authors,
            likes,
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn fresh_until(&self) -> i64 {
        if self.shared { self.now_ms() + SHARED_FRESHNESS.as_millis() as i64 } else { i64::MAX }
    }

    /// The tweets among `ids` that exist, in the order of `ids`, as `viewer` sees them.
    pub async fn tweets(&self, ids: &[Id], viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut bodies: HashMap<i64, Arc<CachedTweet>> = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        let now = self.now_ms();
        let mut stale = Vec::new();
        for id in ids {
            match self.bodies.get(&id.as_i64()) {
                Some(body) => {
                    if body.fresh_until.load(Ordering::Relaxed) < now {
                        stale.push(*id);
                    }
                    bodies.insert(id.as_i64(), body);
                }
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            let before: Vec<u64> = missing.iter().map(|id| self.tweet_changes.of(*id)).collect();
            let tweets = self.store.tweets_by_ids(&missing, None).await?;
            for tweet in tweets {
                let at = missing.iter().position(|id| *id == tweet.id).unwrap_or(0);
                let changed = before.get(at).is_some_and(|g| *g != self.tweet_changes.of(tweet.id));
                let body = self.keep(&tweet, changed);
                bodies.insert(tweet.id.as_i64(), body);
            }
        }
        if !stale.is_empty() {
            self.refresh_counters(&stale, &mut bodies).await?;
        }
        let authors = self.authors_of(bodies.values().map(|b| b.author)).await?;
        let liked = match viewer {
            Some(viewer) => self.liked(viewer, ids).await?,
            None => HashSet::new(),
        };
        Ok(ids
            .iter()
            .filter_map(|id| {
                let body = bodies.get(&id.as_i64())?;
                let author = authors.get(&body.author.as_i64())?;
                Some(Tweet {
                    id: *id,
                    author: User::clone(author),
                    content: body.content.clone(),
                    media: body.media.clone(),
                    like_count: body.like_count.load(Ordering::Relaxed),
                    view_count: body.view_count.load(Ordering::Relaxed),
                    liked_by_me: liked.contains(&id.as_i64()),
                    created_at: body.created_at,
                })
            })
            .collect())
    }

    /// One tweet, exact: in a shared deployment its counters and the
    /// viewer's like are read from the database (two lookups by key), the
    /// body and author still from memory.
    pub async fn tweet(&self, id: Id, viewer: Option<Id>) -> Result<Option<Tweet>, StoreError> {
        if !self.shared {
            return Ok(self.tweets(&[id], viewer).await?.pop());
        }
        self.mark_changed(id);
        let Some(mut tweet) = self.tweets(&[id], None).await?.pop() else { return Ok(None) };
        if let Some(viewer) = viewer {
            tweet.liked_by_me = !self.store.liked_among(viewer, &[id]).await?.is_empty();
        }
        Ok(Some(tweet))
    }

    /// Keeps a tweet just written.
    pub fn remember(&self, tweet: &Tweet) {
        self.keep(tweet, false);
    }

    /// Keeps a tweet read in full; `changed`: written to meanwhile, so its counters are not trusted.
    fn keep(&self, tweet: &Tweet, changed: bool) -> Arc<CachedTweet> {
        let body = Arc::new(CachedTweet {
            author: tweet.author.id,
            content: tweet.content.clone(),
            media: tweet.media.clone(),
            created_at: tweet.created_at,
            like_count: AtomicI64::new(tweet.like_count),
            view_count: AtomicI64::new(tweet.view_count),
            fresh_until: AtomicI64::new(if changed { i64::MIN } else { self.fresh_until() }),
        });
        self.bodies.insert(tweet.id.as_i64(), body.clone());
        body
    }

    async fn refresh_counters(&self, ids: &[Id], bodies: &mut HashMap<i64, Arc<CachedTweet>>) -> Result<(), StoreError> {
        let before: Vec<u64> = ids.iter().map(|id| self.tweet_changes.of(*id)).collect();
        let counters = self.store.tweet_counters(ids).await?;
        let found: HashSet<i64> = counters.iter().map(|c| c.id.as_i64()).collect();
        let until = self.fresh_until();
        for c in counters {
            if let Some(body) = bodies.get(&c.id.as_i64()) {
                body.like_count.store(c.like_count, Ordering::Relaxed);
                body.view_count.store(c.view_count, Ordering::Relaxed);
                // Written to while being read: used for this answer only.
                let at = ids.iter().position(|id| *id == c.id).unwrap_or(0);
                if before.get(at) == Some(&self.tweet_changes.of(c.id)) {
                    body.fresh_until.store(until, Ordering::Relaxed);
                }
            }
        }
        // Deleted elsewhere.
        for id in ids {
            if !found.contains(&id.as_i64()) {
                bodies.remove(&id.as_i64());
                self.bodies.invalidate(&id.as_i64());
            }
        }
        Ok(())
    }

    async fn authors_of(&self, ids: impl Iterator<Item = Id>) -> Result<HashMap<i64, Arc<User>>, StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            if found.contains_key(&id.as_i64()) {
                continue;
            }
            match self.authors.get(&id.as_i64()) {
                Some(user) => {
                    found.insert(id.as_i64(), user);
                }
                None if !missing.contains(&id) => missing.push(id),
                None => {}
            }
        }
        if !missing.is_empty() {
            let before: Vec<u64> = missing.iter().map(|id| self.user_changes.of(*id)).collect();
            for user in self.store.users_by_ids(&missing).await? {
                let at = missing.iter().position(|id| *id == user.id).unwrap_or(0);
                let user = Arc::new(user);
                // A user changed while being read is used for this answer only.
                if before.get(at) == Some(&self.user_changes.of(user.id)) {
                    self.authors.insert(user.id.as_i64(), user.clone());
                }
                found.insert(user.id.as_i64(), user);
            }
        }
        Ok(found)
    }

    /// Which of `ids` `viewer` likes.
    async fn liked(&self, viewer: Id, ids: &[Id]) -> Result<HashSet<i64>, StoreError> {
        let entry = match self.likes.get(&viewer.as_i64()) {
            Some(entry) if self.lock(&entry).fresh_until > Instant::now() => entry,
            _ => {
                let generation = self.like_changes.of(viewer);
                let newest = self.store.liked_tweet_ids(viewer, VIEWER_LIKES_KEPT).await?;
                let floor = if newest.len() < VIEWER_LIKES_KEPT as usize {
                    i64::MIN
                } else {
                    newest.last().map_or(i64::MIN, |id| id.as_i64())
                };
                let fresh_until = if generation != self.like_changes.of(viewer) {
                    Instant::now() // a like changed meanwhile: good for this answer only
                } else if self.shared {
                    Instant::now() + SHARED_FRESHNESS
                } else {
                    far_future()
                };
                let entry =
                    Arc::new(Mutex::new(ViewerLikes { floor, fresh_until, ids: newest.iter().map(|id| id.as_i64()).collect() }));
                self.likes.insert(viewer.as_i64(), entry.clone());
                entry
            }
        };
        let (mut liked, below): (HashSet<i64>, Vec<Id>) = {
            let likes = self.lock(&entry);
            let liked = ids.iter().map(|id| id.as_i64()).filter(|id| likes.ids.contains(id)).collect();
            (liked, ids.iter().copied().filter(|id| id.as_i64() < likes.floor).collect())
        };
        if !below.is_empty() {
            liked.extend(self.store.liked_among(viewer, &below).await?.iter().map(|id| id.as_i64()));
        }
        Ok(liked)
    }

    fn lock<'a>(&self, likes: &'a Mutex<ViewerLikes>) -> std::sync::MutexGuard<'a, ViewerLikes> {
        likes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A like or unlike was committed: `likes` says whether `viewer` now
    /// likes `tweet` (`None`: unchanged), `like_count` is the count it left.
    pub fn like_written(&self, viewer: Id, tweet: Id, likes: Option<bool>, like_count: i64) {
        if let Some(likes) = likes {
            self.like_changes.bump(viewer);
            if let Some(entry) = self.likes.get(&viewer.as_i64()) {
                let mut entry = self.lock(&entry);
                if likes {
                    entry.ids.insert(tweet.as_i64());
                } else {
                    entry.ids.remove(&tweet.as_i64());
                }
            }
        }
        self.tweet_changes.bump(tweet);
        if let Some(body) = self.bodies.get(&tweet.as_i64()) {
            body.like_count.store(like_count, Ordering::Relaxed);
        }
    }

    /// The tweet's counters changed by a write: read them again when next needed.
    pub fn mark_changed(&self, tweet: Id) {
        self.tweet_changes.bump(tweet);
        if let Some(body) = self.bodies.get(&tweet.as_i64()) {
            body.fresh_until.store(i64::MIN, Ordering::Relaxed);
        }
    }

    /// A user as a committed write left them (counts included).
    pub fn user_written(&self, user: &User) {
        self.user_changes.bump(user.id);
        self.authors.insert(user.id.as_i64(), Arc::new(user.clone()));
    }

    /// A view count a write returned (counts only grow).
    pub fn viewed(&self, tweet: Id, count: i64) {
        self.tweet_changes.bump(tweet);
        if let Some(body) = self.bodies.get(&tweet.as_i64()) {
            body.view_count.fetch_max(count, Ordering::Relaxed);
        }
    }

    /// The user changed (counts, name): read them again when next needed.
    pub fn user_changed(&self, user: Id) {
        self.user_changes.bump(user);
        self.authors.invalidate(&user.as_i64());
    }

    /// The tweet is gone, or its body (media descriptions) changed.
    pub fn forget_tweet(&self, tweet: Id) {
        self.tweet_changes.bump(tweet);
        self.bodies.invalidate(&tweet.as_i64());
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
