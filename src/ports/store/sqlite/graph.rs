use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

use super::{SqliteStore, err};
use crate::domain::{Id, User};
use crate::ports::store::{FollowRow, GraphStore, PageRequest, StoreError, user_columns_of};

impl SqliteStore {
    /// One side of the follow graph: `who` is the column matched against `user`, `other` the one listed.
    async fn follow_page(&self, user: Id, page: PageRequest, who: &str, other: &str) -> Result<Vec<(Id, User)>, StoreError> {
        let columns = user_columns_of("u");
        let rows: Vec<FollowRow> = sqlx::query_as(&format!(
            "SELECT f.id AS follow_id, {columns} FROM follows f JOIN users u ON u.id = f.{other} \
             WHERE f.{who} = ? AND f.id < ? ORDER BY f.id DESC LIMIT ?"
        ))
        .bind(user.as_i64())
        .bind(page.before.map_or(i64::MAX, Id::as_i64))
        .bind(page.limit)
        .fetch_all(&self.reader)
        .await
        .map_err(err)?;
        Ok(rows.into_iter().map(FollowRow::into_pair).collect())
    }
}

#[async_trait]
impl GraphStore for SqliteStore {
    async fn followers(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError> {
        self.follow_page(user, page, "followee_id", "follower_id").await
    }

    async fn followings(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError> {
        self.follow_page(user, page, "follower_id", "followee_id").await
    }

    async fn follows_among(&self, follower: Id, users: &[Id]) -> Result<Vec<Id>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new("SELECT followee_id FROM follows WHERE follower_id = ");
        q.push_bind(follower.as_i64()).push(" AND followee_id IN (");
        let mut list = q.separated(", ");
        for u in users {
            list.push_bind(u.as_i64());
        }
        q.push(")");
        let ids: Vec<i64> = q.build_query_scalar().fetch_all(&self.reader).await.map_err(err)?;
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }
}
