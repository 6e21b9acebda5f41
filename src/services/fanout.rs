//! The fan-out worker: reads `TweetPosted` / `TweetDeleted` events from the
//! broker (a consumer group, so nodes share the work) and pushes each new
//! tweet onto the kept home timelines of the author's followers, unless the
//! author is a large account (merged at read time instead). Offsets are
//! committed after the pushes, so a node that dies mid-fan-out leaves the
//! event to another; pushing twice is harmless (a set).
//!
//! A batch of events costs three queries, not three per event: the authors
//! in one, and the followers of every author with at most
//! [`PREFETCH_FOLLOWERS`] followers in another (larger accounts are read in
//! pages), read again after the pushes (below). One event at a time, the
//! worker waited for the database twice an event and fell behind sustained
//! posting (about 600 events/s under load). The pushes of a batch are made
//! together too (`HomeTimelines::push_each`: one Redis round trip for 500
//! of them, where each event took one or two).
//!
//! **Unfollows during a push.** An unfollow takes the account's newest
//! tweets out of the reader's kept timeline once it has committed; a push
//! of the same tweet that read the followers before that commit and lands
//! after the removal would put the tweet back for good. So after pushing,
//! the worker reads the followers again and takes the tweet back from
//! whoever is no longer among them. Either the unfollow committed before
//! that second read, which then misses the reader, or after it, and so
//! after the push, and the unfollow's own removal comes last.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::events::{TIMELINE_SCHEMA_VERSION, TWEET_DELETED, TWEET_POSTED, TimelineEvent};
use crate::domain::{Id, User};
use crate::ports::broker::{Broker, Delivery, Subscription, keep_consuming};
use crate::ports::store::Store;
use crate::services::timeline::Timelines;
use crate::services::tweet_cache::TweetCache;

const BATCH: usize = 256;
const FOLLOWERS_PAGE: u32 = 5_000;
/// Authors with at most this many followers have them read together, in
/// one query for the batch (at most `BATCH` times this many rows).
const PREFETCH_FOLLOWERS: i64 = 1_000;

pub struct FanoutWorker {
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
    pub timelines: Arc<Timelines>,
    pub cache: Arc<TweetCache>,
    pub topic: String,
    pub group: String,
}

impl FanoutWorker {
    pub async fn run(self, stop: CancellationToken) {
        let (broker, topic, group) = (self.broker.clone(), self.topic.clone(), self.group.clone());
        keep_consuming(broker.as_ref(), &topic, &group, "fan-out", &stop, |s| self.consume(s, &stop)).await;
    }

    async fn consume(&self, mut subscription: Box<dyn Subscription>, stop: &CancellationToken) -> anyhow::Result<()> {
        loop {
            let batch = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                b = subscription.next_batch(BATCH) => b?,
            };
            let events: Vec<TimelineEvent> = batch.iter().filter_map(decode).collect();
            let mut wait = Duration::from_millis(100);
            while let Err(e) = self.handle(&events).await {
                metrics::counter!("chirp_fanout_errors_total").increment(1);
                tracing::warn!(error = format!("{e:#}"), "fan-out: retrying a batch");
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            subscription.commit_batch(&batch).await?;
            metrics::counter!("chirp_fanout_events_total").increment(batch.len() as u64);
        }
    }

    /// Applies `events` in order (pushes and removes of one tweet must not cross).
    async fn handle(&self, events: &[TimelineEvent]) -> anyhow::Result<()> {
        let authors: Vec<Id> = events.iter().map(|e| e.author_id).collect::<HashSet<_>>().into_iter().collect();
        let users: HashMap<Id, User> = self.store.users_by_ids(&authors).await?.into_iter().map(|u| (u.id, u)).collect();
        let small: Vec<Id> =
            users.values().filter(|u| u.followers_count <= PREFETCH_FOLLOWERS && u.followers_count > 0).map(|u| u.id).collect();
        let mut followers: HashMap<Id, Vec<Id>> = small.iter().map(|id| (*id, Vec::new())).collect();
        for (followee, follower) in self.store.followers_of(&small).await? {
            followers.entry(followee).or_default().push(follower);
        }
        let homes = self.timelines.homes();
        // Pushes not made yet: made together, before anything that must
        // come after them (a removal, a large account's pages) and at the end.
        let mut pending: Vec<(Id, Id)> = Vec::new();
        // Tweets pushed to the prefetched followers, by author.
        let mut pushed: Vec<(Id, Id)> = Vec::new();
        for event in events {
            let (author, tweet) = (event.author_id, event.tweet_id);
            let posted = event.kind == TWEET_POSTED;
            if posted {
                self.timelines.author_posted(author);
                pending.push((author, tweet));
                let Some(user) = users.get(&author) else { continue };
                if user.followers_count > self.timelines.settings().fanout_limit {
                    metrics::counter!("chirp_fanout_skipped_large_total").increment(1);
                    self.timelines.note_large(author).await?;
                    continue;
                }
            } else {
                self.push_pending(&mut pending).await?;
                self.cache.forget_tweet(tweet).await;
                self.cache.user_changed(author);
                self.timelines.author_posted(author);
                homes.remove(&[author], tweet).await?;
            }
            match (followers.get(&author), users.get(&author)) {
                (Some(list), _) => {
                    if posted {
                        pending.extend(list.iter().map(|follower| (*follower, tweet)));
                        pushed.push((author, tweet));
                    } else {
                        homes.remove(list, tweet).await?;
                    }
                    metrics::counter!("chirp_fanout_pushes_total").increment(list.len() as u64);
                }
                (None, Some(user)) if user.followers_count == 0 => {}
                // More followers than prefetched, or an author not found
                // (a delete still removes what was pushed).
                _ => {
                    self.push_pending(&mut pending).await?;
                    self.for_followers(author, tweet, posted).await?;
                }
            }
        }
        self.push_pending(&mut pending).await?;
        if !pushed.is_empty() {
            let authors: Vec<Id> = pushed.iter().map(|(author, _)| *author).collect::<HashSet<_>>().into_iter().collect();
            let mut now: HashMap<Id, HashSet<Id>> = HashMap::new();
            for (followee, follower) in self.store.followers_of(&authors).await? {
                now.entry(followee).or_default().insert(follower);
            }
            let none = HashSet::new();
            for (author, tweet) in pushed {
                self.take_back(&followers[&author], now.get(&author).unwrap_or(&none), tweet).await?;
            }
        }
        Ok(())
    }

    /// Makes the pushes in `pending`, together, and empties it.
    async fn push_pending(&self, pending: &mut Vec<(Id, Id)>) -> anyhow::Result<()> {
        if !pending.is_empty() {
            self.timelines.homes().push_each(pending).await?;
            pending.clear();
        }
        Ok(())
    }

    /// Pushes `tweet` to (or removes it from) the kept timelines of
    /// `author`'s followers; after a push, takes it back from those who
    /// have unfollowed meanwhile.
    async fn for_followers(&self, author: Id, tweet: Id, push: bool) -> anyhow::Result<()> {
        let homes = self.timelines.homes();
        let followers = self.all_followers(author).await?;
        for chunk in followers.chunks(FOLLOWERS_PAGE as usize) {
            if push {
                homes.push(chunk, tweet).await?;
            } else {
                homes.remove(chunk, tweet).await?;
            }
        }
        metrics::counter!("chirp_fanout_pushes_total").increment(followers.len() as u64);
        if push {
            let still: HashSet<Id> = self.all_followers(author).await?.into_iter().collect();
            self.take_back(&followers, &still, tweet).await?;
        }
        Ok(())
    }

    /// Takes `tweet` back from those it was pushed to who are not `still`
    /// following its author: they unfollowed while it was pushed.
    async fn take_back(&self, pushed_to: &[Id], still: &HashSet<Id>, tweet: Id) -> anyhow::Result<()> {
        let gone: Vec<Id> = pushed_to.iter().copied().filter(|f| !still.contains(f)).collect();
        if !gone.is_empty() {
            self.timelines.homes().remove(&gone, tweet).await?;
        }
        Ok(())
    }

    /// Every follower of `author`, read in pages.
    async fn all_followers(&self, author: Id) -> anyhow::Result<Vec<Id>> {
        let mut followers = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.follower_ids(author, after, FOLLOWERS_PAGE).await?;
            followers.extend(page.iter().map(|(_, follower)| *follower));
            if page.len() < FOLLOWERS_PAGE as usize {
                return Ok(followers);
            }
            after = page.last().map(|(follow, _)| *follow);
        }
    }
}

/// The event in a delivery, or `None` (logged) for one this version cannot read.
fn decode(delivery: &Delivery) -> Option<TimelineEvent> {
    match serde_json::from_slice::<TimelineEvent>(&delivery.payload) {
        Ok(e) if e.schema_version != TIMELINE_SCHEMA_VERSION => {
            tracing::warn!(schema_version = e.schema_version, "fan-out: skipping an event of unknown version");
            None
        }
        Ok(e) if e.kind != TWEET_POSTED && e.kind != TWEET_DELETED => {
            tracing::warn!(kind = e.kind, "fan-out: skipping an event of unknown type");
            None
        }
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, offset = delivery.offset, "fan-out: skipping a malformed message");
            None
        }
    }
}
