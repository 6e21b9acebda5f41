//! Media items on their own: alt text edits, gifv renditions.

use async_trait::async_trait;

use super::{SqliteStore, err};
use crate::domain::{AltText, Id, Media};
use crate::ports::store::{MEDIA_COLUMNS, MediaRecordStore, MediaRow, RenditionOutcome, StoreError};

#[async_trait]
impl MediaRecordStore for SqliteStore {
    async fn media_item(&self, id: Id) -> Result<Option<(Id, Media)>, StoreError> {
        let row: Option<MediaRow> = sqlx::query_as(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = ?"))
            .bind(id.as_i64())
            .fetch_optional(&self.reader)
            .await
            .map_err(err)?;
        Ok(row.map(|r| (r.tweet_id(), r.into_media())))
    }

    async fn set_media_description(&self, id: Id, description: Option<&AltText>) -> Result<Option<Media>, StoreError> {
        let row: Option<MediaRow> =
            sqlx::query_as(&format!("UPDATE media SET description = ? WHERE id = ? RETURNING {MEDIA_COLUMNS}"))
                .bind(description.map(AltText::as_str))
                .bind(id.as_i64())
                .fetch_optional(&self.writer)
                .await
                .map_err(err)?;
        Ok(row.map(MediaRow::into_media))
    }

    async fn claim_rendition(&self, now_ms: i64, until_ms: i64) -> Result<Option<(Id, Media)>, StoreError> {
        let claimed: Option<i64> = sqlx::query_scalar(
            "UPDATE media_renditions SET claimed_until = ? WHERE media_id = \
             (SELECT media_id FROM media_renditions WHERE claimed_until < ? ORDER BY media_id LIMIT 1) RETURNING media_id",
        )
        .bind(until_ms)
        .bind(now_ms)
        .fetch_optional(&self.writer)
        .await
        .map_err(err)?;
        match claimed {
            Some(id) => self.media_item(Id::from_i64(id)).await,
            None => Ok(None),
        }
    }

    async fn settle_rendition(&self, id: Id, outcome: RenditionOutcome<'_>) -> Result<Option<(Id, Media)>, StoreError> {
        let mut tx = self.writer.begin().await.map_err(err)?;
        let row: Option<MediaRow> = match outcome {
            RenditionOutcome::Written { size_bytes } => {
                sqlx::query_as(&format!("UPDATE media SET size_bytes = ? WHERE id = ? RETURNING {MEDIA_COLUMNS}"))
                    .bind(size_bytes)
                    .bind(id.as_i64())
                    .fetch_optional(&mut *tx)
                    .await
            }
            RenditionOutcome::Abandoned { content_type, size_bytes } => {
                sqlx::query_as(&format!(
                    "UPDATE media SET kind = 'image', content_type = ?, size_bytes = ?, storage_key = original_key, \
                 original_key = NULL, duration_ms = NULL WHERE id = ? AND original_key IS NOT NULL RETURNING {MEDIA_COLUMNS}"
                ))
                .bind(content_type)
                .bind(size_bytes)
                .bind(id.as_i64())
                .fetch_optional(&mut *tx)
                .await
            }
        }
        .map_err(err)?;
        sqlx::query("DELETE FROM media_renditions WHERE media_id = ?").bind(id.as_i64()).execute(&mut *tx).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(row.map(|r| (r.tweet_id(), r.into_media())))
    }

    async fn rendition_pending(&self, id: Id) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT media_id FROM media_renditions WHERE media_id = ?")
            .bind(id.as_i64())
            .fetch_optional(&self.reader)
            .await
            .map_err(err)?;
        Ok(found.is_some())
    }
}
