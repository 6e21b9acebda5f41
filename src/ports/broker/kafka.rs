//! Kafka adapter (librdkafka through `rdkafka`). The producer is idempotent
//! and `publish` returns only after the broker's acknowledgement from all
//! in-sync replicas. Subscriptions are consumer-group members that never
//! commit on their own: an offset is committed only when the caller says the
//! message is processed, so a crash or a rebalance redelivers what was not
//! (at least once; the notification consumer is idempotent).
//!
//! librdkafka connects lazily and reconnects by itself: a broker that is down
//! when chirp starts is not an error here, only in the calls that need it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{Broker, BrokerError, Delivery, Subscription};

/// How long `publish` may take, retries included, before it gives up.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Round trips that answer at once on a healthy broker (metadata, offsets).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub struct KafkaBroker {
    brokers: String,
    partitions: i32,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

fn unavailable(e: impl Into<anyhow::Error>) -> BrokerError {
    BrokerError::Unavailable(e.into())
}

/// Runs a librdkafka call that blocks (network round trips) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(f).await.map_err(unavailable)?.map_err(unavailable)
}

impl KafkaBroker {
    /// `brokers`: `host1:9092,host2:9092`; `partitions`: of the topics chirp creates.
    pub async fn connect(brokers: &str, partitions: i32) -> anyhow::Result<Self> {
        Self::connect_with_timeout(brokers, partitions, MESSAGE_TIMEOUT).await
    }

    /// As `connect`, with `publish` giving up after `message_timeout`.
    pub async fn connect_with_timeout(brokers: &str, partitions: i32, message_timeout: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(partitions > 0, "a topic needs at least one partition, not {partitions}");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "chirp")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", message_timeout.as_millis().max(1).to_string())
            // The Java client's partitioner: a key lands where other Kafka clients put it.
            .set("partitioner", "murmur2_random")
            .create()?;
        let admin = ClientConfig::new().set("bootstrap.servers", brokers).set("client.id", "chirp-admin").create()?;
        Ok(Self { brokers: brokers.to_owned(), partitions, producer, admin })
    }

    /// A new member of `group`; `subscribe` without the box.
    fn join(&self, topic: &str, group: &str) -> Result<KafkaSubscription, BrokerError> {
        let consumer: StreamConsumer<GroupMember> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "chirp")
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // A member that dies without leaving gives its partitions up after this.
            .set("session.timeout.ms", "10000")
            .create_with_context(GroupMember { group: group.to_owned() })
            .map_err(unavailable)?;
        consumer.subscribe(&[topic]).map_err(unavailable)?;
        Ok(KafkaSubscription { consumer: Some(Arc::new(consumer)), topic: topic.to_owned() })
    }
}

#[async_trait]
impl Broker for KafkaBroker {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        let producer = self.producer.clone();
        blocking(move || producer.client().fetch_metadata(None, REQUEST_TIMEOUT)).await?;
        Ok(())
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), BrokerError> {
        let new_topic = NewTopic::new(topic, self.partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT)).operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self.admin.create_topics([&new_topic], &options).await.map_err(unavailable)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(unavailable(anyhow::anyhow!("creating topic {name}: {code}"))),
            }
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<(), BrokerError> {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        // The queue timeout only bounds the wait for room in librdkafka's local
        // queue; `message.timeout.ms` bounds the delivery itself.
        match self.producer.send(record, REQUEST_TIMEOUT).await {
            Ok(_) => Ok(()),
            Err((e, _message)) => Err(unavailable(anyhow::Error::new(e).context(format!("publishing to {topic}")))),
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Subscription>, BrokerError> {
        Ok(Box::new(self.join(topic, group)?))
    }
}

/// Logs the group's partition assignments as they change.
struct GroupMember {
    group: String,
}

impl ClientContext for GroupMember {}

impl ConsumerContext for GroupMember {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &TopicPartitionList| -> Vec<i32> { list.elements().iter().map(|e| e.partition()).collect() };
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, partitions = ?partitions(list), "kafka: partitions assigned")
            }
            Rebalance::Revoke(list) => {
                tracing::info!(group = %self.group, partitions = ?partitions(list), "kafka: partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(group = %self.group, error = %e, "kafka: rebalance failed"),
        }
    }
}

struct KafkaSubscription {
    /// `None` only while being dropped.
    consumer: Option<Arc<StreamConsumer<GroupMember>>>,
    topic: String,
}

impl KafkaSubscription {
    fn consumer(&self) -> &Arc<StreamConsumer<GroupMember>> {
        self.consumer.as_ref().expect("the consumer lives as long as the subscription")
    }

    /// Partitions of the topic this member holds now.
    fn assigned(&self) -> Result<Vec<i32>, BrokerError> {
        let assignment = self.consumer().assignment().map_err(unavailable)?;
        Ok(assignment.elements_for_topic(&self.topic).iter().map(|e| e.partition()).collect())
    }
}

/// Errors that mean the group moved on under this member: the commit is lost,
/// and the message will be delivered again to whoever holds its partition.
fn lost_to_rebalance(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::AssignmentLost
                | RDKafkaErrorCode::State
        )
    )
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        loop {
            match self.consumer().recv().await {
                Ok(message) => {
                    return Ok(Delivery {
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        partition: message.partition(),
                        offset: message.offset(),
                    });
                }
                Err(e @ KafkaError::MessageConsumptionFatal(_)) => return Err(unavailable(e)),
                // Connection trouble and the like: librdkafka retries by itself.
                Err(e) => tracing::warn!(topic = %self.topic, error = %e, "kafka: consumer error; still consuming"),
            }
        }
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BrokerError> {
        // A partition that moved to another member is theirs to commit: a late
        // commit from here could move their offset back.
        if !self.assigned()?.contains(&delivery.partition) {
            tracing::info!(topic = %self.topic, partition = delivery.partition, offset = delivery.offset, "kafka: partition reassigned before the commit; the new owner will redeliver");
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&self.topic, delivery.partition, Offset::Offset(delivery.offset + 1))
            .map_err(unavailable)?;
        let consumer = self.consumer().clone();
        match blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await {
            Err(BrokerError::Unavailable(e)) if e.downcast_ref::<KafkaError>().is_some_and(lost_to_rebalance) => {
                tracing::info!(topic = %self.topic, partition = delivery.partition, offset = delivery.offset, error = %e, "kafka: commit lost to a rebalance; the message will be redelivered");
                Ok(())
            }
            other => other,
        }
    }

    async fn lag(&mut self) -> Option<i64> {
        let consumer = self.consumer().clone();
        let topic = self.topic.clone();
        let lag = blocking(move || {
            let assignment = consumer.assignment()?;
            let committed = consumer.committed_offsets(assignment, REQUEST_TIMEOUT)?;
            let mut lag = 0;
            for element in committed.elements_for_topic(&topic) {
                let (low, high) = consumer.fetch_watermarks(&topic, element.partition(), REQUEST_TIMEOUT)?;
                // Nothing committed yet: the group starts at the earliest message.
                let done = match element.offset() {
                    Offset::Offset(n) => n,
                    _ => low,
                };
                lag += (high - done).max(0);
            }
            Ok(lag)
        })
        .await;
        match lag {
            Ok(lag) => Some(lag),
            Err(e) => {
                tracing::debug!(error = %e, "kafka: lag unknown");
                None
            }
        }
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        // Closing leaves the group (a round trip and a rebalance): do it off the
        // async workers when there are any.
        let Some(consumer) = self.consumer.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(consumer));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    /// The broker under test: `CHIRP_TEST_KAFKA_BROKERS`. Without it these
    /// tests return at once, except in CI, where every backend must be tested:
    /// there they use the broker `.ci/run` starts on 127.0.0.1:9092 (also for
    /// its run on the embedded defaults) and fail when none answers.
    fn kafka_brokers() -> Option<String> {
        // Rebalances and librdkafka's own warnings show in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
            .with_test_writer()
            .try_init();
        match std::env::var("CHIRP_TEST_KAFKA_BROKERS") {
            Ok(brokers) if !brokers.is_empty() => Some(brokers),
            _ if std::env::var("CI").as_deref() == Ok("true") => Some("127.0.0.1:9092".to_owned()),
            _ => None,
        }
    }

    fn unique(prefix: &str) -> String {
        format!("chirp-test-{prefix}-{:016x}", rand::random::<u64>())
    }

    async fn broker_with_topic(brokers: &str, partitions: i32) -> (KafkaBroker, String) {
        let broker = KafkaBroker::connect(brokers, partitions).await.unwrap();
        let topic = unique("topic");
        broker.ensure_topic(&topic).await.unwrap();
        (broker, topic)
    }

    async fn next_within(sub: &mut (impl Subscription + ?Sized)) -> Delivery {
        tokio::time::timeout(WAIT, sub.next()).await.expect("a message within 30 s").unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn published_messages_arrive_in_order_per_key_with_key_and_payload_intact() {
        let Some(brokers) = kafka_brokers() else { return };
        let (broker, topic) = broker_with_topic(&brokers, 3).await;
        broker.ping().await.unwrap();
        broker.ensure_topic(&topic).await.expect("an existing topic is fine");
        for i in 0..5 {
            for key in ["alice", "bob", "carol"] {
                broker.publish(&topic, key.as_bytes(), format!("{key}-{i}").as_bytes()).await.unwrap();
            }
        }

        let mut sub = broker.subscribe(&topic, &unique("group")).await.unwrap();
        let mut by_key: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
        for _ in 0..15 {
            let d = next_within(&mut *sub).await;
            by_key.entry(text(&d.key.unwrap())).or_default().push((text(&d.payload), d.partition));
        }

        assert_eq!(by_key.len(), 3);
        for (key, messages) in by_key {
            let payloads: Vec<&str> = messages.iter().map(|(p, _)| p.as_str()).collect();
            let expected: Vec<String> = (0..5).map(|i| format!("{key}-{i}")).collect();
            assert_eq!(payloads, expected, "in publishing order for {key}");
            assert!(messages.iter().all(|(_, p)| *p == messages[0].1), "one partition per key");
        }
    }

    #[tokio::test]
    async fn a_new_member_resumes_after_the_committed_offset() {
        let Some(brokers) = kafka_brokers() else { return };
        let (broker, topic) = broker_with_topic(&brokers, 1).await;
        let group = unique("group");
        for i in 0..5 {
            broker.publish(&topic, b"k", format!("m{i}").as_bytes()).await.unwrap();
        }

        let mut first = broker.subscribe(&topic, &group).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(next_within(&mut *first).await);
        }
        assert_eq!(seen.iter().map(|d| text(&d.payload)).collect::<Vec<_>>(), ["m0", "m1", "m2"]);
        first.commit(&seen[2]).await.unwrap();
        assert_eq!(first.lag().await, Some(2), "m3 and m4 are not committed");
        drop(first);

        let mut second = broker.subscribe(&topic, &group).await.unwrap();
        assert_eq!(text(&next_within(&mut *second).await.payload), "m3");
        assert_eq!(text(&next_within(&mut *second).await.payload), "m4");
    }

    #[tokio::test]
    async fn an_uncommitted_message_is_delivered_again_to_the_next_member() {
        let Some(brokers) = kafka_brokers() else { return };
        let (broker, topic) = broker_with_topic(&brokers, 1).await;
        let group = unique("group");
        broker.publish(&topic, b"k", b"processed").await.unwrap();
        broker.publish(&topic, b"k", b"interrupted").await.unwrap();

        let mut first = broker.subscribe(&topic, &group).await.unwrap();
        let processed = next_within(&mut *first).await;
        first.commit(&processed).await.unwrap();
        let interrupted = next_within(&mut *first).await;
        assert_eq!(text(&interrupted.payload), "interrupted");
        drop(first);

        let mut second = broker.subscribe(&topic, &group).await.unwrap();
        let again = next_within(&mut *second).await;
        assert_eq!(text(&again.payload), "interrupted");
        assert_eq!((again.partition, again.offset), (interrupted.partition, interrupted.offset));
    }

    #[tokio::test]
    async fn group_members_share_the_partitions_and_take_over_when_one_leaves() {
        let Some(brokers) = kafka_brokers() else { return };
        let (broker, topic) = broker_with_topic(&brokers, 3).await;
        let group = unique("group");
        let mut a = broker.join(&topic, &group).unwrap();
        let mut b = broker.join(&topic, &group).unwrap();

        // Both members must hold partitions before anything is published, or
        // the first one would read everything before the group settles.
        let settle = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(tokio::time::Instant::now() < settle, "the group did not settle within 30 s");
            for sub in [&mut a, &mut b] {
                if let Ok(d) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                    panic!("nothing was published yet, got {d:?}");
                }
            }
            let (pa, pb) = (a.assigned().unwrap(), b.assigned().unwrap());
            if !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 3 {
                break;
            }
        }

        let published: BTreeSet<String> = (0..30).map(|i| format!("m{i}")).collect();
        for (i, payload) in published.iter().enumerate() {
            broker.publish(&topic, format!("owner-{i}").as_bytes(), payload.as_bytes()).await.unwrap();
        }
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        let deadline = tokio::time::Instant::now() + WAIT;
        while got_a.len() + got_b.len() < published.len() {
            assert!(tokio::time::Instant::now() < deadline, "only {} of 30 messages within 30 s", got_a.len() + got_b.len());
            tokio::select! {
                d = a.next() => got_a.push(d.unwrap()),
                d = b.next() => got_b.push(d.unwrap()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        let payloads = |ds: &[Delivery]| ds.iter().map(|d| text(&d.payload)).collect::<Vec<_>>();
        let mut all = payloads(&got_a);
        all.extend(payloads(&got_b));
        all.sort();
        let mut expected: Vec<String> = published.iter().cloned().collect();
        expected.sort();
        assert_eq!(all, expected, "every message exactly once across the group");
        let partitions = |ds: &[Delivery]| ds.iter().map(|d| d.partition).collect::<BTreeSet<_>>();
        assert!(partitions(&got_a).is_disjoint(&partitions(&got_b)), "a partition has one reader");

        // `a` commits what it read; `b` leaves without committing.
        for d in &got_a {
            a.commit(d).await.unwrap();
        }
        drop(b);
        let later: BTreeSet<String> = (30..40).map(|i| format!("m{i}")).collect();
        for (i, payload) in later.iter().enumerate() {
            broker.publish(&topic, format!("owner-{i}").as_bytes(), payload.as_bytes()).await.unwrap();
        }

        // Until the group settles, `a` may also read new messages on its own
        // partitions and be handed them again by the rebalance: at least once.
        let mut expected: BTreeSet<String> = payloads(&got_b).into_iter().collect();
        expected.extend(later);
        let mut after = BTreeSet::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while after != expected {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let d = tokio::time::timeout(left, a.next())
                .await
                .unwrap_or_else(|_| panic!("{} of {} messages after the rebalance within 30 s", after.len(), expected.len()))
                .unwrap();
            a.commit(&d).await.unwrap();
            let payload = text(&d.payload);
            assert!(expected.contains(&payload), "{payload} was committed before b left");
            after.insert(payload);
        }
        let mut held = a.assigned().unwrap();
        held.sort();
        assert_eq!(held, [0, 1, 2]);
    }

    #[tokio::test]
    async fn publishing_to_a_broker_that_is_not_listening_fails_within_the_timeout() {
        // Port 1 is closed: nothing here needs a broker.
        let broker = KafkaBroker::connect_with_timeout("127.0.0.1:1", 1, Duration::from_secs(2)).await.unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(15), broker.publish("chirp.likes", b"k", b"v")).await;
        assert!(matches!(outcome, Ok(Err(BrokerError::Unavailable(_)))), "{outcome:?}");
        assert!(broker.ping().await.is_err());
    }
}
