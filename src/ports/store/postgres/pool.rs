//! The connections to PostgreSQL, kept without a check on release.
//!
//! sqlx's own pool pings every connection given back to it (a `Sync` and its
//! `ReadyForQuery`: a second round trip for every statement, and a task
//! spawned for it), so that a connection left mid-statement by a cancelled
//! request is not handed to the next one. This pool knows instead when a
//! connection is between statements: a statement run on it ran to its end,
//! or a transaction committed or rolled back. Anything else (a request
//! cancelled mid-way, an I/O or FATAL error, a transaction dropped without
//! its commit) closes the connection, which also rolls back whatever it had
//! open, and the next caller opens a fresh one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgQueryResult, PgRow, PgSeverity, PgStatement, PgTypeInfo};
use sqlx::{Connection, Describe, Either, Execute, Executor, PgConnection, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection unused this long is closed rather than used again.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// At most `size` connections, opened as they are needed and kept while
/// they are in use at least every [`IDLE_TIMEOUT`].
#[derive(Clone, Debug)]
pub struct PgConnections(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    options: PgConnectOptions,
    /// Given back, with when; the most recent last.
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    idle_timeout: Duration,
}

impl PgConnections {
    pub fn new(options: PgConnectOptions, size: u32, acquire_timeout: Duration) -> Self {
        Self::with_idle_timeout(options, size, acquire_timeout, IDLE_TIMEOUT)
    }

    fn with_idle_timeout(options: PgConnectOptions, size: u32, acquire_timeout: Duration, idle_timeout: Duration) -> Self {
        Self(Arc::new(Shared {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size as usize)),
            acquire_timeout,
            idle_timeout,
        }))
    }

    /// A connection of the pool's: an idle one (the most recently used, whose
    /// statements are most likely prepared and its pages warm) or a new one.
    /// Waits for one to come back when all are in use, for at most the
    /// acquire timeout (`PoolTimedOut`, which callers answer with 503).
    pub async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + self.0.acquire_timeout;
        let permit = match tokio::time::timeout_at(deadline, self.0.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(sqlx::Error::PoolClosed),
            Err(_elapsed) => return Err(sqlx::Error::PoolTimedOut),
        };
        let idle = {
            let mut idle = self.0.idle.lock().expect("idle connections");
            match idle.pop() {
                Some((conn, since)) if since.elapsed() < self.0.idle_timeout => Some(conn),
                // This one and every one under it sat unused too long: a firewall
                // or NAT may have forgotten them, and a write would hang on them.
                Some(_) => {
                    idle.clear();
                    None
                }
                None => None,
            }
        };
        let conn = match idle {
            Some(conn) => conn,
            // An unreachable server must not hold the caller past the timeout either.
            None => match tokio::time::timeout_at(deadline, PgConnection::connect_with(&self.0.options)).await {
                Ok(connected) => connected?,
                Err(_elapsed) => return Err(sqlx::Error::PoolTimedOut),
            },
        };
        Ok(Conn { conn: Some(conn), shared: self.0.clone(), _permit: permit })
    }

    /// Opens a transaction on a connection of the pool's; `Tx::commit` gives
    /// the connection back.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let mut conn = self.acquire().await?;
        if let Err(e) = (&mut *conn).execute("BEGIN").await {
            conn.give_back(Some(&e));
            return Err(e);
        }
        Ok(Tx(conn))
    }

    /// Refuses new connections and closes the idle ones; those in use close
    /// when they are given back.
    pub async fn close(&self) {
        self.0.permits.close();
        let idle = std::mem::take(&mut *self.0.idle.lock().expect("idle connections"));
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }
}

/// A connection taken from the pool. It goes back to the pool only through
/// `give_back`, when it is between statements; dropped otherwise, it is closed.
pub struct Conn {
    conn: Option<PgConnection>,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    /// Gives the connection back once the statement it ran has answered:
    /// with its rows, or with an `error` PostgreSQL reported (the connection
    /// is still in step; the `ReadyForQuery` that follows the error is read
    /// before its next statement). Any other error leaves it in an unknown
    /// state, and it is closed.
    fn give_back(&mut self, error: Option<&sqlx::Error>) {
        let in_step = match error {
            None => true,
            // FATAL: the server ends the session (a terminated backend, a shutdown).
            Some(sqlx::Error::Database(db)) => db
                .try_downcast_ref::<PgDatabaseError>()
                .is_none_or(|e| !matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
            Some(_) => false,
        };
        if in_step && !self.shared.permits.is_closed() {
            if let Some(conn) = self.conn.take() {
                self.shared.idle.lock().expect("idle connections").push((conn, Instant::now()));
            }
        }
    }

    /// Gives the connection back as [`Self::give_back`] does, after the
    /// statement that ended with `outcome`, and passes the outcome on.
    fn settle<T>(mut self, outcome: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        self.give_back(outcome.as_ref().err());
        outcome
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.conn.is_some() {
            tracing::debug!("closing a PostgreSQL connection left mid-use");
        }
    }
}

impl std::ops::Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("a connection not yet given back")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("a connection not yet given back")
    }
}

/// An open transaction. Dropped without `commit` (an error on the way, or
/// the request cancelled), its connection is closed, and PostgreSQL rolls
/// the transaction back.
pub struct Tx(Conn);

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.end("COMMIT").await
    }

    /// Rolls back and gives the connection back, for a transaction that
    /// found nothing to do; dropping it would cost a new connection.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end("ROLLBACK").await
    }

    async fn end(mut self, statement: &str) -> Result<(), sqlx::Error> {
        let ended = (&mut *self.0).execute(statement).await;
        self.0.settle(ended).map(drop)
    }
}

impl std::ops::Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}

/// A statement run on the pool takes a connection for itself and gives it
/// back when the statement has answered, as `&sqlx::Pool` does, minus the
/// ping.
impl<'p> Executor<'p> for &'_ PgConnections {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let pool = self.clone();
        // The rows are gathered before the first is handed on: the stream
        // cannot hold the connection and borrow it too, and chirp reads every
        // result whole (`fetch_all`, `execute`) or by `fetch_optional`.
        let rows = async move {
            let mut conn = pool.acquire().await?;
            let rows: Result<Vec<_>, _> = (&mut *conn).fetch_many(query).try_collect().await;
            conn.settle(rows)
        };
        stream::once(rows)
            .flat_map(|rows| match rows {
                Ok(rows) => stream::iter(rows.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::iter([Err(e)]).right_stream(),
            })
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            let row = (&mut *conn).fetch_optional(query).await;
            conn.settle(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>> {
        let pool = self.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            let statement = (&mut *conn).prepare_with(sql, parameters).await;
            conn.settle(statement)
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>> {
        let pool = self.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            let description = (&mut *conn).describe(sql).await;
            conn.settle(description)
        })
    }
}

#[cfg(test)]
mod tests {
    //! On the suite's PostgreSQL server (`CHIRP_TEST_DATABASE_URL`); the
    //! embedded run has no PostgreSQL and nothing to check here.

    use std::str::FromStr;

    use super::*;

    fn options() -> Option<PgConnectOptions> {
        let url = std::env::var("CHIRP_TEST_DATABASE_URL").ok()?;
        Some(PgConnectOptions::from_str(&url).expect("CHIRP_TEST_DATABASE_URL is a URL"))
    }

    fn pool(size: u32, acquire_timeout: Duration) -> Option<PgConnections> {
        Some(PgConnections::new(options()?, size, acquire_timeout))
    }

    /// The server process behind the connection a statement gets.
    async fn backend(pool: &PgConnections) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(pool).await.expect("pg_backend_pid")
    }

    #[tokio::test]
    async fn a_connection_is_kept_after_a_statement_an_error_postgres_reported_and_a_commit() {
        let Some(pool) = pool(1, Duration::from_secs(5)) else { return };
        let pid = backend(&pool).await;
        let e = sqlx::query("SELECT 1 / (random() * 0)::int").execute(&pool).await.unwrap_err();
        assert!(matches!(e, sqlx::Error::Database(_)), "{e}");
        let tx = pool.begin().await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(backend(&pool).await, pid, "the same connection throughout");
    }

    #[tokio::test]
    async fn a_statement_cancelled_mid_way_does_not_hand_its_answer_to_the_next() {
        let Some(pool) = pool(1, Duration::from_secs(5)) else { return };
        let pid = backend(&pool).await;
        // Fails, but only after the caller has given up on it.
        let slow = sqlx::query("SELECT pg_sleep(0.3), 1 / (random() * 0)::int").execute(&pool);
        assert!(tokio::time::timeout(Duration::from_millis(50), slow).await.is_err(), "cancelled");
        let answer: i32 = sqlx::query_scalar("SELECT 7").fetch_one(&pool).await.expect("the next statement's own answer");
        assert_eq!(answer, 7);
        assert_ne!(backend(&pool).await, pid, "the cancelled statement's connection was closed");
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_its_commit_is_rolled_back() {
        let Some(pool) = pool(1, Duration::from_secs(5)) else { return };
        let table = format!("chirp_pool_test_{}_{}", std::process::id(), rand::random::<u32>());
        sqlx::query(&format!("CREATE TABLE {table} (n int)")).execute(&pool).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(&format!("INSERT INTO {table} VALUES (1)")).execute(&mut *tx).await.unwrap();
        drop(tx);
        let pid = backend(&pool).await;
        let tx = pool.begin().await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(backend(&pool).await, pid, "a rollback keeps the connection");
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(&format!("INSERT INTO {table} VALUES (2)")).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let rows: Vec<i32> = sqlx::query_scalar(&format!("SELECT n FROM {table}")).fetch_all(&pool).await.unwrap();
        sqlx::query(&format!("DROP TABLE {table}")).execute(&pool).await.unwrap();
        assert_eq!(rows, [2], "only the committed row");
    }

    #[tokio::test]
    async fn a_connection_unused_past_the_idle_timeout_is_replaced() {
        let Some(options) = options() else { return };
        let pool = PgConnections::with_idle_timeout(options, 1, Duration::from_secs(5), Duration::from_millis(200));
        let pid = backend(&pool).await;
        assert_eq!(backend(&pool).await, pid, "kept while in use");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_ne!(backend(&pool).await, pid, "replaced after sitting idle");
    }

    #[tokio::test]
    async fn acquire_gives_up_after_its_timeout_when_every_connection_is_in_use() {
        let Some(pool) = pool(1, Duration::from_millis(100)) else { return };
        let held = pool.acquire().await.unwrap();
        assert!(matches!(pool.acquire().await, Err(sqlx::Error::PoolTimedOut)));
        drop(held);
        assert_eq!(sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool).await.unwrap(), 1);
        pool.close().await;
        assert!(matches!(pool.acquire().await, Err(sqlx::Error::PoolClosed)));
    }
}
