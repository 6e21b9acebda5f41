//! Group commit on SQLite (see `ports::store::writes`): batches run on a
//! thread of their own, on the writer connection's own handle.
//!
//! Through sqlx every statement is a round trip between the async worker
//! and the connection's thread, and a batch of likes is eight of them. Here
//! the writer connection is locked (sqlx's `lock_handle`), and each batch,
//! from `BEGIN` to `COMMIT`, runs on its handle through rusqlite without
//! leaving the thread. Taking the connection from the pool and its handle
//! from sqlx's thread are themselves round trips between threads, so the
//! batch thread keeps both while batches follow one another closely (the
//! next one arrives within [`IDLE`]), for at most [`HOLD`]: then it gives
//! the connection back, and whatever else waits for the writer (a tweet's
//! deletion, a checkpoint) has its turn. Everything else keeps using the
//! connection through sqlx.
//!
//! Each statement is one row's, prepared once a session and kept
//! (rusqlite's statement cache): a multi-row statement is parsed again for
//! every batch, and SQLite journals the pages it changes in case a later row
//! fails, which a one-row statement does not need. New tweets are the
//! exception (see `insert_tweets`).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use sqlx::SqlitePool;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::search_index::{SearchIndex, Terms};
use super::{SqliteStore, err};
use crate::domain::{Id, Media, Timestamp, User};
use crate::ports::store::writes::{BatchEnd, BatchTx, TweetRowCounts, Write, WriteStore, Written, run_batch};
use crate::ports::store::{NewNotification, NewTweet, StoreError, USER_COLUMNS, UserRow, transient};

type Outcomes = Vec<Result<Written, StoreError>>;

/// How long the batch thread waits for the next batch before it gives the
/// writer connection back: longer than the group commit worker takes to
/// answer one batch and gather the next.
const IDLE: Duration = Duration::from_millis(1);

/// How long the batch thread keeps the writer connection at most, however
/// busy: how long anything else that needs the writer may wait for it.
const HOLD: Duration = Duration::from_millis(20);

/// Statements a session keeps prepared: every one a batch can run.
const STATEMENTS: usize = 32;

/// Tweets one `INSERT` takes at most: well under SQLite's 32,766 variables
/// a statement.
const TWEETS_A_STATEMENT: usize = 500;

#[async_trait]
impl WriteStore for SqliteStore {
    async fn apply(&self, writes: &[Write]) -> Result<Outcomes, StoreError> {
        let (done, outcomes) = oneshot::channel();
        let gone = || StoreError::Other(anyhow::anyhow!("the write batch thread has stopped"));
        // If this future is dropped, the batch still ends (committed or rolled back).
        self.batches.send(Job { writes: writes.to_vec(), done }).map_err(|_| gone())?;
        outcomes.await.map_err(|_| gone())?
    }
}

struct Job {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<Outcomes, StoreError>>,
}

/// The queue of the thread that runs write batches; the thread ends when
/// the queue is dropped with the store.
pub(super) struct BatchThread(mpsc::Sender<Job>);

impl BatchThread {
    pub(super) fn start(writer: SqlitePool, search: Arc<SearchIndex>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let runtime = Handle::current();
        std::thread::Builder::new().name("chirp-sqlite-batches".into()).spawn(move || {
            // The pool's timers and the connection's return to it need the runtime.
            let _entered = runtime.enter();
            while let Ok(job) = queue.recv() {
                session(&writer, &search, &runtime, job, &queue);
            }
        })?;
        Ok(Self(jobs))
    }

    fn send(&self, job: Job) -> Result<(), mpsc::SendError<Job>> {
        self.0.send(job)
    }
}

/// Takes the writer connection and runs `first` and the batches that follow
/// it closely on its handle, then gives the connection back.
fn session(writer: &SqlitePool, search: &SearchIndex, runtime: &Handle, first: Job, queue: &mpsc::Receiver<Job>) {
    let mut conn = match runtime.block_on(writer.acquire()) {
        Ok(conn) => conn,
        Err(e) => return drop(first.done.send(Err(err(e)))),
    };
    let mut locked = match runtime.block_on(conn.lock_handle()) {
        Ok(locked) => locked,
        Err(e) => return drop(first.done.send(Err(err(e)))),
    };
    // SAFETY: while `locked` lives, no other thread uses the connection,
    // and `db` is dropped before it; a Connection made from a handle never
    // closes that handle (its prepared statements are finalized on drop).
    let mut db = match unsafe { Connection::from_handle(locked.as_raw_handle().as_ptr()) } {
        Ok(db) => db,
        Err(e) => return drop(first.done.send(Err(rerr(e)))),
    };
    db.set_prepared_statement_cache_capacity(STATEMENTS);
    let opened = Instant::now();
    let mut job = first;
    loop {
        let outcomes = std::panic::catch_unwind(AssertUnwindSafe(|| in_transaction(&mut db, search, &job.writes)));
        let panicked = outcomes.is_err();
        let outcomes = outcomes.unwrap_or_else(|_| Err(StoreError::Other(anyhow::anyhow!("the write batch panicked"))));
        let _ = job.done.send(outcomes);
        if panicked {
            // The connection goes back to the pool with no transaction open.
            let _ = db.execute_batch("ROLLBACK");
            break;
        }
        if opened.elapsed() >= HOLD {
            break;
        }
        match queue.recv_timeout(IDLE) {
            Ok(next) => job = next,
            Err(_) => break,
        }
    }
    drop(db);
    drop(locked);
}

/// Runs a batch in one transaction; once it has committed, hands its new
/// tweets to the search index (before anyone is answered, so that a search
/// made after a post's answer finds it).
fn in_transaction(db: &mut Connection, search: &SearchIndex, writes: &[Write]) -> Result<Outcomes, StoreError> {
    db.execute_batch("BEGIN IMMEDIATE").map_err(rerr)?;
    let mut batch = Batch { db, new_tweets: Vec::new() };
    // Every BatchTx method below is synchronous: the future is ready when polled.
    let done = futures::executor::block_on(run_batch(&mut batch, writes))
        .and_then(|outcomes| batch.db.execute_batch("COMMIT").map_err(rerr).map(|()| outcomes));
    match done {
        Ok(_) => search.added(batch.new_tweets),
        // Nothing of the batch stays; if the failure already ended the transaction, this fails harmlessly.
        Err(_) => drop(batch.db.execute_batch("ROLLBACK")),
    }
    done
}

/// Interprets a rusqlite error as `err` does a sqlx one.
fn rerr(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error() {
        // A row referred to is gone: the thing asked for is not there.
        Some(f) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => StoreError::NotFound,
        Some(f) if transient(&f.extended_code.to_string()) => StoreError::Unavailable(e.into()),
        _ => StoreError::Other(e.into()),
    }
}

struct Batch<'c> {
    db: &'c mut Connection,
    /// The search terms of the tweets inserted, for the search index once committed.
    new_tweets: Vec<Terms>,
}

impl Batch<'_> {
    /// Runs a kept statement that returns no rows; the number of rows it changed.
    fn execute(&mut self, sql: &str, values: impl rusqlite::Params) -> Result<usize, StoreError> {
        self.db.prepare_cached(sql).and_then(|mut s| s.execute(values)).map_err(rerr)
    }

    /// Runs a kept statement that returns at most one row, turned into a `T`.
    fn row<T>(
        &mut self,
        sql: &str,
        values: impl rusqlite::Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.db.prepare_cached(sql).and_then(|mut s| s.query_row(values, row).optional()).map_err(rerr)
    }

    fn insert_media(&mut self, tweet: Id, position: usize, m: &Media) -> Result<(), StoreError> {
        let text = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
        let int = |n: Option<i64>| n.map_or(Value::Null, Value::Integer);
        self.execute(
            "INSERT INTO media (id, tweet_id, position, kind, content_type, storage_key, thumbnail_key, size_bytes, width, \
             height, duration_ms, original_key, thumbnail_width, thumbnail_height, description, blurhash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params_from_iter([
                Value::Integer(m.id.as_i64()),
                Value::Integer(tweet.as_i64()),
                Value::Integer(i64::try_from(position).unwrap_or(i64::MAX)),
                Value::Text(m.kind.as_str().into()),
                Value::Text(m.content_type.clone()),
                Value::Text(m.key.clone()),
                text(&m.thumbnail_key),
                Value::Integer(m.size_bytes),
                int(m.width),
                int(m.height),
                int(m.duration_ms),
                text(&m.original_key),
                int(m.thumbnail_width),
                int(m.thumbnail_height),
                text(&m.description.as_ref().map(|d| d.as_str().to_owned())),
                text(&m.blurhash),
            ]),
        )?;
        Ok(())
    }
}

#[async_trait]
impl BatchTx for Batch<'_> {
    async fn tweets(&mut self, ids: &[i64]) -> Result<Vec<TweetRowCounts>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            found.extend(self.row("SELECT id, author_id, like_count, view_count FROM tweets WHERE id = ?", [id], |r| {
                Ok(TweetRowCounts { id: r.get(0)?, author_id: r.get(1)?, like_count: r.get(2)?, view_count: r.get(3)? })
            })?);
        }
        Ok(found)
    }

    async fn users(&mut self, ids: &[i64]) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            found.extend(self.row(&sql, [id], |r| {
                Ok(User::from(UserRow {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    email: r.get(2)?,
                    name: r.get(3)?,
                    created_at: r.get(4)?,
                    followers_count: r.get(5)?,
                    followings_count: r.get(6)?,
                    tweets_count: r.get(7)?,
                    bio: r.get(8)?,
                    avatar_key: r.get(9)?,
                }))
            })?);
        }
        Ok(found)
    }

    async fn insert_likes(&mut self, likes: &[(Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut inserted = Vec::with_capacity(likes.len());
        for &(user, tweet, at) in likes {
            let sql = "INSERT INTO likes (user_id, tweet_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING";
            if self.execute(sql, [user.as_i64(), tweet.as_i64(), at.as_millis()])? == 1 {
                inserted.push((user.as_i64(), tweet.as_i64()));
            }
        }
        Ok(inserted)
    }

    async fn delete_like(&mut self, user: Id, tweet: Id) -> Result<bool, StoreError> {
        let sql = "DELETE FROM likes WHERE tweet_id = ? AND user_id = ?";
        Ok(self.execute(sql, [tweet.as_i64(), user.as_i64()])? == 1)
    }

    async fn insert_follows(&mut self, follows: &[(Id, Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut inserted = Vec::with_capacity(follows.len());
        for &(follower, followee, id, at) in follows {
            let sql = "INSERT INTO follows (follower_id, followee_id, id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING";
            if self.execute(sql, [follower.as_i64(), followee.as_i64(), id.as_i64(), at.as_millis()])? == 1 {
                inserted.push((follower.as_i64(), followee.as_i64()));
            }
        }
        Ok(inserted)
    }

    async fn delete_follow(&mut self, follower: Id, followee: Id) -> Result<bool, StoreError> {
        let sql = "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?";
        Ok(self.execute(sql, [follower.as_i64(), followee.as_i64()])? == 1)
    }

    async fn insert_tweets(&mut self, tweets: &[&NewTweet]) -> Result<(), StoreError> {
        // One statement for many tweets, unlike the other writes: parsed once
        // a batch, where one a tweet would be a statement (and a journal of
        // its own) each. The search index is written after the commit, by
        // the indexer (`search_index`).
        let first = self.new_tweets.len();
        self.new_tweets.extend(tweets.iter().map(|t| Terms {
            id: t.id.as_i64(),
            author: t.author.as_i64(),
            terms: crate::domain::search::index_text(&t.content),
        }));
        for (chunk, terms) in tweets.chunks(TWEETS_A_STATEMENT).zip(self.new_tweets[first..].chunks(TWEETS_A_STATEMENT)) {
            let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!("INSERT INTO tweets (id, author_id, content, search_terms, created_at) VALUES {rows}");
            let values = chunk.iter().zip(terms).flat_map(|(t, terms)| {
                [
                    Value::Integer(t.id.as_i64()),
                    Value::Integer(t.author.as_i64()),
                    Value::Text(t.content.clone()),
                    Value::Text(terms.terms.clone()),
                    Value::Integer(t.created_at.as_millis()),
                ]
            });
            self.db.execute(&sql, params_from_iter(values)).map_err(rerr)?;
        }
        for t in tweets {
            for (position, m) in t.media.iter().enumerate() {
                self.insert_media(t.id, position, m)?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self, end: &BatchEnd<'_>) -> Result<(), StoreError> {
        for &(id, likes, views) in end.tweets {
            let sql = "UPDATE tweets SET like_count = like_count + ?, view_count = view_count + ? WHERE id = ?";
            self.execute(sql, [likes, views, id])?;
        }
        for &(id, followers, followings, tweets) in end.users {
            let sql = "UPDATE users SET followers_count = followers_count + ?, followings_count = followings_count + ?, \
                       tweets_count = tweets_count + ? WHERE id = ?";
            self.execute(sql, [followers, followings, tweets, id])?;
        }
        for (m, at) in end.outbox {
            let sql = "INSERT INTO outbox (id, kind, key, payload, created_at) VALUES (?, ?, ?, ?, ?)";
            self.execute(sql, params![m.id, m.kind, m.key, m.payload, at.as_millis()])?;
        }
        for &id in end.published {
            self.execute("DELETE FROM outbox WHERE id = ?", [id])?;
        }
        Ok(())
    }

    async fn insert_notifications(&mut self, batch: &[NewNotification]) -> Result<HashSet<i64>, StoreError> {
        let mut inserted = HashSet::with_capacity(batch.len());
        for n in batch {
            // None whose tweet is gone: the tweet may have been deleted since the like.
            if self.row("SELECT 1 FROM tweets WHERE id = ?", [n.tweet.as_i64()], |_| Ok(()))?.is_none() {
                continue;
            }
            let sql = "INSERT INTO notifications (id, owner_id, actor_id, tweet_id, kind, event_id, created_at) \
                       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
            let values = params![
                n.id.as_i64(),
                n.owner.as_i64(),
                n.actor.as_i64(),
                n.tweet.as_i64(),
                n.kind,
                n.event_id.as_i64(),
                n.created_at.as_millis()
            ];
            if self.execute(sql, values)? == 1 {
                inserted.insert(n.id.as_i64());
            }
        }
        Ok(inserted)
    }
}
