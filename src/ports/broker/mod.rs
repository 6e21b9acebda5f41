//! The Broker port: a durable, ordered, keyed message log with consumer
//! groups (Kafka's model). The outbox relay publishes to it; the
//! notification consumer reads from it. In-process by default; Kafka with
//! `CHIRP_KAFKA_BROKERS`.

mod kafka;
mod memory;
mod pack;

use async_trait::async_trait;
use futures::future::BoxFuture;

pub use self::kafka::{FETCH_WAIT, KafkaBroker, TopicLayout, consumer_config, producer_config, wait_for_closes};
pub use self::memory::MemoryBroker;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("broker stopped")]
    Closed,
}

/// The broker's acknowledgement of one message handed to it with
/// [`Broker::send`]: resolves once the message is stored durably.
pub type Ack = BoxFuture<'static, Result<(), BrokerError>>;

/// One message as a consumer receives it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub partition: i32,
    pub offset: i64,
    /// Whether no other message of this offset comes after it. False only
    /// for a message the Kafka adapter packed with later ones into one
    /// record: committing it leaves the record to be delivered again.
    pub last_at_offset: bool,
}

/// One message to hand to the broker (see [`Broker::send_all`]).
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub payload: &'a [u8],
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    /// Whether the broker answers (for `/readyz`).
    async fn ping(&self) -> Result<(), BrokerError>;

    /// Makes sure `topic` exists (created with the broker's defaults if missing).
    async fn ensure_topic(&self, topic: &str) -> Result<(), BrokerError>;

    /// Hands one message to the broker now and returns its acknowledgement
    /// to await later, so that many can be in flight at once. Messages with
    /// the same key, handed over one after another, are stored in that order.
    /// Only once its acknowledgement resolves may the caller forget a message.
    fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<Ack, BrokerError>;

    /// Hands several messages to the broker now, in order, and returns their
    /// acknowledgements in the same order: as [`Broker::send`] each, except
    /// that an adapter may carry several in one request or record (Kafka
    /// packs those bound for one partition into one record: `broker/pack.rs`).
    fn send_all(&self, messages: &[Outgoing<'_>]) -> Result<Vec<Ack>, BrokerError> {
        messages.iter().map(|m| self.send(m.topic, m.key, m.payload)).collect()
    }

    /// Publishes one message and returns once the broker has acknowledged it
    /// (stored durably): only then may the caller forget it.
    async fn publish(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<(), BrokerError> {
        self.send(topic, key, payload)?.await
    }

    /// Joins consumer group `group` on `topic`. Each message is delivered to
    /// one member of the group, and again after a restart or rebalance until
    /// it is committed.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Subscription>, BrokerError>;
}

#[async_trait]
pub trait Subscription: Send {
    /// The next message; waits for one.
    async fn next(&mut self) -> Result<Delivery, BrokerError>;

    /// The next message (waiting for one), and any more that are already
    /// here, up to `max`: consumers that batch their writes take these.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>, BrokerError> {
        use futures::FutureExt;
        let mut batch = vec![self.next().await?];
        while batch.len() < max {
            // Only what is ready now; an error surfaces on the next call.
            match self.next().now_or_never() {
                Some(Ok(delivery)) => batch.push(delivery),
                _ => break,
            }
        }
        Ok(batch)
    }

    /// Records that `delivery` (and everything before it in its partition)
    /// is processed.
    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BrokerError>;

    /// Records that all of `batch` is processed: the last delivery of each partition.
    async fn commit_batch(&mut self, batch: &[Delivery]) -> Result<(), BrokerError> {
        let mut last: std::collections::BTreeMap<i32, &Delivery> = std::collections::BTreeMap::new();
        for d in batch {
            last.insert(d.partition, d);
        }
        for d in last.values() {
            self.commit(d).await?;
        }
        Ok(())
    }

    /// Messages published but not yet consumed by this group, where known.
    async fn lag(&mut self) -> Option<i64> {
        None
    }
}

/// Keeps a consumer of `topic` in `group` going until `stop`: subscribes,
/// hands the subscription to `consume`, and when that fails (or subscribing
/// does) subscribes again after a growing pause. `name` is for the logs.
pub async fn keep_consuming<F, Fut>(
    broker: &dyn Broker,
    topic: &str,
    group: &str,
    name: &str,
    stop: &tokio_util::sync::CancellationToken,
    mut consume: F,
) where
    F: FnMut(Box<dyn Subscription>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut backoff = std::time::Duration::from_millis(250);
    while !stop.is_cancelled() {
        match broker.subscribe(topic, group).await {
            Ok(subscription) => {
                backoff = std::time::Duration::from_millis(250);
                if let Err(e) = consume(subscription).await {
                    tracing::warn!(error = format!("{e:#}"), "{name}: subscription failed; resubscribing");
                }
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "{name}: cannot subscribe yet"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
    }
}
