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
//!   [`SHARED_FRESHNESS`], then checked again: with Redis, against their
//!   version stamps (below), all of a page's in one round trip, and read
//!   again in one batched query per kind only where a stamp moved; without
//!   Redis, read again. A single tweet read (`GET /tweet/{id}`) is exact:
//!   with Redis, by checking the stamps on every read; without, by reading
//!   counters and the viewer's like from the database every time.
//!
//! **Version stamps** (shared, with Redis): every write that changes a
//! tweet (like, unlike, view, delete, alt text) gives the tweet's stamp in
//! Redis a new random value after it commits and before it answers; a like
//! or unlike also the liker's stamp; a deletion or an alt text also the
//! stamp of the tweet's body; a write that changes a user (a follow, a post,
//! a profile edit) the user's stamp. A value kept under a stamp is trusted
//! while the stamp has not moved: no acknowledged write can have changed it
//! since. `GET /tweet/{id}` reads its stamps in one round trip every time;
//! a page reads those of what it kept past [`SHARED_FRESHNESS`]. Where a
//! stamp moved, the database is read (only the counts, when only the
//! tweet's stamp moved, as a like or a view moves it) and the result kept
//! under the stamp just read. A writer learns the stamp its restamp
//! replaced: where that is the one it kept a viewer's likes under, no
//! other like came between, and its copy (with its own like applied) is
//! kept under the new stamp instead of being read again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{Id, Media, Timestamp, Tweet, User};
use crate::ports::cache::Cache;
use crate::ports::store::{Store, StoreError};

/// How long a shared deployment trusts a cached author, counter or like.
pub const SHARED_FRESHNESS: Duration = Duration::from_secs(1);

/// How long a shared deployment keeps a tweet's body (text, media, alt
/// text), and so trusts counters kept under a stamp at most.
const SHARED_BODY_FRESHNESS: Duration = Duration::from_secs(30);

/// How long a stamp lives in Redis unless written again (a missing stamp
/// is recreated with a new value, so its expiry only costs a reread).
const STAMP_TTL: Duration = Duration::from_secs(600);

/// At most this long is a value kept under a stamp trusted (a viewer's
/// likes, a user, an author's recent tweets; a tweet's counters:
/// [`SHARED_BODY_FRESHNESS`]), should a writer have failed to reach Redis to
/// restamp them.
pub const STAMP_TRUST: Duration = SHARED_BODY_FRESHNESS;

/// At most this many of a viewer's likes are kept (the newest tweets); older
/// ones are looked up when a page reaches them.
const VIEWER_LIKES_KEPT: u32 = 4096;

/// What does not change about a tweet, and its counters.
struct CachedTweet {
    author: Id,
    content: String,
    media: Vec<Media>,
    created_at: Timestamp,
    /// Set together, so that a stamp always belongs to the counts beside it.
    counters: Mutex<Counters>,
}

#[derive(Clone, Copy)]
struct Counters {
    like_count: i64,
    view_count: i64,
    /// Milliseconds after `epoch` until which the counters are trusted.
    fresh_until: i64,
    /// The tweet's stamp they were read under (0: none).
    stamp: u64,
    /// The stamp of the tweet's body the body was read under (0: none).
    body_stamp: u64,
}

impl CachedTweet {
    fn counters(&self) -> Counters {
        *self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_counters(&self, change: impl FnOnce(&mut Counters)) {
        change(&mut self.counters.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// A user as kept, and until when (and under which stamp) they are trusted.
struct CachedAuthor {
    user: Arc<User>,
    trust: Mutex<Trust>,
}

#[derive(Clone, Copy)]
struct Trust {
    /// Milliseconds after `epoch` until which the user is trusted.
    fresh_until: i64,
    /// The user's stamp they were read under (0: none).
    stamp: u64,
}

impl CachedAuthor {
    fn trust(&self) -> Trust {
        *self.trust.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn trust_until(&self, fresh_until: i64) {
        self.trust.lock().unwrap_or_else(|e| e.into_inner()).fresh_until = fresh_until;
    }
}

/// The stamps read for one answer (none without Redis).
pub type Stamps = HashMap<Stamp, u64>;

/// The tweets a viewer likes, exactly for tweet ids at or above `floor`.
struct ViewerLikes {
    floor: i64,
    fresh_until: Instant,
    ids: HashSet<i64>,
    /// The viewer's like stamp they were read or last kept under (0:
    /// none), trusted until `stamped_until`. A like written here is applied
    /// to the set at once and leaves the stamp as it was (the set is newer
    /// than it says, never older); a restamp that replaced exactly this
    /// stamp keeps the set under the new one.
    stamp: u64,
    stamped_until: Instant,
    /// Whether the set is being read from the database, and the likes and
    /// unlikes written here meanwhile (the read may have missed them), in
    /// order: the read applies them to what it found instead of being
    /// thrown away, so likes written during a read never make it read again.
    reading: bool,
    written_during_read: Vec<(i64, bool)>,
    /// The restamps of those likes seen during the read (replaced, new):
    /// the read, made under the first, is good under the second too.
    restamped_during_read: Vec<(u64, u64)>,
}

impl ViewerLikes {
    /// Nothing known yet (a read is about to fill it): trusted for nothing,
    /// every id below its floor.
    fn unknown() -> Self {
        let now = Instant::now();
        Self {
            floor: i64::MAX,
            fresh_until: now,
            ids: HashSet::new(),
            stamp: 0,
            stamped_until: now,
            reading: false,
            written_during_read: Vec::new(),
            restamped_during_read: Vec::new(),
        }
    }

    /// A like (`liked`) or unlike of `tweet` written here.
    fn apply(&mut self, tweet: i64, liked: bool) {
        if liked {
            self.ids.insert(tweet);
        } else {
            self.ids.remove(&tweet);
        }
    }
}

/// A viewer's kept likes, and the lock that lets one request at a time read
/// them from the database (the others wait and use what it read).
struct KeptLikes {
    state: Mutex<ViewerLikes>,
    read: tokio::sync::Mutex<()>,
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
    /// Where version stamps live (Redis), when shared.
    stamps: Option<Arc<dyn Cache>>,
    epoch: Instant,
    tweet_changes: Generations,
    user_changes: Generations,
    bodies: moka::sync::Cache<i64, Arc<CachedTweet>>,
    authors: moka::sync::Cache<i64, Arc<CachedAuthor>>,
    likes: moka::sync::Cache<i64, Arc<KeptLikes>>,
}

/// Sizes of the caches, in bytes (approximate).
#[derive(Clone, Copy, Debug)]
pub struct TweetCacheLimits {
    pub bodies_bytes: u64,
    pub authors_bytes: u64,
    pub likes_bytes: u64,
}

impl TweetCache {
    /// `stamps`: the shared cache that keeps version stamps, if any (only used when `shared`).
    pub fn new(store: Arc<dyn Store>, shared: bool, stamps: Option<Arc<dyn Cache>>, limits: TweetCacheLimits) -> Self {
        let bodies = moka::sync::Cache::builder()
            // Bodies change only by alt text edits: other nodes see one within this.
            .time_to_live(if shared { SHARED_BODY_FRESHNESS } else { Duration::from_secs(365 * 24 * 3600) })
            .max_capacity(limits.bodies_bytes)
            .weigher(|_, t: &Arc<CachedTweet>| {
                let media: usize = t.media.iter().map(|m| 160 + m.key.len() + m.content_type.len()).sum();
                u32::try_from(128 + t.content.len() + media).unwrap_or(u32::MAX)
            })
            .build();
        let authors = moka::sync::Cache::builder().max_capacity(limits.authors_bytes).weigher(|_, a: &Arc<CachedAuthor>| {
            let u = &a.user;
            u32::try_from(192 + u.username.len() + u.name.len() + u.email.len() + u.bio.len()).unwrap_or(u32::MAX)
        });
        // Kept under a stamp at most as long as a tweet's counters are.
        let authors = if shared { authors.time_to_live(STAMP_TRUST) } else { authors }.build();
        let likes = moka::sync::Cache::builder()
            .max_capacity(limits.likes_bytes)
            .weigher(|_, l: &Arc<KeptLikes>| {
                u32::try_from(96 + 16 * l.state.lock().map(|l| l.ids.len()).unwrap_or(0)).unwrap_or(u32::MAX)
            })
            .build();
        Self {
            store,
            shared,
            stamps: if shared { stamps } else { None },
            epoch: Instant::now(),
            tweet_changes: Generations::new(),
            user_changes: Generations::new(),
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
        self.hydrate(ids, viewer, true).await
    }

    /// The tweets among `ids` that exist, as no one in particular sees them,
    /// for a caller that takes their counters from elsewhere (a write that
    /// just changed them): counters kept past their freshness are not read again.
    pub async fn tweets_counted_elsewhere(&self, ids: &[Id]) -> Result<Vec<Tweet>, StoreError> {
        self.hydrate(ids, None, false).await
    }

    async fn hydrate(&self, ids: &[Id], viewer: Option<Id>, refresh_counters: bool) -> Result<Vec<Tweet>, StoreError> {
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
                    if refresh_counters && body.counters().fresh_until < now {
                        stale.push(*id);
                    }
                    bodies.insert(id.as_i64(), body);
                }
                None => missing.push(*id),
            }
        }
        // The viewer's likes, if fresh now, are held from here to their use:
        // like the counters, they are as of the page's start, however long
        // it takes. (Checked later instead, they could turn stale with no
        // stamp read to confirm them, and be read again.)
        let held_likes = viewer
            .and_then(|viewer| self.likes.get(&viewer.as_i64()))
            .filter(|likes| self.lock(likes).fresh_until > Instant::now());
        let check_likes = viewer.filter(|_| held_likes.is_none());
        // Bodies read anew are kept under their stamps, unless their counts come from elsewhere.
        let unkept: &[Id] = if refresh_counters { &missing } else { &[] };
        let stamps = self.read_stamps(self.to_check(&stale, unkept, &bodies, check_likes, now)).await;
        if !missing.is_empty() {
            let before: Vec<u64> = missing.iter().map(|id| self.tweet_changes.of(*id)).collect();
            let tweets = self.store.tweets_by_ids(&missing, None).await?;
            for tweet in tweets {
                let at = missing.iter().position(|id| *id == tweet.id).unwrap_or(0);
                let changed = before.get(at).is_some_and(|g| *g != self.tweet_changes.of(tweet.id));
                let body = self.keep(&tweet, changed, stamps.get(&Stamp::Tweet(tweet.id)).copied().unwrap_or(0));
                bodies.insert(tweet.id.as_i64(), body);
            }
        }
        if !stale.is_empty() {
            self.refresh_counters(&stale, &mut bodies, &stamps).await?;
        }
        let authors = self.authors_of(bodies.values().map(|b| b.author), &stamps).await?;
        let liked = match viewer {
            Some(viewer) => self.liked(viewer, ids, held_likes, &stamps).await?,
            None => HashSet::new(),
        };
        Ok(ids
            .iter()
            .filter_map(|id| {
                let body = bodies.get(&id.as_i64())?;
                let author = authors.get(&body.author.as_i64())?;
                Some(tweet_of(*id, body, author, liked.contains(&id.as_i64())))
            })
            .collect())
    }

    /// What a page must check in a shared deployment with Redis: the
    /// tweets kept past their freshness or not kept, their authors kept past
    /// theirs or not kept, and the likes of `viewer` (given where not fresh).
    fn to_check(
        &self,
        stale: &[Id],
        missing: &[Id],
        bodies: &HashMap<i64, Arc<CachedTweet>>,
        viewer: Option<Id>,
        now: i64,
    ) -> Vec<Stamp> {
        if self.stamps.is_none() {
            return Vec::new();
        }
        let mut check: Vec<Stamp> = stale.iter().chain(missing).map(|id| Stamp::Tweet(*id)).collect();
        for body in bodies.values() {
            if !self.author_fresh(body.author, now) && !check.contains(&Stamp::User(body.author)) {
                check.push(Stamp::User(body.author));
            }
        }
        check.extend(viewer.map(Stamp::Likes));
        check
    }

    /// Whether the user is kept and still within their freshness at `now`.
    fn author_fresh(&self, user: Id, now: i64) -> bool {
        self.authors.get(&user.as_i64()).is_some_and(|a| a.trust().fresh_until >= now)
    }

    /// The stamps of `check`, in one round trip; none without Redis, or if
    /// it fails (then what they would have confirmed is read again).
    pub async fn read_stamps(&self, check: Vec<Stamp>) -> Stamps {
        let Some(stamps) = &self.stamps else { return Stamps::new() };
        if check.is_empty() {
            return Stamps::new();
        }
        let keys: Vec<String> = check.iter().map(Stamp::key).collect();
        match stamps.stamps(&keys, new_stamp(), STAMP_TTL).await {
            Ok(found) => check.into_iter().zip(found).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "version stamps unavailable; reading what a page kept again");
                Stamps::new()
            }
        }
    }

    /// One tweet, exact: in a shared deployment its counters and the
    /// viewer's like are checked against their stamps in Redis (one round
    /// trip, which also checks the author once kept past their freshness),
    /// or without Redis read from the database (two lookups by key, the
    /// author from memory).
    pub async fn tweet(&self, id: Id, viewer: Option<Id>) -> Result<Option<Tweet>, StoreError> {
        if !self.shared {
            return Ok(self.tweets(&[id], viewer).await?.pop());
        }
        if let Some(stamps) = &self.stamps {
            // The author's stamp only once what is kept of them is past its freshness.
            let now = self.now_ms();
            let author = self.bodies.get(&id.as_i64()).map(|body| body.author).filter(|author| !self.author_fresh(*author, now));
            let check: Vec<Stamp> = [Stamp::Tweet(id), Stamp::TweetBody(id)]
                .into_iter()
                .chain(viewer.map(Stamp::Likes))
                .chain(author.map(Stamp::User))
                .collect();
            let keys: Vec<String> = check.iter().map(Stamp::key).collect();
            match stamps.stamps(&keys, new_stamp(), STAMP_TTL).await {
                Ok(found) => return self.stamped_tweet(id, viewer, &check.into_iter().zip(found).collect()).await,
                Err(e) => tracing::warn!(error = %e, "version stamps unavailable; reading the tweet from the database"),
            }
        }
        self.mark_changed(id);
        let Some(mut tweet) = self.tweets(&[id], None).await?.pop() else { return Ok(None) };
        if let Some(viewer) = viewer {
            tweet.liked_by_me = !self.store.liked_among(viewer, &[id]).await?.is_empty();
        }
        Ok(Some(tweet))
    }

    /// [`Self::tweet`] under `stamps`: the tweet's, its body's, and those
    /// of the viewer's likes and of the author (if known) that were read.
    async fn stamped_tweet(&self, id: Id, viewer: Option<Id>, stamps: &Stamps) -> Result<Option<Tweet>, StoreError> {
        let stamp = stamps.get(&Stamp::Tweet(id)).copied().unwrap_or(0);
        let body_stamp = stamps.get(&Stamp::TweetBody(id)).copied().unwrap_or(0);
        let kept = self.bodies.get(&id.as_i64()).filter(|body| body.counters().body_stamp == body_stamp);
        let body = match kept {
            Some(body) if body.counters().stamp == stamp => body,
            // Only the counts can have moved (a like, a view): read them alone.
            Some(body) => {
                let Some(counts) = self.store.tweet_counters(&[id]).await?.pop() else {
                    self.bodies.invalidate(&id.as_i64());
                    return Ok(None);
                };
                body.set_counters(|c| {
                    c.like_count = counts.like_count;
                    c.view_count = counts.view_count;
                    c.stamp = stamp;
                });
                body
            }
            None => {
                let Some(tweet) = self.store.tweets_by_ids(&[id], None).await?.pop() else {
                    self.bodies.invalidate(&id.as_i64());
                    return Ok(None);
                };
                // Trusted under the stamps until the body expires (SHARED_BODY_FRESHNESS).
                let body = self.keep(&tweet, false, stamp);
                body.set_counters(|c| c.body_stamp = body_stamp);
                body
            }
        };
        let authors = self.authors_of(std::iter::once(body.author), stamps).await?;
        let Some(author) = authors.get(&body.author.as_i64()) else { return Ok(None) };
        let liked = match viewer.and_then(|viewer| Some((viewer, *stamps.get(&Stamp::Likes(viewer))?))) {
            Some((viewer, stamp)) => self.stamped_like(viewer, id, stamp).await?,
            None => false,
        };
        Ok(Some(tweet_of(id, &body, author, liked)))
    }

    /// Whether `viewer` likes `tweet`, from their likes kept under `stamp`, or read anew under it.
    async fn stamped_like(&self, viewer: Id, tweet: Id, stamp: u64) -> Result<bool, StoreError> {
        let kept = self.likes.get(&viewer.as_i64()).and_then(|entry| {
            let likes = self.lock(&entry);
            let trusted = likes.stamp == stamp && likes.stamped_until > Instant::now() && tweet.as_i64() >= likes.floor;
            trusted.then(|| likes.ids.contains(&tweet.as_i64()))
        });
        if let Some(liked) = kept {
            return Ok(liked);
        }
        let likes = self.load_likes(viewer, stamp).await?;
        let kept = {
            let likes = self.lock(&likes);
            (tweet.as_i64() >= likes.floor).then(|| likes.ids.contains(&tweet.as_i64()))
        };
        match kept {
            Some(liked) => Ok(liked),
            None => Ok(!self.store.liked_among(viewer, &[tweet]).await?.is_empty()),
        }
    }

    /// Reads the viewer's newest likes and keeps them (under `stamp`, if
    /// not 0), one request at a time: those that waited use what the first
    /// read where it was read under the same stamp (or, without stamps, is
    /// still fresh). A like written here during the read is applied to what
    /// the read found, so the set is as good as one read after it.
    async fn load_likes(&self, viewer: Id, stamp: u64) -> Result<Arc<KeptLikes>, StoreError> {
        let entry = self.likes.get_with(viewer.as_i64(), || {
            Arc::new(KeptLikes { state: Mutex::new(ViewerLikes::unknown()), read: tokio::sync::Mutex::new(()) })
        });
        let _one_read = entry.read.lock().await;
        {
            let mut likes = self.lock(&entry);
            let now = Instant::now();
            let read_meanwhile =
                if stamp != 0 { likes.stamp == stamp && likes.stamped_until > now } else { likes.fresh_until > now };
            if read_meanwhile {
                return Ok(entry.clone());
            }
            likes.reading = true;
            likes.written_during_read.clear();
            likes.restamped_during_read.clear();
        }
        metrics::counter!("chirp_viewer_likes_reads_total").increment(1);
        let read = self.store.liked_tweet_ids(viewer, VIEWER_LIKES_KEPT).await;
        let mut likes = self.lock(&entry);
        likes.reading = false;
        let written = std::mem::take(&mut likes.written_during_read);
        let restamped = std::mem::take(&mut likes.restamped_during_read);
        let newest = read?;
        likes.floor =
            if newest.len() < VIEWER_LIKES_KEPT as usize { i64::MIN } else { newest.last().map_or(i64::MIN, |id| id.as_i64()) };
        likes.ids = newest.iter().map(|id| id.as_i64()).collect();
        for (tweet, liked) in written {
            likes.apply(tweet, liked);
        }
        let now = Instant::now();
        likes.fresh_until = if self.shared { now + SHARED_FRESHNESS } else { far_future() };
        // Likes written here moved the stamp during the read: follow them.
        let stamp =
            restamped.iter().fold(stamp, |stamp, &(replaced, fresh)| if stamp != 0 && stamp == replaced { fresh } else { stamp });
        likes.stamp = stamp;
        likes.stamped_until = now + STAMP_TRUST;
        drop(likes);
        Ok(entry.clone())
    }

    /// Gives the stamps of what committed writes changed new values, so
    /// that no node trusts what it kept of them; called after the commit,
    /// before the writers are answered. A failure is logged: the write is
    /// durable, and kept values are trusted for [`STAMP_TRUST`] at most.
    pub async fn restamp(&self, changed: &[Stamp]) {
        let Some(stamps) = &self.stamps else { return };
        if changed.is_empty() {
            return;
        }
        let mut changed: Vec<(String, Stamp)> = changed.iter().map(|stamp| (stamp.key(), *stamp)).collect();
        changed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        changed.dedup_by(|a, b| a.0 == b.0);
        let keys: Vec<String> = changed.iter().map(|(key, _)| key.clone()).collect();
        let fresh = new_stamp();
        // A request that sees a liker's new stamp before its answer is handled
        // here would read all their likes again: it waits for the answer
        // instead, on the read lock (unless a read holds it, which then
        // follows the restamp itself).
        let likers: Vec<Arc<KeptLikes>> = changed
            .iter()
            .filter_map(|(_, stamp)| match stamp {
                Stamp::Likes(viewer) => self.likes.get(&viewer.as_i64()),
                _ => None,
            })
            .collect();
        let _held: Vec<_> = likers.iter().filter_map(|likes| likes.read.try_lock().ok()).collect();
        match stamps.restamp(&keys, fresh, STAMP_TTL).await {
            Ok(replaced) => {
                for ((_, stamp), replaced) in changed.iter().zip(replaced) {
                    if let (Stamp::Likes(viewer), Some(replaced)) = (stamp, replaced) {
                        self.likes_restamped(*viewer, replaced, fresh);
                    }
                }
            }
            Err(e) => {
                metrics::counter!("chirp_restamp_failures_total").increment(1);
                tracing::warn!(error = %e, keys = keys.len(), "could not restamp changed tweets; other nodes may show them stale for up to 30 s");
            }
        }
    }

    /// The viewer's like stamp went from `replaced` to `fresh`. If the set
    /// kept here was kept under `replaced`, no like came between but those
    /// written here, which it holds, so it is good under `fresh`. Its trust
    /// still runs out when the first read's does, so a restamp lost
    /// elsewhere is caught within [`STAMP_TRUST`] as before.
    fn likes_restamped(&self, viewer: Id, replaced: u64, fresh: u64) {
        let Some(entry) = self.likes.get(&viewer.as_i64()) else { return };
        let mut likes = self.lock(&entry);
        if likes.reading {
            likes.restamped_during_read.push((replaced, fresh));
        }
        if likes.stamp != 0 && likes.stamp == replaced {
            likes.stamp = fresh;
        }
    }

    /// Keeps a tweet just written.
    pub fn remember(&self, tweet: &Tweet) {
        self.keep(tweet, false, 0);
    }

    /// Keeps a tweet read in full (under `stamp`, if not 0); `changed`:
    /// written to meanwhile, so its counters are not trusted.
    fn keep(&self, tweet: &Tweet, changed: bool, stamp: u64) -> Arc<CachedTweet> {
        let body = Arc::new(CachedTweet {
            author: tweet.author.id,
            content: tweet.content.clone(),
            media: tweet.media.clone(),
            created_at: tweet.created_at,
            counters: Mutex::new(Counters {
                like_count: tweet.like_count,
                view_count: tweet.view_count,
                fresh_until: if changed { i64::MIN } else { self.fresh_until() },
                stamp: if changed { 0 } else { stamp },
                body_stamp: 0,
            }),
        });
        self.bodies.insert(tweet.id.as_i64(), body.clone());
        body
    }

    /// Counters kept past their freshness: trusted again where their stamp
    /// has not moved, read again (under the stamp read) where it has.
    async fn refresh_counters(
        &self,
        stale: &[Id],
        bodies: &mut HashMap<i64, Arc<CachedTweet>>,
        stamps: &Stamps,
    ) -> Result<(), StoreError> {
        let until = self.fresh_until();
        let mut ids = Vec::with_capacity(stale.len());
        for id in stale {
            let kept = bodies.get(&id.as_i64()).map(|body| body.counters().stamp);
            match (kept, stamps.get(&Stamp::Tweet(*id))) {
                (Some(kept), Some(stamp)) if kept == *stamp => {
                    if let Some(body) = bodies.get(&id.as_i64()) {
                        body.set_counters(|c| c.fresh_until = until);
                    }
                }
                _ => ids.push(*id),
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let ids = &ids[..];
        let before: Vec<u64> = ids.iter().map(|id| self.tweet_changes.of(*id)).collect();
        let counters = self.store.tweet_counters(ids).await?;
        let found: HashSet<i64> = counters.iter().map(|c| c.id.as_i64()).collect();
        for c in counters {
            if let Some(body) = bodies.get(&c.id.as_i64()) {
                // Written to while being read: used for this answer only.
                let at = ids.iter().position(|id| *id == c.id).unwrap_or(0);
                let unchanged = before.get(at) == Some(&self.tweet_changes.of(c.id));
                body.set_counters(|counters| {
                    counters.like_count = c.like_count;
                    counters.view_count = c.view_count;
                    counters.stamp = if unchanged { stamps.get(&Stamp::Tweet(c.id)).copied().unwrap_or(0) } else { 0 };
                    if unchanged {
                        counters.fresh_until = until;
                    }
                });
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

    /// The users `ids`: kept ones while fresh, or while their stamp has
    /// not moved; the others read in one query (under the stamps read).
    async fn authors_of(&self, ids: impl Iterator<Item = Id>, stamps: &Stamps) -> Result<HashMap<i64, Arc<User>>, StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let now = self.now_ms();
        for id in ids {
            if found.contains_key(&id.as_i64()) {
                continue;
            }
            let kept = self.authors.get(&id.as_i64()).filter(|author| {
                let trust = author.trust();
                if trust.fresh_until >= now {
                    return true;
                }
                let unmoved = trust.stamp != 0 && stamps.get(&Stamp::User(id)) == Some(&trust.stamp);
                if unmoved {
                    author.trust_until(self.fresh_until());
                }
                unmoved
            });
            match kept {
                Some(author) => {
                    found.insert(id.as_i64(), author.user.clone());
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
                    let stamp = stamps.get(&Stamp::User(user.id)).copied().unwrap_or(0);
                    self.keep_author(user.clone(), stamp);
                }
                found.insert(user.id.as_i64(), user);
            }
        }
        Ok(found)
    }

    fn keep_author(&self, user: Arc<User>, stamp: u64) {
        let trust = Mutex::new(Trust { fresh_until: self.fresh_until(), stamp });
        self.authors.insert(user.id.as_i64(), Arc::new(CachedAuthor { user, trust }));
    }

    /// Which of `ids` `viewer` likes: from `held` (their likes, fresh when
    /// the page started), or kept ones trusted under `stamps`, or read anew.
    async fn liked(
        &self,
        viewer: Id,
        ids: &[Id],
        held: Option<Arc<KeptLikes>>,
        stamps: &Stamps,
    ) -> Result<HashSet<i64>, StoreError> {
        let stamp = stamps.get(&Stamp::Likes(viewer)).copied();
        let entry = match held {
            Some(entry) => entry,
            None => match self.likes.get(&viewer.as_i64()) {
                Some(entry) if self.trust_likes(&entry, stamp) => entry,
                _ => self.load_likes(viewer, stamp.unwrap_or(0)).await?,
            },
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

    /// Whether the viewer's kept likes are fresh, or kept under `stamp` (then fresh again).
    fn trust_likes(&self, entry: &KeptLikes, stamp: Option<u64>) -> bool {
        let mut likes = self.lock(entry);
        let now = Instant::now();
        if likes.fresh_until > now {
            return true;
        }
        let unmoved = likes.stamp != 0 && stamp == Some(likes.stamp) && likes.stamped_until > now;
        if unmoved {
            likes.fresh_until = now + SHARED_FRESHNESS;
        }
        unmoved
    }

    fn lock<'a>(&self, likes: &'a KeptLikes) -> std::sync::MutexGuard<'a, ViewerLikes> {
        likes.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A like or unlike was committed: `likes` says whether `viewer` now
    /// likes `tweet` (`None`: unchanged), `like_count` is the count it left.
    pub fn like_written(&self, viewer: Id, tweet: Id, likes: Option<bool>, like_count: i64) {
        if let Some(likes) = likes {
            if let Some(entry) = self.likes.get(&viewer.as_i64()) {
                // Its stamp stays: the restamp's answer moves it on (`likes_restamped`).
                let mut entry = self.lock(&entry);
                entry.apply(tweet.as_i64(), likes);
                if entry.reading {
                    entry.written_during_read.push((tweet.as_i64(), likes));
                }
            }
        }
        self.tweet_changes.bump(tweet);
        if let Some(body) = self.bodies.get(&tweet.as_i64()) {
            body.set_counters(|c| {
                c.like_count = like_count;
                c.stamp = 0;
            });
        }
    }

    /// The tweet's counters changed by a write: read them again when next needed.
    pub fn mark_changed(&self, tweet: Id) {
        self.tweet_changes.bump(tweet);
        if let Some(body) = self.bodies.get(&tweet.as_i64()) {
            body.set_counters(|c| c.fresh_until = i64::MIN);
        }
    }

    /// A user as a committed write left them (counts included).
    pub fn user_written(&self, user: &User) {
        self.user_changes.bump(user.id);
        self.keep_author(Arc::new(user.clone()), 0);
    }

    /// A view count a write returned (counts only grow).
    pub fn viewed(&self, tweet: Id, count: i64) {
        self.tweet_changes.bump(tweet);
        if let Some(body) = self.bodies.get(&tweet.as_i64()) {
            body.set_counters(|c| {
                c.view_count = c.view_count.max(count);
                c.stamp = 0;
            });
        }
    }

    /// The user changed (counts, name): read them again when next needed.
    pub fn user_changed(&self, user: Id) {
        self.user_changes.bump(user);
        self.authors.invalidate(&user.as_i64());
    }

    /// The user changed, outside a write batch: on every node (restamped) as well as here.
    pub async fn forget_user(&self, user: Id) {
        self.user_changed(user);
        self.restamp(&[Stamp::User(user)]).await;
    }

    /// The author deleted the tweet: on every node (restamped) as well as here.
    pub async fn tweet_deleted(&self, tweet: Id, author: Id) {
        self.drop_tweet(tweet);
        self.user_changed(author);
        self.restamp(&[Stamp::Tweet(tweet), Stamp::TweetBody(tweet), Stamp::User(author), Stamp::Posts(author)]).await;
    }

    /// The tweet is gone or changed: this node no longer keeps it.
    fn drop_tweet(&self, tweet: Id) {
        self.tweet_changes.bump(tweet);
        self.bodies.invalidate(&tweet.as_i64());
    }

    /// The tweet is gone, or its body (media descriptions) changed: on
    /// every node (restamped) as well as here.
    pub async fn forget_tweet(&self, tweet: Id) {
        self.drop_tweet(tweet);
        self.restamp(&[Stamp::Tweet(tweet), Stamp::TweetBody(tweet)]).await;
    }
}

/// What a write changed, for [`TweetCache::restamp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stamp {
    /// A tweet's counters or body.
    Tweet(Id),
    /// A tweet's body (its media descriptions), or the tweet is gone.
    TweetBody(Id),
    /// Which tweets a user likes.
    Likes(Id),
    /// A user as shown beside their tweets (name, avatar, counts).
    User(Id),
    /// Which tweets a user has posted (one posted or deleted).
    Posts(Id),
}

impl Stamp {
    /// Its key in the shared cache.
    fn key(&self) -> String {
        match self {
            Stamp::Tweet(id) => format!("tv:{}", id.as_i64()),
            Stamp::TweetBody(id) => format!("tb:{}", id.as_i64()),
            Stamp::Likes(user) => format!("lv:{}", user.as_i64()),
            Stamp::User(user) => format!("us:{}", user.as_i64()),
            Stamp::Posts(user) => format!("up:{}", user.as_i64()),
        }
    }
}

/// A stamp no key has had: 64 random bits (0 means none here).
fn new_stamp() -> u64 {
    rand::random::<u64>().max(1)
}

fn tweet_of(id: Id, body: &CachedTweet, author: &User, liked_by_me: bool) -> Tweet {
    let counters = body.counters();
    Tweet {
        id,
        author: author.clone(),
        content: body.content.clone(),
        media: body.media.clone(),
        like_count: counters.like_count,
        view_count: counters.view_count,
        liked_by_me,
        created_at: body.created_at,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
