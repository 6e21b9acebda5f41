use async_trait::async_trait;
use sqlx::PgConnection;

use super::{PostgresStore, err};
use crate::domain::{Id, Media, Timestamp, Tweet};
use crate::ports::store::TimelineStore;
use crate::ports::store::{
    MEDIA_COLUMNS, MediaRow, NewTweet, OutboxMessage, PageRequest, StoreError, TWEET_SELECT, TweetRow, TweetStore, assemble,
    deleted_event, like_event, posted_event,
};

impl PostgresStore {
    /// Adds media and the viewer's likes to tweet rows.
    async fn hydrate(&self, rows: Vec<TweetRow>, viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(TweetRow::id).collect();
        let media: Vec<MediaRow> =
            sqlx::query_as(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE tweet_id = ANY($1) ORDER BY tweet_id, position"))
                .bind(&ids)
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        let liked: Vec<i64> = match viewer {
            Some(viewer) => {
                let tweets: Vec<Id> = ids.iter().copied().map(Id::from_i64).collect();
                self.liked_among(viewer, &tweets).await?.into_iter().map(Id::as_i64).collect()
            }
            None => Vec::new(),
        };
        Ok(assemble(rows, media, &liked))
    }
}

async fn tweet_exists(conn: &mut PgConnection, tweet: Id) -> Result<bool, StoreError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM tweets WHERE id = $1").bind(tweet.as_i64()).fetch_optional(conn).await.map_err(err)?;
    Ok(found.is_some())
}

fn before(page: PageRequest) -> i64 {
    page.before.map_or(i64::MAX, Id::as_i64)
}

#[async_trait]
impl TweetStore for PostgresStore {
    async fn insert_tweet(&self, t: &NewTweet) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        sqlx::query("INSERT INTO tweets (id, author_id, content, search_terms, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(t.id.as_i64())
            .bind(t.author.as_i64())
            .bind(&t.content)
            .bind(crate::domain::search::index_text(&t.content))
            .bind(t.created_at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        for (position, m) in t.media.iter().enumerate() {
            insert_media(&mut tx, t.id, position, m).await?;
        }
        sqlx::query("UPDATE users SET tweets_count = tweets_count + 1 WHERE id = $1")
            .bind(t.author.as_i64())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        append_outbox(&mut tx, &posted_event(t), t.created_at).await?;
        tx.commit().await.map_err(err)
    }

    async fn tweet(&self, id: Id, viewer: Option<Id>) -> Result<Option<Tweet>, StoreError> {
        let row: Option<TweetRow> = sqlx::query_as(&format!("{TWEET_SELECT} WHERE t.id = $1"))
            .bind(id.as_i64())
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        Ok(self.hydrate(row.into_iter().collect(), viewer).await?.pop())
    }

    async fn tweets_by_ids(&self, ids: &[Id], viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.as_i64()).collect();
        let rows: Vec<TweetRow> = sqlx::query_as(&format!("{TWEET_SELECT} WHERE t.id = ANY($1) ORDER BY t.id DESC"))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        self.hydrate(rows, viewer).await
    }

    async fn delete_tweet(&self, id: Id, event_id: Id) -> Result<Option<(Id, Vec<Media>)>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let author: Option<i64> = sqlx::query_scalar("SELECT author_id FROM tweets WHERE id = $1 FOR UPDATE")
            .bind(id.as_i64())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        let Some(author) = author else { return Ok(None) };
        let media: Vec<MediaRow> = sqlx::query_as(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE tweet_id = $1"))
            .bind(id.as_i64())
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        // Likes and media rows go with the tweet (ON DELETE CASCADE).
        sqlx::query("DELETE FROM tweets WHERE id = $1").bind(id.as_i64()).execute(&mut *tx).await.map_err(err)?;
        sqlx::query("UPDATE users SET tweets_count = tweets_count - 1 WHERE id = $1")
            .bind(author)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let now = Timestamp::now();
        append_outbox(&mut tx, &deleted_event(event_id, id, Id::from_i64(author), now), now).await?;
        tx.commit().await.map_err(err)?;
        Ok(Some((Id::from_i64(author), media.into_iter().map(MediaRow::into_media).collect())))
    }

    async fn list_tweets(&self, author: Option<Id>, page: PageRequest, viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        let rows: Vec<TweetRow> = match author {
            Some(author) => {
                sqlx::query_as(&format!("{TWEET_SELECT} WHERE t.author_id = $1 AND t.id < $2 ORDER BY t.id DESC LIMIT $3"))
                    .bind(author.as_i64())
                    .bind(before(page))
                    .bind(i64::from(page.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(err)?
            }
            None => sqlx::query_as(&format!("{TWEET_SELECT} WHERE t.id < $1 ORDER BY t.id DESC LIMIT $2"))
                .bind(before(page))
                .bind(i64::from(page.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?,
        };
        self.hydrate(rows, viewer).await
    }

    async fn like(&self, user: Id, tweet: Id, at: Timestamp, event_id: Id) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        // The foreign key makes a like of a missing (or concurrently deleted) tweet a NotFound.
        let added = sqlx::query("INSERT INTO likes (tweet_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(tweet.as_i64())
            .bind(user.as_i64())
            .bind(at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected()
            == 1;
        if added {
            let owner: i64 =
                sqlx::query_scalar("UPDATE tweets SET like_count = like_count + 1 WHERE id = $1 RETURNING author_id")
                    .bind(tweet.as_i64())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(err)?;
            if owner != user.as_i64() {
                append_outbox(&mut tx, &like_event(event_id, tweet, Id::from_i64(owner), user, at), at).await?;
            }
        } else if !tweet_exists(&mut tx, tweet).await? {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(err)?;
        Ok(added)
    }

    async fn unlike(&self, user: Id, tweet: Id) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let removed = sqlx::query("DELETE FROM likes WHERE tweet_id = $1 AND user_id = $2")
            .bind(tweet.as_i64())
            .bind(user.as_i64())
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected()
            == 1;
        if removed {
            sqlx::query("UPDATE tweets SET like_count = like_count - 1 WHERE id = $1")
                .bind(tweet.as_i64())
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        } else if !tweet_exists(&mut tx, tweet).await? {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(err)
    }

    async fn add_views(&self, views: &[(Id, i64)]) -> Result<Vec<(Id, i64)>, StoreError> {
        let mut sorted: Vec<(i64, i64)> = views.iter().map(|(id, n)| (id.as_i64(), *n)).collect();
        sorted.sort_unstable();
        let (ids, ns): (Vec<i64>, Vec<i64>) = sorted.into_iter().unzip();
        let mut tx = self.pool.begin().await.map_err(err)?;
        // Lock in id order first, so that batches from several nodes cannot deadlock.
        sqlx::query("SELECT id FROM tweets WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let counts: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE tweets t SET view_count = t.view_count + v.n \
             FROM unnest($1::bigint[], $2::bigint[]) AS v(id, n) WHERE t.id = v.id \
             RETURNING t.id, t.view_count",
        )
        .bind(&ids)
        .bind(&ns)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(counts.into_iter().map(|(id, n)| (Id::from_i64(id), n)).collect())
    }
}

async fn insert_media(conn: &mut PgConnection, tweet: Id, position: usize, m: &Media) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO media (id, tweet_id, position, kind, content_type, storage_key, thumbnail_key, size_bytes, width, height, \
         duration_ms, original_key, thumbnail_width, thumbnail_height, description, blurhash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
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

pub(super) async fn append_outbox(conn: &mut PgConnection, m: &OutboxMessage, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (id, kind, key, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(m.id)
        .bind(&m.kind)
        .bind(&m.key)
        .bind(&m.payload)
        .bind(at.as_millis())
        .execute(conn)
        .await
        .map_err(err)?;
    Ok(())
}
