//! Search on PostgreSQL. Tweets: the full-text index (GIN) finds every
//! tweet holding a set of terms, in no useful order, while a page wants the
//! newest few; so chirp picks one of two plans per query, from how common
//! its terms are (PostgreSQL's own statistics, read once a minute):
//!
//! - **walk**: the primary key backwards from the page's start, each row
//!   checked, until the page is full: cheap when matches are dense (every
//!   term common), costly when they are rare;
//! - **index**: the index finds the tweets holding the query's *rarer*
//!   terms; the common ones (in more than [`COMMON_TERM`] of tweets) are
//!   checked on the rows found, because their posting lists are most of the
//!   index (`the` is in 88% of the seeded tweets), then the newest are kept.
//!
//! PostgreSQL's planner chose between the same two, but with the whole
//! query in the index scan, and it estimates a term it has no statistics
//! for as ten times commoner than it is: a rare word was walked for
//! 100-300 ms, and a common word made the index read its posting list.
//! docs/BENCHMARKS.md has the measurements.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{PostgresStore, err};
use crate::domain::search::TweetQuery;
use crate::domain::{Id, Tweet, User};
use crate::ports::store::{FoundUser, PageRequest, SearchStore, StoreError, TweetStore, USER_COLUMNS, UserRow, UserSearchKey};

/// How long the terms' frequencies are used before being read again.
const TERM_STATS_FRESHNESS: Duration = Duration::from_secs(60);
/// Terms in more than this share of tweets are checked on the rows the
/// index finds, not looked up in it.
const COMMON_TERM: f64 = 0.2;
/// How many rows the walk reads in the time the index plan takes for one
/// row it finds (found rows are fetched one by one, walked rows in order).
const WALKED_ROWS_PER_FOUND_ROW: f64 = 10.0;

/// How common search terms are, from `pg_stats` on `tweets.search_vector`.
#[derive(Debug, PartialEq)]
pub(super) struct TermStats {
    /// Share of tweets holding each of the most common terms.
    frequency: HashMap<String, f64>,
    /// The share assumed for any other term (half the least common one listed).
    other: f64,
    /// Tweets in the table, as last estimated.
    rows: f64,
}

#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    Walk,
    /// The index scan's tsquery: the query's rarer terms.
    Index(String),
}

impl TermStats {
    /// From `most_common_elems`, `most_common_elem_freqs` (which ends with
    /// the least and greatest frequency and the null share) and `reltuples`.
    pub(super) fn new(terms: Vec<String>, freqs: &[f32], rows: f64) -> Option<Self> {
        if terms.is_empty() || freqs.len() < terms.len() + 1 || rows <= 0.0 {
            return None;
        }
        let other = f64::from(freqs[terms.len()]) / 2.0;
        let frequency = terms.into_iter().zip(freqs.iter().map(|&f| f64::from(f))).collect();
        Some(Self { frequency, other, rows })
    }

    fn frequency(&self, term: &str) -> f64 {
        self.frequency.get(term).copied().unwrap_or(self.other)
    }

    /// The cheaper plan for a page of `limit` tweets matching `query`.
    pub(super) fn plan(&self, query: &TweetQuery, limit: u32) -> Plan {
        let terms: BTreeSet<&str> = query.words.iter().chain(query.phrases.iter().flatten()).map(String::as_str).collect();
        // Terms taken as independent: the share of tweets matching them all.
        let density: f64 = terms.iter().map(|t| self.frequency(t)).product::<f64>().max(f64::MIN_POSITIVE);
        let rarer: Vec<&str> = terms.iter().copied().filter(|t| self.frequency(t) < COMMON_TERM).collect();
        if rarer.is_empty() {
            return Plan::Walk;
        }
        let walked = f64::from(limit) / density;
        let found = self.rows * rarer.iter().map(|t| self.frequency(t)).product::<f64>();
        if walked <= WALKED_ROWS_PER_FOUND_ROW * found {
            return Plan::Walk;
        }
        let index = TweetQuery { words: rarer.into_iter().map(str::to_owned).collect(), phrases: Vec::new() };
        Plan::Index(index.tsquery())
    }
}

/// The statistics last read, and when.
#[derive(Default)]
pub(super) struct TermStatsCache(RwLock<Option<(Instant, Option<Arc<TermStats>>)>>);

impl PostgresStore {
    /// The terms' frequencies, read again when older than [`TERM_STATS_FRESHNESS`];
    /// `None` until the table has been analyzed, or if they cannot be read
    /// (the search then leaves the plan to PostgreSQL, and still answers).
    async fn term_stats(&self) -> Option<Arc<TermStats>> {
        if let Some((at, stats)) = self.term_stats.0.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if at.elapsed() < TERM_STATS_FRESHNESS {
                return stats.clone();
            }
        }
        let stats = match self.read_term_stats().await {
            Ok(stats) => stats,
            Err(e) => {
                tracing::warn!(error = %e, "search: reading the terms' statistics failed; PostgreSQL plans searches");
                None
            }
        };
        *self.term_stats.0.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), stats.clone()));
        stats
    }

    async fn read_term_stats(&self) -> Result<Option<Arc<TermStats>>, StoreError> {
        let row: (Option<Vec<String>>, Option<Vec<f32>>, f64) = sqlx::query_as(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples::float8 \
             FROM pg_class c LEFT JOIN pg_stats s \
               ON s.schemaname = current_schema() AND s.tablename = 'tweets' AND s.attname = 'search_vector' \
             WHERE c.oid = 'tweets'::regclass",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(err)?;
        Ok(match row {
            (Some(terms), Some(freqs), rows) => TermStats::new(terms, &freqs, rows).map(Arc::new),
            _ => None,
        })
    }
}

#[async_trait]
impl SearchStore for PostgresStore {
    async fn search_tweets(
        &self,
        query: &TweetQuery,
        author: Option<Id>,
        page: PageRequest,
        viewer: Option<Id>,
    ) -> Result<Vec<Tweet>, StoreError> {
        let before = page.before.map_or(i64::MAX, Id::as_i64);
        let limit = i64::from(page.limit);
        // One author's tweets: the planner walks that author's (author_id, id) index.
        let plan = match author {
            Some(_) => None,
            None => self.term_stats().await.map(|stats| stats.plan(query, page.limit)),
        };
        let name = match plan {
            Some(Plan::Walk) => "walk",
            Some(Plan::Index(_)) => "index",
            None => "planner",
        };
        metrics::counter!("chirp_search_plans_total", "plan" => name).increment(1);
        let ids: Vec<i64> = match plan {
            Some(Plan::Walk) => sqlx::query_scalar(
                // The function form of `@@`, which no index answers: the primary key is walked.
                "SELECT id FROM tweets WHERE id < $2 AND ts_match_vq(search_vector, to_tsquery('simple', $1)) \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(query.tsquery())
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?,
            Some(Plan::Index(rarer)) => sqlx::query_scalar(
                "WITH found AS MATERIALIZED ( \
                   SELECT id, search_vector FROM tweets WHERE search_vector @@ to_tsquery('simple', $2) AND id < $3) \
                 SELECT id FROM found WHERE ts_match_vq(search_vector, to_tsquery('simple', $1)) \
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(query.tsquery())
            .bind(rarer)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?,
            None => sqlx::query_scalar(
                "SELECT id FROM tweets \
                 WHERE search_vector @@ to_tsquery('simple', $1) \
                 AND id < $2 AND ($3::bigint IS NULL OR author_id = $3) \
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(query.tsquery())
            .bind(before)
            .bind(author.map(Id::as_i64))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> TermStats {
        // `the` in 88% of a million tweets, `cat` in 5%, `dog` in 1%; any other term 0.005%.
        let terms = vec!["the".to_owned(), "cat".to_owned(), "dog".to_owned()];
        TermStats::new(terms, &[0.88, 0.05, 0.01, 0.0001, 0.88, 0.0], 1_000_000.0).unwrap()
    }

    #[test]
    fn common_terms_are_walked_and_rare_ones_looked_up_without_the_common() {
        let s = stats();
        let plan = |q: &str| s.plan(&TweetQuery::parse(q), 21);
        assert_eq!(plan("the"), Plan::Walk, "every term common");
        assert_eq!(plan("the cat"), Plan::Walk, "a match in every 23 rows: the walk is short");
        assert_eq!(plan("the kokomapo"), Plan::Index("'kokomapo'".to_owned()), "`the` is checked on the rows found");
        assert_eq!(plan("cat dog"), Plan::Index("'cat' & 'dog'".to_owned()));
        assert_eq!(plan(r#""the kokomapo" the"#), Plan::Index("'kokomapo'".to_owned()), "phrase words count as terms");
        assert_eq!(plan("kokomapo"), Plan::Index("'kokomapo'".to_owned()));
    }

    #[test]
    fn statistics_without_terms_or_rows_are_none() {
        assert_eq!(TermStats::new(Vec::new(), &[], 10.0), None);
        assert_eq!(TermStats::new(vec!["a".to_owned()], &[0.5], 10.0), None, "no least frequency");
        assert_eq!(TermStats::new(vec!["a".to_owned()], &[0.5, 0.5, 0.5, 0.0], -1.0), None, "never analyzed");
    }
}
