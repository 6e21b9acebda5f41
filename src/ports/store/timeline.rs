//! What the home timeline and the tweet cache need from the database: ids
//! rather than rows, counters apart from bodies, and follower lists in pages,
//! each query bounded by what it returns rather than by history.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{Id, User};

/// A tweet's counters, read apart from its body (which does not change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TweetCounters {
    pub id: Id,
    pub like_count: i64,
    pub view_count: i64,
}

#[async_trait]
pub trait TimelineStore: Send + Sync + 'static {
    /// The newest ids older than `before` among the tweets of `user` and of
    /// the accounts `user` follows. Each followee contributes at most
    /// `limit` candidates, so the cost is bounded by the page size and the
    /// number of followees, never by their history.
    async fn home_timeline_ids(&self, user: Id, before: Option<Id>, limit: u32) -> Result<Vec<Id>, StoreError>;

    /// The newest ids of one author older than `before` and, given `from`,
    /// not older than `from`.
    async fn author_tweet_ids(&self, author: Id, from: Option<Id>, before: Option<Id>, limit: u32)
    -> Result<Vec<Id>, StoreError>;

    /// Followers of `user`, in follow-id order after `after`: (follow id, follower id).
    async fn follower_ids(&self, user: Id, after: Option<Id>, limit: u32) -> Result<Vec<(Id, Id)>, StoreError>;

    /// Every follower of each of `users`: (followee id, follower id). For
    /// accounts whose follower counts are known to be small.
    async fn followers_of(&self, users: &[Id]) -> Result<Vec<(Id, Id)>, StoreError>;

    async fn users_by_ids(&self, ids: &[Id]) -> Result<Vec<User>, StoreError>;

    /// Counters of the tweets that exist among `ids`.
    async fn tweet_counters(&self, ids: &[Id]) -> Result<Vec<TweetCounters>, StoreError>;

    /// Which of `tweets` `user` likes.
    async fn liked_among(&self, user: Id, tweets: &[Id]) -> Result<Vec<Id>, StoreError>;

    /// The ids of the tweets `user` liked, highest tweet id first.
    async fn liked_tweet_ids(&self, user: Id, limit: u32) -> Result<Vec<Id>, StoreError>;

    /// The accounts merged at read time: those with more than `followers`
    /// followers, and every account marked with [`Self::mark_merged_at_read`].
    async fn large_accounts(&self, followers: i64) -> Result<Vec<Id>, StoreError>;

    /// Marks an account whose tweet the fan-out skipped: merged at read time
    /// from now on, whatever its follower count.
    async fn mark_merged_at_read(&self, user: Id) -> Result<(), StoreError>;
}
