//! Home timelines kept per user (fan-out on write): a capped list of the
//! newest tweet ids of each recently active user, in the Cache port's
//! backends: a bounded in-process structure by default, a Redis sorted set
//! per user when Redis is configured (shared by every node).
//!
//! A kept timeline is built from the database on demand. So that no push is
//! lost to a build in progress, a build first makes an empty, not-yet-ready
//! entry that receives pushes (`begin_build`), then reads the database, then
//! adds what it read (`finish_build`): a tweet committed after the read began
//! is pushed after its commit, into the entry. A newer build replaces the
//! entry, a follow or unfollow by its user drops it, and the older build's
//! finish is then dropped. A follow or unfollow changes a ready timeline in
//! place: the account's newest tweets go in or out.

mod memory;
mod redis;

use async_trait::async_trait;

pub use self::memory::MemoryHomeTimelines;
pub use self::redis::RedisHomeTimelines;

use super::CacheError;
use crate::domain::Id;

/// A slice of a kept timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptPage {
    /// Newest first.
    pub ids: Vec<Id>,
    /// The slice is the whole truth: it is full, or nothing older exists.
    pub exhaustive: bool,
}

/// One build of one user's timeline.
#[derive(Clone, Debug)]
pub struct BuildTicket {
    user: Id,
    token: u64,
}

#[async_trait]
pub trait HomeTimelines: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    /// Up to `limit` ids older than `before`, or `None` when the timeline is
    /// not kept (never built, evicted, forgotten, or still being built).
    async fn page(&self, user: Id, before: Option<Id>, limit: usize) -> Result<Option<KeptPage>, CacheError>;

    /// Whether `user`'s timeline is kept or being built (the others take no
    /// push or follow: they are built when next read), and from which id up
    /// it takes tweets.
    async fn kept(&self, user: Id) -> Result<Kept, CacheError>;

    /// Starts (or restarts) keeping `user`'s timeline: pushes are kept from now on.
    async fn begin_build(&self, user: Id) -> Result<BuildTicket, CacheError>;

    /// Adds the newest ids read from the database after `begin_build`;
    /// `complete` when the database had no more. The timeline is then ready.
    async fn finish_build(&self, ticket: BuildTicket, newest: &[Id], complete: bool) -> Result<(), CacheError>;

    /// Adds `tweet` to the timelines of `users` that are kept (the others
    /// are built when next read). A kept timeline that is not complete holds
    /// every tweet from its oldest id up, and takes no tweet older than
    /// that: pushes arrive in any order (from several partitions, or again),
    /// and the tweets between an older one and the oldest kept may have been
    /// trimmed, so keeping it would make a page skip them.
    async fn push(&self, users: &[Id], tweet: Id) -> Result<(), CacheError> {
        let pushes: Vec<(Id, Id)> = users.iter().map(|user| (*user, tweet)).collect();
        self.push_each(&pushes).await
    }

    /// [`HomeTimelines::push`] of many tweets at once: each `(user, tweet)`
    /// in turn, in a few round trips rather than one a tweet (the fan-out
    /// worker's pushes for a batch of events).
    async fn push_each(&self, pushes: &[(Id, Id)]) -> Result<(), CacheError>;

    /// Takes `tweet` out of the timelines of `users` that are kept (one that
    /// is left with no id and is not complete is no longer kept).
    async fn remove(&self, users: &[Id], tweet: Id) -> Result<(), CacheError>;

    /// `user` now follows (`followed`), or no longer follows, an account
    /// whose newest tweets are `newest` (`complete`: it has no older ones).
    /// A ready timeline takes them in, or takes them out, and holds a
    /// complete history from its oldest id up afterwards: when the account
    /// has older tweets, whatever is older than `newest` goes. A timeline
    /// still being built is dropped (what its build read may predate the
    /// change), as is one left with no id that is not complete.
    async fn follows_changed(&self, user: Id, change: FollowChange<'_>) -> Result<(), CacheError>;
}

/// Whether a timeline is kept, and which of an account's tweets a follow
/// or an unfollow must bring to it ([`HomeTimelines::kept`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// Not kept: built from the follows as they are when next read.
    No,
    /// Kept, and may take any of the account's tweets: being built,
    /// complete, or holding no id.
    Whole,
    /// Ready and not complete: it holds no id older than this one and takes
    /// none (see [`HomeTimelines::push`]), so only the account's tweets
    /// from it up matter.
    From(Id),
}

/// What [`HomeTimelines::follows_changed`] is told: one account, followed or unfollowed.
#[derive(Clone, Copy, Debug)]
pub struct FollowChange<'a> {
    pub followed: bool,
    /// The account's newest tweets, newest first: all of them, or those
    /// from the id [`Kept::From`] gave up.
    pub newest: &'a [Id],
    /// `newest` holds every tweet of the account the timeline can take: it
    /// has no older one, or none older from the id [`Kept::From`] gave up.
    pub complete: bool,
}

impl FollowChange<'_> {
    /// The oldest id a timeline may keep after the change, when the account
    /// has tweets older than `newest` the timeline could hold: below it, the
    /// timeline would hold some of the account's tweets and not others.
    fn floor(&self) -> Option<Id> {
        if self.complete { None } else { self.newest.iter().copied().min() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[i64]) -> Vec<Id> {
        raw.iter().copied().map(Id::from_i64).collect()
    }

    #[tokio::test]
    async fn a_timeline_is_kept_only_once_built_and_keeps_pushes_made_during_the_build() {
        let homes = MemoryHomeTimelines::new(1 << 20, 5);
        let user = Id::from_i64(1);
        assert_eq!(homes.page(user, None, 10).await.unwrap(), None);
        let ticket = homes.begin_build(user).await.unwrap();
        homes.push(&[user], Id::from_i64(50)).await.unwrap();
        assert_eq!(homes.page(user, None, 10).await.unwrap(), None, "not ready while building");
        homes.finish_build(ticket, &ids(&[40, 30]), true).await.unwrap();
        let page = homes.page(user, None, 10).await.unwrap().unwrap();
        assert_eq!(page, KeptPage { ids: ids(&[50, 40, 30]), exhaustive: true });
        let page = homes.page(user, Some(Id::from_i64(50)), 1).await.unwrap().unwrap();
        assert_eq!(page, KeptPage { ids: ids(&[40]), exhaustive: true });
    }

    #[tokio::test]
    async fn the_cap_drops_the_oldest_and_the_rest_is_no_longer_known_complete() {
        let homes = MemoryHomeTimelines::new(1 << 20, 3);
        let user = Id::from_i64(1);
        let ticket = homes.begin_build(user).await.unwrap();
        homes.finish_build(ticket, &ids(&[30, 20, 10]), true).await.unwrap();
        homes.push(&[user], Id::from_i64(40)).await.unwrap();
        let page = homes.page(user, None, 10).await.unwrap().unwrap();
        assert_eq!(page, KeptPage { ids: ids(&[40, 30, 20]), exhaustive: false });
        let full = homes.page(user, None, 2).await.unwrap().unwrap();
        assert!(full.exhaustive, "a full page is exact");
    }

    /// The trimmed timeline [60, 50, 40] (30 and older dropped) loses 40 and
    /// 50 to deletions, then is pushed 30 again (a late or repeated push):
    /// kept, a page of one after 60 would be 30, skipping the 35 that the
    /// trim dropped. A build that is not complete drops pushes older than
    /// what it read, and a timeline emptied by deletions is built again.
    async fn no_push_makes_a_page_skip_a_tweet(homes: &dyn HomeTimelines, user: Id) {
        let ticket = homes.begin_build(user).await.unwrap();
        homes.push(&[user], Id::from_i64(5)).await.unwrap();
        homes.finish_build(ticket, &ids(&[40, 35, 30, 20]), false).await.unwrap();
        let page = homes.page(user, None, 10).await.unwrap().unwrap();
        assert_eq!(page, KeptPage { ids: ids(&[40, 35, 30]), exhaustive: false }, "5 dropped, 20 trimmed");
        homes.push(&[user], Id::from_i64(50)).await.unwrap();
        homes.push(&[user], Id::from_i64(60)).await.unwrap();
        homes.remove(&[user], Id::from_i64(40)).await.unwrap();
        homes.remove(&[user], Id::from_i64(50)).await.unwrap();
        homes.push(&[user], Id::from_i64(30)).await.unwrap();
        homes.push(&[user], Id::from_i64(10)).await.unwrap();
        let page = homes.page(user, Some(Id::from_i64(60)), 1).await.unwrap().unwrap();
        assert!(!page.exhaustive && page.ids.is_empty(), "the database answers: {page:?}");
        homes.push(&[user], Id::from_i64(65)).await.unwrap();
        assert_eq!(homes.page(user, None, 2).await.unwrap().unwrap(), KeptPage { ids: ids(&[65, 60]), exhaustive: true });
        homes.remove(&[user], Id::from_i64(65)).await.unwrap();
        homes.remove(&[user], Id::from_i64(60)).await.unwrap();
        assert_eq!(homes.page(user, None, 1).await.unwrap(), None, "emptied: built again when next read");
    }

    #[tokio::test]
    async fn no_push_makes_a_page_skip_a_tweet_in_process() {
        no_push_makes_a_page_skip_a_tweet(&MemoryHomeTimelines::new(1 << 20, 3), Id::from_i64(1)).await;
    }

    /// Timelines in the test Redis under a prefix of their own, when one is configured.
    async fn in_redis(cap: usize) -> Option<RedisHomeTimelines> {
        let url = std::env::var("CHIRP_TEST_REDIS_URL").ok()?;
        let prefix = format!("chirp-test-{:016x}:", rand::random::<u64>());
        let redis = crate::ports::cache::RedisCache::connect(&url, &prefix).await.unwrap();
        Some(RedisHomeTimelines::new(redis, cap))
    }

    #[tokio::test]
    async fn no_push_makes_a_page_skip_a_tweet_in_redis() {
        let Some(homes) = in_redis(3).await else { return };
        no_push_makes_a_page_skip_a_tweet(&homes, Id::from_i64(1)).await;
    }

    fn follow(newest: &[Id], complete: bool) -> FollowChange<'_> {
        FollowChange { followed: true, newest, complete }
    }

    fn unfollow(newest: &[Id], complete: bool) -> FollowChange<'_> {
        FollowChange { followed: false, newest, complete }
    }

    /// A follow or unfollow changes a ready timeline in place, keeping it
    /// whole from its oldest id up, and drops a build in progress.
    async fn a_follow_or_unfollow_keeps_the_timeline_whole(homes: &dyn HomeTimelines, user: Id) {
        let page = || async move { homes.page(user, None, 10).await.unwrap() };
        let kept = || async move { homes.kept(user).await.unwrap() };
        assert_eq!(kept().await, Kept::No);
        let ticket = homes.begin_build(user).await.unwrap();
        assert_eq!(kept().await, Kept::Whole, "being built: a follow drops it");
        homes.finish_build(ticket, &ids(&[50, 30, 10]), true).await.unwrap();
        assert_eq!(kept().await, Kept::Whole, "complete: it takes an account's oldest tweets");

        // An account with no older tweets: all of them come in.
        homes.follows_changed(user, follow(&ids(&[40, 5]), true)).await.unwrap();
        assert_eq!(page().await, Some(KeptPage { ids: ids(&[50, 40, 30, 10, 5]), exhaustive: true }));

        // One with older tweets than those given: nothing older than its
        // oldest given is kept, and the rest is no longer known complete.
        homes.follows_changed(user, follow(&ids(&[45, 20]), false)).await.unwrap();
        assert_eq!(page().await, Some(KeptPage { ids: ids(&[50, 45, 40, 30, 20]), exhaustive: false }));
        assert_eq!(kept().await, Kept::From(Id::from_i64(20)), "not complete: it takes nothing older than 20");

        // Once not complete, an account's tweets older than the oldest kept stay out.
        homes.follows_changed(user, follow(&ids(&[35, 15]), true)).await.unwrap();
        assert_eq!(page().await, Some(KeptPage { ids: ids(&[50, 45, 40, 35, 30, 20]), exhaustive: false }));

        // Unfollowing takes the account's tweets out.
        homes.follows_changed(user, unfollow(&ids(&[45, 20]), true)).await.unwrap();
        assert_eq!(page().await, Some(KeptPage { ids: ids(&[50, 40, 35, 30]), exhaustive: false }));
        homes.follows_changed(user, unfollow(&ids(&[50]), false)).await.unwrap();
        assert_eq!(page().await, None, "nothing at or above 50 is left: built again when next read");
        assert_eq!(kept().await, Kept::No);

        // A build in progress may have read the follows before the change.
        let ticket = homes.begin_build(user).await.unwrap();
        homes.follows_changed(user, follow(&ids(&[60]), true)).await.unwrap();
        homes.finish_build(ticket, &ids(&[1]), true).await.unwrap();
        assert_eq!(page().await, None);
    }

    #[tokio::test]
    async fn a_follow_or_unfollow_keeps_the_timeline_whole_in_process() {
        a_follow_or_unfollow_keeps_the_timeline_whole(&MemoryHomeTimelines::new(1 << 20, 6), Id::from_i64(1)).await;
    }

    #[tokio::test]
    async fn a_follow_or_unfollow_keeps_the_timeline_whole_in_redis() {
        let Some(homes) = in_redis(6).await else { return };
        a_follow_or_unfollow_keeps_the_timeline_whole(&homes, Id::from_i64(1)).await;
    }
}
