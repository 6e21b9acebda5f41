//! Group commit on SQLite: the batch's statements on the one writer
//! connection, in one transaction (see `ports::store::writes`).

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{CHUNK, SqliteStore, err, in_list};
use crate::domain::{Id, Media, Timestamp, User};
use crate::ports::store::writes::{BatchTx, TweetRowCounts, Write, WriteStore, Written, run_batch};
use crate::ports::store::{NewTweet, OutboxMessage, StoreError, USER_COLUMNS, UserRow};

#[async_trait]
impl WriteStore for SqliteStore {
    async fn apply(&self, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        let mut tx = self.writer.begin().await.map_err(err)?;
        let outcomes = run_batch(&mut Batch(&mut tx), writes).await?;
        tx.commit().await.map_err(err)?;
        Ok(outcomes)
    }
}

struct Batch<'c>(&'c mut SqliteConnection);

fn ids(raw: &[i64]) -> Vec<Id> {
    raw.iter().copied().map(Id::from_i64).collect()
}

/// Runs a statement and says whether it changed a row.
async fn changed<'q>(
    q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    conn: &mut SqliteConnection,
) -> Result<bool, StoreError> {
    Ok(q.execute(conn).await.map_err(err)?.rows_affected() == 1)
}

#[async_trait]
impl BatchTx for Batch<'_> {
    async fn tweets(&mut self, raw: &[i64]) -> Result<Vec<TweetRowCounts>, StoreError> {
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = in_list("SELECT id, author_id, like_count, view_count FROM tweets WHERE id IN ", &ids(raw));
        q.build_query_as().fetch_all(&mut *self.0).await.map_err(err)
    }

    async fn users(&mut self, raw: &[i64]) -> Result<Vec<User>, StoreError> {
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = in_list(&format!("SELECT {USER_COLUMNS} FROM users WHERE id IN "), &ids(raw));
        let rows: Vec<UserRow> = q.build_query_as().fetch_all(&mut *self.0).await.map_err(err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn insert_likes(&mut self, likes: &[(Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut inserted = Vec::with_capacity(likes.len());
        for chunk in likes.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO likes (user_id, tweet_id, created_at) ");
            q.push_values(chunk, |mut row, (user, tweet, at)| {
                row.push_bind(user.as_i64()).push_bind(tweet.as_i64()).push_bind(at.as_millis());
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING user_id, tweet_id");
            inserted.extend(q.build_query_as::<(i64, i64)>().fetch_all(&mut *self.0).await.map_err(err)?);
        }
        Ok(inserted)
    }

    async fn delete_like(&mut self, user: Id, tweet: Id) -> Result<bool, StoreError> {
        let q = sqlx::query("DELETE FROM likes WHERE tweet_id = ? AND user_id = ?").bind(tweet.as_i64()).bind(user.as_i64());
        changed(q, self.0).await
    }

    async fn insert_follows(&mut self, follows: &[(Id, Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut inserted = Vec::with_capacity(follows.len());
        for chunk in follows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO follows (follower_id, followee_id, id, created_at) ");
            q.push_values(chunk, |mut row, (follower, followee, id, at)| {
                row.push_bind(follower.as_i64()).push_bind(followee.as_i64()).push_bind(id.as_i64()).push_bind(at.as_millis());
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING follower_id, followee_id");
            inserted.extend(q.build_query_as::<(i64, i64)>().fetch_all(&mut *self.0).await.map_err(err)?);
        }
        Ok(inserted)
    }

    async fn delete_follow(&mut self, follower: Id, followee: Id) -> Result<bool, StoreError> {
        let q = sqlx::query("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?")
            .bind(follower.as_i64())
            .bind(followee.as_i64());
        changed(q, self.0).await
    }

    async fn insert_tweets(&mut self, tweets: &[&NewTweet]) -> Result<(), StoreError> {
        for chunk in tweets.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO tweets (id, author_id, content, search_terms, created_at) ");
            q.push_values(chunk, |mut row, t| {
                row.push_bind(t.id.as_i64())
                    .push_bind(t.author.as_i64())
                    .push_bind(&t.content)
                    .push_bind(crate::domain::search::index_text(&t.content))
                    .push_bind(t.created_at.as_millis());
            });
            q.build().execute(&mut *self.0).await.map_err(err)?;
        }
        for t in tweets {
            for (position, m) in t.media.iter().enumerate() {
                insert_media(self.0, t.id, position, m).await?;
            }
        }
        Ok(())
    }

    async fn add_to_tweets(&mut self, deltas: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        for chunk in deltas.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE tweets SET like_count = like_count + d.column2, view_count = view_count + d.column3 FROM (",
            );
            q.push_values(chunk, |mut row, (id, likes, views)| {
                row.push_bind(id).push_bind(likes).push_bind(views);
            });
            q.push(") AS d WHERE tweets.id = d.column1");
            q.build().execute(&mut *self.0).await.map_err(err)?;
        }
        Ok(())
    }

    async fn add_to_users(&mut self, deltas: &[(i64, i64, i64, i64)]) -> Result<(), StoreError> {
        for chunk in deltas.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE users SET followers_count = followers_count + d.column2, \
                 followings_count = followings_count + d.column3, tweets_count = tweets_count + d.column4 FROM (",
            );
            q.push_values(chunk, |mut row, (id, followers, followings, tweets)| {
                row.push_bind(id).push_bind(followers).push_bind(followings).push_bind(tweets);
            });
            q.push(") AS d WHERE users.id = d.column1");
            q.build().execute(&mut *self.0).await.map_err(err)?;
        }
        Ok(())
    }

    async fn append_outbox(&mut self, events: &[(OutboxMessage, Timestamp)]) -> Result<(), StoreError> {
        for chunk in events.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO outbox (id, kind, key, payload, created_at) ");
            q.push_values(chunk, |mut row, (m, at)| {
                row.push_bind(m.id).push_bind(&m.kind).push_bind(&m.key).push_bind(&m.payload).push_bind(at.as_millis());
            });
            q.build().execute(&mut *self.0).await.map_err(err)?;
        }
        Ok(())
    }
}

pub(super) async fn insert_media(conn: &mut SqliteConnection, tweet: Id, position: usize, m: &Media) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO media (id, tweet_id, position, kind, content_type, storage_key, thumbnail_key, size_bytes, width, height, \
         duration_ms, original_key, thumbnail_width, thumbnail_height, description, blurhash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(m.id.as_i64())
    .bind(tweet.as_i64())
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .bind(m.kind.as_str())
    .bind(&m.content_type)
    .bind(&m.key)
    .bind(&m.thumbnail_key)
    .bind(m.size_bytes)
    .bind(m.width)
    .bind(m.height)
    .bind(m.duration_ms)
    .bind(&m.original_key)
    .bind(m.thumbnail_width)
    .bind(m.thumbnail_height)
    .bind(m.description.as_ref().map(|d| d.as_str()))
    .bind(&m.blurhash)
    .execute(conn)
    .await
    .map_err(err)?;
    Ok(())
}
