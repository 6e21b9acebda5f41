use async_trait::async_trait;

use super::{PostgresStore, err};
use crate::domain::{Id, User};
use crate::ports::store::{StoreError, TimelineStore, TweetCounters, USER_COLUMNS, UserRow};

fn before(id: Option<Id>) -> i64 {
    id.map_or(i64::MAX, Id::as_i64)
}

fn raw(ids: &[Id]) -> Vec<i64> {
    ids.iter().map(|id| id.as_i64()).collect()
}

fn ids_of(raw: Vec<i64>) -> Vec<Id> {
    raw.into_iter().map(Id::from_i64).collect()
}

#[async_trait]
impl TimelineStore for PostgresStore {
    async fn home_timeline_ids(&self, user: Id, before_id: Option<Id>, limit: u32) -> Result<Vec<Id>, StoreError> {
        // One index walk of at most `limit` rows per followee (LATERAL).
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT t.id FROM (SELECT followee_id AS author FROM follows WHERE follower_id = $1 UNION ALL SELECT $1) f \
             CROSS JOIN LATERAL (SELECT id FROM tweets WHERE author_id = f.author AND id < $2 ORDER BY id DESC LIMIT $3) t \
             ORDER BY t.id DESC LIMIT $3",
        )
        .bind(user.as_i64())
        .bind(before(before_id))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        Ok(ids_of(ids))
    }

    async fn author_tweet_ids(
        &self,
        author: Id,
        from: Option<Id>,
        before_id: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Id>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tweets WHERE author_id = $1 AND id >= $2 AND id < $3 ORDER BY id DESC LIMIT $4")
                .bind(author.as_i64())
                .bind(from.map_or(i64::MIN, Id::as_i64))
                .bind(before(before_id))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        Ok(ids_of(ids))
    }

    async fn follower_ids(&self, user: Id, after: Option<Id>, limit: u32) -> Result<Vec<(Id, Id)>, StoreError> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, follower_id FROM follows WHERE followee_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(user.as_i64())
                .bind(after.map_or(i64::MIN, Id::as_i64))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        Ok(rows.into_iter().map(|(f, u)| (Id::from_i64(f), Id::from_i64(u))).collect())
    }

    async fn followers_of(&self, users: &[Id]) -> Result<Vec<(Id, Id)>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT followee_id, follower_id FROM follows WHERE followee_id = ANY($1)")
            .bind(raw(users))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(|(f, u)| (Id::from_i64(f), Id::from_i64(u))).collect())
    }

    async fn users_by_ids(&self, ids: &[Id]) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ANY($1)"))
            .bind(raw(ids))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn tweet_counters(&self, ids: &[Id]) -> Result<Vec<TweetCounters>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i64, i64)> =
            sqlx::query_as("SELECT tweet_id, like_count, view_count FROM tweet_counts WHERE tweet_id = ANY($1)")
                .bind(raw(ids))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(|(id, like_count, view_count)| TweetCounters { id: Id::from_i64(id), like_count, view_count })
            .collect())
    }

    async fn liked_among(&self, user: Id, tweets: &[Id]) -> Result<Vec<Id>, StoreError> {
        if tweets.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = sqlx::query_scalar("SELECT tweet_id FROM likes WHERE user_id = $1 AND tweet_id = ANY($2)")
            .bind(user.as_i64())
            .bind(raw(tweets))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        Ok(ids_of(ids))
    }

    async fn liked_tweet_ids(&self, user: Id, limit: u32) -> Result<Vec<Id>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT tweet_id FROM likes WHERE user_id = $1 ORDER BY tweet_id DESC LIMIT $2")
            .bind(user.as_i64())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        Ok(ids_of(ids))
    }

    async fn mark_merged_at_read(&self, user: Id) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET merged_at_read = true WHERE id = $1 AND NOT merged_at_read")
            .bind(user.as_i64())
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn large_accounts(&self, followers: i64) -> Result<Vec<Id>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE followers_count > $1 OR merged_at_read")
            .bind(followers)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        Ok(ids_of(ids))
    }
}
