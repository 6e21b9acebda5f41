//! Group commit for every counted write: likes, unlikes, follows, unfollows,
//! tweets and views, and for the outbox relay's deletions and the notification
//! consumer's inserts, so that a like, its event's deletion and its notification
//! share commits instead of taking one each. Requests queue on a channel,
//! and one worker writes everything queued so far in a single transaction
//! (the Store's [`WriteStore::apply`]). While a write runs, the next batch gathers, so
//! batches grow with load and no delay is added when idle. Each request is
//! answered only after its batch commits, with what its own write did (new
//! or already there, the counters as it left them): nothing is answered
//! before it is durable, and nothing answered is lost. On shutdown the queue
//! is drained before the worker stops.
//!
//! If a batch fails as a whole for a reason other than the database being
//! unavailable (a constraint one write ran into, say), each of its writes is
//! tried again on its own, so one bad write cannot fail its neighbours.
//!
//! After a commit the worker tells the tweet cache what changed, in commit
//! order, so cached counters stay exact where the cache is exclusive, and
//! puts the batch's new tweets on their authors' kept home timelines, in one
//! call beside the restamp: an author sees their tweet in their own timeline
//! on their very next request (read-your-own-writes).

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::{Id, Timestamp, User};
use crate::error::{Error, Result};
use crate::ports::cache::timelines::HomeTimelines;
use crate::ports::store::{NewNotification, NewTweet, Store, StoreError, Write, Written};
use crate::services::tweet_cache::{Stamp, TweetCache};

/// Writes a transaction takes at most: enough that a batch amortizes its
/// commit, few enough that SQLite's statement variables and one
/// transaction's locks stay small.
const MAX_BATCH: usize = 1024;

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<Written>>,
}

#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Request>,
}

/// What the worker needs besides its queue.
struct Worker {
    store: Arc<dyn Store>,
    cache: Arc<TweetCache>,
    homes: Arc<dyn HomeTimelines>,
    /// Wakes the outbox relay when a batch added events.
    outbox: Arc<Notify>,
}

impl Writer {
    pub fn start(
        store: Arc<dyn Store>,
        cache: Arc<TweetCache>,
        homes: Arc<dyn HomeTimelines>,
        outbox: Arc<Notify>,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let (queue, rx) = mpsc::channel(64 * 1024);
        tasks.spawn(Worker { store, cache, homes, outbox }.run(rx, stop));
        Self { queue }
    }

    /// Queues a write and waits until its batch is committed.
    pub async fn write(&self, write: Write) -> Result<Written> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Unavailable { what: "writes", source: anyhow::anyhow!("shutting down") };
        self.queue.send(Request { write, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A committed batch's answers, sent once its changes are restamped and
/// its new tweets are on their authors' timelines.
struct Answers {
    changed: Vec<Stamp>,
    /// (author, tweet) of each new tweet.
    posted: Vec<(Id, Id)>,
    outcomes: Vec<std::result::Result<Written, StoreError>>,
    replies: Vec<oneshot::Sender<Result<Written>>>,
    events: bool,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Request>, stop: CancellationToken) {
        let mut batch = Vec::new();
        // The last batch's answers: restamped and sent while the next batch
        // is written, so that the restamp (a round trip to Redis) is not a
        // step of the cycle every write waits for. Restamps stay in commit
        // order: a batch's starts once the one before has ended.
        let mut answering: Option<Answers> = None;
        loop {
            let first = match rx.try_recv() {
                Ok(request) => Some(request),
                Err(_) => {
                    if let Some(answers) = answering.take() {
                        self.answer(answers).await;
                    }
                    tokio::select! {
                        request = rx.recv() => request,
                        _ = stop.cancelled() => None,
                    }
                }
            };
            let Some(first) = first else { break };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let previous = answering.take();
            let (answers, ()) = tokio::join!(self.write(&mut batch), async {
                if let Some(answers) = previous {
                    self.answer(answers).await;
                }
            });
            answering = answers;
        }
        if let Some(answers) = answering.take() {
            self.answer(answers).await;
        }
        // Stopping: answer whatever is still queued.
        rx.close();
        while let Some(request) = rx.recv().await {
            batch.push(request);
            if batch.len() >= MAX_BATCH {
                self.flush(&mut batch).await;
            }
        }
        self.flush(&mut batch).await;
    }

    async fn flush(&self, batch: &mut Vec<Request>) {
        if let Some(answers) = self.write(batch).await {
            self.answer(answers).await;
        }
    }

    /// Writes a batch and tells the in-process cache what it changed, in
    /// commit order; its answers are still to be sent.
    async fn write(&self, batch: &mut Vec<Request>) -> Option<Answers> {
        if batch.is_empty() {
            return None;
        }
        let (writes, replies): (Vec<Write>, Vec<_>) = batch.drain(..).map(|r| (r.write, r.reply)).unzip();
        metrics::histogram!("chirp_write_batch_size").record(writes.len() as f64);
        let started = std::time::Instant::now();
        let applied = self.store.apply(&writes).await;
        metrics::histogram!("chirp_write_batch_seconds").record(started.elapsed().as_secs_f64());
        let outcomes = match applied {
            Ok(outcomes) => outcomes,
            Err(e) if writes.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
                tracing::warn!(
                    error = format!("{:#}", anyhow::Error::from(e)),
                    writes = writes.len(),
                    "write batch failed; writing each alone"
                );
                let mut outcomes = Vec::with_capacity(writes.len());
                for write in &writes {
                    outcomes.push(match self.store.apply(std::slice::from_ref(write)).await {
                        Ok(mut one) => one.pop().unwrap_or(Err(StoreError::NotFound)),
                        Err(e) => Err(e),
                    });
                }
                outcomes
            }
            Err(e) => {
                tracing::error!(error = format!("{:#}", anyhow::Error::from(e)), writes = writes.len(), "write batch failed");
                (0..writes.len()).map(|_| Err(StoreError::Unavailable(anyhow::anyhow!("the write batch failed")))).collect()
            }
        };
        let mut events = false;
        let mut changed = Vec::new();
        let mut posted = Vec::new();
        for (write, outcome) in writes.iter().zip(&outcomes) {
            if let Ok(written) = outcome {
                events |= self.written(write, written, &mut changed);
                if let Write::Post(tweet) = write {
                    posted.push((tweet.author, tweet.id));
                }
            }
        }
        Some(Answers { changed, posted, outcomes, replies, events })
    }

    /// Restamps what a batch changed and puts its new tweets on their
    /// authors' timelines, then answers its writers.
    async fn answer(&self, answers: Answers) {
        let Answers { changed, posted, outcomes, replies, events } = answers;
        // Other nodes stop trusting what they kept before anyone is answered.
        let pushed = async {
            if posted.is_empty() {
                return;
            }
            if let Err(e) = self.homes.push_each(&posted).await {
                tracing::warn!(error = %e, "could not push new tweets to their authors' timelines; the fan-out will");
            }
        };
        tokio::join!(self.cache.restamp(&changed), pushed);
        for (outcome, reply) in outcomes.into_iter().zip(replies) {
            let _ = reply.send(outcome.map_err(Error::from));
        }
        if events {
            self.outbox.notify_one();
        }
    }

    /// Tells the cache what a committed write changed, and `changed` which
    /// stamps it invalidates; true if it added an outbox event.
    fn written(&self, write: &Write, written: &Written, changed: &mut Vec<Stamp>) -> bool {
        let cache = &self.cache;
        match (write, written) {
            (Write::Like { user, tweet, .. }, Written::Like { added, like_count, .. }) => {
                cache.like_written(*user, *tweet, added.then_some(true), *like_count);
                if *added {
                    changed.extend([Stamp::Tweet(*tweet), Stamp::Likes(*user)]);
                }
                *added
            }
            (Write::Unlike { user, tweet }, Written::Unlike { removed, like_count }) => {
                cache.like_written(*user, *tweet, removed.then_some(false), *like_count);
                if *removed {
                    changed.extend([Stamp::Tweet(*tweet), Stamp::Likes(*user)]);
                }
                false
            }
            (Write::Follow { follower, .. }, Written::Follow { added, followee }) => {
                if *added {
                    cache.user_changed(*follower);
                    changed.extend([Stamp::User(*follower), Stamp::User(followee.id)]);
                }
                cache.user_written(followee);
                false
            }
            (Write::Unfollow { .. }, Written::Unfollow { removed, follower, followee }) => {
                cache.user_written(follower);
                cache.user_written(followee);
                if *removed {
                    changed.extend([Stamp::User(follower.id), Stamp::User(followee.id)]);
                }
                false
            }
            (Write::Post(_), Written::Post { author }) => {
                cache.user_written(author);
                changed.extend([Stamp::User(author.id), Stamp::Posts(author.id)]);
                true
            }
            (Write::View { tweet }, Written::View { view_count }) => {
                cache.viewed(*tweet, *view_count);
                changed.push(Stamp::Tweet(*tweet));
                false
            }
            _ => false,
        }
    }
}

/// The typed front of the queue: one method a write.
impl Writer {
    /// Likes a tweet: whether the like is new, and the tweet's like and
    /// view counts after it.
    pub async fn like(&self, user: Id, tweet: Id, event_id: Id) -> Result<(bool, i64, i64)> {
        match self.write(Write::Like { user, tweet, at: Timestamp::now(), event_id }).await? {
            Written::Like { added, like_count, view_count } => Ok((added, like_count, view_count)),
            other => Err(mismatch(other)),
        }
    }

    /// Takes a like back: whether there was one.
    pub async fn unlike(&self, user: Id, tweet: Id) -> Result<bool> {
        match self.write(Write::Unlike { user, tweet }).await? {
            Written::Unlike { removed, .. } => Ok(removed),
            other => Err(mismatch(other)),
        }
    }

    /// Follows: whether the follow is new, and the followee after it.
    pub async fn follow(&self, follower: Id, followee: Id, follow_id: Id) -> Result<(bool, User)> {
        match self.write(Write::Follow { follower, followee, follow_id, at: Timestamp::now() }).await? {
            Written::Follow { added, followee } => Ok((added, followee)),
            other => Err(mismatch(other)),
        }
    }

    /// Unfollows: whether there was a follow.
    pub async fn unfollow(&self, follower: Id, followee: Id) -> Result<bool> {
        match self.write(Write::Unfollow { follower, followee }).await? {
            Written::Unfollow { removed, .. } => Ok(removed),
            other => Err(mismatch(other)),
        }
    }

    /// Posts a tweet: its author, counting it.
    pub async fn post(&self, tweet: NewTweet) -> Result<User> {
        match self.write(Write::Post(tweet)).await? {
            Written::Post { author } => Ok(author),
            other => Err(mismatch(other)),
        }
    }

    /// Deletes outbox rows the broker acknowledged.
    pub async fn published(&self, ids: Vec<i64>) -> Result<()> {
        match self.write(Write::Published { ids }).await? {
            Written::Published => Ok(()),
            other => Err(mismatch(other)),
        }
    }

    /// Stores notifications (none twice, none whose tweet is gone): for
    /// each, in order, whether it was stored.
    pub async fn notify(&self, batch: Vec<NewNotification>) -> Result<Vec<bool>> {
        match self.write(Write::Notify(batch)).await? {
            Written::Notified { stored } => Ok(stored),
            other => Err(mismatch(other)),
        }
    }

    /// Counts a view: the tweet's view count, counting it.
    pub async fn view(&self, tweet: Id) -> Result<i64> {
        match self.write(Write::View { tweet }).await? {
            Written::View { view_count } => Ok(view_count),
            other => Err(mismatch(other)),
        }
    }
}

fn mismatch(written: Written) -> Error {
    Error::Internal(anyhow::anyhow!("a write was answered for another kind of write: {written:?}"))
}
