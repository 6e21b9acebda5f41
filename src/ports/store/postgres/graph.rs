use async_trait::async_trait;
use sqlx::PgConnection;

use super::{PostgresStore, err};
use crate::domain::{Id, Timestamp, User};
use crate::ports::store::{FollowRow, GraphStore, PageRequest, StoreError, user_columns_of};

async fn user_exists(conn: &mut PgConnection, user: Id) -> Result<bool, StoreError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1").bind(user.as_i64()).fetch_optional(conn).await.map_err(err)?;
    Ok(found.is_some())
}

impl PostgresStore {
    /// One side of the follow graph: `who` is the column matched against `user`, `other` the one listed.
    async fn follow_page(&self, user: Id, page: PageRequest, who: &str, other: &str) -> Result<Vec<(Id, User)>, StoreError> {
        let columns = user_columns_of("u");
        let rows: Vec<FollowRow> = sqlx::query_as(&format!(
            "SELECT f.id AS follow_id, {columns} FROM follows f JOIN users u ON u.id = f.{other} \
             WHERE f.{who} = $1 AND f.id < $2 ORDER BY f.id DESC LIMIT $3"
        ))
        .bind(user.as_i64())
        .bind(page.before.map_or(i64::MAX, Id::as_i64))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        Ok(rows.into_iter().map(FollowRow::into_pair).collect())
    }
}

#[async_trait]
impl GraphStore for PostgresStore {
    async fn follow(&self, follower: Id, followee: Id, follow_id: Id, at: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        if !user_exists(&mut tx, followee).await? {
            return Err(StoreError::NotFound);
        }
        let added = sqlx::query(
            "INSERT INTO follows (follower_id, followee_id, id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(follower.as_i64())
        .bind(followee.as_i64())
        .bind(follow_id.as_i64())
        .bind(at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(err)?
        .rows_affected()
            == 1;
        if added {
            adjust_counts(&mut tx, follower, followee, 1).await?;
        }
        tx.commit().await.map_err(err)?;
        Ok(added)
    }

    async fn unfollow(&self, follower: Id, followee: Id) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        if !user_exists(&mut tx, followee).await? {
            return Err(StoreError::NotFound);
        }
        let removed = sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
            .bind(follower.as_i64())
            .bind(followee.as_i64())
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected()
            == 1;
        if removed {
            adjust_counts(&mut tx, follower, followee, -1).await?;
        }
        tx.commit().await.map_err(err)
    }

    async fn followers(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError> {
        self.follow_page(user, page, "followee_id", "follower_id").await
    }

    async fn followings(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError> {
        self.follow_page(user, page, "follower_id", "followee_id").await
    }

    async fn follows_among(&self, follower: Id, users: &[Id]) -> Result<Vec<Id>, StoreError> {
        let users: Vec<i64> = users.iter().map(|u| u.as_i64()).collect();
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT followee_id FROM follows WHERE follower_id = $1 AND followee_id = ANY($2)")
                .bind(follower.as_i64())
                .bind(&users)
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }
}

/// Both counters in one statement: rows are locked in index order, so two
/// opposite follows at once cannot deadlock.
async fn adjust_counts(conn: &mut PgConnection, follower: Id, followee: Id, by: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET \
         followings_count = followings_count + CASE WHEN id = $1 THEN $3 ELSE 0 END, \
         followers_count = followers_count + CASE WHEN id = $2 THEN $3 ELSE 0 END \
         WHERE id = ANY(ARRAY[$1, $2]::bigint[])",
    )
    .bind(follower.as_i64())
    .bind(followee.as_i64())
    .bind(by)
    .execute(conn)
    .await
    .map_err(err)?;
    Ok(())
}
