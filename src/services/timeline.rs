//! The home timeline: kept per user by fan-out on write, with large
//! accounts merged at read time (the hybrid Twitter and Mastodon use).
//!
//! A page comes from up to three places:
//! - the reader's kept timeline (`HomeTimelines`): tweets of the reader and
//!   of the accounts they follow, pushed by the fan-out worker, built from
//!   the database when missing;
//! - the recent tweets of each *large* account the reader follows (more than
//!   half the fan-out limit of followers), kept per author for a second
//!   (then, with Redis, for as long as the author's posts stamp has not
//!   moved: one round trip checks all of a page's), and of each account
//!   the reader followed in the last two seconds (its newest tweets went
//!   into the kept timeline at the follow; what it posts next reaches it by
//!   the fan-out, off the request path);
//! - the database, when neither can answer exactly (a page older than what
//!   is kept): one query bounded by the page size per followed account.
//!
//! Accounts with at most `fanout_limit` followers are pushed; those with
//! more than half of it are merged. The overlap means an account whose
//! count crosses the limit, seen a little differently by the worker and
//! the reader, is still in one of the two.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::domain::{Id, Tweet};
use crate::error::Result;
use crate::ports::cache::{FollowChange, HomeTimelines, Kept};
use crate::ports::store::{PageRequest, Store};
use crate::services::tweet_cache::{STAMP_TRUST, Stamp, Stamps, TweetCache};

/// How often the set of large accounts is read again.
const LARGE_REFRESH: Duration = Duration::from_secs(5);
/// How long a large account's recent tweets are trusted before being
/// checked (with Redis, against the author's posts stamp) or read again.
const AUTHOR_FRESHNESS: Duration = Duration::from_secs(1);
/// How long an account just followed is also merged at read time, as large
/// ones are: its tweets posted since the follow reach the kept timeline by
/// the fan-out, off the request path; until they surely have, a page read
/// on this node takes them from the account's recent tweets.
const FOLLOW_SETTLING: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
pub struct TimelineSettings {
    /// Accounts with more followers are not fanned out to.
    pub fanout_limit: i64,
    /// Ids kept per user.
    pub kept: usize,
    /// Ids read from the database to build a kept timeline.
    pub build: u32,
    /// Whether timelines are kept at all: not when several nodes could each
    /// keep their own copy (no Redis, a shared database); then every page is
    /// read from the database.
    pub keep: bool,
}

/// The accounts merged at read time, and which of them each reader follows.
struct LargeAccounts {
    /// (version, ids)
    all: RwLock<(u64, Arc<HashSet<Id>>)>,
    /// reader -> (version of `all` it was computed from, the large accounts they follow)
    followed: moka::sync::Cache<i64, (u64, Arc<Vec<Id>>)>,
    /// Accounts this process marked merged at read time in the database.
    marked: RwLock<HashSet<Id>>,
}

/// An author's newest tweet ids, and whether they are all the author has.
struct Recent {
    ids: Vec<Id>,
    complete: bool,
    /// (trusted until, the author's posts stamp they were read under or 0)
    trust: Mutex<(Instant, u64)>,
}

impl Recent {
    fn new(ids: Vec<Id>, complete: bool, stamp: u64) -> Arc<Self> {
        Arc::new(Self { ids, complete, trust: Mutex::new((Instant::now() + AUTHOR_FRESHNESS, stamp)) })
    }

    /// Whether still fresh, or kept under `stamp` (then fresh again).
    fn trusted(&self, stamp: Option<u64>) -> bool {
        let mut trust = self.trust.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if trust.0 > now {
            return true;
        }
        let unmoved = trust.1 != 0 && stamp == Some(trust.1);
        if unmoved {
            trust.0 = now + AUTHOR_FRESHNESS;
        }
        unmoved
    }

    fn fresh(&self) -> bool {
        self.trust.lock().unwrap_or_else(|e| e.into_inner()).0 > Instant::now()
    }
}

pub struct Timelines {
    store: Arc<dyn Store>,
    homes: Arc<dyn HomeTimelines>,
    cache: Arc<TweetCache>,
    settings: TimelineSettings,
    large: LargeAccounts,
    /// author -> their newest ids
    recent: moka::sync::Cache<i64, Arc<Recent>>,
    /// reader -> accounts followed in the last [`FOLLOW_SETTLING`]
    just_followed: moka::sync::Cache<i64, Arc<Vec<Id>>>,
    /// reader -> held while this node builds their kept timeline, so that
    /// pages asked for meanwhile wait for that build instead of each
    /// making their own (a cold cache would otherwise build every active
    /// reader's timeline as many times as they have requests in flight).
    building: moka::sync::Cache<i64, Arc<tokio::sync::Mutex<()>>>,
}

impl Timelines {
    pub fn new(store: Arc<dyn Store>, homes: Arc<dyn HomeTimelines>, cache: Arc<TweetCache>, settings: TimelineSettings) -> Self {
        Self {
            store,
            homes,
            cache,
            settings,
            large: LargeAccounts {
                all: RwLock::new((0, Arc::default())),
                followed: moka::sync::Cache::builder().max_capacity(100_000).build(),
                marked: RwLock::default(),
            },
            // Kept under a stamp at most as long as the tweet cache keeps counts.
            recent: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(STAMP_TRUST).build(),
            just_followed: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(FOLLOW_SETTLING).build(),
            building: moka::sync::Cache::builder().max_capacity(10_000).time_to_idle(Duration::from_secs(60)).build(),
        }
    }

    pub fn settings(&self) -> TimelineSettings {
        self.settings
    }

    pub fn homes(&self) -> &Arc<dyn HomeTimelines> {
        &self.homes
    }

    /// Reads the set of large accounts now and every few seconds until `stop`.
    pub async fn watch_large_accounts(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.refresh_large().await {
                tracing::warn!(error = %e, "timelines: reading the large accounts failed");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(LARGE_REFRESH) => {}
            }
        }
    }

    pub async fn refresh_large(&self) -> Result<()> {
        let ids: HashSet<Id> = self.store.large_accounts(self.settings.fanout_limit / 2).await?.into_iter().collect();
        let mut all = self.large.all.write().unwrap_or_else(|e| e.into_inner());
        if *all.1 != ids {
            *all = (all.0 + 1, Arc::new(ids));
        }
        Ok(())
    }

    /// The large accounts `reader` follows.
    async fn large_followed(&self, reader: Id) -> Result<Arc<Vec<Id>>> {
        let (version, all) = self.large.all.read().unwrap_or_else(|e| e.into_inner()).clone();
        if all.is_empty() {
            return Ok(Arc::default());
        }
        if let Some((v, followed)) = self.large.followed.get(&reader.as_i64()) {
            if v == version {
                return Ok(followed);
            }
        }
        let candidates: Vec<Id> = all.iter().copied().collect();
        let followed = Arc::new(self.store.follows_among(reader, &candidates).await?);
        self.large.followed.insert(reader.as_i64(), (version, followed.clone()));
        Ok(followed)
    }

    /// `reader` now follows (`followed`), or no longer follows, `account`:
    /// the account's newest tweets go into, or out of, the kept timeline,
    /// which stays kept (rebuilding it would read every followed account).
    /// A timeline not kept is left alone: a build reads the follows after
    /// this one committed. Reading the account's newest tweets for nothing
    /// was most of a follow's database time after it had just posted
    /// hundreds (200 ids a follow, from pages not yet all-visible).
    ///
    /// A kept timeline that is not complete takes nothing older than its
    /// oldest id, so only the account's tweets from there up are read: a
    /// busy reader's timeline spans seconds, and a prolific account has a
    /// few tweets in it, not the 200 a whole read would bring (then add to
    /// the timeline, only for its trim to drop them).
    pub async fn follows_changed(&self, reader: Id, account: Id, followed: bool) -> Result<()> {
        self.large.followed.invalidate(&reader.as_i64());
        if !self.settings.keep {
            return Ok(());
        }
        let from = match self.homes.kept(reader).await? {
            Kept::No => return Ok(()),
            Kept::Whole => None,
            Kept::From(oldest) => Some(oldest),
        };
        let n = self.settings.build;
        let newest = self.store.author_tweet_ids(account, from, None, n).await?;
        let complete = newest.len() < n as usize;
        self.homes.follows_changed(reader, FollowChange { followed, newest: &newest, complete }).await?;
        let mut settling = self.just_followed.get(&reader.as_i64()).map(|a| Vec::clone(&a)).unwrap_or_default();
        settling.retain(|&a| a != account);
        if followed {
            settling.push(account);
            if from.is_none() {
                // All the account's newest, as a page merging it reads them.
                self.recent.insert(account.as_i64(), Recent::new(newest, complete, 0));
            }
        }
        self.just_followed.insert(reader.as_i64(), Arc::new(settling));
        Ok(())
    }

    /// Up to `page.limit` tweets, newest first, older than `page.before`.
    pub async fn page(&self, reader: Id, page: PageRequest) -> Result<Vec<Tweet>> {
        let limit = page.limit as usize;
        if !self.settings.keep {
            return self.page_from_database(reader, page).await;
        }
        let Some(ids) = self.kept_ids(reader, page).await? else {
            return self.page_from_database(reader, page).await;
        };
        let tweets = self.cache.tweets(&ids, Some(reader)).await?;
        if tweets.len() < ids.len() && ids.len() == limit {
            // Some were deleted: the kept ids no longer fill the page.
            return self.page_from_database(reader, page).await;
        }
        Ok(tweets)
    }

    async fn page_from_database(&self, reader: Id, page: PageRequest) -> Result<Vec<Tweet>> {
        metrics::counter!("chirp_timeline_database_pages_total").increment(1);
        let ids = self.store.home_timeline_ids(reader, page.before, page.limit).await?;
        Ok(self.cache.tweets(&ids, Some(reader)).await?)
    }

    /// The page's ids from what is kept, or `None` if what is kept cannot say exactly.
    async fn kept_ids(&self, reader: Id, page: PageRequest) -> Result<Option<Vec<Id>>> {
        let limit = page.limit as usize;
        let kept = match self.homes.page(reader, page.before, limit).await? {
            Some(kept) => kept,
            None => {
                let building = self.building.get_with(reader.as_i64(), Default::default);
                let _building = building.lock().await;
                // A build that held the lock may have kept it meanwhile.
                let kept = match self.homes.page(reader, page.before, limit).await? {
                    Some(kept) => Some(kept),
                    None => {
                        self.build(reader).await?;
                        self.homes.page(reader, page.before, limit).await?
                    }
                };
                match kept {
                    Some(kept) => kept,
                    None => return Ok(None), // a follow or another node's build overtook this one
                }
            }
        };
        if !kept.exhaustive {
            return Ok(None);
        }
        let mut ids = kept.ids;
        let settling = self.just_followed.get(&reader.as_i64()).unwrap_or_default();
        let large = self.large_followed(reader).await?;
        let merged: Vec<Id> = large.iter().chain(settling.iter()).copied().collect();
        let stale = merged.iter().filter(|a| !self.recent.get(&a.as_i64()).is_some_and(|r| r.fresh())).map(|a| Stamp::Posts(*a));
        let stamps = self.cache.read_stamps(stale.collect()).await;
        for author in merged {
            ids.extend(self.author_ids(author, page, &stamps).await?);
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(limit);
        Ok(Some(ids))
    }

    async fn build(&self, reader: Id) -> Result<()> {
        metrics::counter!("chirp_timeline_builds_total").increment(1);
        let ticket = self.homes.begin_build(reader).await?;
        let newest = self.store.home_timeline_ids(reader, None, self.settings.build).await?;
        let complete = newest.len() < self.settings.build as usize;
        Ok(self.homes.finish_build(ticket, &newest, complete).await?)
    }

    /// A large account's ids for the page: from its kept recent tweets, or the database.
    async fn author_ids(&self, author: Id, page: PageRequest, stamps: &Stamps) -> Result<Vec<Id>> {
        let stamp = stamps.get(&Stamp::Posts(author)).copied();
        let recent = match self.recent.get(&author.as_i64()) {
            Some(recent) if recent.trusted(stamp) => recent,
            _ => {
                let n = self.settings.build;
                let ids = self.store.author_tweet_ids(author, None, None, n).await?;
                let complete = ids.len() < n as usize;
                let recent = Recent::new(ids, complete, stamp.unwrap_or(0));
                self.recent.insert(author.as_i64(), recent.clone());
                recent
            }
        };
        let (ids, complete) = (&recent.ids, recent.complete);
        let before = page.before.map_or(i64::MAX, Id::as_i64);
        let from: Vec<Id> = ids.iter().copied().filter(|id| id.as_i64() < before).take(page.limit as usize).collect();
        if from.len() == page.limit as usize || complete {
            return Ok(from);
        }
        Ok(self.store.author_tweet_ids(author, None, page.before, page.limit).await?)
    }

    /// The fan-out found `author` too large to push: merge them from now on
    /// and for good. The mark is durable (every node reads it at its next
    /// refresh, and it survives restarts): the tweets not pushed must stay
    /// merged even if the account later falls back under the threshold.
    pub async fn note_large(&self, author: Id) -> Result<()> {
        if self.large.marked.read().unwrap_or_else(|e| e.into_inner()).contains(&author) {
            return Ok(());
        }
        self.store.mark_merged_at_read(author).await?;
        self.large.marked.write().unwrap_or_else(|e| e.into_inner()).insert(author);
        let mut all = self.large.all.write().unwrap_or_else(|e| e.into_inner());
        if !all.1.contains(&author) {
            let mut ids = HashSet::clone(&all.1);
            ids.insert(author);
            *all = (all.0 + 1, Arc::new(ids));
        }
        Ok(())
    }

    /// The author posted: what this node keeps of their recent tweets is read again.
    pub fn author_posted(&self, author: Id) {
        self.recent.invalidate(&author.as_i64());
    }
}
