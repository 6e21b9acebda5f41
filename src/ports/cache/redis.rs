//! Redis adapter: shared by every node; survives a chirp restart. Keys carry
//! a configurable prefix. Every operation has a deadline, and after a
//! failure a fresh connection is made in the background, so a Redis restart
//! costs 503s while it is down and nothing after it is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Cache, CacheError, RateDecision};

/// `gcra` (see the port) in one round trip, on the Redis server's clock so
/// that nodes' clocks do not matter. KEYS[1]: the limit; ARGV: interval
/// (µs), burst. Returns {allowed, remaining, retry after (µs)}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local limit = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > limit then
  return {0, 0, ahead - limit}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil(ahead / 1000)))
return {1, math.floor((limit - ahead) / interval), 0}
";

#[derive(Clone)]
pub struct RedisCache {
    gcra: redis::Script,
    client: redis::Client,
    conn: Arc<RwLock<ConnectionManager>>,
    healing: Arc<AtomicBool>,
    prefix: String,
}

/// The longest a cache operation may take, reconnects and retries included:
/// past it the request gets a 503 instead of waiting on a Redis that is down.
const OPERATION_DEADLINE: Duration = Duration::from_secs(2);

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1)
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisCache {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
        Ok(Self {
            gcra: redis::Script::new(GCRA),
            client,
            conn: Arc::new(RwLock::new(conn)),
            healing: Arc::default(),
            prefix: prefix.to_owned(),
        })
    }

    pub(super) fn conn(&self) -> ConnectionManager {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `operation` under the deadline; on failure, starts healing.
    pub(super) async fn within<T>(&self, operation: impl Future<Output = redis::RedisResult<T>>) -> Result<T, CacheError> {
        let error = match tokio::time::timeout(OPERATION_DEADLINE, operation).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if !(e.is_io_error() || e.is_unrecoverable_error() || e.is_timeout()) => {
                return Err(CacheError::Unavailable(e.into()));
            }
            Ok(Err(e)) => anyhow::Error::from(e),
            Err(_) => anyhow::anyhow!("Redis did not answer within {OPERATION_DEADLINE:?}"),
        };
        self.heal();
        Err(CacheError::Unavailable(error))
    }

    /// The connection manager reconnects by itself, but not always after
    /// its retries ran out while Redis was down: one task at a time makes a
    /// new one, every half second until Redis answers, and swaps it in.
    fn heal(&self) {
        if self.healing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (client, conn, healing) = (self.client.clone(), self.conn.clone(), self.healing.clone());
        tokio::spawn(async move {
            loop {
                let fresh = ConnectionManager::new_with_config(client.clone(), manager_config());
                if let Ok(Ok(mut fresh)) = tokio::time::timeout(OPERATION_DEADLINE * 2, fresh).await {
                    if redis::cmd("PING").query_async::<()>(&mut fresh).await.is_ok() {
                        *conn.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                        tracing::info!("reconnected to Redis");
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            healing.store(false, Ordering::Release);
        });
    }

    pub(super) fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn();
        self.within(redis::cmd("PING").query_async::<()>(&mut conn)).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let mut conn = self.conn();
        self.within(redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl)).query_async::<()>(&mut conn)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut conn = self.conn();
        self.within(conn.get(self.key(key))).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut conn = self.conn();
        self.within(redis::cmd("GETDEL").arg(self.key(key)).query_async(&mut conn)).await
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut conn = self.conn();
        self.within(conn.del::<_, ()>(self.key(key))).await
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        self.increment_in_window(key, ttl).await.map(|(n, _)| n)
    }

    async fn rate_limit(&self, key: &str, interval: Duration, burst: u32) -> Result<RateDecision, CacheError> {
        let mut conn = self.conn();
        let interval = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX).max(1);
        let (allowed, remaining, retry_after): (i64, i64, i64) =
            self.within(self.gcra.key(self.key(key)).arg(interval).arg(burst).invoke_async(&mut conn)).await?;
        Ok(RateDecision {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(0),
            retry_after: Duration::from_micros(u64::try_from(retry_after).unwrap_or(0)),
        })
    }

    async fn increment_in_window(&self, key: &str, ttl: Duration) -> Result<(u64, Duration), CacheError> {
        // INCR and the expiry of a new counter in one transaction: a counter
        // never lives forever, and an existing one keeps its deadline.
        let mut conn = self.conn();
        let key = self.key(key);
        let (n, left): (u64, i64) = self
            .within(
                redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(millis(ttl))
                    .arg("NX")
                    .ignore()
                    .cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut conn),
            )
            .await?;
        Ok((n, Duration::from_millis(u64::try_from(left).unwrap_or(0))))
    }

    async fn stamps(&self, keys: &[String], fresh: u64, ttl: Duration) -> Result<Vec<u64>, CacheError> {
        // SET … NX GET (Redis 7): the stamp there, or `fresh` put in its place.
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("SET").arg(self.key(key)).arg(fresh).arg("NX").arg("GET").arg("PX").arg(millis(ttl));
        }
        let mut conn = self.conn();
        let kept: Vec<Option<u64>> = self.within(pipe.query_async(&mut conn)).await?;
        Ok(kept.into_iter().map(|stamp| stamp.unwrap_or(fresh)).collect())
    }

    async fn restamp(&self, keys: &[String], fresh: u64, ttl: Duration) -> Result<Vec<Option<u64>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // SET … GET: the new stamp, and the one it replaced, atomically.
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("SET").arg(self.key(key)).arg(fresh).arg("GET").arg("PX").arg(millis(ttl));
        }
        let mut conn = self.conn();
        self.within(pipe.query_async(&mut conn)).await
    }
}
