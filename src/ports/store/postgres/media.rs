//! Media items on their own: alt text edits.

use async_trait::async_trait;

use super::{PostgresStore, err};
use crate::domain::{AltText, Id, Media};
use crate::ports::store::{MEDIA_COLUMNS, MediaRecordStore, MediaRow, StoreError};

#[async_trait]
impl MediaRecordStore for PostgresStore {
    async fn media_item(&self, id: Id) -> Result<Option<(Id, Media)>, StoreError> {
        let row: Option<MediaRow> = sqlx::query_as(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = $1"))
            .bind(id.as_i64())
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        Ok(row.map(|r| (r.tweet_id(), r.into_media())))
    }

    async fn set_media_description(&self, id: Id, description: Option<&AltText>) -> Result<Option<Media>, StoreError> {
        let row: Option<MediaRow> =
            sqlx::query_as(&format!("UPDATE media SET description = $2 WHERE id = $1 RETURNING {MEDIA_COLUMNS}"))
                .bind(id.as_i64())
                .bind(description.map(AltText::as_str))
                .fetch_optional(&self.pool)
                .await
                .map_err(err)?;
        Ok(row.map(MediaRow::into_media))
    }
}
