use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;

use super::{PostgresStore, err};
use crate::domain::{Id, Timestamp};
use crate::ports::store::events::{NotificationRow, assemble_notifications, notification_select};
use crate::ports::store::{
    NewNotification, NotificationRecord, NotificationStore, OutboxMessage, OutboxStore, PageRequest, StoreError, TweetStore,
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
        sqlx::query_as("SELECT id, kind, key, payload FROM outbox WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(err)
    }

    async fn mark_published(&self, ids: &[i64], at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET published_at = $1 WHERE published_at IS NULL AND id = ANY($2)")
            .bind(at.as_millis())
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn prune_published(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1")
            .bind(before.as_millis())
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected())
    }

    async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&self.pool).await.map_err(err)
    }
}

#[async_trait]
impl NotificationStore for PostgresStore {
    async fn insert_notifications(&self, batch: &[NewNotification]) -> Result<Vec<bool>, StoreError> {
        // One statement for the batch, from arrays. The tweet may have been
        // deleted since the like: then nobody is notified.
        let column = |f: fn(&NewNotification) -> i64| batch.iter().map(f).collect::<Vec<i64>>();
        let kinds: Vec<&str> = batch.iter().map(|n| n.kind).collect();
        let inserted: Vec<(i64,)> = sqlx::query_as(
            "INSERT INTO notifications (id, owner_id, actor_id, tweet_id, kind, event_id, created_at) \
             SELECT v.* FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[]) \
               AS v(id, owner_id, actor_id, tweet_id, kind, event_id, created_at) \
             WHERE EXISTS (SELECT 1 FROM tweets t WHERE t.id = v.tweet_id) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(column(|n| n.id.as_i64()))
        .bind(column(|n| n.owner.as_i64()))
        .bind(column(|n| n.actor.as_i64()))
        .bind(column(|n| n.tweet.as_i64()))
        .bind(kinds)
        .bind(column(|n| n.event_id.as_i64()))
        .bind(column(|n| n.created_at.as_millis()))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        let inserted: HashSet<i64> = inserted.into_iter().map(|(id,)| id).collect();
        Ok(batch.iter().map(|n| inserted.contains(&n.id.as_i64())).collect())
    }

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
