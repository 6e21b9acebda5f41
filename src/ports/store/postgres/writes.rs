//! Group commit on PostgreSQL (see `ports::store::writes`): the batch locks
//! the tweet rows, then the user rows, it touches, each in id order (the
//! order `delete_tweet` takes them too), so batches from several nodes
//! cannot deadlock and no row it checked can vanish before it commits.
//! Counters, new outbox events and the deletion of published ones go in one
//! statement at the end of the batch, from arrays. A batch of text posts
//! alone is a single statement (`post_in_one_statement`), and so is a batch
//! of likes with the relay's and the consumer's writes
//! (`like_in_one_statement`).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{PgConnection, Postgres};

use super::{PostgresStore, err};
use crate::domain::{Id, Media, Timestamp, User};
use crate::ports::store::writes::{BatchEnd, BatchTx, TweetRowCounts, Write, WriteStore, Written, run_batch};
use crate::ports::store::{
    NewNotification, NewTweet, StoreError, USER_COLUMNS, UserRow, like_payload_around_owner, posted_event, user_columns_of,
};

#[async_trait]
impl WriteStore for PostgresStore {
    async fn apply(&self, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        if let Some(posts) = text_posts(writes) {
            return self.post_in_one_statement(&posts, writes).await;
        }
        if let Some(likes) = new_likes(writes) {
            return self.like_in_one_statement(&likes, writes).await;
        }
        let mut tx = self.pool.begin().await.map_err(err)?;
        let outcomes = run_batch(&mut Batch(&mut tx), writes).await?;
        tx.commit().await.map_err(err)?;
        Ok(outcomes)
    }
}

/// New tweets inserted from `$1`..`$5` (see [`NewTweetColumns`]), with
/// their counts' rows: the first common table expressions of both ways a
/// batch inserts tweets.
const TWEETS_INSERTED: &str = "inserted AS ( \
       INSERT INTO tweets (id, author_id, content, search_terms, created_at) \
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) RETURNING id), \
     counted AS (INSERT INTO tweet_counts (tweet_id) SELECT id FROM inserted)";

/// New tweets as the arrays bound to `$1`..`$5` of [`TWEETS_INSERTED`].
struct NewTweetColumns<'t> {
    ids: Vec<i64>,
    authors: Vec<i64>,
    contents: Vec<&'t str>,
    terms: Vec<String>,
    times: Vec<i64>,
}

impl<'t> NewTweetColumns<'t> {
    fn of(tweets: &[&'t NewTweet]) -> Self {
        let (ids, authors, times) = unzip3(tweets.iter().map(|t| (t.id.as_i64(), t.author.as_i64(), t.created_at.as_millis())));
        let contents = tweets.iter().map(|t| t.content.as_str()).collect();
        let terms = tweets.iter().map(|t| crate::domain::search::index_text(&t.content)).collect();
        Self { ids, authors, contents, terms, times }
    }
}

/// Notifications inserted from `$1`..`$7` (see [`NotificationColumns`]),
/// skipping those already there and those whose tweet is gone, their ids
/// returned: the first common table expression of both ways a batch stores
/// notifications. The tweet is locked as a foreign key would lock it: a
/// deletion waits for this transaction, then removes what it inserted (or
/// this waits, then finds it gone).
const NOTIFICATIONS_INSERTED: &str = "notified AS ( \
       INSERT INTO notifications (id, owner_id, actor_id, tweet_id, kind, event_id, created_at) \
       SELECT v.* FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[]) \
         AS v(id, owner_id, actor_id, tweet_id, kind, event_id, created_at) \
       WHERE EXISTS (SELECT 1 FROM tweets t WHERE t.id = v.tweet_id FOR KEY SHARE) \
       ON CONFLICT DO NOTHING RETURNING id)";

/// Notifications as the arrays bound to `$1`..`$7` of [`NOTIFICATIONS_INSERTED`].
struct NotificationColumns<'n> {
    ids: Vec<i64>,
    owners: Vec<i64>,
    actors: Vec<i64>,
    tweets: Vec<i64>,
    kinds: Vec<&'n str>,
    event_ids: Vec<i64>,
    times: Vec<i64>,
}

impl<'n> NotificationColumns<'n> {
    fn of(batch: impl Iterator<Item = &'n NewNotification> + Clone) -> Self {
        let column = |f: fn(&NewNotification) -> i64| batch.clone().map(f).collect::<Vec<i64>>();
        Self {
            ids: column(|n| n.id.as_i64()),
            owners: column(|n| n.owner.as_i64()),
            actors: column(|n| n.actor.as_i64()),
            tweets: column(|n| n.tweet.as_i64()),
            kinds: batch.clone().map(|n| n.kind).collect(),
            event_ids: column(|n| n.event_id.as_i64()),
            times: column(|n| n.created_at.as_millis()),
        }
    }

    fn bind<'q, O>(
        self,
        q: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>
    where
        'n: 'q,
    {
        q.bind(self.ids)
            .bind(self.owners)
            .bind(self.actors)
            .bind(self.tweets)
            .bind(self.kinds)
            .bind(self.event_ids)
            .bind(self.times)
    }
}

/// A row of [`PostgresStore::like_in_one_statement`]: `part` 0 is a stored
/// notification (`a`), 1 a liked tweet as locked (`a` its id, `b` its
/// author, `c` and `d` its like and view counts), 2 a new like (`a` the
/// user, `b` the tweet).
#[derive(sqlx::FromRow)]
struct NotifiedOrLiked {
    part: i32,
    a: i64,
    b: i64,
    c: i64,
    d: i64,
}

/// A new like of the batch: (user, tweet, at, event id).
type NewLike = (Id, Id, Timestamp, Id);

/// The batch's likes, if it holds likes of pairs no other write of it
/// touches, notifications and published outbox rows, and nothing else (a
/// burst of likes and the notifications they cause, or the relay's and the
/// consumer's writes alone, with no like): such a batch is written by
/// [`PostgresStore::like_in_one_statement`].
fn new_likes(writes: &[Write]) -> Option<Vec<NewLike>> {
    let mut likes = Vec::new();
    let mut pairs = HashSet::new();
    for write in writes {
        match write {
            Write::Like { user, tweet, at, event_id } if pairs.insert((*user, *tweet)) => {
                likes.push((*user, *tweet, *at, *event_id));
            }
            Write::Published { .. } | Write::Notify(_) => {}
            _ => return None,
        }
    }
    Some(likes)
}

/// The batch's posts, if it holds posts without media and nothing else
/// but published outbox rows (a burst of text tweets): such a batch is
/// written by [`PostgresStore::post_in_one_statement`].
fn text_posts(writes: &[Write]) -> Option<Vec<&NewTweet>> {
    let mut posts = Vec::new();
    for write in writes {
        match write {
            Write::Post(tweet) if tweet.media.is_empty() => posts.push(tweet),
            Write::Published { .. } => {}
            _ => return None,
        }
    }
    (!posts.is_empty()).then_some(posts)
}

impl PostgresStore {
    /// Writes a batch of text posts (and published outbox rows) as one
    /// statement, its own transaction: one round trip where the general
    /// batch makes five (begin, lock the authors, insert, count, commit),
    /// each a wait for a busy server's turn. The authors are locked first,
    /// in id order, as a batch locks them; their counted rows come back
    /// from the update, and each post is answered with its author as
    /// counting it. A post whose author is gone fails the statement (a
    /// foreign key), and the writer then tries each write alone.
    async fn post_in_one_statement(
        &self,
        posts: &[&NewTweet],
        writes: &[Write],
    ) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        let columns = NewTweetColumns::of(posts);
        // Posts per author, in id order (the lock order).
        let mut counted: BTreeMap<i64, i64> = BTreeMap::new();
        for author in &columns.authors {
            *counted.entry(*author).or_default() += 1;
        }
        let (author_ids, added): (Vec<i64>, Vec<i64>) = counted.into_iter().unzip();
        let events: Vec<_> = posts.iter().map(|t| posted_event(t)).collect();
        let published = published_ids(writes);
        // `locked` is read (to the end) by the update's one-time filter,
        // before the update touches a row: the authors are locked in order.
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "WITH locked AS MATERIALIZED ( \
               SELECT id FROM users WHERE id = ANY($6) ORDER BY id FOR NO KEY UPDATE), \
             {TWEETS_INSERTED}, \
             appended AS ( \
               INSERT INTO outbox (id, kind, key, payload, created_at) \
               SELECT * FROM unnest($8::bigint[], $9::text[], $10::text[], $11::text[], $5::bigint[])), \
             published AS (DELETE FROM outbox WHERE id = ANY($12)) \
             UPDATE users u SET tweets_count = u.tweets_count + d.added \
             FROM unnest($6::bigint[], $7::bigint[]) AS d(id, added) \
             WHERE u.id = d.id AND (SELECT count(*) FROM locked) >= 0 \
             RETURNING {}",
            user_columns_of("u")
        ))
        .bind(columns.ids)
        .bind(columns.authors)
        .bind(columns.contents)
        .bind(columns.terms)
        .bind(columns.times)
        .bind(&author_ids)
        .bind(added)
        .bind(events.iter().map(|m| m.id).collect::<Vec<_>>())
        .bind(events.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|m| m.key.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|m| m.payload.as_str()).collect::<Vec<_>>())
        .bind(published)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        // Each author as the batch left them; walked back from the last post.
        let mut authors_now: HashMap<i64, User> = rows.into_iter().map(|r| (r.id, User::from(r))).collect();
        let mut answers: Vec<Result<Written, StoreError>> = Vec::with_capacity(writes.len());
        for write in writes.iter().rev() {
            answers.push(match write {
                Write::Post(tweet) => match authors_now.get_mut(&tweet.author.as_i64()) {
                    Some(author) => {
                        let answer = author.clone();
                        author.tweets_count -= 1;
                        Ok(Written::Post { author: answer })
                    }
                    None => Err(StoreError::NotFound),
                },
                _ => Ok(Written::Published),
            });
        }
        answers.reverse();
        Ok(answers)
    }

    /// Writes a batch of likes (and notifications, and published outbox
    /// rows) as one statement, its own transaction, where the general batch
    /// makes five round trips. The liked tweets are locked first, in id
    /// order, with their counts, as a batch locks them; the likes are
    /// inserted, the counts raised by the new ones, and each new like of
    /// another's tweet appends its event, whose owner the statement reads
    /// from the locked tweet ([`like_payload_around_owner`]). The locked
    /// counts and the new likes come back, and each like is answered, in
    /// order, with the count as it left it.
    async fn like_in_one_statement(
        &self,
        likes: &[NewLike],
        writes: &[Write],
    ) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        let mut tweet_ids: Vec<i64> = likes.iter().map(|l| l.1.as_i64()).collect();
        tweet_ids.sort_unstable();
        tweet_ids.dedup();
        let (before, after): (Vec<String>, Vec<String>) =
            likes.iter().map(|&(user, tweet, at, event_id)| like_payload_around_owner(event_id, tweet, user, at)).unzip();
        let (users, tweets, times) = unzip3(likes.iter().map(|(u, t, at, _)| (u.as_i64(), t.as_i64(), at.as_millis())));
        let event_ids: Vec<i64> = likes.iter().map(|l| l.3.as_i64()).collect();
        let published = published_ids(writes);
        let notifications = writes.iter().flat_map(|w| match w {
            Write::Notify(batch) => batch.as_slice(),
            _ => &[],
        });
        // `locked` is read to its end (`ARRAY(…)` is computed once, first)
        // before a like is inserted: the tweets are locked in order.
        let query = format!(
            "WITH {NOTIFICATIONS_INSERTED}, \
             locked AS MATERIALIZED ( \
               SELECT t.id, t.author_id, c.like_count, c.view_count FROM tweets t JOIN tweet_counts c ON c.tweet_id = t.id \
               WHERE t.id = ANY($8) ORDER BY t.id FOR NO KEY UPDATE OF t, c), \
             wanted AS (SELECT * FROM unnest($9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[], $14::text[]) \
               AS w(user_id, tweet_id, at, event_id, before, after)), \
             liked AS ( \
               INSERT INTO likes (user_id, tweet_id, created_at) \
               SELECT user_id, tweet_id, at FROM wanted WHERE tweet_id = ANY(ARRAY(SELECT id FROM locked)) \
               ON CONFLICT DO NOTHING RETURNING user_id, tweet_id), \
             counted AS ( \
               UPDATE tweet_counts c SET like_count = c.like_count + n.added \
               FROM (SELECT tweet_id, count(*) AS added FROM liked GROUP BY tweet_id) n WHERE c.tweet_id = n.tweet_id), \
             appended AS ( \
               INSERT INTO outbox (id, kind, key, payload, created_at) \
               SELECT w.event_id, $15, l.author_id::text, w.before || l.author_id::text || w.after, w.at \
               FROM wanted w JOIN liked USING (user_id, tweet_id) JOIN locked l ON l.id = w.tweet_id \
               WHERE l.author_id <> w.user_id), \
             published AS (DELETE FROM outbox WHERE id = ANY($16)) \
             SELECT 0 AS part, id AS a, 0::bigint AS b, 0::bigint AS c, 0::bigint AS d FROM notified \
             UNION ALL SELECT 1, id, author_id, like_count, view_count FROM locked \
             UNION ALL SELECT 2, user_id, tweet_id, 0, 0 FROM liked"
        );
        let rows: Vec<NotifiedOrLiked> = NotificationColumns::of(notifications)
            .bind(sqlx::query_as(&query))
            .bind(tweet_ids)
            .bind(users)
            .bind(tweets)
            .bind(times)
            .bind(event_ids)
            .bind(before)
            .bind(after)
            .bind(crate::domain::events::TWEET_LIKED)
            .bind(published)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        let mut stored = HashSet::new();
        // Per tweet: (like count, view count) as the batch's writes so far leave them.
        let mut counts: HashMap<i64, (i64, i64)> = HashMap::new();
        let mut added = HashSet::new();
        for row in rows {
            match row.part {
                0 => _ = stored.insert(row.a),
                1 => _ = counts.insert(row.a, (row.c, row.d)),
                _ => _ = added.insert((row.a, row.b)),
            }
        }
        Ok(writes
            .iter()
            .map(|write| match write {
                Write::Like { user, tweet, .. } => {
                    let (like_count, view_count) = counts.get_mut(&tweet.as_i64()).ok_or(StoreError::NotFound)?;
                    let added = added.contains(&(user.as_i64(), tweet.as_i64()));
                    *like_count += i64::from(added);
                    Ok(Written::Like { added, like_count: *like_count, view_count: *view_count })
                }
                Write::Notify(batch) => {
                    Ok(Written::Notified { stored: batch.iter().map(|n| stored.contains(&n.id.as_i64())).collect() })
                }
                _ => Ok(Written::Published),
            })
            .collect())
    }
}

struct Batch<'c>(&'c mut PgConnection);

/// Runs a statement and says whether it changed a row.
async fn changed(
    q: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    conn: &mut PgConnection,
) -> Result<bool, StoreError> {
    Ok(q.execute(conn).await.map_err(err)?.rows_affected() == 1)
}

#[async_trait]
impl BatchTx for Batch<'_> {
    async fn tweets(&mut self, ids: &[i64]) -> Result<Vec<TweetRowCounts>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Both rows locked: the tweet's, as a deletion takes it, and its
        // counts', so that a batch that waited for another reads the counts
        // that one left (a row locked after a wait is read again; a row
        // joined to it only, as it was).
        sqlx::query_as(
            "SELECT t.id, t.author_id, c.like_count, c.view_count FROM tweets t JOIN tweet_counts c ON c.tweet_id = t.id \
             WHERE t.id = ANY($1) ORDER BY t.id FOR NO KEY UPDATE OF t, c",
        )
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await
        .map_err(err)
    }

    async fn users(&mut self, ids: &[i64]) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"))
                .bind(ids)
                .fetch_all(&mut *self.0)
                .await
                .map_err(err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn insert_likes(&mut self, likes: &[(Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError> {
        let (users, tweets, times) = unzip3(likes.iter().map(|(u, t, at)| (u.as_i64(), t.as_i64(), at.as_millis())));
        sqlx::query_as(
            "INSERT INTO likes (user_id, tweet_id, created_at) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) \
             ON CONFLICT DO NOTHING RETURNING user_id, tweet_id",
        )
        .bind(users)
        .bind(tweets)
        .bind(times)
        .fetch_all(&mut *self.0)
        .await
        .map_err(err)
    }

    async fn delete_like(&mut self, user: Id, tweet: Id) -> Result<bool, StoreError> {
        let q = sqlx::query("DELETE FROM likes WHERE tweet_id = $1 AND user_id = $2").bind(tweet.as_i64()).bind(user.as_i64());
        changed(q, self.0).await
    }

    async fn insert_follows(&mut self, follows: &[(Id, Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError> {
        let followers: Vec<i64> = follows.iter().map(|f| f.0.as_i64()).collect();
        let (followees, ids, times) = unzip3(follows.iter().map(|(_, e, id, at)| (e.as_i64(), id.as_i64(), at.as_millis())));
        sqlx::query_as(
            "INSERT INTO follows (follower_id, followee_id, id, created_at) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) \
             ON CONFLICT DO NOTHING RETURNING follower_id, followee_id",
        )
        .bind(followers)
        .bind(followees)
        .bind(ids)
        .bind(times)
        .fetch_all(&mut *self.0)
        .await
        .map_err(err)
    }

    async fn delete_follow(&mut self, follower: Id, followee: Id) -> Result<bool, StoreError> {
        let q = sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
            .bind(follower.as_i64())
            .bind(followee.as_i64());
        changed(q, self.0).await
    }

    async fn insert_tweets(&mut self, tweets: &[&NewTweet]) -> Result<(), StoreError> {
        let columns = NewTweetColumns::of(tweets);
        sqlx::query(&format!("WITH {TWEETS_INSERTED} SELECT 1"))
            .bind(columns.ids)
            .bind(columns.authors)
            .bind(columns.contents)
            .bind(columns.terms)
            .bind(columns.times)
            .execute(&mut *self.0)
            .await
            .map_err(err)?;
        for t in tweets {
            for (position, m) in t.media.iter().enumerate() {
                insert_media(self.0, t.id, position, m).await?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self, end: &BatchEnd<'_>) -> Result<(), StoreError> {
        // One statement, one round trip: its parts touch different rows (the
        // counted tweets and users are locked already, the new events are
        // not among the published ones), so that they run on one snapshot
        // changes nothing.
        let (tweet_ids, likes, views) = unzip3(end.tweets.iter().copied());
        let user_ids: Vec<i64> = end.users.iter().map(|u| u.0).collect();
        let (followers, followings, tweets) = unzip3(end.users.iter().map(|&(_, a, b, c)| (a, b, c)));
        let event_ids: Vec<i64> = end.outbox.iter().map(|(m, _)| m.id).collect();
        let kinds: Vec<&str> = end.outbox.iter().map(|(m, _)| m.kind.as_str()).collect();
        let keys: Vec<&str> = end.outbox.iter().map(|(m, _)| m.key.as_str()).collect();
        let payloads: Vec<&str> = end.outbox.iter().map(|(m, _)| m.payload.as_str()).collect();
        let times: Vec<i64> = end.outbox.iter().map(|(_, at)| at.as_millis()).collect();
        sqlx::query(
            "WITH tweets_counted AS ( \
               UPDATE tweet_counts c SET like_count = c.like_count + d.likes, view_count = c.view_count + d.views \
               FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(id, likes, views) WHERE c.tweet_id = d.id), \
             users_counted AS ( \
               UPDATE users u SET followers_count = u.followers_count + d.followers, \
                 followings_count = u.followings_count + d.followings, tweets_count = u.tweets_count + d.tweets \
               FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS d(id, followers, followings, tweets) \
               WHERE u.id = d.id), \
             appended AS ( \
               INSERT INTO outbox (id, kind, key, payload, created_at) \
               SELECT * FROM unnest($8::bigint[], $9::text[], $10::text[], $11::text[], $12::bigint[])), \
             published AS (DELETE FROM outbox WHERE id = ANY($13)) \
             SELECT 1",
        )
        .bind(tweet_ids)
        .bind(likes)
        .bind(views)
        .bind(user_ids)
        .bind(followers)
        .bind(followings)
        .bind(tweets)
        .bind(event_ids)
        .bind(kinds)
        .bind(keys)
        .bind(payloads)
        .bind(times)
        .bind(end.published)
        .execute(&mut *self.0)
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn insert_notifications(&mut self, batch: &[NewNotification]) -> Result<HashSet<i64>, StoreError> {
        let inserted: Vec<(i64,)> = NotificationColumns::of(batch.iter())
            .bind(sqlx::query_as(&format!("WITH {NOTIFICATIONS_INSERTED} SELECT id FROM notified")))
            .fetch_all(&mut *self.0)
            .await
            .map_err(err)?;
        Ok(inserted.into_iter().map(|(id,)| id).collect())
    }
}

/// The outbox rows the batch's `Published` writes acknowledged.
fn published_ids(writes: &[Write]) -> Vec<i64> {
    writes
        .iter()
        .flat_map(|w| match w {
            Write::Published { ids } => ids.as_slice(),
            _ => &[],
        })
        .copied()
        .collect()
}

fn unzip3(rows: impl Iterator<Item = (i64, i64, i64)>) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for (x, y, z) in rows {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

async fn insert_media(conn: &mut PgConnection, tweet: Id, position: usize, m: &Media) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO media (id, tweet_id, position, kind, content_type, storage_key, thumbnail_key, size_bytes, width, height, \
         duration_ms, original_key, thumbnail_width, thumbnail_height, description, blurhash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(m.id.as_i64())
    .bind(tweet.as_i64())
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .bind(m.kind.as_str())
    .bind(&m.content_type)
    .bind(&m.key)
    .bind(&m.thumbnail_key)
    .bind(m.size_bytes)
    .bind(m.width)
    .bind(m.height)
    .bind(m.duration_ms)
    .bind(&m.original_key)
    .bind(m.thumbnail_width)
    .bind(m.thumbnail_height)
    .bind(m.description.as_ref().map(|d| d.as_str()))
    .bind(&m.blurhash)
    .execute(conn)
    .await
    .map_err(err)?;
    Ok(())
}
