//! In-process broker. It keeps nothing on disk, so its "acknowledgement" is
//! stronger than Kafka's: `publish` returns only once the subscribed group
//! has processed and committed the message. The outbox row therefore stays
//! unpublished until its notification is written, and a crash at any point
//! loses nothing (the relay publishes the row again; the consumer is
//! idempotent). With no subscriber, `publish` waits for one.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::{Ack, Broker, BrokerError, Delivery, Subscription};

type Envelope = (Delivery, oneshot::Sender<()>);

struct Topic {
    // Unbounded: what is in flight is bounded by the publisher (the outbox
    // relay's window), and `send` must hand a message over at once, in order.
    sender: mpsc::UnboundedSender<Envelope>,
    receiver: Option<mpsc::UnboundedReceiver<Envelope>>,
}

#[derive(Default)]
pub struct MemoryBroker {
    topics: Mutex<HashMap<String, Topic>>,
}

impl MemoryBroker {
    fn sender(&self, topic: &str) -> mpsc::UnboundedSender<Envelope> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics
            .entry(topic.to_owned())
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                Topic { sender, receiver: Some(receiver) }
            })
            .sender
            .clone()
    }
}

struct MemorySubscription {
    receiver: mpsc::UnboundedReceiver<Envelope>,
    unacked: HashMap<i64, oneshot::Sender<()>>,
    next_offset: i64,
}

#[async_trait]
impl Broker for MemoryBroker {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), BrokerError> {
        self.sender(topic);
        Ok(())
    }

    fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<Ack, BrokerError> {
        let (ack, acked) = oneshot::channel();
        let delivery =
            Delivery { key: Some(key.to_vec()), payload: payload.to_vec(), partition: 0, offset: 0, last_at_offset: true };
        self.sender(topic).send((delivery, ack)).map_err(|_| BrokerError::Closed)?;
        Ok(acked.map(|acked| acked.map_err(|_| BrokerError::Closed)).boxed())
    }

    async fn subscribe(&self, topic: &str, _group: &str) -> Result<Box<dyn Subscription>, BrokerError> {
        self.sender(topic);
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = topics
            .get_mut(topic)
            .and_then(|t| t.receiver.take())
            .ok_or_else(|| BrokerError::Unavailable(anyhow::anyhow!("the in-process broker has one consumer per topic")))?;
        Ok(Box::new(MemorySubscription { receiver, unacked: HashMap::new(), next_offset: 0 }))
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        let (mut delivery, ack) = self.receiver.recv().await.ok_or(BrokerError::Closed)?;
        delivery.offset = self.next_offset;
        self.next_offset += 1;
        self.unacked.insert(delivery.offset, ack);
        Ok(delivery)
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BrokerError> {
        // Committing an offset commits everything before it, as in Kafka.
        let done: Vec<i64> = self.unacked.keys().copied().filter(|o| *o <= delivery.offset).collect();
        for offset in done {
            if let Some(ack) = self.unacked.remove(&offset) {
                let _ = ack.send(());
            }
        }
        Ok(())
    }

    async fn lag(&mut self) -> Option<i64> {
        Some(self.receiver.len() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_returns_once_the_consumer_commits() {
        let broker = std::sync::Arc::new(MemoryBroker::default());
        let mut sub = broker.subscribe("t", "g").await.unwrap();
        let publisher = {
            let broker = broker.clone();
            tokio::spawn(async move { broker.publish("t", b"k", b"hello").await })
        };
        let d = sub.next().await.unwrap();
        assert_eq!(d.payload, b"hello");
        tokio::task::yield_now().await;
        assert!(!publisher.is_finished(), "not acknowledged before the commit");
        sub.commit(&d).await.unwrap();
        publisher.await.unwrap().unwrap();
    }
}
