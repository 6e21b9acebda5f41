//! The tweets' full-text index (FTS5), in a file of its own beside the
//! database (`chirp.search.db` beside `chirp.db`), written by a thread of
//! its own.
//!
//! SQLite locks a file as a whole. While the index shared the tweets' file,
//! every change to it ran inside the write batches, and FTS5 merges its
//! segments in lumps, inside whichever commit fills a level: every write
//! queued behind that commit waited for the merge (15-30 ms of text tweets'
//! p99, docs/BENCHMARKS.md). Here a write batch only hands the terms of the
//! tweets it committed to the indexer ([`SearchIndex::added`]), which writes
//! them to the other file in transactions of its own, merges included,
//! while the batches go on.
//!
//! Search reads the index (each reader connection attaches the file as
//! `search`) and tests the tweets handed over but not yet indexed itself
//! ([`SearchIndex::waiting_matches`], read before the index so that none is
//! missed in between): a tweet is found as soon as its post is answered.
//!
//! Everything in the file can be rebuilt from `tweets.search_terms`. A new
//! file is filled from the whole table, a few thousand tweets a transaction
//! beside the live hand-over (search finds the tweets indexed so far). At
//! every start, the tweets from [`REINDEXED_AT_START`] before the newest
//! indexed are handed over again, as if just committed: those handed over
//! but not written when the process stopped are among them, including
//! tweets whose ids are older than one committed before them (an id is
//! taken before its batch commits), and search finds them from the start.
//! Writes are `REPLACE`s, so a tweet indexed twice is there once.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params_from_iter};

use crate::domain::search::TweetQuery;
use crate::domain::{Id, Timestamp};

/// Tweets one indexing transaction takes at most, handed over or rebuilt:
/// large enough that FTS5 writes few, large segments, small enough that a
/// transaction is short.
const TWEETS_A_TRANSACTION: usize = 2_000;

/// Tweets one `REPLACE` statement takes (FTS5 writes out what it holds at
/// each statement's start, so one statement a tweet makes one segment each).
const TWEETS_A_STATEMENT: usize = 250;

/// How far before the newest tweet indexed a start indexes again: longer
/// than a write waits between taking its tweet's id and committing.
const REINDEXED_AT_START: Duration = Duration::from_secs(60);

const SCHEMA: &str = "
    CREATE VIRTUAL TABLE IF NOT EXISTS tweet_search USING fts5(
        search_terms, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
    );
    -- backlog_at: the id up to which the tweets that were there when the
    -- file was made are indexed (NULL once all are); upto: the newest id indexed.
    CREATE TABLE IF NOT EXISTS progress (
        only INTEGER PRIMARY KEY CHECK (only = 1),
        backlog_at INTEGER,
        upto INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO progress (only, backlog_at, upto) VALUES (1, 0, 0);
";

/// A committed tweet's search terms, on their way to the index.
#[derive(Clone)]
pub(super) struct Terms {
    pub id: i64,
    pub author: i64,
    /// `domain::search::index_text` of its content.
    pub terms: String,
}

/// The index file beside the database, and the indexer thread that writes
/// it (stopped when this is dropped).
pub(super) struct SearchIndex {
    path: PathBuf,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the indexer when something is handed over, or it should stop.
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Committed tweets not yet indexed, in commit order.
    added: VecDeque<Terms>,
    /// Deleted tweets not yet taken out of the index.
    removed: VecDeque<i64>,
    /// Whether every tweet that was in the table when the index file was made is indexed.
    built: bool,
    stopping: bool,
}

impl SearchIndex {
    /// The index file for the database file `database`.
    pub(super) fn path_for(database: &Path) -> PathBuf {
        let mut name = database.file_stem().unwrap_or_default().to_os_string();
        name.push(".search.db");
        database.with_file_name(name)
    }

    /// Opens the index beside `database` (creating it if need be) and starts
    /// the indexer, which reads from `database` the tweets it indexes again.
    pub(super) fn open(database: &Path) -> anyhow::Result<Self> {
        let path = Self::path_for(database);
        let index = Connection::open(&path)?;
        index.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;")?;
        index.execute_batch(SCHEMA)?;
        let (backlog_at, upto): (Option<i64>, i64) =
            index.query_row("SELECT backlog_at, upto FROM progress", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let tweets = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        tweets.busy_timeout(Duration::from_secs(10))?;
        let shared = Arc::new(Shared::default());
        if backlog_at.is_none() {
            let mut queue = shared.lock();
            queue.added = tweets_after(&tweets, reindexed_from(upto), None)?.into();
            queue.built = true;
        }
        let indexer = Indexer { index, tweets, shared: shared.clone() };
        std::thread::Builder::new().name("chirp-search-index".into()).spawn(move || indexer.run(backlog_at))?;
        Ok(Self { path, shared })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Hands over the tweets a write batch has just committed.
    pub(super) fn added(&self, tweets: Vec<Terms>) {
        if tweets.is_empty() {
            return;
        }
        let mut queue = self.shared.lock();
        queue.added.extend(tweets);
        metrics::gauge!("chirp_search_index_waiting").set(queue.added.len() as f64);
        drop(queue);
        self.shared.wake.notify_one();
    }

    /// Hands over a tweet just deleted.
    pub(super) fn removed(&self, id: Id) {
        self.shared.lock().removed.push_back(id.as_i64());
        self.shared.wake.notify_one();
    }

    /// The tweets handed over but not yet indexed that `query` finds, older
    /// than `before` and by `author` if given, newest first.
    pub(super) fn waiting_matches(&self, query: &TweetQuery, before: i64, author: Option<Id>) -> Vec<i64> {
        let queue = self.shared.lock();
        let mut found: Vec<i64> = queue
            .added
            .iter()
            .filter(|t| t.id < before && author.is_none_or(|a| a.as_i64() == t.author) && !queue.removed.contains(&t.id))
            .filter(|t| query.matches(&t.terms))
            .map(|t| t.id)
            .collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        found
    }

    /// Whether every tweet committed so far is in the index.
    pub(super) fn is_current(&self) -> bool {
        let queue = self.shared.lock();
        queue.built && queue.added.is_empty() && queue.removed.is_empty()
    }
}

impl Drop for SearchIndex {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves the queue as it was between two changes.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The first id a start indexes again, `REINDEXED_AT_START` before `upto`.
fn reindexed_from(upto: i64) -> i64 {
    if upto <= 0 {
        return 0;
    }
    let at = Id::from_i64(upto).timestamp().as_millis() - REINDEXED_AT_START.as_millis() as i64;
    Id::compose(Timestamp::from_millis(at.max(0)), 0, 0).as_i64()
}

/// The tweets of the database with ids over `after`, in id order, `limit` at most.
fn tweets_after(tweets: &Connection, after: i64, limit: Option<usize>) -> rusqlite::Result<Vec<Terms>> {
    tweets
        .prepare_cached("SELECT id, author_id, search_terms FROM tweets WHERE id > ? ORDER BY id LIMIT ?")?
        .query_map([after, limit.map_or(-1, |n| n as i64)], |row| {
            Ok(Terms { id: row.get(0)?, author: row.get(1)?, terms: row.get(2)? })
        })?
        .collect()
}

struct Indexer {
    index: Connection,
    /// The database, read-only: where the backlog's tweets are read from.
    tweets: Connection,
    shared: Arc<Shared>,
}

impl Indexer {
    /// Indexes what is handed over as it comes and, with `backlog` (a new
    /// file, indexed up to that id), the tweets that were there before.
    fn run(mut self, mut backlog: Option<i64>) {
        let total: i64 = backlog
            .and_then(|from| self.tweets.query_row("SELECT count(*) FROM tweets WHERE id > ?", [from], |row| row.get(0)).ok())
            .unwrap_or(0);
        if total > 0 {
            tracing::info!(
                tweets = total,
                "search index: a new index file; indexing the tweets (search finds those indexed so far)"
            );
        }
        let mut indexed = 0_i64;
        let mut reported = Instant::now();
        loop {
            // What was handed over comes first: searches test it by hand until it is indexed.
            let (added, removed) = {
                let mut queue = self.shared.lock();
                loop {
                    if queue.stopping {
                        return;
                    }
                    if !queue.added.is_empty() || !queue.removed.is_empty() || backlog.is_some() {
                        break;
                    }
                    queue = self.shared.wake.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                let added: Vec<Terms> = queue.added.iter().take(TWEETS_A_TRANSACTION).cloned().collect();
                // A deleted tweet still waiting beyond this transaction is taken out after it is indexed.
                let later = |id: &i64| queue.added.iter().skip(TWEETS_A_TRANSACTION).any(|t| t.id == *id);
                let removed: Vec<i64> = queue.removed.iter().copied().filter(|id| !later(id)).collect();
                (added, removed)
            };
            if !added.is_empty() || !removed.is_empty() {
                match self.write(&added, &removed, None) {
                    Ok(()) => {
                        let mut queue = self.shared.lock();
                        queue.added.drain(..added.len());
                        queue.removed.retain(|id| !removed.contains(id));
                        metrics::gauge!("chirp_search_index_waiting").set(queue.added.len() as f64);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "search index: writing failed; retrying in a second");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                continue;
            }
            let Some(from) = backlog.as_mut() else { continue };
            match self.backlog_step(from) {
                Ok(0) => {
                    if total > 0 {
                        tracing::info!(tweets = indexed, "search index: every tweet is indexed");
                    }
                    backlog = None;
                    self.shared.lock().built = true;
                }
                Ok(n) => {
                    indexed += n as i64;
                    if reported.elapsed() >= Duration::from_secs(5) {
                        tracing::info!(indexed, of = total, "search index: building");
                        reported = Instant::now();
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search index: indexing the backlog failed; retrying in a second");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Indexes the backlog's next tweets after `from`, and moves `from`
    /// past them; how many (none once the backlog is done).
    fn backlog_step(&mut self, from: &mut i64) -> rusqlite::Result<usize> {
        let rows = tweets_after(&self.tweets, *from, Some(TWEETS_A_TRANSACTION))?;
        let Some(last) = rows.last().map(|t| t.id) else {
            self.index.execute("UPDATE progress SET backlog_at = NULL", [])?;
            return Ok(0);
        };
        self.write(&rows, &[], Some(last))?;
        *from = last;
        Ok(rows.len())
    }

    /// Indexes `added` and takes `removed` out, in one transaction; with
    /// `backlog_at`, records how far the backlog has come.
    fn write(&mut self, added: &[Terms], removed: &[i64], backlog_at: Option<i64>) -> rusqlite::Result<()> {
        let started = Instant::now();
        let tx = self.index.transaction()?;
        for chunk in added.chunks(TWEETS_A_STATEMENT) {
            let sql =
                format!("REPLACE INTO tweet_search (rowid, search_terms) VALUES {}", vec!["(?, ?)"; chunk.len()].join(", "));
            let values =
                chunk.iter().flat_map(|t| [rusqlite::types::Value::Integer(t.id), rusqlite::types::Value::Text(t.terms.clone())]);
            tx.execute(&sql, params_from_iter(values))?;
        }
        for id in removed {
            tx.prepare_cached("DELETE FROM tweet_search WHERE rowid = ?")?.execute([id])?;
        }
        if let Some(newest) = added.iter().map(|t| t.id).max() {
            tx.prepare_cached("UPDATE progress SET upto = max(upto, ?)")?.execute([newest])?;
        }
        if let Some(at) = backlog_at {
            tx.prepare_cached("UPDATE progress SET backlog_at = ?")?.execute([at])?;
        }
        tx.commit()?;
        metrics::histogram!("chirp_search_index_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::index_text;

    fn database(dir: &Path) -> PathBuf {
        let path = dir.join("chirp.db");
        let db = Connection::open(&path).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode = WAL; \
             CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, search_terms TEXT NOT NULL);",
        )
        .unwrap();
        path
    }

    fn insert(database: &Path, id: i64, text: &str) -> Terms {
        let terms = Terms { id, author: id % 3, terms: index_text(text) };
        Connection::open(database)
            .unwrap()
            .execute(
                "INSERT INTO tweets (id, author_id, search_terms) VALUES (?, ?, ?)",
                rusqlite::params![id, terms.author, terms.terms],
            )
            .unwrap();
        terms
    }

    /// The ids the index file itself finds for `query`.
    fn indexed_matches(index: &SearchIndex, query: &str) -> Vec<i64> {
        let db = Connection::open(index.path()).unwrap();
        let mut s = db.prepare("SELECT rowid FROM tweet_search WHERE tweet_search MATCH ? ORDER BY rowid DESC").unwrap();
        s.query_map([TweetQuery::parse(query).fts5()], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    /// The stored progress: (backlog_at, upto).
    fn progress(path: &Path) -> (Option<i64>, i64) {
        let db = Connection::open(path).unwrap();
        db.query_row("SELECT backlog_at, upto FROM progress", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    }

    fn wait_until_current(index: &SearchIndex) {
        let started = Instant::now();
        while !index.is_current() {
            assert!(started.elapsed() < Duration::from_secs(10), "the index did not catch up");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn id_at(seconds: i64, seq: u16) -> i64 {
        Id::compose(Timestamp::from_millis(1_800_000_000_000 + seconds * 1000), 1, seq).as_i64()
    }

    #[test]
    fn a_new_index_is_built_from_the_tweets_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        // More than one transaction's worth.
        let mut conn = Connection::open(&db).unwrap();
        let tx = conn.transaction().unwrap();
        for n in 0..5_000 {
            let terms = if n % 2 == 0 { "even tweet" } else { "odd tweet" };
            tx.execute(
                "INSERT INTO tweets (id, author_id, search_terms) VALUES (?, 0, ?)",
                rusqlite::params![id_at(n, 0), terms],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let index = SearchIndex::open(&db).unwrap();
        wait_until_current(&index);
        assert_eq!(indexed_matches(&index, "even").len(), 2_500);
        assert_eq!(indexed_matches(&index, "tweet").len(), 5_000);
        assert_eq!(progress(index.path()), (None, id_at(4_999, 0)));
    }

    /// An index whose indexer has stopped: whatever is handed over stays waiting.
    fn stopped(dir: &Path) -> SearchIndex {
        let index = SearchIndex::open(&database(dir)).unwrap();
        index.shared.lock().stopping = true;
        index
    }

    /// What the hand test finds among waiting tweets is what FTS5 finds once
    /// they are indexed, over random texts and queries.
    #[test]
    fn the_hand_test_finds_what_the_index_finds() {
        const WORDS: [&str; 6] = ["big", "world", "Small", "wörld", "the", "a"];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut words = |n: usize| (0..n).map(|_| WORDS[next(WORDS.len())]).collect::<Vec<_>>().join(" ");
        let texts: Vec<String> = (0..300).map(|n| words(1 + n % 7)).collect();
        let queries: Vec<String> = (0..200)
            .map(|n| match n % 3 {
                0 => words(1 + n % 2),
                1 => format!("\"{}\"", words(2 + n % 2)),
                _ => format!("{} \"{}\"", words(1), words(2)),
            })
            .collect();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let waiting = stopped(a.path());
        let live = SearchIndex::open(&database(b.path())).unwrap();
        let tweets: Vec<Terms> =
            texts.iter().enumerate().map(|(n, t)| Terms { id: n as i64 + 1, author: 0, terms: index_text(t) }).collect();
        waiting.added(tweets.clone());
        live.added(tweets);
        wait_until_current(&live);
        let mut found = 0;
        for q in &queries {
            let by_hand = waiting.waiting_matches(&TweetQuery::parse(q), i64::MAX, None);
            assert_eq!(indexed_matches(&live, q), by_hand, "query {q}");
            found += by_hand.len();
        }
        assert!(found > 1_000, "the queries found too little ({found}) to compare");
    }

    #[test]
    fn waiting_matches_keep_to_the_page_and_the_author() {
        let dir = tempfile::tempdir().unwrap();
        let index = stopped(dir.path());
        let mut queue = index.shared.lock();
        for n in 0..6 {
            queue.added.push_back(Terms { id: n, author: n % 2, terms: "hello".into() });
        }
        queue.removed.push_back(4);
        drop(queue);
        let hello = TweetQuery::parse("hello");
        assert_eq!(index.waiting_matches(&hello, i64::MAX, None), [5, 3, 2, 1, 0]);
        assert_eq!(index.waiting_matches(&hello, 3, None), [2, 1, 0]);
        assert_eq!(index.waiting_matches(&hello, i64::MAX, Some(Id::from_i64(1))), [5, 3, 1]);
    }

    #[test]
    fn removed_tweets_leave_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        let index = SearchIndex::open(&db).unwrap();
        let tweets = vec![insert(&db, id_at(1, 0), "gone soon"), insert(&db, id_at(2, 0), "here to stay")];
        index.added(tweets);
        wait_until_current(&index);
        index.removed(Id::from_i64(id_at(1, 0)));
        wait_until_current(&index);
        assert!(indexed_matches(&index, "gone").is_empty());
        assert_eq!(indexed_matches(&index, "stay"), [id_at(2, 0)]);
    }

    /// A tweet deleted while it waits beyond the indexer's next transaction
    /// is taken out of the index once it is in it, not before.
    #[test]
    fn a_tweet_deleted_while_waiting_never_stays_in_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        let path = SearchIndex::open(&db).unwrap().path().to_owned(); // the file, made
        // A queue filled before its indexer starts.
        let index = SearchIndex { path: path.clone(), shared: Arc::new(Shared::default()) };
        index.shared.lock().built = true;
        let many: Vec<Terms> =
            (1..=TWEETS_A_TRANSACTION as i64 + 10).map(|id| Terms { id, author: 0, terms: "many".into() }).collect();
        let last = many.last().unwrap().id;
        index.added(many);
        index.removed(Id::from_i64(last));
        assert!(!index.waiting_matches(&TweetQuery::parse("many"), i64::MAX, None).contains(&last));
        let indexer = Indexer {
            index: Connection::open(&path).unwrap(),
            tweets: Connection::open(&db).unwrap(),
            shared: index.shared.clone(),
        };
        std::thread::spawn(move || indexer.run(None));
        wait_until_current(&index);
        let found = indexed_matches(&index, "many");
        assert_eq!(found.len(), TWEETS_A_TRANSACTION + 9);
        assert!(!found.contains(&last));
    }

    /// A tweet committed but not indexed when the process stopped, with an
    /// id older than the newest indexed, is indexed at the next start.
    #[test]
    fn a_start_indexes_again_what_may_have_been_lost() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        let index = SearchIndex::open(&db).unwrap();
        let newest = insert(&db, id_at(100, 1), "newest tweet");
        index.added(vec![newest]);
        wait_until_current(&index);
        drop(index);
        // Committed after the newest, its id taken before: its hand-over was lost.
        insert(&db, id_at(100, 0), "late tweet");
        // Long before the newest: indexed when it was posted, not read again.
        insert(&db, id_at(-1_000, 0), "ancient tweet");
        let index = SearchIndex::open(&db).unwrap();
        // Found from the start, waiting or indexed already (waiting read first, as search does).
        let mut found = index.waiting_matches(&TweetQuery::parse("late"), i64::MAX, None);
        found.extend(indexed_matches(&index, "late"));
        assert!(found.contains(&id_at(100, 0)));
        wait_until_current(&index);
        assert_eq!(indexed_matches(&index, "tweet"), [id_at(100, 1), id_at(100, 0)]);
        let a_minute_before = Id::compose(Id::from_i64(id_at(100, 0)).timestamp(), 0, 0).as_i64();
        assert_eq!(reindexed_from(id_at(160, 0)), a_minute_before);
    }
}
