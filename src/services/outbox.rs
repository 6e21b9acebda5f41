//! The outbox relay: publishes outbox rows to the broker continuously and
//! deletes them as the broker acknowledges them, so the outbox holds only
//! what is still to be published. One relay works at
//! a time across all chirp processes on a database (a lease in the
//! database); if its process dies, another takes over when the lease runs out.
//!
//! Publishing is pipelined: rows are handed to the broker in id order as
//! soon as they are read, up to [`WINDOW`] unacknowledged at once, and the
//! acknowledgements are taken in the order the rows were sent, so a row is
//! deleted only once it and every row sent before it are acknowledged. The
//! broker keeps the order of what it is handed per key (the Kafka producer
//! is idempotent), so order per key holds without waiting for each batch.
//! A failed acknowledgement stops the pipeline: what was acknowledged before
//! it is deleted, everything after it is sent again (at least once; the
//! notification consumer is idempotent).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{Id, Timestamp};
use crate::ports::broker::{Broker, BrokerError, Outgoing};
use crate::ports::store::{OutboxMessage, Store};
use crate::services::writes::Writer;

const LEASE: &str = "outbox-relay";
const LEASE_TTL: Duration = Duration::from_secs(15);
/// Messages handed to the broker and not yet acknowledged, at most.
const WINDOW: usize = 8192;
/// Rows read from the outbox in one query, at most.
const FETCH: u32 = 1000;
/// A like's id is taken before its transaction commits, so a row can
/// become visible after rows with higher ids were already sent. While rows
/// are in flight the relay reads past the last id it sent; this often (and
/// whenever nothing is in flight) it sweeps: it reads again from the rows
/// made in the last [`LATECOMERS`], for such latecomers.
const SWEEP_EVERY: Duration = Duration::from_millis(50);
/// How far back in time a sweep reads: far more than a write waits between
/// taking its id and committing (a queue wait and a batch, milliseconds).
/// Not from the oldest row: until PostgreSQL vacuums the table, its index
/// still lists every row deleted since, and a sweep from the oldest stepped
/// over all of them (at 6,000 likes/s, 5 s of them made a sweep 0.5 ms).
const LATECOMERS: Duration = Duration::from_secs(1);
/// How often a sweep reads from the oldest row, for a row later still (its
/// write queued behind a stalled database, say).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(30);
const IDLE_POLL: Duration = Duration::from_millis(500);
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// A sweep reads every row in flight again: with many in flight (a slow
/// broker), sweep less often, so that it stays a small share of the reads.
fn sweep_every(in_flight: usize) -> Duration {
    (SWEEP_EVERY * (in_flight / 500).max(1) as u32).min(Duration::from_secs(1))
}

/// Below the ids of rows made in the last [`LATECOMERS`] (on any node: ids
/// are times first).
fn latecomers_from() -> i64 {
    let from = Timestamp::from_millis(Timestamp::now().as_millis() - LATECOMERS.as_millis() as i64);
    Id::compose(from, 0, 0).as_i64() - 1
}

/// Where a sweep that is not a full one reads from: the rows made in the
/// last [`LATECOMERS`] (`latecomers`), but never from past `cursor`, the
/// highest id sent. The rows above the cursor have not been read yet: a
/// sweep that started beyond them would send newer rows and move the cursor
/// past them. A relay more than [`LATECOMERS`] behind (a burst of 140,000
/// tweets on SQLite, whose fan-out acknowledges as it goes) did that, and
/// then sent the rows it had stepped over only at full sweeps, a page every
/// [`FULL_SWEEP_EVERY`].
fn sweep_from(cursor: Option<i64>, latecomers: i64) -> i64 {
    cursor.map_or(latecomers, |cursor| cursor.min(latecomers))
}

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
    /// Deletions go through the group commit, with the writes that made the events.
    pub writer: Writer,
    pub broker: Arc<dyn Broker>,
    /// Where each kind of event goes.
    pub topics: EventTopics,
    /// This process, as lease holder.
    pub holder: String,
    pub wake: Arc<Notify>,
}

type Acked = (i64, Result<(), BrokerError>);

/// Rows handed to the broker and not yet deleted.
#[derive(Default)]
struct InFlight {
    /// Acknowledgements, in the order the rows were sent.
    acks: FuturesOrdered<futures::future::BoxFuture<'static, Acked>>,
    /// Acknowledgements taken from `acks` and not yet deleted.
    arrived: VecDeque<Acked>,
    /// Ids sent and not yet deleted (acknowledged or not).
    ids: HashSet<i64>,
    /// The highest id sent.
    cursor: Option<i64>,
}

impl InFlight {
    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn room(&self) -> usize {
        WINDOW.saturating_sub(self.ids.len())
    }

    /// Takes every acknowledgement that has arrived, in order: the ids
    /// acknowledged up to the first failure, and that failure if any.
    fn take_acked(&mut self) -> (Vec<i64>, Option<BrokerError>) {
        while let Some(Some(acked)) = self.acks.next().now_or_never() {
            self.arrived.push_back(acked);
        }
        let mut ids = Vec::with_capacity(self.arrived.len());
        while let Some((id, result)) = self.arrived.pop_front() {
            match result {
                Ok(()) => ids.push(id),
                Err(e) => return (ids, Some(e)),
            }
        }
        (ids, None)
    }

    /// Waits for the next acknowledgement (for ever when nothing is in flight).
    async fn next_ack(&mut self) {
        match self.acks.next().await {
            Some(acked) => self.arrived.push_back(acked),
            None => std::future::pending().await,
        }
    }
}

/// Why a relay stopped leading.
enum Led {
    Stopped,
    LostLease,
}

impl OutboxRelay {
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(250);
        loop {
            if stop.is_cancelled() {
                return;
            }
            let wait = match self.store.acquire_lease(LEASE, &self.holder, LEASE_TTL).await {
                Ok(true) => match self.lead(&stop).await {
                    Ok(Led::Stopped) => return,
                    Ok(Led::LostLease) => LEASE_TTL / 3,
                    // Stopping: the writer may have stopped before a mark.
                    Err(_) if stop.is_cancelled() => return,
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
                },
                Ok(false) => LEASE_TTL / 3,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay: cannot take the lease");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    wait
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Publishes while this process holds the lease: until it stops, loses
    /// the lease, or a publish fails.
    async fn lead(&self, stop: &CancellationToken) -> anyhow::Result<Led> {
        let mut flight = InFlight::default();
        let started = Instant::now();
        let (mut renewed, mut swept) = (started, started);
        // The first read is from the oldest row.
        let mut swept_all: Option<Instant> = None;
        let mut sampled: Option<Instant> = None;
        loop {
            let (acked, failed) = flight.take_acked();
            self.delete_acked(&mut flight, &acked).await?;
            if let Some(e) = failed {
                return Err(
                    anyhow::Error::new(e).context("the broker refused an event; sending again from the oldest not deleted")
                );
            }
            if stop.is_cancelled() {
                return Ok(Led::Stopped);
            }
            if renewed.elapsed() >= LEASE_TTL / 3 {
                if !self.store.acquire_lease(LEASE, &self.holder, LEASE_TTL).await? {
                    tracing::info!(holder = %self.holder, "outbox relay: lease lost to another process");
                    return Ok(Led::LostLease);
                }
                renewed = Instant::now();
            }
            if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
                sampled = Some(Instant::now());
                metrics::gauge!("chirp_outbox_backlog").set(self.store.outbox_backlog().await? as f64);
            }

            let mut full_page = false;
            if flight.room() > 0 {
                // Past the last id sent; from the last LATECOMERS when nothing
                // is in flight or a sweep is due (rows below the cursor), and
                // from the oldest row every FULL_SWEEP_EVERY.
                let sweep = flight.is_empty() || swept.elapsed() >= sweep_every(flight.ids.len());
                let page = flight.room().min(FETCH as usize);
                let (after, limit) = match flight.cursor {
                    Some(cursor) if !sweep => (cursor, page),
                    // A sweep reads the rows in flight again, besides a page of new ones.
                    _ => {
                        swept = Instant::now();
                        let full = swept_all.is_none_or(|at| at.elapsed() >= FULL_SWEEP_EVERY);
                        if full {
                            swept_all = Some(swept);
                        }
                        (if full { i64::MIN } else { sweep_from(flight.cursor, latecomers_from()) }, flight.ids.len() + page)
                    }
                };
                let limit = u32::try_from(limit).unwrap_or(u32::MAX);
                let rows = self.store.unpublished(after, limit).await?;
                full_page = rows.len() as u32 == limit;
                self.send(&mut flight, rows)?;
            }
            if full_page && flight.room() > 0 {
                continue;
            }
            // Nothing more to read now: wait for an acknowledgement, new rows, or the next sweep.
            let wait = if flight.is_empty() { IDLE_POLL } else { sweep_every(flight.ids.len()) };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = flight.next_ack() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Hands `rows` not already in flight to the broker, in order, in one
    /// call (the Kafka adapter packs those bound for one partition).
    fn send(&self, flight: &mut InFlight, rows: Vec<OutboxMessage>) -> anyhow::Result<()> {
        let mut rows: Vec<OutboxMessage> = rows.into_iter().filter(|row| !flight.ids.contains(&row.id)).collect();
        rows.truncate(flight.room());
        let messages: Vec<Outgoing<'_>> = rows
            .iter()
            .map(|row| Outgoing { topic: self.topics.of(&row.kind), key: row.key.as_bytes(), payload: row.payload.as_bytes() })
            .collect();
        let acks = self.broker.send_all(&messages)?;
        for (row, ack) in rows.iter().zip(acks) {
            let id = row.id;
            flight.acks.push_back(ack.map(move |result| (id, result)).boxed());
            flight.ids.insert(id);
            flight.cursor = Some(flight.cursor.map_or(id, |c| c.max(id)));
        }
        Ok(())
    }

    /// Deletes the rows of `acked` and forgets them.
    async fn delete_acked(&self, flight: &mut InFlight, acked: &[i64]) -> anyhow::Result<()> {
        for chunk in acked.chunks(FETCH as usize) {
            self.writer.published(chunk.to_vec()).await?;
            for id in chunk {
                flight.ids.remove(id);
            }
            metrics::counter!("chirp_outbox_published_total").increment(chunk.len() as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_never_starts_past_the_rows_not_yet_read() {
        let latecomers = latecomers_from();
        // Behind by more than LATECOMERS: from the cursor, so that the rows
        // between it and the last second are read before newer ones.
        assert_eq!(sweep_from(Some(latecomers - 5_000), latecomers), latecomers - 5_000);
        // Caught up: the last second, for rows that committed late below the cursor.
        assert_eq!(sweep_from(Some(latecomers + 5_000), latecomers), latecomers);
        assert_eq!(sweep_from(None, latecomers), latecomers);
    }
}
