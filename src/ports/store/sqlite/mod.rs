//! SQLite adapter: one file in WAL mode. Writes go through a single
//! connection (SQLite has one writer anyway, and queueing in the pool beats
//! `SQLITE_BUSY` retries); reads use a pool of their own; a connection of
//! its own checkpoints the WAL in the background (`checkpoints`). The
//! tweets' full-text index is a second file, written by a thread of its own
//! (`search_index`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio_util::sync::{CancellationToken, DropGuard};

mod events;
mod graph;
mod media;
mod search;
mod search_index;
mod timeline;
mod tweets;
mod writes;

use super::{Constraint, Credentials, NewUser, ProfileChange, StoreError, USER_COLUMNS, UserRow, UserStore, classify};
use crate::domain::{Id, User};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Runs the group commit's batches on the writer connection.
    batches: writes::BatchThread,
    /// The tweets' full-text index, in its own file.
    search: Arc<search_index::SearchIndex>,
    /// Stops the checkpoints when the store goes.
    _checkpoints: DropGuard,
}

/// `prefix` followed by `(?, ?, …)` over `ids`.
pub(super) fn in_list<'a>(prefix: &str, ids: &[Id]) -> sqlx::QueryBuilder<'a, sqlx::Sqlite> {
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(prefix);
    q.push("(");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id.as_i64());
    }
    q.push(")");
    q
}

fn err(e: sqlx::Error) -> StoreError {
    classify(e, |db| {
        // SQLite names the index in its message: "UNIQUE constraint failed: index 'users_username_key'".
        let msg = db.message();
        ["users_username_key", "users_email_key"].into_iter().find(|name| msg.contains(name)).and_then(Constraint::from_name)
    })
}

/// When the WAL is checkpointed (see `checkpoints`).
#[derive(Clone, Copy)]
struct Checkpoints {
    /// How often the background connection copies committed pages from the
    /// WAL into the database file.
    every: Duration,
    /// WAL frames (pages) past which the WAL is started over.
    restart_frames: i64,
}

impl Checkpoints {
    /// Every 200 ms; started over past 128 MiB of 4 KiB pages (a few seconds
    /// of writes at full speed: each start over holds writes up briefly).
    const DEFAULT: Checkpoints = Checkpoints { every: Duration::from_millis(200), restart_frames: 32_768 };
}

/// Keeps the WAL short without stalling writes. SQLite's own checkpoint
/// runs inside whichever commit crosses 1,000 WAL pages, copying them into
/// the database file and syncing it while every queued write waits. Here a
/// connection of its own does that copying (PASSIVE: it never waits for,
/// nor blocks, the writer or readers) every `Checkpoints::every`.
///
/// A checkpoint from another connection cannot start the WAL over while
/// writes go on: SQLite does that only in a write transaction that begins
/// when every frame has been copied, and the writer is always a frame
/// ahead. So once the WAL holds `Checkpoints::restart_frames`, a PASSIVE
/// checkpoint also runs on the writer's own connection, taken from its pool
/// between two writes: it copies the few frames written since the last
/// pass, and the next write starts the WAL over unless a reader is still on
/// it (then the next pass tries again). Past four times that size, the
/// checkpoint on the writer's connection is a RESTART, which waits for
/// those readers.
async fn checkpoints(checkpointer: SqlitePool, writer: SqlitePool, when: Checkpoints, stop: CancellationToken) {
    let mut tick = tokio::time::interval(when.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        // (busy, frames in the WAL, frames copied)
        let pass = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&checkpointer);
        let frames = match timed("own", pass).await {
            Ok((_, frames, _)) => frames,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
                continue;
            }
        };
        if frames < when.restart_frames {
            continue;
        }
        // Once more from the background first, so that the pass on the
        // writer's connection (which holds up writes) has only the frames
        // written during that one to copy.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&checkpointer).await {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
        }
        let sql = if frames < 4 * when.restart_frames {
            "PRAGMA wal_checkpoint(PASSIVE)"
        } else {
            tracing::info!(frames, "the WAL is long: its checkpoint waits for readers");
            "PRAGMA wal_checkpoint(RESTART)"
        };
        let on_writer = async {
            let mut conn = writer.acquire().await?;
            sqlx::query_as::<_, (i64, i64, i64)>(sql).fetch_one(&mut *conn).await
        };
        if let Err(e) = timed("writer", on_writer).await {
            tracing::warn!(error = %e, frames, "WAL checkpoint on the writer failed; the next pass retries");
        }
    }
    checkpointer.close().await;
}

/// Runs a checkpoint pass on `connection` ("own" or "writer"), recording how long it took.
async fn timed<T>(connection: &'static str, pass: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let result = pass.await;
    metrics::histogram!("chirp_sqlite_checkpoint_seconds", "connection" => connection).record(started.elapsed().as_secs_f64());
    result
}

impl SqliteStore {
    pub async fn connect(url: &str, max_readers: u32) -> anyhow::Result<Self> {
        Self::connect_with(url, max_readers, Checkpoints::DEFAULT).await
    }

    async fn connect_with(url: &str, max_readers: u32, checkpoints_when: Checkpoints) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; only an OS
            // crash can lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-8000");
        // The writer never checkpoints as it commits: `checkpoints` does.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let search = Arc::new(search_index::SearchIndex::open(options.get_filename())?);
        let search_file = search.path().to_string_lossy().into_owned();
        let checkpointer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        let stop = CancellationToken::new();
        tokio::spawn(checkpoints(checkpointer, writer.clone(), checkpoints_when, stop.clone()));
        // Reads are CPU work on pages in memory: threads beyond two per core
        // only add context switches (measured: 16 readers gave 22% fewer
        // timeline pages a second than 4 on two cores).
        let reader = SqlitePoolOptions::new()
            .max_connections(max_readers.clamp(1, 64))
            // No ping before each read (sqlx's default): a connection to a
            // local file does not go stale, and the ping is a round trip to
            // the connection's thread that the read would wait for.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            // Every reader sees the search index (read-only, as the reader),
            // with a page cache of 1 MiB: its pages are in the OS cache too.
            .after_connect(move |conn, _| {
                let search_file = search_file.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE ? AS search").bind(search_file).execute(&mut *conn).await?;
                    sqlx::query("PRAGMA search.cache_size = -1000").execute(&mut *conn).await?;
                    Ok(())
                })
            })
            // A page cache of 4 MiB each, not the writer's 8: readers
            // share the file's pages in the OS cache, and sixteen caches of
            // 8 MiB filled in a long run took chirp's peak RSS past 300 MiB.
            .connect_with(options.read_only(true).pragma("cache_size", "-4000"))
            .await?;
        let batches = writes::BatchThread::start(writer.clone(), search.clone())?;
        Ok(Self { writer, reader, batches, search, _checkpoints: stop.drop_guard() })
    }

    /// Waits until every tweet committed so far is in the search index (a
    /// new index file is built from the whole table first).
    pub async fn search_index_current(&self) {
        while !self.search.is_current() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(err)?;
        Ok(())
    }

    async fn insert_user(&self, u: &NewUser) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (id, username, email, email_key, name, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {USER_COLUMNS}"
        );
        let row: UserRow = sqlx::query_as(&sql)
            .bind(u.id.as_i64())
            .bind(&u.username)
            .bind(&u.email)
            .bind(u.email.to_lowercase())
            .bind(&u.name)
            .bind(&u.password_hash)
            .bind(u.created_at.as_millis())
            .fetch_one(&self.writer)
            .await
            .map_err(err)?;
        Ok(row.into())
    }

    async fn user_by_id(&self, id: Id) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let row: Option<UserRow> = sqlx::query_as(&sql).bind(id.as_i64()).fetch_optional(&self.reader).await.map_err(err)?;
        Ok(row.map(User::from))
    }

    async fn credentials_by_username(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower(?)");
        let row = sqlx::query(&sql).bind(username).fetch_optional(&self.reader).await.map_err(err)?;
        let Some(row) = row else { return Ok(None) };
        use sqlx::{FromRow, Row};
        let user = UserRow::from_row(&row).map_err(err)?;
        let password_hash: String = row.try_get("password_hash").map_err(err)?;
        Ok(Some(Credentials { user: user.into(), password_hash }))
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower(?)");
        let row: Option<UserRow> = sqlx::query_as(&sql).bind(username).fetch_optional(&self.reader).await.map_err(err)?;
        Ok(row.map(User::from))
    }

    async fn update_profile(&self, id: Id, change: &ProfileChange) -> Result<User, StoreError> {
        let sql =
            format!("UPDATE users SET name = COALESCE(?, name), bio = COALESCE(?, bio) WHERE id = ? RETURNING {USER_COLUMNS}");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(change.name.as_deref())
            .bind(change.bio.as_deref())
            .bind(id.as_i64())
            .fetch_optional(&self.writer)
            .await
            .map_err(err)?;
        row.map(User::from).ok_or(StoreError::NotFound)
    }

    async fn set_avatar(&self, id: Id, key: Option<&str>) -> Result<(User, Option<String>), StoreError> {
        let mut tx = self.writer.begin().await.map_err(err)?;
        let previous: Option<Option<String>> = sqlx::query_scalar("SELECT avatar_key FROM users WHERE id = ?")
            .bind(id.as_i64())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        let Some(previous) = previous else { return Err(StoreError::NotFound) };
        let sql = format!("UPDATE users SET avatar_key = ? WHERE id = ? RETURNING {USER_COLUMNS}");
        let row: UserRow = sqlx::query_as(&sql).bind(key).bind(id.as_i64()).fetch_one(&mut *tx).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok((row.into(), previous))
    }

    async fn taken(&self, username: &str, email: &str) -> Result<Option<Constraint>, StoreError> {
        let row: Option<(bool,)> = sqlx::query_as(
            "SELECT lower(username) = lower(?1) FROM users \
             WHERE lower(username) = lower(?1) OR email_key = ?2 \
             ORDER BY lower(username) = lower(?1) DESC LIMIT 1",
        )
        .bind(username)
        .bind(email.to_lowercase())
        .fetch_optional(&self.reader)
        .await
        .map_err(err)?;
        Ok(row.map(|(username_matches,)| if username_matches { Constraint::UsernameTaken } else { Constraint::EmailTaken }))
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Under writes and unbroken reads together (where checkpoints alone
    /// never let the WAL start over), the WAL stays near its restart size
    /// and every committed row is in the database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_unbroken_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let when = Checkpoints { every: Duration::from_millis(10), restart_frames: 256 }; // 1 MiB of 4 KiB pages
        let store = SqliteStore::connect_with(&format!("sqlite://{}", path.display()), 4, when).await.unwrap();
        sqlx::query("CREATE TABLE scratch (n INTEGER PRIMARY KEY, filler BLOB NOT NULL)").execute(&store.writer).await.unwrap();

        let stop = CancellationToken::new();
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (reader, stop) = (store.reader.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.is_cancelled() {
                        // Short reads, one after another, as the application's are.
                        sqlx::query("SELECT n FROM scratch ORDER BY n DESC LIMIT 1").execute(&reader).await.unwrap();
                    }
                })
            })
            .collect();
        let wal = path.with_extension("db-wal");
        let mut largest = 0;
        let rows = 6_000; // two pages a row: the WAL's restart size many times over
        for n in 0..rows {
            sqlx::query("INSERT INTO scratch (n, filler) VALUES (?, zeroblob(4000))")
                .bind(n)
                .execute(&store.writer)
                .await
                .unwrap();
            if n % 20 == 0 {
                // At most a few thousand rows a second, so that a pass every 10 ms keeps up.
                tokio::time::sleep(Duration::from_millis(2)).await;
                largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            }
        }
        stop.cancel();
        for r in readers {
            r.await.unwrap();
        }

        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM scratch").fetch_one(&store.reader).await.unwrap();
        assert_eq!(count, rows);
        // Without restarts the WAL holds every page written (about 48 MiB).
        let bound = 16 * when.restart_frames as u64 * 4096;
        assert!(largest < bound, "the WAL reached {largest} bytes (bound {bound})");
    }

    /// The batch thread keeps the writer connection while batches follow one
    /// another, but never so long that other writes through sqlx wait for
    /// the batches to stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_writes_have_their_turn_while_batches_stream() {
        use crate::ports::store::writes::{Write, WriteStore};
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SqliteStore::connect(&format!("sqlite://{}", dir.path().join("turns.db").display()), 2).await.unwrap());
        sqlx::query("CREATE TABLE scratch (n INTEGER PRIMARY KEY)").execute(&store.writer).await.unwrap();

        let stop = CancellationToken::new();
        let streaming = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut batches = 0_u64;
                while !stop.is_cancelled() {
                    // A view of a missing tweet: a transaction that changes nothing.
                    let outcomes = store.apply(&[Write::View { tweet: Id::from_i64(1) }]).await.unwrap();
                    assert!(outcomes[0].is_err());
                    batches += 1;
                }
                batches
            })
        };
        let mut longest = Duration::ZERO;
        for n in 0..50 {
            let started = std::time::Instant::now();
            sqlx::query("INSERT INTO scratch (n) VALUES (?)").bind(n).execute(&store.writer).await.unwrap();
            longest = longest.max(started.elapsed());
        }
        // The batch thread gives the connection back every 20 ms: a wait fifty
        // times that means it kept the connection while batches came.
        assert!(longest < Duration::from_secs(1), "a write waited {longest:?} for the writer");
        assert!(!streaming.is_finished(), "the batches stopped before the other writes were done");
        stop.cancel();
        assert!(streaming.await.unwrap() > 0);
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM scratch").fetch_one(&store.reader).await.unwrap();
        assert_eq!(count, 50);
    }
}
