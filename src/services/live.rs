//! Live notification streams. A new notification is announced as
//! (owner, notification id) and reaches the open streams of that owner only:
//! each node keeps its streams in a map by owner, so no stream wakes for
//! someone else's notification. In-process, an announcement is looked up in
//! that map directly. With Redis, each owner has a pub/sub channel of their
//! own (`{prefix}notifications:{owner}`) that a node subscribes to while it
//! holds a stream of that owner, so an announcement made on one node reaches
//! only the nodes, and there only the streams, that have one.
//!
//! Limits, per node: a user holds at most `per_user` streams; opening one
//! more closes that user's oldest stream (with a last `Replaced` signal)
//! rather than refusing the new one, because a stream whose client vanished
//! without closing its connection would otherwise lock its user out until
//! TCP noticed. A node holds at most `per_node` streams; past that, opening
//! fails with [`NodeFull`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::Id;

/// Announcements a stream may have waiting before it misses some (a slow
/// client). The notification consumer announces a batch at once, and the
/// stream loads 256 a query: at 5,000 likes/s to one account through tansu,
/// 1,024 overflowed by 400-500 of 50,000 a run (`chirp_live_missed_total`).
/// A channel allocates as it fills, so an idle stream holds none of this.
const STREAM_BUFFER: usize = 8192;
/// How long opening a stream waits for its Redis subscription to be confirmed.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);
/// Channels named in one SUBSCRIBE when a node resubscribes after a reconnection.
const RESUBSCRIBE_CHUNK: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub owner: Id,
    pub notification: Id,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveLimits {
    /// Streams of one user on this node; a new one past this closes the oldest.
    pub per_user: usize,
    /// Streams on this node; a new one past this is refused.
    pub per_node: usize,
}

/// What a stream receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Notification(Id),
    /// The user opened more streams than allowed and this was the oldest: it ends.
    Replaced,
}

#[derive(Debug, thiserror::Error)]
#[error("this node already holds its maximum of {0} live streams")]
pub struct NodeFull(pub usize);

struct Slot {
    serial: u64,
    tx: mpsc::Sender<Signal>,
}

#[derive(Default)]
struct Streams {
    /// Oldest first.
    by_owner: HashMap<Id, VecDeque<Slot>>,
    total: usize,
    next_serial: u64,
}

enum Command {
    /// Acknowledged once Redis confirmed the subscription.
    Subscribe(Id, oneshot::Sender<()>),
    Unsubscribe(Id),
}

enum Fanout {
    Local,
    /// Subscription changes go to the one task holding the pub/sub connection,
    /// in the order the map changed, so a quick close-and-reopen cannot end unsubscribed.
    Redis {
        conn: redis::aio::ConnectionManager,
        prefix: String,
        commands: mpsc::UnboundedSender<Command>,
    },
}

pub struct LiveHub {
    streams: Mutex<Streams>,
    limits: LiveLimits,
    fanout: Fanout,
}

/// One open stream. Dropping it (the client went away) removes it from the hub.
pub struct LiveStream {
    hub: Arc<LiveHub>,
    owner: Id,
    serial: u64,
    rx: mpsc::Receiver<Signal>,
}

impl LiveStream {
    /// The next signal; `None` once the hub has let go of this stream.
    pub async fn next(&mut self) -> Option<Signal> {
        self.rx.recv().await
    }

    /// A signal already waiting, if any.
    pub fn try_next(&mut self) -> Option<Signal> {
        self.rx.try_recv().ok()
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        let mut streams = self.hub.lock();
        let Some(slots) = streams.by_owner.get_mut(&self.owner) else { return };
        // A replaced stream is already gone from the map.
        if let Some(i) = slots.iter().position(|s| s.serial == self.serial) {
            slots.remove(i);
            streams.total -= 1;
        }
        if streams.by_owner.get(&self.owner).is_some_and(VecDeque::is_empty) {
            streams.by_owner.remove(&self.owner);
            if let Fanout::Redis { commands, .. } = &self.hub.fanout {
                let _ = commands.send(Command::Unsubscribe(self.owner));
            }
        }
        metrics::gauge!("chirp_live_streams").set(streams.total as f64);
    }
}

fn channel(prefix: &str, owner: Id) -> String {
    format!("{prefix}notifications:{owner}")
}

impl LiveHub {
    pub fn local(limits: LiveLimits) -> Arc<Self> {
        Arc::new(Self { streams: Mutex::default(), limits, fanout: Fanout::Local })
    }

    /// Announces through Redis pub/sub, one channel per owner, and relays
    /// what any node announces to this node's streams of that owner.
    pub async fn redis(
        url: &str,
        prefix: &str,
        limits: LiveLimits,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client.clone()).await?;
        let (commands, queue) = mpsc::unbounded_channel();
        let hub = Arc::new(Self {
            streams: Mutex::default(),
            limits,
            fanout: Fanout::Redis { conn, prefix: prefix.to_owned(), commands },
        });
        tasks.spawn(subscriber(hub.clone(), client, prefix.to_owned(), queue, stop));
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        // The map stays consistent at every step, so a panic elsewhere leaves it usable.
        self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a stream for `owner`: closes their oldest one if they are at
    /// their limit, refuses if the node is at its own.
    pub async fn open(self: &Arc<Self>, owner: Id) -> Result<LiveStream, NodeFull> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let (serial, replaced, subscribed) = {
            let mut streams = self.lock();
            let at_user_limit = streams.by_owner.get(&owner).is_some_and(|s| s.len() >= self.limits.per_user);
            if !at_user_limit && streams.total >= self.limits.per_node {
                return Err(NodeFull(self.limits.per_node));
            }
            let serial = streams.next_serial;
            streams.next_serial += 1;
            let slots = streams.by_owner.entry(owner).or_default();
            let first = slots.is_empty();
            let replaced = if at_user_limit { slots.pop_front() } else { None };
            slots.push_back(Slot { serial, tx });
            if replaced.is_none() {
                streams.total += 1;
            }
            metrics::gauge!("chirp_live_streams").set(streams.total as f64);
            // Sent under the lock, so commands queue in the order the map changed.
            let subscribed = match &self.fanout {
                Fanout::Redis { commands, .. } if first => {
                    let (ack, acked) = oneshot::channel();
                    let _ = commands.send(Command::Subscribe(owner, ack));
                    Some(acked)
                }
                _ => None,
            };
            (serial, replaced, subscribed)
        };
        if let Some(oldest) = replaced {
            metrics::counter!("chirp_live_streams_replaced_total").increment(1);
            // If its buffer is full the stream still ends, only without the signal.
            let _ = oldest.tx.try_send(Signal::Replaced);
        }
        if let Some(acked) = subscribed {
            // Without a confirmation (Redis away) the stream opens anyway: the
            // reconnection subscribes every owner that has a stream.
            if !matches!(tokio::time::timeout(SUBSCRIBE_WAIT, acked).await, Ok(Ok(()))) {
                tracing::warn!(%owner, "live notifications: the Redis subscription is not confirmed yet");
            }
        }
        Ok(LiveStream { hub: self.clone(), owner, serial, rx })
    }

    /// Streams open on this node.
    pub fn open_streams(&self) -> usize {
        self.lock().total
    }

    pub async fn announce(&self, a: Announcement) {
        match &self.fanout {
            Fanout::Local => self.deliver(a),
            Fanout::Redis { conn, prefix, .. } => {
                let mut conn = conn.clone();
                let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(channel(prefix, a.owner))
                    .arg(a.notification.to_string())
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = sent {
                    // The notification is stored; only the live push is missed. Deliver locally at least.
                    tracing::warn!(error = %e, "live notifications: Redis publish failed");
                    self.deliver(a);
                }
            }
        }
    }

    /// Hands `a` to this node's streams of its owner, and to no other.
    fn deliver(&self, a: Announcement) {
        let streams = self.lock();
        let Some(slots) = streams.by_owner.get(&a.owner) else { return };
        for slot in slots {
            if let Err(TrySendError::Full(_)) = slot.tx.try_send(Signal::Notification(a.notification)) {
                metrics::counter!("chirp_live_missed_total").increment(1);
                tracing::warn!(owner = %a.owner, "live notifications: a slow stream missed an announcement");
            }
        }
    }
}

/// Holds the pub/sub connection: applies subscription changes, relays
/// messages to this node's streams, and reconnects (resubscribing every owner
/// with a stream here) when the connection is lost.
async fn subscriber(
    hub: Arc<LiveHub>,
    client: redis::Client,
    prefix: String,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stop: CancellationToken,
) {
    loop {
        let listened = listen(&hub, &client, &prefix, &mut commands, &stop).await;
        if stop.is_cancelled() {
            return;
        }
        if let Err(e) = listened {
            tracing::warn!(error = %e, "live notifications: Redis subscription lost; reconnecting");
        }
        // Meanwhile, waiting openers go ahead: the next connection subscribes them.
        let pause = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = &mut pause => break,
                command = commands.recv() => match command {
                    Some(Command::Subscribe(_, ack)) => { let _ = ack.send(()); }
                    Some(Command::Unsubscribe(_)) => {}
                    None => return,
                },
            }
        }
    }
}

async fn listen(
    hub: &LiveHub,
    client: &redis::Client,
    prefix: &str,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
    let owners: Vec<String> = hub.lock().by_owner.keys().map(|o| channel(prefix, *o)).collect();
    for chunk in owners.chunks(RESUBSCRIBE_CHUNK) {
        sink.subscribe(chunk).await?;
    }
    let owner_of = |name: &str| name.strip_prefix(prefix)?.strip_prefix("notifications:")?.parse::<Id>().ok();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            command = commands.recv() => match command {
                Some(Command::Subscribe(owner, ack)) => {
                    sink.subscribe(channel(prefix, owner)).await?;
                    let _ = ack.send(());
                }
                Some(Command::Unsubscribe(owner)) => sink.unsubscribe(channel(prefix, owner)).await?,
                None => return Ok(()),
            },
            message = messages.next() => {
                let Some(message) = message else { anyhow::bail!("subscription closed") };
                let payload: String = message.get_payload()?;
                match (owner_of(message.get_channel_name()), payload.parse::<Id>()) {
                    (Some(owner), Ok(notification)) => hub.deliver(Announcement { owner, notification }),
                    _ => tracing::warn!(channel = message.get_channel_name(), "live notifications: an unreadable announcement"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> Id {
        Id::from_i64(n)
    }

    fn hub(per_user: usize, per_node: usize) -> Arc<LiveHub> {
        LiveHub::local(LiveLimits { per_user, per_node })
    }

    /// The next signal, if one is already waiting.
    fn waiting(stream: &mut LiveStream) -> Option<Signal> {
        stream.rx.try_recv().ok()
    }

    #[tokio::test]
    async fn an_announcement_reaches_its_owners_streams_and_no_other() {
        let hub = hub(5, 100);
        let (alice, bob) = (id(1), id(2));
        let mut alice_phone = hub.open(alice).await.unwrap();
        let mut alice_laptop = hub.open(alice).await.unwrap();
        let mut bob_phone = hub.open(bob).await.unwrap();

        hub.announce(Announcement { owner: alice, notification: id(10) }).await;

        assert_eq!(waiting(&mut alice_phone), Some(Signal::Notification(id(10))));
        assert_eq!(waiting(&mut alice_laptop), Some(Signal::Notification(id(10))));
        assert_eq!(waiting(&mut bob_phone), None, "bob's stream did not wake for alice's notification");
    }

    #[tokio::test]
    async fn a_user_past_the_limit_loses_their_oldest_stream_and_others_keep_theirs() {
        let hub = hub(2, 100);
        let (alice, bob) = (id(1), id(2));
        let mut first = hub.open(alice).await.unwrap();
        let mut second = hub.open(alice).await.unwrap();
        let mut bobs = hub.open(bob).await.unwrap();
        let mut third = hub.open(alice).await.unwrap();

        assert_eq!(first.next().await, Some(Signal::Replaced));
        assert_eq!(first.next().await, None, "the replaced stream ends");
        assert_eq!(hub.open_streams(), 3);
        hub.announce(Announcement { owner: alice, notification: id(11) }).await;
        assert_eq!(waiting(&mut second), Some(Signal::Notification(id(11))));
        assert_eq!(waiting(&mut third), Some(Signal::Notification(id(11))));
        assert_eq!(waiting(&mut bobs), None);
    }

    #[tokio::test]
    async fn a_full_node_refuses_new_streams_until_one_closes() {
        let hub = hub(5, 2);
        let alice = hub.open(id(1)).await.unwrap();
        let _bob = hub.open(id(2)).await.unwrap();
        assert!(hub.open(id(3)).await.is_err());

        drop(alice);
        assert_eq!(hub.open_streams(), 1);
        let _carol = hub.open(id(3)).await.expect("room again after a stream closed");
        assert_eq!(hub.open_streams(), 2);
    }

    #[tokio::test]
    async fn a_user_at_their_limit_on_a_full_node_still_replaces_their_oldest() {
        let hub = hub(1, 1);
        let mut old = hub.open(id(1)).await.unwrap();
        let _new = hub.open(id(1)).await.expect("replacing does not add to the node's count");
        assert_eq!(old.next().await, Some(Signal::Replaced));
        assert_eq!(hub.open_streams(), 1);
    }

    #[tokio::test]
    async fn closed_streams_leave_the_map_and_are_not_counted() {
        let hub = hub(5, 100);
        let streams: Vec<_> = futures::future::join_all((0..4).map(|_| hub.open(id(7)))).await;
        assert_eq!(hub.open_streams(), 4);
        drop(streams);
        assert_eq!(hub.open_streams(), 0);
        assert!(hub.lock().by_owner.is_empty());
    }

    /// With Redis: announcements made on one hub reach the owner's streams on
    /// another, and only the owner's. Uses `CHIRP_TEST_REDIS_URL`; without it
    /// the test returns at once, except in CI, where every backend must be
    /// tested: there it uses the Redis `.ci/run` starts on 127.0.0.1:6379
    /// (also for its run on the embedded defaults) and fails if none answers.
    #[tokio::test]
    async fn across_redis_an_announcement_reaches_only_its_owners_streams() {
        let url = match std::env::var("CHIRP_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").as_deref() == Ok("true") => "redis://127.0.0.1:6379".to_owned(),
            _ => return,
        };
        let prefix = format!("test_live_{:016x}:", rand::random::<u64>());
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        let limits = LiveLimits { per_user: 5, per_node: 100 };
        let node_a = LiveHub::redis(&url, &prefix, limits, &tasks, stop.clone()).await.unwrap();
        let node_b = LiveHub::redis(&url, &prefix, limits, &tasks, stop.clone()).await.unwrap();
        let (alice, bob) = (id(1), id(2));
        let mut alice_on_b = node_b.open(alice).await.unwrap();
        let mut bob_on_b = node_b.open(bob).await.unwrap();

        node_a.announce(Announcement { owner: alice, notification: id(20) }).await;
        let got = tokio::time::timeout(Duration::from_secs(5), alice_on_b.next()).await.expect("delivered within 5 s");
        assert_eq!(got, Some(Signal::Notification(id(20))));
        assert_eq!(waiting(&mut bob_on_b), None, "bob's stream did not wake for alice's notification");

        // Alice's last stream on B closes: B leaves her channel and keeps bob's.
        drop(alice_on_b);
        let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let subscribers = |owner| redis::cmd("PUBSUB").arg("NUMSUB").arg(channel(&prefix, owner)).clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, alices): (String, i64) = subscribers(alice).query_async(&mut conn).await.unwrap();
            if alices == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "alice's channel still has {alices} subscribers");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, bobs): (String, i64) = subscribers(bob).query_async(&mut conn).await.unwrap();
        assert_eq!(bobs, 1);
        drop(bob_on_b);
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
