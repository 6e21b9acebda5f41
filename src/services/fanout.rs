//! The fan-out worker: reads `TweetPosted` / `TweetDeleted` events from the
//! broker (a consumer group, so nodes share the work) and pushes each new
//! tweet onto the kept home timelines of the author's followers, unless the
//! author is a large account (merged at read time instead). Offsets are
//! committed after the pushes, so a node that dies mid-fan-out leaves the
//! event to another; pushing twice is harmless (a set).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Id;
use crate::domain::events::{TIMELINE_SCHEMA_VERSION, TWEET_DELETED, TWEET_POSTED, TimelineEvent};
use crate::ports::broker::{Broker, Delivery, Subscription, keep_consuming};
use crate::ports::store::Store;
use crate::services::timeline::Timelines;
use crate::services::tweet_cache::TweetCache;

const BATCH: usize = 64;
const FOLLOWERS_PAGE: u32 = 5_000;

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
            for delivery in &batch {
                let mut wait = Duration::from_millis(100);
                while let Err(e) = self.handle(delivery).await {
                    metrics::counter!("chirp_fanout_errors_total").increment(1);
                    tracing::warn!(error = format!("{e:#}"), "fan-out: retrying an event");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
            subscription.commit_batch(&batch).await?;
            metrics::counter!("chirp_fanout_events_total").increment(batch.len() as u64);
        }
    }

    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let event = match serde_json::from_slice::<TimelineEvent>(&delivery.payload) {
            Ok(e) if e.schema_version == TIMELINE_SCHEMA_VERSION => e,
            Ok(e) => {
                tracing::warn!(schema_version = e.schema_version, "fan-out: skipping an event of unknown version");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, offset = delivery.offset, "fan-out: skipping a malformed message");
                return Ok(());
            }
        };
        match event.kind.as_str() {
            TWEET_POSTED => self.posted(event.author_id, event.tweet_id).await,
            TWEET_DELETED => {
                self.cache.forget_tweet(event.tweet_id);
                self.cache.user_changed(event.author_id);
                self.timelines.author_posted(event.author_id);
                self.for_followers(event.author_id, event.tweet_id, false).await
            }
            other => {
                tracing::warn!(kind = other, "fan-out: skipping an event of unknown type");
                Ok(())
            }
        }
    }

    async fn posted(&self, author: Id, tweet: Id) -> anyhow::Result<()> {
        self.timelines.author_posted(author);
        self.timelines.homes().push(&[author], tweet).await?;
        let Some(user) = self.store.user_by_id(author).await? else { return Ok(()) };
        if user.followers_count > self.timelines.settings().fanout_limit {
            metrics::counter!("chirp_fanout_skipped_large_total").increment(1);
            self.timelines.note_large(author);
            return Ok(());
        }
        self.for_followers(author, tweet, true).await
    }

    /// Pushes `tweet` to (or removes it from) the kept timelines of `author`'s followers.
    async fn for_followers(&self, author: Id, tweet: Id, push: bool) -> anyhow::Result<()> {
        let homes = self.timelines.homes();
        if !push {
            homes.remove(&[author], tweet).await?;
        }
        let mut after = None;
        loop {
            let page = self.store.follower_ids(author, after, FOLLOWERS_PAGE).await?;
            let followers: Vec<Id> = page.iter().map(|(_, follower)| *follower).collect();
            if push {
                homes.push(&followers, tweet).await?;
            } else {
                homes.remove(&followers, tweet).await?;
            }
            metrics::counter!("chirp_fanout_pushes_total").increment(followers.len() as u64);
            if page.len() < FOLLOWERS_PAGE as usize {
                return Ok(());
            }
            after = page.last().map(|(follow, _)| *follow);
        }
    }
}
