//! Home timelines in Redis: one sorted set per user, shared by every node.
//! All members have score 0 and are ids written as 20 digits, so the set's
//! lexical order is id order (a score, a double, cannot hold a 64-bit id).
//! Markers sort after every id: `~r` (ready), `~c` (complete: nothing older
//! exists), `~b:<token>` (a build in progress). Each operation is one round
//! trip (a script or a pipeline); kept timelines expire when unread.

use std::sync::LazyLock;

use async_trait::async_trait;

use super::{BuildTicket, FollowChange, HomeTimelines, Kept, KeptPage};
use crate::domain::Id;
use crate::ports::cache::{CacheError, RedisCache};

/// How long a timeline nobody reads is kept.
const KEEP_SECONDS: u64 = 3 * 24 * 3600;

/// Timelines one script call pushes to or removes from at most. Redis runs
/// a script to its end before anything else, and every request shares the
/// connection: a call over 500 followers held a request's own command
/// (a restamp, the author's push) for 0.5-2.5 ms, 18 ms at worst.
const TIMELINES_A_CALL: usize = 64;

fn member(id: Id) -> String {
    format!("{:020}", id.as_i64())
}

/// The rules every script keeps, as Lua functions each script starts with.
/// `oldest_id`: a timeline's oldest id, or nil when it holds none (its first
/// member is then a marker: `~` sorts after every digit). `trim`: drops the
/// oldest ids beyond `cap`, and with them the complete marker; answers
/// whether the timeline is still complete.
const RULES: &str = r"
        local function oldest_id(k)
          local first = redis.call('ZRANGE', k, 0, 0)[1]
          if first and string.byte(first, 1) ~= 126 then return first end
          return nil
        end
        local function trim(k, cap, complete)
          local markers = 1
          if complete then markers = 2 end
          local excess = redis.call('ZCARD', k) - markers - cap
          if excess <= 0 then return complete end
          redis.call('ZREMRANGEBYRANK', k, 0, excess - 1)
          redis.call('ZREM', k, '~c')
          return false
        end
";

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{RULES}{body}"))
}

/// Adds ARGV[i + 1] to the timeline KEYS[i], for each i, when it is kept
/// (ready or building), then trims a ready one to ARGV[1] ids. A ready
/// timeline that is not complete takes no id older than its oldest (see
/// `HomeTimelines::push`).
static PUSH: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local cap = tonumber(ARGV[1])
        for i, k in ipairs(KEYS) do
          local id = ARGV[i + 1]
          if redis.call('EXISTS', k) == 0 then
            -- not kept: most of a fan-out's followers, one call each
          elseif redis.call('ZSCORE', k, '~r') then
            local complete = redis.call('ZSCORE', k, '~c')
            local oldest = oldest_id(k)
            if complete or (oldest and id >= oldest) then
              redis.call('ZADD', k, 0, id)
              trim(k, cap, complete)
            end
          else
            redis.call('ZADD', k, 0, id)
          end
        end
        return 0
        ",
    )
});

/// Finishes build ARGV[1] of KEYS[1]: ARGV[2] cap, ARGV[3] complete ("1"),
/// ARGV[4] seconds to keep, ARGV[5..] the ids read. Not complete: pushes made
/// during the build that are older than the oldest id read are dropped (the
/// tweets between them and it may be missing).
static FINISH: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local k = KEYS[1]
        if not redis.call('ZSCORE', k, ARGV[1]) then return 0 end
        redis.call('ZREM', k, ARGV[1])
        if ARGV[3] ~= '1' and #ARGV >= 5 then
          local oldest = ARGV[5]
          for i = 6, #ARGV do
            if ARGV[i] < oldest then oldest = ARGV[i] end
          end
          redis.call('ZREMRANGEBYLEX', k, '-', '(' .. oldest)
        end
        for i = 5, #ARGV, 500 do
          local args = {}
          for j = i, math.min(i + 499, #ARGV) do
            args[#args + 1] = 0
            args[#args + 1] = ARGV[j]
          end
          redis.call('ZADD', k, unpack(args))
        end
        redis.call('ZADD', k, 0, '~r')
        local complete = ARGV[3] == '1'
        if complete then redis.call('ZADD', k, 0, '~c') end
        trim(k, tonumber(ARGV[2]), complete)
        redis.call('EXPIRE', k, ARGV[4])
        return 1
        ",
    )
});

/// Takes ARGV[1] out of each timeline in KEYS; a ready timeline that is not
/// complete and holds no id any more is dropped, to be built when next read.
static REMOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        for _, k in ipairs(KEYS) do
          if redis.call('ZREM', k, ARGV[1]) == 1 and redis.call('ZSCORE', k, '~r')
              and not redis.call('ZSCORE', k, '~c') and not oldest_id(k) then
            redis.call('DEL', k)
          end
        end
        return 0
        ",
    )
});

/// One account followed (ARGV[1] "f") or unfollowed ("u") by KEYS[1]'s user:
/// ARGV[2] cap, ARGV[3] the oldest id to keep ("" for no floor), ARGV[4..]
/// the account's newest ids. A timeline being built is dropped (what its
/// build read may predate the change), as is a ready one left with no id
/// that is not complete (see `HomeTimelines::follows_changed`).
static FOLLOWS_CHANGED: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local k = KEYS[1]
        if not redis.call('ZSCORE', k, '~r') then
          redis.call('DEL', k)
          return 0
        end
        local complete = redis.call('ZSCORE', k, '~c')
        if ARGV[1] == 'f' then
          local oldest = oldest_id(k)
          local args = {}
          for i = 4, #ARGV do
            if complete or (oldest and ARGV[i] >= oldest) then
              args[#args + 1] = 0
              args[#args + 1] = ARGV[i]
            end
          end
          if #args > 0 then redis.call('ZADD', k, unpack(args)) end
          complete = trim(k, tonumber(ARGV[2]), complete)
        elseif #ARGV >= 4 then
          redis.call('ZREM', k, unpack(ARGV, 4))
        end
        if ARGV[3] ~= '' then
          redis.call('ZREMRANGEBYLEX', k, '-', '(' .. ARGV[3])
          redis.call('ZREM', k, '~c')
          complete = false
        end
        if not complete and not oldest_id(k) then redis.call('DEL', k) end
        return 1
        ",
    )
});

pub struct RedisHomeTimelines {
    redis: RedisCache,
    cap: usize,
}

impl RedisHomeTimelines {
    pub fn new(redis: RedisCache, cap: usize) -> Self {
        Self { redis, cap }
    }

    fn key(&self, user: Id) -> String {
        self.redis.key(&format!("home:{user}"))
    }
}

#[async_trait]
impl HomeTimelines for RedisHomeTimelines {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn page(&self, user: Id, before: Option<Id>, limit: usize) -> Result<Option<KeptPage>, CacheError> {
        let key = self.key(user);
        let max = before.map_or_else(|| "(~".to_owned(), |b| format!("({}", member(b)));
        let mut pipe = redis::pipe();
        pipe.cmd("ZMSCORE").arg(&key).arg("~r").arg("~c");
        pipe.cmd("ZREVRANGEBYLEX").arg(&key).arg(&max).arg("-").arg("LIMIT").arg(0).arg(limit);
        pipe.cmd("EXPIRE").arg(&key).arg(KEEP_SECONDS).ignore();
        let mut conn = self.redis.conn();
        let (flags, members): (Vec<Option<f64>>, Vec<String>) = self.redis.within(pipe.query_async(&mut conn)).await?;
        if flags.first().copied().flatten().is_none() {
            return Ok(None);
        }
        let complete = flags.get(1).copied().flatten().is_some();
        let ids: Vec<Id> = members.iter().filter_map(|m| m.parse::<i64>().ok()).map(Id::from_i64).collect();
        let exhaustive = ids.len() == limit || complete;
        Ok(Some(KeptPage { ids, exhaustive }))
    }

    async fn kept(&self, user: Id) -> Result<Kept, CacheError> {
        let key = self.key(user);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("ZMSCORE").arg(&key).arg("~r").arg("~c");
        pipe.cmd("ZRANGE").arg(&key).arg(0).arg(0);
        let mut conn = self.redis.conn();
        let (flags, first): (Vec<Option<f64>>, Vec<String>) = self.redis.within(pipe.query_async(&mut conn)).await?;
        // A kept timeline always holds a marker, and Redis drops an empty set.
        let Some(first) = first.first() else { return Ok(Kept::No) };
        let ready = flags.first().copied().flatten().is_some();
        let complete = flags.get(1).copied().flatten().is_some();
        // Ids sort before the markers (`~`): the first member is the oldest id, if any.
        let oldest = first.parse::<i64>().ok();
        Ok(match oldest {
            Some(oldest) if ready && !complete => Kept::From(Id::from_i64(oldest)),
            _ => Kept::Whole,
        })
    }

    async fn begin_build(&self, user: Id) -> Result<BuildTicket, CacheError> {
        let token = rand::random::<u64>();
        let key = self.key(user);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("DEL").arg(&key).ignore();
        pipe.cmd("ZADD").arg(&key).arg(0).arg(format!("~b:{token}")).ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(60).ignore();
        let mut conn = self.redis.conn();
        self.redis.within(pipe.query_async::<()>(&mut conn)).await?;
        Ok(BuildTicket { user, token })
    }

    async fn finish_build(&self, ticket: BuildTicket, newest: &[Id], complete: bool) -> Result<(), CacheError> {
        let mut invocation = FINISH.prepare_invoke();
        invocation
            .key(self.key(ticket.user))
            .arg(format!("~b:{}", ticket.token))
            .arg(self.cap)
            .arg(if complete { "1" } else { "0" })
            .arg(KEEP_SECONDS);
        for id in newest {
            invocation.arg(member(*id));
        }
        let mut conn = self.redis.conn();
        self.redis.within(invocation.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    async fn push_each(&self, pushes: &[(Id, Id)]) -> Result<(), CacheError> {
        for chunk in pushes.chunks(TIMELINES_A_CALL) {
            let mut invocation = PUSH.prepare_invoke();
            invocation.arg(self.cap);
            for (user, tweet) in chunk {
                invocation.key(self.key(*user)).arg(member(*tweet));
            }
            let mut conn = self.redis.conn();
            self.redis.within(invocation.invoke_async::<i64>(&mut conn)).await?;
        }
        Ok(())
    }

    async fn remove(&self, users: &[Id], tweet: Id) -> Result<(), CacheError> {
        for chunk in users.chunks(TIMELINES_A_CALL) {
            let mut invocation = REMOVE.prepare_invoke();
            for user in chunk {
                invocation.key(self.key(*user));
            }
            invocation.arg(member(tweet));
            let mut conn = self.redis.conn();
            self.redis.within(invocation.invoke_async::<i64>(&mut conn)).await?;
        }
        Ok(())
    }

    async fn follows_changed(&self, user: Id, change: FollowChange<'_>) -> Result<(), CacheError> {
        let mut invocation = FOLLOWS_CHANGED.prepare_invoke();
        invocation
            .key(self.key(user))
            .arg(if change.followed { "f" } else { "u" })
            .arg(self.cap)
            .arg(change.floor().map(member).unwrap_or_default());
        for id in change.newest {
            invocation.arg(member(*id));
        }
        let mut conn = self.redis.conn();
        self.redis.within(invocation.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }
}
