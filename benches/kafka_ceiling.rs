//! The Kafka broker's own ceiling, without chirp: a plain rdkafka producer
//! and consumer with exactly the settings chirp uses
//! (`chirp::ports::broker::{producer_config, consumer_config}`), on a new
//! topic created the way chirp creates its own.
//!
//! The producer hands `MESSAGES` messages (like-event sized, keyed over
//! `KEYS` owners) to librdkafka with up to `WINDOW` unacknowledged, as fast
//! as it can or at `RATE` per second; the consumer, a group member started
//! (and assigned) before the first message, reads them in batches of up to
//! 256 and commits, in one synchronous request a batch, the last offset of
//! each partition in it, as chirp's notification consumer does. Reports
//! messages/s acknowledged to the producer and consumed end to end, and each
//! message's time from send to receipt (p50/p99/max).
//!
//! Run: `CHIRP_KAFKA_BROKERS=127.0.0.1:9092 cargo bench --bench kafka_ceiling`
//! (`MESSAGES`, `RATE`, `WINDOW`, `KEYS`, `PARTITIONS`: unset, the broker's default).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chirp::ports::broker::{Broker, KafkaBroker, TopicLayout, consumer_config, producer_config};
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Semaphore;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let brokers = std::env::var("CHIRP_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let messages = env_or("MESSAGES", 100_000);
    let rate = env_or("RATE", 0);
    let window = env_or("WINDOW", 8192) as usize;
    let keys = env_or("KEYS", 200);
    let partitions = std::env::var("PARTITIONS").ok().and_then(|v| v.parse().ok());

    let run = rand::random::<u32>();
    let topic = format!("chirp.ceiling.{run:08x}");
    let group = format!("chirp-ceiling-{run:08x}");
    let layout = TopicLayout { partitions, replication: None };
    KafkaBroker::connect(&brokers, layout).await?.ensure_topic(&topic).await?;

    let consumer: Arc<StreamConsumer> = Arc::new(consumer_config(&brokers, &group, chirp::ports::broker::FETCH_WAIT).create()?);
    consumer.subscribe(&[&topic])?;
    // Joined and assigned before the first message, so the group's start-up is not measured.
    let joining = Instant::now();
    while consumer.assignment()?.count() == 0 {
        anyhow::ensure!(joining.elapsed() < Duration::from_secs(60), "the consumer got no partitions within 60 s");
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
            anyhow::bail!("nothing was published yet, got {:?}", m.map(|m| m.offset()));
        }
    }
    let assigned = consumer.assignment()?.count();

    let started = Instant::now();
    let reader = {
        let consumer = consumer.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages as usize);
            let mut last_at = started;
            while (latencies.len() as u64) < messages {
                let first = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
                let mut batch = vec![first.detach()];
                while batch.len() < 256 {
                    match consumer.recv().now_or_never() {
                        Some(Ok(m)) => batch.push(m.detach()),
                        _ => break,
                    }
                }
                let now = Instant::now();
                let mut last: BTreeMap<i32, i64> = BTreeMap::new();
                for m in &batch {
                    let sent_ns = u64::from_le_bytes(m.payload().unwrap_or_default()[..8].try_into()?);
                    latencies.push(now.duration_since(started + Duration::from_nanos(sent_ns)));
                    last.insert(m.partition(), m.offset());
                }
                // One commit request for the batch, as chirp's consumers make.
                let mut offsets = TopicPartitionList::new();
                for (partition, offset) in last {
                    offsets.add_partition_offset(&topic, partition, Offset::Offset(offset + 1))?;
                }
                let consumer = consumer.clone();
                tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await??;
                last_at = Instant::now();
            }
            anyhow::Ok((latencies, last_at))
        })
    };

    // A like event is about this size.
    let padding = "x".repeat(180);
    let producer: FutureProducer = producer_config(&brokers, Duration::from_secs(30)).create()?;
    let room = Arc::new(Semaphore::new(window));
    let mut acks = Vec::with_capacity(messages as usize);
    for i in 0..messages {
        if rate > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let permit = room.clone().acquire_owned().await?;
        let mut payload = (started.elapsed().as_nanos() as u64).to_le_bytes().to_vec();
        payload.extend_from_slice(padding.as_bytes());
        let key = format!("{}", 1_000_000 + i % keys);
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
        acks.push(tokio::spawn(async move {
            let acked = delivery.await;
            drop(permit);
            matches!(acked, Ok(Ok(_)))
        }));
    }
    let mut failed = 0;
    for ack in acks {
        if !ack.await? {
            failed += 1;
        }
    }
    let produced_in = started.elapsed();
    let (mut latencies, consumed_at) = reader.await??;
    let consumed_in = consumed_at.duration_since(started);
    latencies.sort();

    println!(
        "broker {brokers}, topic {topic} ({assigned} partitions), {messages} messages of {} bytes over {keys} keys, window {window}, {}",
        8 + padding.len(),
        if rate > 0 { format!("offered at {rate}/s") } else { "as fast as acknowledged".into() }
    );
    println!(
        "produced (acknowledged): {:.0}/s ({failed} failed); consumed and committed: {:.0}/s",
        messages as f64 / produced_in.as_secs_f64(),
        messages as f64 / consumed_in.as_secs_f64()
    );
    println!(
        "send to receipt: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Ok(())
}
