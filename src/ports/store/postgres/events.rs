use std::time::Duration;

use async_trait::async_trait;

use super::{PostgresStore, err};
use crate::domain::{Id, Timestamp};
use crate::ports::store::events::{NotificationRow, assemble_notifications, notification_select};
use crate::ports::store::{
    NotificationRecord, NotificationStore, OutboxMessage, OutboxStore, PageRequest, StoreError, TweetStore,
};

impl PostgresStore {
    async fn with_tweets(&self, owner: Id, rows: Vec<NotificationRow>) -> Result<Vec<NotificationRecord>, StoreError> {
        let ids: Vec<Id> = rows.iter().map(|r| Id::from_i64(r.tweet_id)).collect();
        let tweets = self.tweets_by_ids(&ids, Some(owner)).await?;
        Ok(assemble_notifications(rows, tweets))
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Timestamp::now().as_millis();
        let until = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let held = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
             WHERE leases.holder = $2 OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(err)?
        .rows_affected()
            == 1;
        Ok(held)
    }

    async fn unpublished(&self, after: i64, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        sqlx::query_as("SELECT id, kind, key, payload FROM outbox WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(err)
    }

    async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&self.pool).await.map_err(err)
    }
}

#[async_trait]
impl NotificationStore for PostgresStore {
    async fn notifications(
        &self,
        owner: Id,
        unread_only: bool,
        page: PageRequest,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let unread = if unread_only { " AND NOT n.read" } else { "" };
        let rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "{} WHERE n.owner_id = $1 AND n.id < $2{unread} ORDER BY n.id DESC LIMIT $3",
            notification_select()
        ))
        .bind(owner.as_i64())
        .bind(page.before.map_or(i64::MAX, Id::as_i64))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        self.with_tweets(owner, rows).await
    }

    async fn notifications_by_ids(&self, owner: Id, ids: &[Id]) -> Result<Vec<NotificationRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|id| id.as_i64()).collect();
        let rows: Vec<NotificationRow> =
            sqlx::query_as(&format!("{} WHERE n.owner_id = $1 AND n.id = ANY($2) ORDER BY n.id", notification_select()))
                .bind(owner.as_i64())
                .bind(&ids)
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        self.with_tweets(owner, rows).await
    }

    async fn mark_read(&self, owner: Id, ids: Option<&[Id]>) -> Result<(), StoreError> {
        match ids {
            Some(ids) => {
                let ids: Vec<i64> = ids.iter().map(|id| id.as_i64()).collect();
                sqlx::query("UPDATE notifications SET read = TRUE WHERE NOT read AND owner_id = $1 AND id = ANY($2)")
                    .bind(owner.as_i64())
                    .bind(&ids)
                    .execute(&self.pool)
                    .await
            }
            None => {
                sqlx::query("UPDATE notifications SET read = TRUE WHERE NOT read AND owner_id = $1")
                    .bind(owner.as_i64())
                    .execute(&self.pool)
                    .await
            }
        }
        .map_err(err)?;
        Ok(())
    }

    async fn unread_count(&self, owner: Id) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE owner_id = $1 AND NOT read")
            .bind(owner.as_i64())
            .fetch_one(&self.pool)
            .await
            .map_err(err)
    }
}
