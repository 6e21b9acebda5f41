use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::{SqliteStore, err, in_list};
use crate::domain::{Id, Media, Timestamp, Tweet};
use crate::ports::store::TimelineStore;
use crate::ports::store::{
    MEDIA_COLUMNS, MediaRow, OutboxMessage, PageRequest, StoreError, TWEET_SELECT, TweetRow, TweetStore, assemble, deleted_event,
};

impl SqliteStore {
    /// Adds media and the viewer's likes to tweet rows.
    async fn hydrate(&self, rows: Vec<TweetRow>, viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(TweetRow::id).collect();
        let tweet_ids: Vec<Id> = ids.iter().copied().map(Id::from_i64).collect();
        let mut q = in_list(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE tweet_id IN "), &tweet_ids);
        q.push(" ORDER BY tweet_id, position");
        let media: Vec<MediaRow> = q.build_query_as().fetch_all(&self.reader).await.map_err(err)?;
        let liked: Vec<i64> = match viewer {
            Some(viewer) => self.liked_among(viewer, &tweet_ids).await?.into_iter().map(Id::as_i64).collect(),
            None => Vec::new(),
        };
        Ok(assemble(rows, media, &liked))
    }
}

fn before(page: PageRequest) -> i64 {
    page.before.map_or(i64::MAX, Id::as_i64)
}

#[async_trait]
impl TweetStore for SqliteStore {
    async fn tweet(&self, id: Id, viewer: Option<Id>) -> Result<Option<Tweet>, StoreError> {
        let row: Option<TweetRow> = sqlx::query_as(&format!("{TWEET_SELECT} WHERE t.id = ?"))
            .bind(id.as_i64())
            .fetch_optional(&self.reader)
            .await
            .map_err(err)?;
        Ok(self.hydrate(row.into_iter().collect(), viewer).await?.pop())
    }

    async fn tweets_by_ids(&self, ids: &[Id], viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = in_list(&format!("{TWEET_SELECT} WHERE t.id IN "), ids);
        q.push(" ORDER BY t.id DESC");
        let rows: Vec<TweetRow> = q.build_query_as().fetch_all(&self.reader).await.map_err(err)?;
        self.hydrate(rows, viewer).await
    }

    async fn delete_tweet(&self, id: Id, event_id: Id) -> Result<Option<(Id, Vec<Media>)>, StoreError> {
        let mut tx = self.writer.begin().await.map_err(err)?;
        let author: Option<i64> = sqlx::query_scalar("SELECT author_id FROM tweets WHERE id = ?")
            .bind(id.as_i64())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        let Some(author) = author else { return Ok(None) };
        let media: Vec<MediaRow> = sqlx::query_as(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE tweet_id = ?"))
            .bind(id.as_i64())
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        // Its notifications are kept under its author (migration 0010); likes
        // and media rows go with the tweet (ON DELETE CASCADE).
        sqlx::query("DELETE FROM notifications WHERE owner_id = ? AND tweet_id = ?")
            .bind(author)
            .bind(id.as_i64())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query("DELETE FROM tweets WHERE id = ?").bind(id.as_i64()).execute(&mut *tx).await.map_err(err)?;
        sqlx::query("UPDATE users SET tweets_count = tweets_count - 1 WHERE id = ?")
            .bind(author)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let now = Timestamp::now();
        append_outbox(&mut tx, &deleted_event(event_id, id, Id::from_i64(author), now), now).await?;
        tx.commit().await.map_err(err)?;
        self.search.removed(id);
        Ok(Some((Id::from_i64(author), media.into_iter().map(MediaRow::into_media).collect())))
    }

    async fn list_tweets(&self, author: Option<Id>, page: PageRequest, viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError> {
        let rows: Vec<TweetRow> = match author {
            Some(author) => {
                sqlx::query_as(&format!("{TWEET_SELECT} WHERE t.author_id = ? AND t.id < ? ORDER BY t.id DESC LIMIT ?"))
                    .bind(author.as_i64())
                    .bind(before(page))
                    .bind(page.limit)
                    .fetch_all(&self.reader)
                    .await
                    .map_err(err)?
            }
            None => sqlx::query_as(&format!("{TWEET_SELECT} WHERE t.id < ? ORDER BY t.id DESC LIMIT ?"))
                .bind(before(page))
                .bind(page.limit)
                .fetch_all(&self.reader)
                .await
                .map_err(err)?,
        };
        self.hydrate(rows, viewer).await
    }
}

pub(super) async fn append_outbox(conn: &mut SqliteConnection, m: &OutboxMessage, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (id, kind, key, payload, created_at) VALUES (?, ?, ?, ?, ?)")
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
