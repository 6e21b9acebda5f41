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
        let before = page.before.map_or(i64::MAX, Id::as_i64);
        // Those not yet indexed first: a tweet indexed after this is in the index read below.
        let mut ids = self.search.waiting_matches(query, before, author);
        // The index keeps a deleted tweet until the indexer takes it out: the join leaves it out.
        let indexed: Vec<i64> = sqlx::query_scalar(
            "SELECT s.rowid FROM search.tweet_search s JOIN tweets t ON t.id = s.rowid \
             WHERE s.tweet_search MATCH ?1 AND s.rowid < ?2 AND (?3 IS NULL OR t.author_id = ?3) \
             ORDER BY s.rowid DESC LIMIT ?4",
        )
        .bind(query.fts5())
        .bind(before)
        .bind(author.map(Id::as_i64))
        .bind(page.limit)
        .fetch_all(&self.reader)
        .await
        .map_err(err)?;
        ids.extend(indexed);
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(page.limit as usize);
        let ids: Vec<Id> = ids.into_iter().map(Id::from_i64).collect();
        self.tweets_by_ids(&ids, viewer).await
    }

    /// Prefix matches first, from the username index in name order; then
    /// the other matches in name order, found one of two ways: when the
    /// trigram index has few candidates, those are sorted; when it has
    /// many, the name index is walked in order until the page is full
    /// (matches are then dense, so the walk is short).
    async fn search_users(
        &self,
        text: &str,
        after: Option<&UserSearchKey>,
        limit: u32,
    ) -> Result<Vec<(UserSearchKey, User)>, StoreError> {
        const FEW: i64 = 1_000;
        let (after_group, after_name) = after.cloned().unwrap_or((0, String::new()));
        let mut found: Vec<FoundUser> = Vec::new();
        if after_group == 0 {
            // `text` is [a-z0-9_], all below '~': the prefix is a range of the index.
            found = sqlx::query_as(&format!(
                "SELECT 0 AS grp, {USER_COLUMNS} FROM users \
                 WHERE lower(username) >= ?1 AND lower(username) < ?1 || '~' AND lower(username) > ?2 \
                 ORDER BY lower(username) LIMIT ?3"
            ))
            .bind(text)
            .bind(&after_name)
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        }
        let wanted = limit as usize - found.len();
        if wanted > 0 {
            let after_name = if after_group == 1 { after_name } else { String::new() };
            let pattern = format!("%{text}%");
            let candidates: i64 = if text.len() >= 3 {
                sqlx::query_scalar("SELECT count(*) FROM (SELECT 1 FROM user_search WHERE username LIKE ?1 LIMIT ?2)")
                    .bind(&pattern)
                    .bind(FEW)
                    .fetch_one(&self.reader)
                    .await
                    .map_err(err)?
            } else {
                FEW
            };
            // The trigram index narrows by LIKE (where `_` matches any
            // character); instr() keeps exact matches, and > 1 leaves out
            // the prefix matches listed above.
            let source = if candidates < FEW { "id IN (SELECT rowid FROM user_search WHERE username LIKE ?4) AND" } else { "" };
            let others: Vec<FoundUser> = sqlx::query_as(&format!(
                "SELECT 1 AS grp, {USER_COLUMNS} FROM users \
                 WHERE {source} lower(username) > ?2 AND instr(lower(username), ?1) > 1 \
                 ORDER BY lower(username) LIMIT ?3"
            ))
            .bind(text)
            .bind(&after_name)
            .bind(wanted as i64)
            .bind(&pattern)
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
            found.extend(others);
        }
        Ok(found.into_iter().map(FoundUser::into_pair).collect())
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
