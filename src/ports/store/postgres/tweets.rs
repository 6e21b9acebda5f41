use async_trait::async_trait;
use sqlx::PgConnection;

use super::{PostgresStore, err};
use crate::domain::{Id, Media, Timestamp, Tweet};
use crate::ports::store::TimelineStore;
use crate::ports::store::{
    MEDIA_COLUMNS, MediaRow, OutboxMessage, PG_TWEET_SELECT, PageRequest, StoreError, TweetRow, TweetStore, assemble,
    deleted_event,
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

fn before(page: PageRequest) -> i64 {
    page.before.map_or(i64::MAX, Id::as_i64)
}

#[async_trait]
impl TweetStore for PostgresStore {
    async fn tweet(&self, id: Id, viewer: Option<Id>) -> Result<Option<Tweet>, StoreError> {
        let row: Option<TweetRow> = sqlx::query_as(&format!("{PG_TWEET_SELECT} WHERE t.id = $1"))
            .bind(id.as_i64())
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        Ok(self.hydrate(row.into_iter().collect(), viewer).await?.pop())
    }

    async fn tweets_by_ids(&self, ids: &[Id], viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.as_i64()).collect();
        let rows: Vec<TweetRow> = sqlx::query_as(&format!("{PG_TWEET_SELECT} WHERE t.id = ANY($1) ORDER BY t.id DESC"))
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
        let Some(author) = author else {
            tx.rollback().await.map_err(err)?;
            return Ok(None);
        };
        let media: Vec<MediaRow> = sqlx::query_as(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE tweet_id = $1"))
            .bind(id.as_i64())
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        // Media rows go with the tweet (ON DELETE CASCADE); likes and
        // notifications are deleted here (see migration 0010). The tweet's
        // lock above makes a like or notification batch touching it wait.
        sqlx::query("DELETE FROM likes WHERE tweet_id = $1").bind(id.as_i64()).execute(&mut *tx).await.map_err(err)?;
        sqlx::query("DELETE FROM notifications WHERE owner_id = $1 AND tweet_id = $2")
            .bind(author)
            .bind(id.as_i64())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
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
                sqlx::query_as(&format!("{PG_TWEET_SELECT} WHERE t.author_id = $1 AND t.id < $2 ORDER BY t.id DESC LIMIT $3"))
                    .bind(author.as_i64())
                    .bind(before(page))
                    .bind(i64::from(page.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(err)?
            }
            None => sqlx::query_as(&format!("{PG_TWEET_SELECT} WHERE t.id < $1 ORDER BY t.id DESC LIMIT $2"))
                .bind(before(page))
                .bind(i64::from(page.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?,
        };
        self.hydrate(rows, viewer).await
    }
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
