use async_trait::async_trait;

use super::{SqliteStore, err, in_list};
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

/// Accounts one `follows_among` statement checks at most.
const AMONG_A_STATEMENT: usize = 10_000;

#[async_trait]
impl GraphStore for SqliteStore {
    async fn followers(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError> {
        self.follow_page(user, page, "followee_id", "follower_id").await
    }

    async fn followings(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError> {
        self.follow_page(user, page, "follower_id", "followee_id").await
    }

    async fn follows_among(&self, follower: Id, users: &[Id]) -> Result<Vec<Id>, StoreError> {
        let mut followed = Vec::new();
        // In pieces: one statement takes at most 32,766 variables, and the
        // large accounts a reader is checked against can be more than that.
        for chunk in users.chunks(AMONG_A_STATEMENT) {
            let mut q = in_list("SELECT followee_id FROM follows WHERE followee_id IN ", chunk);
            q.push(" AND follower_id = ").push_bind(follower.as_i64());
            let ids: Vec<i64> = q.build_query_scalar().fetch_all(&self.reader).await.map_err(err)?;
            followed.extend(ids.into_iter().map(Id::from_i64));
        }
        Ok(followed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More accounts than one statement can take (a low fan-out limit makes
    /// nearly every account a large one) are checked in pieces.
    #[tokio::test]
    async fn follows_among_more_accounts_than_a_statement_takes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("among.db").display()), 2).await.unwrap();
        let users = 40_000_i64;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
             INSERT INTO users (id, username, email, email_key, name, password_hash, created_at) \
             SELECT i, 'u' || i, 'u' || i || '@example.com', 'u' || i || '@example.com', 'U', 'x', 0 FROM n",
        )
        .bind(users)
        .execute(&store.writer)
        .await
        .unwrap();
        // User 1 follows every 7th account, from 7 to 39,998.
        sqlx::query(
            "INSERT INTO follows (follower_id, followee_id, id, created_at) \
             SELECT 1, id, id, 0 FROM users WHERE id % 7 = 0",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        let candidates: Vec<Id> = (2..=users).map(Id::from_i64).collect();
        let mut followed: Vec<i64> =
            store.follows_among(Id::from_i64(1), &candidates).await.unwrap().iter().map(|id| id.as_i64()).collect();
        followed.sort_unstable();
        let expected: Vec<i64> = (2..=users).filter(|i| i % 7 == 0).collect();
        assert_eq!(followed, expected);
    }
}
