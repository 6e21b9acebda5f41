use async_trait::async_trait;

use super::{PostgresStore, err};
use crate::domain::search::TweetQuery;
use crate::domain::{Id, Tweet, User};
use crate::ports::store::{FoundUser, PageRequest, SearchStore, StoreError, TweetStore, USER_COLUMNS, UserRow, UserSearchKey};

#[async_trait]
impl SearchStore for PostgresStore {
    async fn search_tweets(
        &self,
        query: &TweetQuery,
        author: Option<Id>,
        page: PageRequest,
        viewer: Option<Id>,
    ) -> Result<Vec<Tweet>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM tweets \
             WHERE search_vector @@ to_tsquery('simple', $1) \
             AND id < $2 AND ($3::bigint IS NULL OR author_id = $3) \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(query.tsquery())
        .bind(page.before.map_or(i64::MAX, Id::as_i64))
        .bind(author.map(Id::as_i64))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        let ids: Vec<Id> = ids.into_iter().map(Id::from_i64).collect();
        self.tweets_by_ids(&ids, viewer).await
    }

    async fn search_users(
        &self,
        text: &str,
        after: Option<&UserSearchKey>,
        limit: u32,
    ) -> Result<Vec<(UserSearchKey, User)>, StoreError> {
        // `text` is [a-z0-9_]; only `_` means something to LIKE, so it is escaped.
        let escaped = text.replace('_', "\\_");
        let (after_group, after_name) = after.cloned().unwrap_or((-1, String::new()));
        let group = "(CASE WHEN lower(username) LIKE $1 || '%' ESCAPE '\\' THEN 0 ELSE 1 END)";
        let rows: Vec<FoundUser> = sqlx::query_as(&format!(
            "SELECT {group} AS grp, {USER_COLUMNS} FROM users \
             WHERE lower(username) LIKE '%' || $1 || '%' ESCAPE '\\' \
             AND ({group}, lower(username) COLLATE \"C\") > ($2, $3 COLLATE \"C\") \
             ORDER BY grp, lower(username) COLLATE \"C\" LIMIT $4"
        ))
        .bind(escaped)
        .bind(after_group)
        .bind(after_name)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        Ok(rows.into_iter().map(FoundUser::into_pair).collect())
    }

    async fn list_users(&self, page: PageRequest) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id < $1 ORDER BY id DESC LIMIT $2"))
                .bind(page.before.map_or(i64::MAX, Id::as_i64))
                .bind(i64::from(page.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }
}
