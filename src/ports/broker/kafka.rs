//! Kafka adapter (librdkafka through `rdkafka`). The producer is idempotent
//! and `publish` returns only after the broker's acknowledgement from all
//! in-sync replicas. Subscriptions are consumer-group members that never
//! commit on their own: an offset is committed only when the caller says the
//! message is processed, so a crash or a rebalance redelivers what was not
//! (at least once; the notification consumer is idempotent).
//!
//! librdkafka connects lazily and reconnects by itself: a broker that is down
//! when chirp starts is not an error here, only in the calls that need it.
//!
//! Each member also watches the group's progress on every partition of its
//! topic (see [`Watch`]): a partition with messages waiting whose committed
//! offset has not moved for [`STALL`] while this member keeps up with its own
//! makes it leave and rejoin the group, which forces a fresh assignment. On
//! Apache Kafka the coordinator does that by itself when a member dies; tansu
//! 0.6 drops the dead member but lets the survivors keep their old
//! assignment, so the dead member's partitions would wait for ever.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use futures::FutureExt;

use super::{Ack, Broker, BrokerError, Delivery, Outgoing, Subscription, pack};

/// How long `publish` may take, retries included, before it gives up.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Round trips that answer at once on a healthy broker (metadata, offsets).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A member that dies without leaving gives its partitions up after this.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a partition may have messages waiting with no committed progress
/// before a healthy member rejoins the group to get it reassigned; also the
/// least time between two rejoins of one member.
const STALL: Duration = Duration::from_secs(30);
/// The longest a consumer's fetch waits at the broker for new messages,
/// unless configured (`KafkaBroker::with_fetch_wait`).
pub const FETCH_WAIT: Duration = Duration::from_millis(50);
/// How often a member samples the group's progress.
const WATCH_EVERY: Duration = Duration::from_secs(10);

/// How the topics chirp creates are laid out; `None`: the broker's default
/// (`num.partitions`, `default.replication.factor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopicLayout {
    pub partitions: Option<i32>,
    pub replication: Option<i32>,
}

impl TopicLayout {
    /// `partitions` partitions, replicated as the broker's default says.
    pub fn partitions(partitions: i32) -> Self {
        Self { partitions: Some(partitions), replication: None }
    }

    /// The topic as the admin API takes it: -1 asks for the broker's default
    /// (KIP-464; librdkafka 2 sends it as such).
    fn new_topic<'a>(&self, name: &'a str) -> NewTopic<'a> {
        NewTopic::new(name, self.partitions.unwrap_or(-1), TopicReplication::Fixed(self.replication.unwrap_or(-1)))
    }
}

pub struct KafkaBroker {
    brokers: String,
    layout: TopicLayout,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    fetch_wait: Duration,
    /// Partitions per topic, as `ensure_topic` found them: `send_all` packs
    /// only for topics it knows (see [`pack`]).
    partitions: std::sync::RwLock<HashMap<String, i32>>,
    /// Whether `ensure_topic` reads partitions for `send_all`'s packs:
    /// without them every message goes alone.
    packs: bool,
}

/// The producer's settings, shared with the broker's own benchmark
/// (`benches/kafka_ceiling.rs`) so that it measures what chirp runs.
pub fn producer_config(brokers: &str, message_timeout: Duration) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "chirp")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", message_timeout.as_millis().max(1).to_string())
        // How long a message waits for others to share its produce request
        // (librdkafka's default is 5 ms). A broker does work per request as
        // well as per message (tansu: a transaction each); measured on
        // PostgreSQL + tansu, 25 ms gave 7-12% more likes a second than 5.
        .set("linger.ms", "25")
        // The Java client's partitioner: a key lands where other Kafka clients put it.
        .set("partitioner", "murmur2_random");
    config
}

/// A group member's settings (see [`producer_config`]): offsets are
/// committed only when the caller says so.
pub fn consumer_config(brokers: &str, group: &str, fetch_wait: Duration) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "chirp")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // A fetch the broker holds open for want of data ends after this: a
        // broker that does not answer a waiting fetch as soon as a message
        // arrives (tansu 0.6) would otherwise add up to librdkafka's 500 ms
        // default to every notification.
        .set("fetch.wait.max.ms", fetch_wait.as_millis().max(1).to_string())
        .set("session.timeout.ms", SESSION_TIMEOUT.as_millis().to_string());
    config
}

fn unavailable(e: impl Into<anyhow::Error>) -> BrokerError {
    BrokerError::Unavailable(e.into())
}

/// Runs a librdkafka call that blocks (network round trips) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(f).await.map_err(unavailable)?.map_err(unavailable)
}

impl KafkaBroker {
    /// `brokers`: `host1:9092,host2:9092`; `layout`: of the topics chirp creates.
    pub async fn connect(brokers: &str, layout: TopicLayout) -> anyhow::Result<Self> {
        Self::connect_with_timeout(brokers, layout, MESSAGE_TIMEOUT).await
    }

    /// As `connect`, with `publish` giving up after `message_timeout`.
    pub async fn connect_with_timeout(brokers: &str, layout: TopicLayout, message_timeout: Duration) -> anyhow::Result<Self> {
        if let Some(partitions) = layout.partitions {
            anyhow::ensure!(partitions > 0, "a topic needs at least one partition, not {partitions}");
        }
        if let Some(replication) = layout.replication {
            anyhow::ensure!(replication > 0, "a topic needs at least one replica, not {replication}");
        }
        let producer: FutureProducer = producer_config(brokers, message_timeout).create()?;
        let admin = ClientConfig::new().set("bootstrap.servers", brokers).set("client.id", "chirp-admin").create()?;
        Ok(Self {
            brokers: brokers.to_owned(),
            layout,
            producer,
            admin,
            fetch_wait: FETCH_WAIT,
            partitions: Default::default(),
            packs: true,
        })
    }

    /// How long a consumer's fetch may wait at the broker for new messages:
    /// the most a message can wait to be read when none came before it, and
    /// how often an idle consumer asks the broker again.
    pub fn with_fetch_wait(mut self, fetch_wait: Duration) -> Self {
        self.fetch_wait = fetch_wait;
        self
    }

    /// Whether `send_all` packs the messages bound for one partition into
    /// one record (see [`pack`]); on by default. Consumers read packs either way.
    pub fn with_packs(mut self, packs: bool) -> Self {
        self.packs = packs;
        self
    }

    /// A new member of `group`; `subscribe` without the box.
    fn join(&self, topic: &str, group: &str) -> Result<KafkaSubscription, BrokerError> {
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let consumer: StreamConsumer<GroupMember> = consumer_config(&self.brokers, group, self.fetch_wait)
            .create_with_context(GroupMember { group: group.to_owned(), held: held.clone() })
            .map_err(unavailable)?;
        consumer.subscribe(&[topic]).map_err(unavailable)?;
        let rejoin = Arc::new(tokio::sync::Notify::new());
        let watch = tokio::spawn(watch_group(
            Observer { brokers: self.brokers.clone(), topic: topic.to_owned(), group: group.to_owned() },
            held,
            rejoin.clone(),
        ));
        Ok(KafkaSubscription {
            consumer: Some(Arc::new(consumer)),
            topic: topic.to_owned(),
            unpacked: VecDeque::new(),
            rejoin,
            watch,
        })
    }

    /// Hands one record to librdkafka's queue: `partition` if known, else
    /// the partitioner's choice for `key`.
    fn enqueue(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &[u8],
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<Ack, BrokerError> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        // Enqueued in librdkafka's queue now, in call order (the idempotent
        // producer keeps that order per partition through retries);
        // `message.timeout.ms` bounds the delivery. A full queue is refused at
        // once rather than waited for: the caller bounds what it has in flight.
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(e, _record)| unavailable(anyhow::Error::new(e).context(format!("publishing to {topic}"))))?;
        let topic = topic.to_owned();
        Ok(Box::pin(async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _message))) => Err(unavailable(anyhow::Error::new(e).context(format!("publishing to {topic}")))),
                Err(_canceled) => Err(BrokerError::Closed),
            }
        }))
    }

    /// Sends `messages` (indexes into `all`, all bound for one partition of
    /// `topic`) as packs, in order; stores each message's acknowledgement
    /// (its pack's) in `acks`.
    fn send_packed(
        &self,
        topic: &str,
        partition: i32,
        all: &[Outgoing<'_>],
        messages: &[usize],
        acks: &mut [Option<Ack>],
    ) -> Result<(), BrokerError> {
        let mut rest = messages;
        while !rest.is_empty() {
            // As many as fit, and at least one.
            let mut bytes = 0;
            let mut n = 0;
            while n < rest.len() && n < pack::MAX_MESSAGES {
                let m = &all[rest[n]];
                bytes += pack::framed_len(m.key, m.payload);
                if n > 0 && bytes > pack::MAX_BYTES {
                    break;
                }
                n += 1;
            }
            let (this, after) = rest.split_at(n);
            rest = after;
            let first = &all[this[0]];
            if let [only] = this {
                // Alone: a plain record, as any Kafka client would read it.
                acks[*only] = Some(self.enqueue(topic, Some(partition), first.key, first.payload, None)?);
                continue;
            }
            let mut value = Vec::with_capacity(this.iter().map(|&i| pack::framed_len(all[i].key, all[i].payload)).sum());
            for &i in this {
                pack::push(&mut value, all[i].key, all[i].payload);
            }
            let headers = OwnedHeaders::new().insert(Header { key: pack::HEADER, value: Some(pack::VERSION) });
            // One acknowledgement for the pack, shared by its messages.
            let acked = self
                .enqueue(topic, Some(partition), first.key, &value, Some(headers))?
                .map(|result| result.map_err(|e| Arc::new(format!("{:#}", anyhow::Error::new(e)))))
                .shared();
            for &i in this {
                let acked = acked.clone();
                acks[i] = Some(Box::pin(async move {
                    acked.await.map_err(|e| unavailable(anyhow::anyhow!("{e}").context("a pack's delivery")))
                }));
            }
        }
        Ok(())
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
        let new_topic = self.layout.new_topic(topic);
        let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT)).operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self.admin.create_topics([&new_topic], &options).await.map_err(unavailable)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(unavailable(anyhow::anyhow!("creating topic {name}: {code}"))),
            }
        }
        if !self.packs {
            // A topic whose partitions are unknown gets one record per message.
            return Ok(());
        }
        // Its partitions, for `send_all`'s packs. A topic given more later
        // keeps its keys where they were until the next start; one whose
        // partitions cannot be read now gets one record per message.
        let producer = self.producer.clone();
        let name = topic.to_owned();
        let partitions = match blocking(move || producer.client().fetch_metadata(Some(&name), REQUEST_TIMEOUT)).await {
            Ok(metadata) => metadata.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len()),
            Err(e) => {
                tracing::warn!(topic, error = %e, "kafka: partitions unknown; events go one record each, unpacked");
                0
            }
        };
        if partitions > 0 {
            let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
            self.partitions.write().unwrap_or_else(|e| e.into_inner()).insert(topic.to_owned(), partitions);
        }
        Ok(())
    }

    fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<Ack, BrokerError> {
        self.enqueue(topic, None, key, payload, None)
    }

    /// Packs the messages bound for one partition (see [`pack`]); a message
    /// of a topic whose partitions are not known yet goes alone.
    fn send_all(&self, messages: &[Outgoing<'_>]) -> Result<Vec<Ack>, BrokerError> {
        let mut acks: Vec<Option<Ack>> = messages.iter().map(|_| None).collect();
        // Per (topic, partition), in order of first appearance: the messages, in order.
        let mut groups: Vec<((&str, i32), Vec<usize>)> = Vec::new();
        {
            let known = self.partitions.read().unwrap_or_else(|e| e.into_inner());
            let mut index: HashMap<(&str, i32), usize> = HashMap::new();
            for (i, m) in messages.iter().enumerate() {
                let Some(&partitions) = known.get(m.topic) else {
                    acks[i] = Some(self.send(m.topic, m.key, m.payload)?);
                    continue;
                };
                let at = (m.topic, pack::partition_of(m.key, partitions));
                let slot = *index.entry(at).or_insert_with(|| {
                    groups.push((at, Vec::new()));
                    groups.len() - 1
                });
                groups[slot].1.push(i);
            }
        }
        for ((topic, partition), group) in groups {
            self.send_packed(topic, partition, messages, &group, &mut acks)?;
        }
        Ok(acks.into_iter().map(|ack| ack.expect("every message was sent")).collect())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Subscription>, BrokerError> {
        Ok(Box::new(self.join(topic, group)?))
    }
}

/// Logs the group's partition assignments as they change, and keeps the
/// current one for the group watch.
struct GroupMember {
    group: String,
    held: Arc<std::sync::Mutex<Vec<i32>>>,
}

impl ClientContext for GroupMember {}

impl ConsumerContext for GroupMember {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &TopicPartitionList| -> Vec<i32> { list.elements().iter().map(|e| e.partition()).collect() };
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, partitions = ?partitions(list), "kafka: partitions assigned");
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = partitions(list);
            }
            Rebalance::Revoke(list) => {
                tracing::info!(group = %self.group, partitions = ?partitions(list), "kafka: partitions revoked");
                self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            Rebalance::Error(e) => tracing::warn!(group = %self.group, error = %e, "kafka: rebalance failed"),
        }
    }
}

struct KafkaSubscription {
    /// `None` only while being dropped.
    consumer: Option<Arc<StreamConsumer<GroupMember>>>,
    topic: String,
    /// The messages of a pack (see [`pack`]) not yet handed out.
    unpacked: VecDeque<Delivery>,
    /// Notified by the group watch when this member should rejoin the group.
    rejoin: Arc<tokio::sync::Notify>,
    /// The task watching the group's progress while this member lives.
    watch: tokio::task::JoinHandle<()>,
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

    /// Commits, in one request, each `(partition, next)`: everything before
    /// offset `next` in its partition is processed.
    async fn commit_offsets(&mut self, last: impl IntoIterator<Item = (i32, i64)>) -> Result<(), BrokerError> {
        // A partition that moved to another member is theirs to commit: a late
        // commit from here could move their offset back.
        let mine = self.assigned()?;
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in last {
            if mine.contains(&partition) {
                offsets.add_partition_offset(&self.topic, partition, Offset::Offset(next)).map_err(unavailable)?;
            } else {
                tracing::info!(topic = %self.topic, partition, next, "kafka: partition reassigned before the commit; the new owner will redeliver");
            }
        }
        if offsets.count() == 0 {
            return Ok(());
        }
        let consumer = self.consumer().clone();
        match blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await {
            Err(BrokerError::Unavailable(e)) if e.downcast_ref::<KafkaError>().is_some_and(lost_to_rebalance) => {
                tracing::info!(topic = %self.topic, error = %e, "kafka: commit lost to a rebalance; its messages will be redelivered");
                Ok(())
            }
            other => other,
        }
    }

    /// Leaves the group and joins it again (see [`Watch`]).
    async fn rejoin_group(&self) {
        let consumer = self.consumer().clone();
        let topic = self.topic.clone();
        // Leaving is a round trip: off the async workers.
        if let Err(e) = blocking(move || {
            consumer.unsubscribe();
            consumer.subscribe(&[&topic])
        })
        .await
        {
            tracing::warn!(topic = %self.topic, error = %e, "kafka: rejoining the group failed; librdkafka retries");
        }
    }
}

/// The group's progress on `partitions` of `topic`, as the broker has it now
/// (blocking: network round trips).
fn progress<C: ConsumerContext>(
    client: &impl Consumer<C>,
    topic: &str,
    partitions: &[i32],
    mine: &[i32],
) -> Result<Vec<Progress>, KafkaError> {
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        list.add_partition(topic, partition);
    }
    let committed = client.committed_offsets(list, REQUEST_TIMEOUT)?;
    let mut progress = Vec::new();
    for element in committed.elements_for_topic(topic) {
        let (low, high) = client.fetch_watermarks(topic, element.partition(), REQUEST_TIMEOUT)?;
        // Nothing committed yet: the group starts at the earliest message.
        let committed = match element.offset() {
            Offset::Offset(n) => n,
            _ => low,
        };
        progress.push(Progress {
            partition: element.partition(),
            committed,
            waiting: (high - committed).max(0),
            mine: mine.contains(&element.partition()),
        });
    }
    Ok(progress)
}

/// What the group watch needs to read a group's progress: a client of its
/// own per sample, never the member's consumer, whose life (and close) is
/// the subscription's alone.
struct Observer {
    brokers: String,
    topic: String,
    group: String,
}

impl Observer {
    /// The group's progress on every partition of the topic (blocking).
    fn sample(&self, mine: &[i32]) -> Result<Vec<Progress>, KafkaError> {
        // Never subscribes: it reads the group's offsets, it is not a member.
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "chirp-group-watch")
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .create()?;
        let metadata = client.fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT)?;
        let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions()).map(|p| p.id()).collect();
        progress(&client, &self.topic, &partitions, mine)
    }
}

/// Samples the group's progress every [`WATCH_EVERY`] while the member
/// lives (`held`: the partitions it holds), and asks it to rejoin the group
/// when [`Watch`] says so.
async fn watch_group(observer: Observer, held: Arc<std::sync::Mutex<Vec<i32>>>, rejoin: Arc<tokio::sync::Notify>) {
    let observer = Arc::new(observer);
    let mut watch = Watch::default();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let mine = held.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let sampling = observer.clone();
        let sample = match blocking(move || sampling.sample(&mine)).await {
            Ok(sample) => sample,
            Err(e) => {
                tracing::debug!(error = %e, "kafka: group progress unknown");
                continue;
            }
        };
        let Some(behind) = watch.observe(Instant::now(), &sample) else { continue };
        metrics::counter!("chirp_consumer_rejoins_total").increment(1);
        tracing::warn!(
            group = %observer.group,
            topic = %observer.topic,
            partitions = ?behind,
            stalled_for = ?STALL,
            "kafka: partitions have messages waiting and no member making progress; rejoining the group to have them reassigned"
        );
        rejoin.notify_one();
    }
}

/// One partition's progress in one sample.
#[derive(Clone, Copy, Debug)]
struct Progress {
    partition: i32,
    /// The group's committed offset (the next message to process).
    committed: i64,
    /// Messages published after it.
    waiting: i64,
    /// Whether this member holds the partition.
    mine: bool,
}

/// Decides when a member should rejoin its group: when some partition it
/// does not hold has had messages waiting and no committed progress for
/// [`STALL`], while every partition it holds is keeping up (a member that is
/// itself stuck, say on a database outage, would only blame the others for
/// the same trouble), and not more often than once per [`STALL`].
#[derive(Debug, Default)]
struct Watch {
    /// Per partition: the committed offset last seen and since when it has
    /// been behind without moving.
    behind_since: BTreeMap<i32, (i64, Instant)>,
    rejoined: Option<Instant>,
}

impl Watch {
    /// Records a sample taken at `now`; returns the partitions left behind
    /// when this member should rejoin.
    fn observe(&mut self, now: Instant, sample: &[Progress]) -> Option<Vec<i32>> {
        for p in sample {
            let entry = self.behind_since.entry(p.partition).or_insert((p.committed, now));
            if p.waiting == 0 || p.committed != entry.0 {
                *entry = (p.committed, now);
            }
        }
        let stalled = |p: &Progress| {
            p.waiting > 0 && self.behind_since.get(&p.partition).is_some_and(|(_, since)| now.duration_since(*since) >= STALL)
        };
        let behind: Vec<i32> = sample.iter().filter(|p| !p.mine && stalled(p)).map(|p| p.partition).collect();
        let keeping_up = !sample.iter().any(|p| p.mine && stalled(p));
        let rested = self.rejoined.is_none_or(|at| now.duration_since(at) >= STALL);
        if behind.is_empty() || !keeping_up || !rested {
            return None;
        }
        self.rejoined = Some(now);
        // The new owners get a full period before they are judged.
        for (_, since) in self.behind_since.values_mut() {
            *since = now;
        }
        Some(behind)
    }
}

/// Whether a record is a pack of messages (see [`pack`]).
fn is_pack(message: &impl Message) -> bool {
    message.headers().is_some_and(|headers| headers.iter().any(|h| h.key == pack::HEADER && h.value == Some(pack::VERSION)))
}

/// The offset to commit once `delivery` is processed: past its record, or,
/// for a message packed with later ones, its record again (delivered again
/// whole after a restart; consumers are idempotent).
fn next_offset(delivery: &Delivery) -> i64 {
    if delivery.last_at_offset { delivery.offset + 1 } else { delivery.offset }
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
        if let Some(delivery) = self.unpacked.pop_front() {
            return Ok(delivery);
        }
        // A message borrows the consumer, not the subscription.
        let consumer = self.consumer().clone();
        loop {
            let received = tokio::select! {
                // Both are cancel safe: no message or request is lost to the other.
                received = consumer.recv() => received,
                () = self.rejoin.notified() => {
                    self.rejoin_group().await;
                    continue;
                }
            };
            match received {
                Ok(message) => {
                    let (partition, offset) = (message.partition(), message.offset());
                    let payload = message.payload().unwrap_or_default();
                    if is_pack(&message) {
                        match pack::unpack(payload) {
                            Ok(messages) => {
                                let last = messages.len() - 1;
                                self.unpacked.extend(messages.into_iter().enumerate().map(|(i, (key, payload))| Delivery {
                                    key: Some(key),
                                    payload,
                                    partition,
                                    offset,
                                    last_at_offset: i == last,
                                }));
                                return Ok(self.unpacked.pop_front().expect("a pack holds a message"));
                            }
                            // Handed on whole: the consumer skips what it cannot read.
                            Err(e) => {
                                tracing::warn!(topic = %self.topic, partition, offset, error = %e, "kafka: a pack that does not parse")
                            }
                        }
                    }
                    return Ok(Delivery {
                        key: message.key().map(<[u8]>::to_vec),
                        payload: payload.to_vec(),
                        partition,
                        offset,
                        last_at_offset: true,
                    });
                }
                Err(e @ KafkaError::MessageConsumptionFatal(_)) => return Err(unavailable(e)),
                // Connection trouble and the like: librdkafka retries by itself.
                Err(e) => tracing::warn!(topic = %self.topic, error = %e, "kafka: consumer error; still consuming"),
            }
        }
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BrokerError> {
        self.commit_offsets([(delivery.partition, next_offset(delivery))]).await
    }

    /// One request for the whole batch, whatever the partitions it spans.
    async fn commit_batch(&mut self, batch: &[Delivery]) -> Result<(), BrokerError> {
        let last: std::collections::BTreeMap<i32, i64> = batch.iter().map(|d| (d.partition, next_offset(d))).collect();
        self.commit_offsets(last).await
    }

    async fn lag(&mut self) -> Option<i64> {
        let consumer = self.consumer().clone();
        let topic = self.topic.clone();
        let lag = match self.assigned() {
            Ok(mine) => blocking(move || Ok(progress(&*consumer, &topic, &mine, &mine)?.iter().map(|p| p.waiting).sum())).await,
            Err(e) => Err(e),
        };
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
        self.watch.abort();
        // Closing leaves the group (a round trip and a rebalance): on a thread
        // of its own, off the async workers. Not on tokio's blocking pool: a
        // runtime waits for that pool without limit when it shuts down, and
        // librdkafka's close has been seen to hang (in `rd_kafka_assign` from
        // the rebalance it runs while closing). `wait_for_closes` bounds the
        // wait at process exit instead.
        let Some(consumer) = self.consumer.take() else { return };
        CLOSING.fetch_add(1, Ordering::SeqCst);
        let closed = std::thread::Builder::new().name("kafka-close".into()).spawn(move || {
            drop(consumer);
            CLOSING.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = closed {
            CLOSING.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(error = %e, "kafka: no thread to close a consumer on; it was closed here instead");
        }
    }
}

/// Consumers whose close (leaving their group) is still under way.
static CLOSING: AtomicUsize = AtomicUsize::new(0);

/// Waits, at most `limit`, for consumers still leaving their groups, so that
/// a node that stops leaves at once rather than by session timeout.
pub async fn wait_for_closes(limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while CLOSING.load(Ordering::SeqCst) > 0 {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(closing = CLOSING.load(Ordering::SeqCst), "kafka: stopping before every consumer left its group");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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
        let broker = KafkaBroker::connect(brokers, TopicLayout::partitions(partitions)).await.unwrap();
        let topic = unique("topic");
        broker.ensure_topic(&topic).await.unwrap();
        (broker, topic)
    }

    async fn next_within(sub: &mut (impl Subscription + ?Sized)) -> Delivery {
        tokio::time::timeout(WAIT, sub.next()).await.expect("a message within 30 s").unwrap()
    }

    /// Polls two members of one group, before anything is published (so
    /// nothing may arrive), until `settled` holds for their assignments.
    async fn settle(
        a: &mut KafkaSubscription,
        b: &mut KafkaSubscription,
        within: Duration,
        settled: impl Fn(&[i32], &[i32]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group did not settle within {within:?}: a holds {:?}, b {:?}",
                a.assigned(),
                b.assigned()
            );
            for sub in [&mut *a, &mut *b] {
                if let Ok(d) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                    panic!("nothing was published yet, got {d:?}");
                }
            }
            if settled(&a.assigned().unwrap(), &b.assigned().unwrap()) {
                return;
            }
        }
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
    async fn a_batch_commit_covers_every_partition_it_spans() {
        let Some(brokers) = kafka_brokers() else { return };
        let (broker, topic) = broker_with_topic(&brokers, 3).await;
        let group = unique("group");
        let keys = ["alice", "bob", "carol", "dave", "erin", "frank"];
        for round in ["done", "left"] {
            for key in keys {
                broker.publish(&topic, key.as_bytes(), format!("{round}-{key}").as_bytes()).await.unwrap();
            }
        }

        // Each key's "done" message comes before its "left" one; take every
        // "done", whatever partitions they are on, and commit them as one batch.
        let mut first = broker.subscribe(&topic, &group).await.unwrap();
        let mut done = Vec::new();
        let mut seen = 0;
        while done.len() < keys.len() {
            let d = next_within(&mut *first).await;
            seen += 1;
            assert!(seen <= 2 * keys.len(), "all six \"done\" messages arrive");
            if text(&d.payload).starts_with("done-") {
                done.push(d);
            }
        }
        let partitions: std::collections::BTreeSet<i32> = done.iter().map(|d| d.partition).collect();
        assert!(partitions.len() > 1, "six keys span more than one of three partitions: {partitions:?}");
        // Only the "done" messages: a partition's "left" ones come after them.
        let last_done: BTreeMap<i32, i64> = done.iter().map(|d| (d.partition, d.offset)).collect();
        first.commit_batch(&done).await.unwrap();
        assert_eq!(first.lag().await, Some(keys.len() as i64), "every \"left\" message is still to do");
        drop(first);

        let mut second = broker.subscribe(&topic, &group).await.unwrap();
        let mut again: Vec<String> = Vec::new();
        for _ in 0..keys.len() {
            let d = next_within(&mut *second).await;
            assert!(d.offset > last_done[&d.partition], "nothing committed comes again: {d:?}");
            again.push(text(&d.payload));
        }
        again.sort();
        let mut left: Vec<String> = keys.iter().map(|k| format!("left-{k}")).collect();
        left.sort();
        assert_eq!(again, left);
    }

    #[tokio::test]
    async fn messages_sent_together_travel_packed_and_arrive_one_by_one_in_order_per_key() {
        let Some(brokers) = kafka_brokers() else { return };
        let (broker, topic) = broker_with_topic(&brokers, 3).await;
        let keys = ["alice", "bob", "carol", "dave", "erin", "frank"];
        // One key's messages before the packs, alone: librdkafka's partitioner
        // must put them where the packs' own choice of partition does.
        for key in keys {
            broker.publish(&topic, key.as_bytes(), format!("{key}-alone").as_bytes()).await.unwrap();
        }
        let payloads: Vec<(String, String)> =
            (0..100).flat_map(|i| keys.iter().map(move |k| (k.to_string(), format!("{k}-{i}")))).collect();
        let messages: Vec<Outgoing<'_>> =
            payloads.iter().map(|(k, p)| Outgoing { topic: &topic, key: k.as_bytes(), payload: p.as_bytes() }).collect();
        let acks = broker.send_all(&messages).unwrap();
        assert_eq!(acks.len(), messages.len());
        for ack in acks {
            ack.await.unwrap();
        }

        let group = unique("group");
        let mut sub = broker.subscribe(&topic, &group).await.unwrap();
        let mut by_key: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
        for _ in 0..keys.len() * 101 {
            let d = next_within(&mut *sub).await;
            by_key.entry(text(d.key.as_ref().unwrap())).or_default().push(d);
        }
        let mut records = BTreeSet::new();
        for key in keys {
            let got = &by_key[key];
            let expected: Vec<String> =
                std::iter::once(format!("{key}-alone")).chain((0..100).map(|i| format!("{key}-{i}"))).collect();
            assert_eq!(got.iter().map(|d| text(&d.payload)).collect::<Vec<_>>(), expected, "in order for {key}");
            assert!(got.iter().all(|d| d.partition == got[0].partition), "one partition for {key}");
            records.extend(got.iter().map(|d| (d.partition, d.offset)));
        }
        // 6 alone, and the 600 packed into one record per partition used.
        assert!(records.len() <= keys.len() + 3, "the 600 messages travelled in a few records, not {}", records.len());

        // A batch that ends inside a pack commits the pack's record again:
        // the next member gets the whole pack, nothing after it is lost.
        let partition = by_key["alice"][1].partition;
        let packed: Vec<&Delivery> =
            by_key.values().flatten().filter(|d| d.partition == partition && !d.last_at_offset).collect();
        let cut = packed[0];
        sub.commit_batch(std::slice::from_ref(cut)).await.unwrap();
        drop(sub);
        let mut again = broker.subscribe(&topic, &group).await.unwrap();
        // Other partitions, not committed at all, start from their first record.
        let first = loop {
            let d = next_within(&mut *again).await;
            if d.partition == partition {
                break d;
            }
        };
        assert_eq!(first.offset, cut.offset, "the pack comes again, and nothing before it");
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
        settle(&mut a, &mut b, WAIT, |pa, pb| !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 3).await;

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

    /// A group member in a process of its own, for the test below to kill:
    /// joins the group it is given and reads without committing.
    #[tokio::test]
    #[ignore = "a helper process of a_member_killed_without_leaving_has_its_partitions_reassigned"]
    async fn member_until_killed() {
        let var = |name| std::env::var(name).unwrap_or_else(|_| panic!("{name}: run by the test that kills it"));
        let broker = KafkaBroker::connect(&var("CHIRP_TEST_KAFKA_BROKERS"), TopicLayout::partitions(3)).await.unwrap();
        let mut member = broker.join(&var("CHIRP_TEST_MEMBER_TOPIC"), &var("CHIRP_TEST_MEMBER_GROUP")).unwrap();
        loop {
            let _ = member.next().await;
        }
    }

    #[tokio::test]
    async fn a_member_killed_without_leaving_has_its_partitions_reassigned() {
        let Some(brokers) = kafka_brokers() else { return };
        let (broker, topic) = broker_with_topic(&brokers, 3).await;
        let group = unique("group");
        let mut a = broker.join(&topic, &group).unwrap();
        let mut b = broker.join(&topic, &group).unwrap();
        let mut killed = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ports::broker::kafka::tests::member_until_killed", "--ignored"])
            .env("CHIRP_TEST_KAFKA_BROKERS", &brokers)
            .env("CHIRP_TEST_MEMBER_TOPIC", &topic)
            .env("CHIRP_TEST_MEMBER_GROUP", &group)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();

        // The group settles with a partition each: the third is the other process's.
        settle(&mut a, &mut b, Duration::from_secs(60), |pa, pb| pa.len() == 1 && pb.len() == 1).await;
        let held = |a: &KafkaSubscription, b: &KafkaSubscription| -> BTreeSet<i32> {
            a.assigned().unwrap().into_iter().chain(b.assigned().unwrap()).collect()
        };
        assert_eq!(held(&a, &b).len(), 2, "one partition each");

        // SIGKILL: the member never leaves; its session times out.
        killed.kill().unwrap();
        killed.wait().unwrap();
        let published: BTreeSet<String> = (0..30).map(|i| format!("m{i}")).collect();
        for (i, payload) in published.iter().enumerate() {
            broker.publish(&topic, format!("owner-{i}").as_bytes(), payload.as_bytes()).await.unwrap();
        }

        // Every message reaches one of the two left, the dead member's
        // partition's too (at least once: a partition may change hands
        // more than once before the group settles).
        let mut got = BTreeSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while got != published {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of 30 messages within 120 s of the kill; a holds {:?}, b {:?}",
                got.len(),
                a.assigned(),
                b.assigned()
            );
            tokio::select! {
                d = a.next() => { let d = d.unwrap(); a.commit(&d).await.unwrap(); got.insert(text(&d.payload)); }
                d = b.next() => { let d = d.unwrap(); b.commit(&d).await.unwrap(); got.insert(text(&d.payload)); }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        // And the two hold every partition between them.
        let deadline = tokio::time::Instant::now() + WAIT;
        while held(&a, &b) != BTreeSet::from([0, 1, 2]) {
            assert!(tokio::time::Instant::now() < deadline, "a holds {:?} and b {:?}", a.assigned(), b.assigned());
            for sub in [&mut a, &mut b] {
                if let Ok(d) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                    let d = d.unwrap();
                    assert!(published.contains(&text(&d.payload)), "only what was published");
                    sub.commit(&d).await.unwrap();
                }
            }
        }
    }

    fn progress(partition: i32, committed: i64, waiting: i64, mine: bool) -> Progress {
        Progress { partition, committed, waiting, mine }
    }

    #[test]
    fn a_healthy_member_rejoins_when_another_members_partition_is_left_behind() {
        let t0 = Instant::now();
        let mut watch = Watch::default();
        let sample = [progress(0, 10, 0, true), progress(1, 5, 3, false)];
        assert_eq!(watch.observe(t0, &sample), None);
        assert_eq!(watch.observe(t0 + Duration::from_secs(20), &sample), None, "not stalled yet");
        assert_eq!(watch.observe(t0 + STALL, &sample), Some(vec![1]));
        // The new owner gets a full period, and a member rejoins at most once per period.
        assert_eq!(watch.observe(t0 + STALL + Duration::from_secs(20), &sample), None);
        assert_eq!(watch.observe(t0 + STALL * 2, &sample), Some(vec![1]));
    }

    #[test]
    fn progress_or_nothing_waiting_is_not_a_stall() {
        let t0 = Instant::now();
        let mut watch = Watch::default();
        for i in 0..10 {
            let at = t0 + Duration::from_secs(10 * i);
            // Partition 1 moves on, slowly; partition 2 has nothing waiting.
            let sample = [progress(0, 10, 0, true), progress(1, 5 + i as i64, 3, false), progress(2, 7, 0, false)];
            assert_eq!(watch.observe(at, &sample), None);
        }
    }

    #[test]
    fn a_member_stuck_on_its_own_partitions_does_not_blame_the_others() {
        let t0 = Instant::now();
        let mut watch = Watch::default();
        // Everyone is stuck alike (the database is away, say): nobody rejoins.
        let sample = [progress(0, 10, 4, true), progress(1, 5, 3, false)];
        for i in 0..10 {
            assert_eq!(watch.observe(t0 + Duration::from_secs(10 * i), &sample), None);
        }
        // Once its own partition moves, the other one is still behind: rejoin.
        let sample = [progress(0, 14, 0, true), progress(1, 5, 3, false)];
        assert_eq!(watch.observe(t0 + Duration::from_secs(100), &sample), Some(vec![1]));
    }

    #[tokio::test]
    async fn publishing_to_a_broker_that_is_not_listening_fails_within_the_timeout() {
        // Port 1 is closed: nothing here needs a broker.
        let broker =
            KafkaBroker::connect_with_timeout("127.0.0.1:1", TopicLayout::partitions(1), Duration::from_secs(2)).await.unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(15), broker.publish("chirp.likes", b"k", b"v")).await;
        assert!(matches!(outcome, Ok(Err(BrokerError::Unavailable(_)))), "{outcome:?}");
        assert!(broker.ping().await.is_err());
    }
}
