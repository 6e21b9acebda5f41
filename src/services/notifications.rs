//! Like notifications: the consumer that turns `tweet_liked` events from the
//! broker into notifications, and reading them.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::events::{LIKE_SCHEMA_VERSION, TWEET_LIKED, TweetLiked};
use crate::domain::{Id, IdGenerator, Timestamp};
use crate::error::{Error, Result};
use crate::ports::broker::{Broker, Delivery, Subscription, keep_consuming};
use crate::ports::store::{NewNotification, NotificationRecord, PageRequest, Store};
use crate::services::live::{Announcement, LiveHub, LiveStream};
use crate::services::pages::Page;
use crate::services::writes::Writer;

/// Messages written in one transaction at most.
const BATCH: usize = 256;

pub struct Notifications {
    store: Arc<dyn Store>,
    pub live: Arc<LiveHub>,
}

impl Notifications {
    pub fn new(store: Arc<dyn Store>, live: Arc<LiveHub>) -> Self {
        Self { store, live }
    }

    pub async fn list(&self, owner: Id, unread_only: bool, page: (PageRequest, u32)) -> Result<Page<NotificationRecord>> {
        let rows = self.store.notifications(owner, unread_only, page.0).await?;
        Ok(Page::from_rows(rows, page.1, |n| n.id))
    }

    /// The owner's notifications among `ids`, oldest first.
    pub async fn by_ids(&self, owner: Id, ids: &[Id]) -> Result<Vec<NotificationRecord>> {
        Ok(self.store.notifications_by_ids(owner, ids).await?)
    }

    pub async fn mark_read(&self, owner: Id, ids: Option<&[Id]>) -> Result<()> {
        Ok(self.store.mark_read(owner, ids).await?)
    }

    pub async fn unread_count(&self, owner: Id) -> Result<i64> {
        Ok(self.store.unread_count(owner).await?)
    }

    /// A live stream of `owner`'s new notifications (see `LiveHub::open` for the limits).
    pub async fn open_stream(&self, owner: Id) -> Result<LiveStream> {
        self.live.open(owner).await.map_err(|full| Error::Unavailable { what: "a live stream", source: full.into() })
    }
}

/// What the consumer did with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    Notified(Id),
    /// Already notified (a redelivery or a like after an unlike), or the tweet is gone.
    Nothing,
    /// Not an event this version understands: logged, counted, skipped.
    Skipped,
}

/// Consumes like events in a consumer group; commits each offset only after
/// its notification is committed to the database.
pub struct NotificationConsumer {
    /// Notifications are stored through the group commit, with the likes.
    pub writer: Writer,
    pub broker: Arc<dyn Broker>,
    pub live: Arc<LiveHub>,
    pub ids: Arc<IdGenerator>,
    pub topic: String,
    pub group: String,
}

impl NotificationConsumer {
    pub async fn run(self, stop: CancellationToken) {
        let (broker, topic, group) = (self.broker.clone(), self.topic.clone(), self.group.clone());
        keep_consuming(broker.as_ref(), &topic, &group, "notification consumer", &stop, |s| self.consume(s, &stop)).await;
    }

    async fn consume(&self, mut subscription: Box<dyn Subscription>, stop: &CancellationToken) -> anyhow::Result<()> {
        let mut lag_sampled = std::time::Instant::now();
        loop {
            let batch = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                b = subscription.next_batch(BATCH) => b?,
            };
            // Retry the batch until its notifications are committed: the database may be briefly away.
            let mut wait = Duration::from_millis(100);
            loop {
                match self.handle(&batch).await {
                    Ok(_) => break,
                    Err(e) => {
                        metrics::counter!("chirp_consumer_errors_total").increment(1);
                        tracing::warn!(
                            error = format!("{:#}", anyhow::Error::from(e)),
                            "notification consumer: retrying a batch"
                        );
                        tokio::select! {
                            _ = stop.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(wait) => {}
                        }
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
            // Offsets only after the database commit; the last of each partition covers the rest.
            subscription.commit_batch(&batch).await?;
            metrics::counter!("chirp_consumer_messages_total").increment(batch.len() as u64);
            if lag_sampled.elapsed() > Duration::from_secs(5) {
                lag_sampled = std::time::Instant::now();
                if let Some(lag) = subscription.lag().await {
                    metrics::gauge!("chirp_consumer_lag").set(lag as f64);
                }
            }
        }
    }

    /// Turns each message into at most one notification, all in one
    /// transaction; announces the new ones to live streams.
    pub async fn handle(&self, batch: &[Delivery]) -> Result<Vec<Handled>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut new = Vec::new();
        for delivery in batch {
            let event = match serde_json::from_slice::<TweetLiked>(&delivery.payload) {
                Ok(e) if e.schema_version == LIKE_SCHEMA_VERSION && e.kind == TWEET_LIKED => e,
                Ok(e) => {
                    metrics::counter!("chirp_consumer_skipped_total").increment(1);
                    tracing::warn!(schema_version = e.schema_version, kind = %e.kind, offset = delivery.offset, "notification consumer: skipping an event of unknown version");
                    outcomes.push(Handled::Skipped);
                    continue;
                }
                Err(e) => {
                    metrics::counter!("chirp_consumer_skipped_total").increment(1);
                    tracing::warn!(error = %e, partition = delivery.partition, offset = delivery.offset, "notification consumer: skipping a malformed message");
                    outcomes.push(Handled::Skipped);
                    continue;
                }
            };
            if event.owner_id == event.liker_id {
                outcomes.push(Handled::Nothing);
                continue;
            }
            outcomes.push(Handled::Nothing);
            new.push((
                outcomes.len() - 1,
                NewNotification {
                    id: self.ids.next_id(),
                    owner: event.owner_id,
                    actor: event.liker_id,
                    tweet: event.tweet_id,
                    kind: "like",
                    event_id: event.event_id,
                    created_at: Timestamp::now(),
                },
            ));
        }
        if new.is_empty() {
            return Ok(outcomes);
        }
        let notifications: Vec<NewNotification> = new.iter().map(|(_, n)| n.clone()).collect();
        let stored = self.writer.notify(notifications).await?;
        let mut announcements = Vec::new();
        for ((slot, n), stored) in new.into_iter().zip(stored) {
            if stored {
                announcements.push(Announcement { owner: n.owner, notification: n.id });
                outcomes[slot] = Handled::Notified(n.id);
            }
        }
        // Live streams hear of the whole batch as soon as it is committed: the
        // announcements go out together (with Redis, pipelined on one
        // connection) rather than one round trip after another.
        futures::future::join_all(announcements.into_iter().map(|a| self.live.announce(a))).await;
        Ok(outcomes)
    }
}
