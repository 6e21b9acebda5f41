use async_trait::async_trait;

use super::{SqliteStore, err};
use crate::domain::search::TweetQuery;
use crate::domain::{Id, Tweet, User};
use crate::ports::store::{FoundUser, PageRequest, SearchStore, StoreError, TweetStore, USER_COLUMNS, UserRow, UserSearchKey};

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search_tweets(
        &self,
        query: &TweetQuery,
        author: Option<Id>,
        page: PageRequest,
        viewer: Option<Id>,
    ) -> Result<Vec<Tweet>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT s.rowid FROM tweet_search s JOIN tweets t ON t.id = s.rowid \
             WHERE tweet_search MATCH ?1 AND s.rowid < ?2 AND (?3 IS NULL OR t.author_id = ?3) \
             ORDER BY s.rowid DESC LIMIT ?4",
        )
        .bind(query.fts5())
        .bind(page.before.map_or(i64::MAX, Id::as_i64))
        .bind(author.map(Id::as_i64))
        .bind(page.limit)
        .fetch_all(&self.reader)
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
        // The trigram index narrows by LIKE (where `_` matches any character);
        // instr() keeps exact matches only.
        let group = "(CASE WHEN substr(lower(username), 1, length(?1)) = ?1 THEN 0 ELSE 1 END)";
        let candidates = if text.chars().count() >= 3 {
            "id IN (SELECT rowid FROM user_search WHERE username LIKE ?2)"
        } else {
            "lower(username) LIKE ?2"
        };
        let (after_group, after_name) = after.cloned().unwrap_or((-1, String::new()));
        let rows: Vec<FoundUser> = sqlx::query_as(&format!(
            "SELECT {group} AS grp, {USER_COLUMNS} FROM users \
             WHERE {candidates} AND instr(lower(username), ?1) > 0 \
             AND ({group}, lower(username)) > (?3, ?4) \
             ORDER BY grp, lower(username) LIMIT ?5"
        ))
        .bind(text)
        .bind(format!("%{text}%"))
        .bind(after_group)
        .bind(after_name)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(err)?;
        Ok(rows.into_iter().map(FoundUser::into_pair).collect())
    }

    async fn list_users(&self, page: PageRequest) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id < ? ORDER BY id DESC LIMIT ?"))
                .bind(page.before.map_or(i64::MAX, Id::as_i64))
                .bind(page.limit)
                .fetch_all(&self.reader)
                .await
                .map_err(err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }
}
