//! The outbox relay: publishes outbox rows to the broker in id order and
//! marks them published only after the broker acknowledged them. One relay
//! works at a time across all chirp processes on a database (a lease in the
//! database); if its process dies, another takes over when the lease runs out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::Timestamp;
use crate::ports::broker::Broker;
use crate::ports::store::Store;

const LEASE: &str = "outbox-relay";
const LEASE_TTL: Duration = Duration::from_secs(15);
const BATCH: u32 = 500;
const IDLE_POLL: Duration = Duration::from_millis(500);
const KEEP_PUBLISHED: Duration = Duration::from_secs(24 * 3600);

/// The broker topics of the outbox's events.
#[derive(Clone, Debug)]
pub struct EventTopics {
    /// `tweet_liked`: read by the notification consumers.
    pub likes: String,
    /// `tweet_posted`, `tweet_deleted`: read by the fan-out workers.
    pub timeline: String,
}

impl EventTopics {
    pub fn of(&self, kind: &str) -> &str {
        match kind {
            crate::domain::events::TWEET_POSTED | crate::domain::events::TWEET_DELETED => &self.timeline,
            _ => &self.likes,
        }
    }
}

pub struct OutboxRelay {
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
    /// Where each kind of event goes.
    pub topics: EventTopics,
    /// This process, as lease holder.
    pub holder: String,
    pub wake: Arc<Notify>,
}

impl OutboxRelay {
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(250);
        let mut last_prune = std::time::Instant::now();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let wait = match self.round().await {
                Ok(Round::Busy) => {
                    backoff = Duration::from_millis(250);
                    continue;
                }
                Ok(Round::Idle) => {
                    backoff = Duration::from_millis(250);
                    IDLE_POLL
                }
                Ok(Round::NotLeader) => LEASE_TTL / 3,
                Err(e) => {
                    metrics::counter!("chirp_outbox_publish_errors_total").increment(1);
                    tracing::warn!(
                        error = format!("{e:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "outbox relay: publishing failed"
                    );
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    wait
                }
            };
            if last_prune.elapsed() > Duration::from_secs(600) {
                last_prune = std::time::Instant::now();
                let before = Timestamp::from_millis(Timestamp::now().as_millis() - KEEP_PUBLISHED.as_millis() as i64);
                if let Err(e) = self.store.prune_published(before).await {
                    tracing::warn!(error = %e, "outbox relay: pruning failed");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn round(&self) -> anyhow::Result<Round> {
        if !self.store.acquire_lease(LEASE, &self.holder, LEASE_TTL).await? {
            return Ok(Round::NotLeader);
        }
        let rows = self.store.unpublished(BATCH).await?;
        let backlog = if rows.len() < BATCH as usize { rows.len() as i64 } else { self.store.outbox_backlog().await? };
        metrics::gauge!("chirp_outbox_backlog").set(backlog as f64);
        if rows.is_empty() {
            return Ok(Round::Idle);
        }
        // All sends are queued in order before any is awaited; the producer
        // keeps that order per partition.
        let sends = rows.iter().map(|r| self.broker.publish(self.topics.of(&r.kind), r.key.as_bytes(), r.payload.as_bytes()));
        let results = futures::future::join_all(sends).await;
        let acked: Vec<i64> = rows.iter().zip(&results).take_while(|(_, r)| r.is_ok()).map(|(row, _)| row.id).collect();
        self.store.mark_published(&acked, Timestamp::now()).await?;
        metrics::counter!("chirp_outbox_published_total").increment(acked.len() as u64);
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(anyhow::Error::new(e).context(format!("{} of {} events published", acked.len(), rows.len())));
        }
        Ok(if rows.len() as u32 == BATCH { Round::Busy } else { Round::Idle })
    }
}

enum Round {
    Busy,
    Idle,
    NotLeader,
}
