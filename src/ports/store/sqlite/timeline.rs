use super::{SqliteStore, err, in_list};
use crate::domain::{Id, User};
use crate::ports::store::{StoreError, TimelineStore, TweetCounters, USER_COLUMNS, UserRow};
use async_trait::async_trait;

fn before(id: Option<Id>) -> i64 {
    id.map_or(i64::MAX, Id::as_i64)
}

/// An id from a `group_concat` list.
fn parse_id(id: &str) -> Result<i64, StoreError> {
    id.parse::<i64>().map_err(|e| StoreError::Other(anyhow::anyhow!("an id {id:?} in a list: {e}")))
}

#[async_trait]
impl TimelineStore for SqliteStore {
    async fn home_timeline_ids(&self, user: Id, before_id: Option<Id>, limit: u32) -> Result<Vec<Id>, StoreError> {
        // SQLite has no LATERAL; a correlated scalar subquery per followee is
        // its equivalent: each walks the (author_id, id) index backwards for
        // at most `limit` ids and never reads the tweets table itself (a
        // rebuild of a user following 200 accounts would otherwise look up
        // 40,000 rows there, mostly outside the page cache). The ids come
        // back as one list per followee and are merged here.
        let lists: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT (SELECT group_concat(id) FROM \
                (SELECT id FROM tweets WHERE author_id = f.author AND id < ?2 ORDER BY id DESC LIMIT ?3)) \
             FROM (SELECT followee_id AS author FROM follows WHERE follower_id = ?1 UNION ALL SELECT ?1) f",
        )
        .bind(user.as_i64())
        .bind(before(before_id))
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(err)?;
        let mut ids = Vec::new();
        for list in lists.iter().flatten() {
            for id in list.split(',') {
                ids.push(parse_id(id)?);
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(limit as usize);
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }

    async fn author_tweet_ids(
        &self,
        author: Id,
        from: Option<Id>,
        before_id: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Id>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tweets WHERE author_id = ? AND id >= ? AND id < ? ORDER BY id DESC LIMIT ?")
                .bind(author.as_i64())
                .bind(from.map_or(i64::MIN, Id::as_i64))
                .bind(before(before_id))
                .bind(limit)
                .fetch_all(&self.reader)
                .await
                .map_err(err)?;
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }

    async fn follower_ids(&self, user: Id, after: Option<Id>, limit: u32) -> Result<Vec<(Id, Id)>, StoreError> {
        // One row, as in `followers_of`: "follow:follower" pairs, joined.
        let list: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(id || ':' || follower_id) FROM \
                (SELECT id, follower_id FROM follows WHERE followee_id = ? AND id > ? ORDER BY id LIMIT ?)",
        )
        .bind(user.as_i64())
        .bind(after.map_or(i64::MIN, Id::as_i64))
        .bind(limit)
        .fetch_one(&self.reader)
        .await
        .map_err(err)?;
        let mut pairs = Vec::new();
        for pair in list.iter().flat_map(|list| list.split(',')) {
            let (follow, follower) = pair.split_once(':').unwrap_or((pair, ""));
            pairs.push((Id::from_i64(parse_id(follow)?), Id::from_i64(parse_id(follower)?)));
        }
        // A page is in follow order (the next starts after its last); the
        // order of a `group_concat` is not promised.
        pairs.sort_unstable();
        Ok(pairs)
    }

    async fn followers_of(&self, users: &[Id]) -> Result<Vec<(Id, Id)>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // One row a followee, its followers joined: sqlx hands each row from
        // the connection's thread to the caller's on its own, and the
        // fan-out reads thousands of followers a batch (one row a follower
        // made two thirds of its time thread switches).
        let mut q = in_list("SELECT followee_id, group_concat(follower_id) FROM follows WHERE followee_id IN ", users);
        q.push(" GROUP BY followee_id");
        let lists: Vec<(i64, String)> = q.build_query_as().fetch_all(&self.reader).await.map_err(err)?;
        let mut pairs = Vec::new();
        for (followee, followers) in lists {
            for follower in followers.split(',') {
                pairs.push((Id::from_i64(followee), Id::from_i64(parse_id(follower)?)));
            }
        }
        Ok(pairs)
    }

    async fn users_by_ids(&self, ids: &[Id]) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<UserRow> = in_list(&format!("SELECT {USER_COLUMNS} FROM users WHERE id IN "), ids)
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn tweet_counters(&self, ids: &[Id]) -> Result<Vec<TweetCounters>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i64, i64)> = in_list("SELECT id, like_count, view_count FROM tweets WHERE id IN ", ids)
            .build_query_as()
            .fetch_all(&self.reader)
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
        let mut q = in_list("SELECT tweet_id FROM likes WHERE tweet_id IN ", tweets);
        q.push(" AND user_id = ").push_bind(user.as_i64());
        let ids: Vec<i64> = q.build_query_scalar().fetch_all(&self.reader).await.map_err(err)?;
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }

    async fn liked_tweet_ids(&self, user: Id, limit: u32) -> Result<Vec<Id>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT tweet_id FROM likes WHERE user_id = ? ORDER BY tweet_id DESC LIMIT ?")
            .bind(user.as_i64())
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }

    async fn mark_merged_at_read(&self, user: Id) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET merged_at_read = 1 WHERE id = ? AND merged_at_read = 0")
            .bind(user.as_i64())
            .execute(&self.writer)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn large_accounts(&self, followers: i64) -> Result<Vec<Id>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE followers_count > ? OR merged_at_read = 1")
            .bind(followers)
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }
}
