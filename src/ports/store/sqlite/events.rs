use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

use super::{CHUNK, SqliteStore, err, in_list};
use crate::domain::{Id, Timestamp};
use crate::ports::store::events::{NotificationRow, assemble_notifications, notification_select};
use crate::ports::store::{
    NewNotification, NotificationRecord, NotificationStore, OutboxMessage, OutboxStore, PageRequest, StoreError, TweetStore,
};

impl SqliteStore {
    async fn with_tweets(&self, owner: Id, rows: Vec<NotificationRow>) -> Result<Vec<NotificationRecord>, StoreError> {
        let ids: Vec<Id> = rows.iter().map(|r| Id::from_i64(r.tweet_id)).collect();
        let tweets = self.tweets_by_ids(&ids, Some(owner)).await?;
        Ok(assemble_notifications(rows, tweets))
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Timestamp::now().as_millis();
        let until = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let held = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = ?2, expires_at = ?3 \
             WHERE leases.holder = ?2 OR leases.expires_at < ?4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(err)?
        .rows_affected()
            == 1;
        Ok(held)
    }

    async fn unpublished(&self, after: i64, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        sqlx::query_as("SELECT id, kind, key, payload FROM outbox WHERE published_at IS NULL AND id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(err)
    }

    async fn mark_published(&self, ids: &[i64], at: Timestamp) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE outbox SET published_at = ");
        q.push_bind(at.as_millis()).push(" WHERE published_at IS NULL AND id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&self.writer).await.map_err(err)?;
        Ok(())
    }

    async fn prune_published(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?")
            .bind(before.as_millis())
            .execute(&self.writer)
            .await
            .map_err(err)?;
        Ok(done.rows_affected())
    }

    async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&self.reader).await.map_err(err)
    }
}

/// Inserts `chunk` (at most `CHUNK` rows), but none whose tweet is gone, and adds the ids inserted to `inserted`.
async fn insert_chunk(
    conn: &mut SqliteConnection,
    chunk: &[NewNotification],
    inserted: &mut HashSet<i64>,
) -> Result<(), StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO notifications (id, owner_id, actor_id, tweet_id, kind, event_id, created_at) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7 FROM (",
    );
    q.push_values(chunk, |mut row, n| {
        row.push_bind(n.id.as_i64())
            .push_bind(n.owner.as_i64())
            .push_bind(n.actor.as_i64())
            .push_bind(n.tweet.as_i64())
            .push_bind(n.kind)
            .push_bind(n.event_id.as_i64())
            .push_bind(n.created_at.as_millis());
    });
    q.push(") AS v WHERE EXISTS (SELECT 1 FROM tweets WHERE id = v.column4) ON CONFLICT DO NOTHING RETURNING id");
    let ids: Vec<(i64,)> = q.build_query_as().fetch_all(conn).await.map_err(err)?;
    inserted.extend(ids.into_iter().map(|(id,)| id));
    Ok(())
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn insert_notifications(&self, batch: &[NewNotification]) -> Result<Vec<bool>, StoreError> {
        // One statement per chunk of rows, not one per notification: the writer
        // connection is shared with every other write. The tweet may have
        // been deleted since the like: then nobody is notified.
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut inserted = HashSet::with_capacity(batch.len());
        let mut writer = self.writer.acquire().await.map_err(err)?;
        if batch.len() <= CHUNK {
            // One statement is a transaction of its own: no BEGIN and COMMIT round trips.
            insert_chunk(&mut writer, batch, &mut inserted).await?;
        } else {
            let mut tx = writer.begin().await.map_err(err)?;
            for chunk in batch.chunks(CHUNK) {
                insert_chunk(&mut tx, chunk, &mut inserted).await?;
            }
            tx.commit().await.map_err(err)?;
        }
        Ok(batch.iter().map(|n| inserted.contains(&n.id.as_i64())).collect())
    }

    async fn notifications(
        &self,
        owner: Id,
        unread_only: bool,
        page: PageRequest,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let unread = if unread_only { " AND n.read = 0" } else { "" };
        let rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "{} WHERE n.owner_id = ? AND n.id < ?{unread} ORDER BY n.id DESC LIMIT ?",
            notification_select()
        ))
        .bind(owner.as_i64())
        .bind(page.before.map_or(i64::MAX, Id::as_i64))
        .bind(page.limit)
        .fetch_all(&self.reader)
        .await
        .map_err(err)?;
        self.with_tweets(owner, rows).await
    }

    async fn notifications_by_ids(&self, owner: Id, ids: &[Id]) -> Result<Vec<NotificationRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = in_list(&format!("{} WHERE n.id IN ", notification_select()), ids);
        q.push(" AND n.owner_id = ");
        q.push_bind(owner.as_i64());
        q.push(" ORDER BY n.id");
        let rows: Vec<NotificationRow> = q.build_query_as().fetch_all(&self.reader).await.map_err(err)?;
        self.with_tweets(owner, rows).await
    }

    async fn mark_read(&self, owner: Id, ids: Option<&[Id]>) -> Result<(), StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE notifications SET read = 1 WHERE read = 0 AND owner_id = ");
        q.push_bind(owner.as_i64());
        if let Some(ids) = ids {
            if ids.is_empty() {
                return Ok(());
            }
            q.push(" AND id IN (");
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(id.as_i64());
            }
            q.push(")");
        }
        q.build().execute(&self.writer).await.map_err(err)?;
        Ok(())
    }

    async fn unread_count(&self, owner: Id) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE owner_id = ? AND read = 0")
            .bind(owner.as_i64())
            .fetch_one(&self.reader)
            .await
            .map_err(err)
    }
}
