//! Group commit on SQLite (see `ports::store::writes`): a batch runs in one
//! call to a blocking thread, on the writer connection's own handle.
//!
//! Through sqlx every statement is a round trip between the async worker
//! and the connection's thread, and a batch of likes is eight of them: with
//! the cores busy serving requests, the writer spent as long waiting for
//! its next statement as running statements. Here the writer connection is
//! locked (sqlx's `lock_handle`), and the whole batch, from `BEGIN` to
//! `COMMIT`, runs on its handle through rusqlite, without leaving the
//! thread. Everything else keeps using the connection through sqlx.

use std::collections::HashSet;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;

use super::{CHUNK, SqliteStore, err};
use crate::domain::{Id, Media, Timestamp, User};
use crate::ports::store::writes::{BatchTx, TweetRowCounts, Write, WriteStore, Written, run_batch};
use crate::ports::store::{NewNotification, NewTweet, OutboxMessage, StoreError, USER_COLUMNS, UserRow, transient};

type Outcomes = Vec<Result<Written, StoreError>>;

#[async_trait]
impl WriteStore for SqliteStore {
    async fn apply(&self, writes: &[Write]) -> Result<Outcomes, StoreError> {
        let conn = self.writer.acquire().await.map_err(err)?;
        let writes = writes.to_vec();
        // The blocking task owns the connection: if this future is dropped,
        // the batch still ends (committed or rolled back) before the
        // connection goes back to the pool.
        tokio::task::spawn_blocking(move || on_handle(conn, &writes))
            .await
            .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("the write batch's thread failed")))?
    }
}

/// Runs the batch in one transaction on the connection's handle, on this thread.
fn on_handle(mut conn: PoolConnection<Sqlite>, writes: &[Write]) -> Result<Outcomes, StoreError> {
    let mut locked = futures::executor::block_on(conn.lock_handle()).map_err(err)?;
    // SAFETY: while `locked` lives, no other thread uses the connection,
    // and `db` is dropped before it; a Connection made from a handle never
    // closes that handle.
    let mut db = unsafe { Connection::from_handle(locked.as_raw_handle().as_ptr()) }.map_err(rerr)?;
    let outcomes = in_transaction(&mut db, writes);
    drop(db);
    drop(locked);
    outcomes
}

fn in_transaction(db: &mut Connection, writes: &[Write]) -> Result<Outcomes, StoreError> {
    db.execute_batch("BEGIN IMMEDIATE").map_err(rerr)?;
    // Every BatchTx method below is synchronous: the future is ready when polled.
    let done = futures::executor::block_on(run_batch(&mut Batch(db), writes))
        .and_then(|outcomes| db.execute_batch("COMMIT").map_err(rerr).map(|()| outcomes));
    if done.is_err() {
        // Nothing of the batch stays; if the failure already ended the transaction, this fails harmlessly.
        let _ = db.execute_batch("ROLLBACK");
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

struct Batch<'c>(&'c mut Connection);

/// `(?, ?, …), (?, ?, …)`: `rows` tuples of `width` placeholders.
fn tuples(rows: usize, width: usize) -> String {
    let one = format!("({})", vec!["?"; width].join(", "));
    vec![one; rows].join(", ")
}

fn ints(values: impl IntoIterator<Item = i64>) -> Vec<Value> {
    values.into_iter().map(Value::Integer).collect()
}

impl Batch<'_> {
    /// Runs a statement that returns no rows; the number of rows it changed.
    fn execute(&mut self, sql: &str, values: Vec<Value>) -> Result<usize, StoreError> {
        self.0.execute(sql, params_from_iter(values)).map_err(rerr)
    }

    /// Runs a statement, turning each row it returns into a `T`.
    fn rows<T>(
        &mut self,
        sql: &str,
        values: Vec<Value>,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = self.0.prepare(sql).map_err(rerr)?;
        let rows = statement.query_map(params_from_iter(values), row).map_err(rerr)?;
        rows.collect::<Result<Vec<T>, _>>().map_err(rerr)
    }

    fn insert_media(&mut self, tweet: Id, position: usize, m: &Media) -> Result<(), StoreError> {
        let text = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
        let int = |n: Option<i64>| n.map_or(Value::Null, Value::Integer);
        self.execute(
            "INSERT INTO media (id, tweet_id, position, kind, content_type, storage_key, thumbnail_key, size_bytes, width, \
             height, duration_ms, original_key, thumbnail_width, thumbnail_height, description, blurhash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
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
            ],
        )?;
        Ok(())
    }
}

#[async_trait]
impl BatchTx for Batch<'_> {
    async fn tweets(&mut self, ids: &[i64]) -> Result<Vec<TweetRowCounts>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!("SELECT id, author_id, like_count, view_count FROM tweets WHERE id IN {}", tuples(1, chunk.len()));
            found.extend(self.rows(&sql, ints(chunk.iter().copied()), |r| {
                Ok(TweetRowCounts { id: r.get(0)?, author_id: r.get(1)?, like_count: r.get(2)?, view_count: r.get(3)? })
            })?);
        }
        Ok(found)
    }

    async fn users(&mut self, ids: &[i64]) -> Result<Vec<User>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id IN {}", tuples(1, chunk.len()));
            found.extend(self.rows(&sql, ints(chunk.iter().copied()), |r| {
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
        for chunk in likes.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO likes (user_id, tweet_id, created_at) VALUES {} ON CONFLICT DO NOTHING RETURNING user_id, tweet_id",
                tuples(chunk.len(), 3)
            );
            let values = ints(chunk.iter().flat_map(|(user, tweet, at)| [user.as_i64(), tweet.as_i64(), at.as_millis()]));
            inserted.extend(self.rows(&sql, values, |r| Ok((r.get(0)?, r.get(1)?)))?);
        }
        Ok(inserted)
    }

    async fn delete_like(&mut self, user: Id, tweet: Id) -> Result<bool, StoreError> {
        let sql = "DELETE FROM likes WHERE tweet_id = ? AND user_id = ?";
        Ok(self.execute(sql, ints([tweet.as_i64(), user.as_i64()]))? == 1)
    }

    async fn insert_follows(&mut self, follows: &[(Id, Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut inserted = Vec::with_capacity(follows.len());
        for chunk in follows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO follows (follower_id, followee_id, id, created_at) VALUES {} \
                 ON CONFLICT DO NOTHING RETURNING follower_id, followee_id",
                tuples(chunk.len(), 4)
            );
            let values =
                ints(chunk.iter().flat_map(|(follower, followee, id, at)| {
                    [follower.as_i64(), followee.as_i64(), id.as_i64(), at.as_millis()]
                }));
            inserted.extend(self.rows(&sql, values, |r| Ok((r.get(0)?, r.get(1)?)))?);
        }
        Ok(inserted)
    }

    async fn delete_follow(&mut self, follower: Id, followee: Id) -> Result<bool, StoreError> {
        let sql = "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?";
        Ok(self.execute(sql, ints([follower.as_i64(), followee.as_i64()]))? == 1)
    }

    async fn insert_tweets(&mut self, tweets: &[&NewTweet]) -> Result<(), StoreError> {
        for chunk in tweets.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO tweets (id, author_id, content, search_terms, created_at) VALUES {}",
                tuples(chunk.len(), 5)
            );
            let values = chunk
                .iter()
                .flat_map(|t| {
                    [
                        Value::Integer(t.id.as_i64()),
                        Value::Integer(t.author.as_i64()),
                        Value::Text(t.content.clone()),
                        Value::Text(crate::domain::search::index_text(&t.content)),
                        Value::Integer(t.created_at.as_millis()),
                    ]
                })
                .collect();
            self.execute(&sql, values)?;
        }
        for t in tweets {
            for (position, m) in t.media.iter().enumerate() {
                self.insert_media(t.id, position, m)?;
            }
        }
        Ok(())
    }

    async fn add_to_tweets(&mut self, deltas: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        for chunk in deltas.chunks(CHUNK) {
            let sql = format!(
                "UPDATE tweets SET like_count = like_count + d.column2, view_count = view_count + d.column3 \
                 FROM (VALUES {}) AS d WHERE tweets.id = d.column1",
                tuples(chunk.len(), 3)
            );
            self.execute(&sql, ints(chunk.iter().flat_map(|&(id, likes, views)| [id, likes, views])))?;
        }
        Ok(())
    }

    async fn add_to_users(&mut self, deltas: &[(i64, i64, i64, i64)]) -> Result<(), StoreError> {
        for chunk in deltas.chunks(CHUNK) {
            let sql = format!(
                "UPDATE users SET followers_count = followers_count + d.column2, \
                 followings_count = followings_count + d.column3, tweets_count = tweets_count + d.column4 \
                 FROM (VALUES {}) AS d WHERE users.id = d.column1",
                tuples(chunk.len(), 4)
            );
            let values = ints(chunk.iter().flat_map(|&(id, followers, followings, tweets)| [id, followers, followings, tweets]));
            self.execute(&sql, values)?;
        }
        Ok(())
    }

    async fn append_outbox(&mut self, events: &[(OutboxMessage, Timestamp)]) -> Result<(), StoreError> {
        for chunk in events.chunks(CHUNK) {
            let sql = format!("INSERT INTO outbox (id, kind, key, payload, created_at) VALUES {}", tuples(chunk.len(), 5));
            let values = chunk
                .iter()
                .flat_map(|(m, at)| {
                    [
                        Value::Integer(m.id),
                        Value::Text(m.kind.clone()),
                        Value::Text(m.key.clone()),
                        Value::Text(m.payload.clone()),
                        Value::Integer(at.as_millis()),
                    ]
                })
                .collect();
            self.execute(&sql, values)?;
        }
        Ok(())
    }

    async fn mark_published(&mut self, ids: &[i64], at: Timestamp) -> Result<(), StoreError> {
        for chunk in ids.chunks(CHUNK) {
            let sql =
                format!("UPDATE outbox SET published_at = ? WHERE published_at IS NULL AND id IN {}", tuples(1, chunk.len()));
            self.execute(&sql, ints(std::iter::once(at.as_millis()).chain(chunk.iter().copied())))?;
        }
        Ok(())
    }

    async fn insert_notifications(&mut self, batch: &[NewNotification]) -> Result<HashSet<i64>, StoreError> {
        let mut inserted = HashSet::with_capacity(batch.len());
        for chunk in batch.chunks(CHUNK) {
            // None whose tweet is gone: the tweet may have been deleted since the like.
            let sql = format!(
                "INSERT INTO notifications (id, owner_id, actor_id, tweet_id, kind, event_id, created_at) \
                 SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7 FROM (VALUES {}) AS v \
                 WHERE EXISTS (SELECT 1 FROM tweets WHERE id = v.column4) ON CONFLICT DO NOTHING RETURNING id",
                tuples(chunk.len(), 7)
            );
            let values = chunk
                .iter()
                .flat_map(|n| {
                    [
                        Value::Integer(n.id.as_i64()),
                        Value::Integer(n.owner.as_i64()),
                        Value::Integer(n.actor.as_i64()),
                        Value::Integer(n.tweet.as_i64()),
                        Value::Text(n.kind.into()),
                        Value::Integer(n.event_id.as_i64()),
                        Value::Integer(n.created_at.as_millis()),
                    ]
                })
                .collect();
            inserted.extend(self.rows(&sql, values, |r| r.get::<_, i64>(0))?);
        }
        Ok(inserted)
    }
}
