//! A user's presence across every replica, in Redis: which of their live
//! connections said they are away, and which status was last published.

use crate::realtime::store::{Store, now_ms};
use std::sync::LazyLock;
use std::time::Duration;
use uuid::Uuid;

/// The status a user's sockets add up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Offline,
    Online,
    Away,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Offline => "offline",
            Status::Online => "online",
            Status::Away => "away",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        match text {
            "offline" => Some(Status::Offline),
            "online" => Some(Status::Online),
            "away" => Some(Status::Away),
            _ => None,
        }
    }
}

/// A change to publish: the new status and its place in the user's order.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled {
    pub status: Status,
    pub sequence: u64,
    /// What Redis held as published before (empty: nothing), put back if
    /// the broker refuses the record.
    previous: String,
}

/// Marks one connection away (or back): KEYS[1] the user's away set,
/// ARGV connection id, 1 or 0, and the set's lifetime in ms.
static MARK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if ARGV[2] == '1' then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('SREM', KEYS[1], ARGV[1])
end
return 0
",
    )
});

/// Works out the status from the live connections and, when it differs
/// from the last published one, records it with the next sequence number
/// and returns both; otherwise nothing. Every replica may ask at once:
/// the first to see a change claims it. The sequence is at least the
/// current time in ms, so it keeps increasing after the record expires.
/// KEYS: connections (zset), away set, last published; ARGV: now, ttl.
static SETTLE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local status = 'offline'
for _, conn in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  status = 'away'
  if redis.call('SISMEMBER', KEYS[2], conn) == 0 then status = 'online' break end
end
local last_status, last_seq = 'offline', 0
local last = redis.call('GET', KEYS[3])
if last then
  local sep = string.find(last, ':', 1, true)
  last_status, last_seq = string.sub(last, 1, sep - 1), tonumber(string.sub(last, sep + 1))
end
if last_status == status then return false end
local seq = math.max(last_seq + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[3], status .. ':' .. seq, 'PX', ARGV[2])
return {status, seq, last or ''}
",
    )
});

/// Puts back what was published before a change the broker refused,
/// unless a later change has been recorded since. KEYS[1] the published
/// record; ARGV the refused record, the previous one ('' none), ttl.
static UNSETTLE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
",
    )
});

/// Takes up to ARGV[2] users whose settling is due (score <= ARGV[1])
/// off the pending set KEYS[1]: each is taken by one replica.
static TAKE_DUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
",
    )
});

/// A published status is remembered this long; after it, "offline" is
/// assumed (the topic forgets too: it keeps a week).
const PUBLISHED_TTL: Duration = Duration::from_secs(7 * 86_400);

impl Store {
    /// Records whether `connection_id` says its user is away.
    pub async fn mark_away(
        &self,
        user: Uuid,
        connection_id: &str,
        away: bool,
        ttl: Duration,
    ) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        MARK.key(format!("rt:away:{user}"))
            .arg(connection_id)
            .arg(if away { "1" } else { "0" })
            .arg(ttl.as_millis() as u64 * 2)
            .invoke_async(&mut connection)
            .await
    }

    /// Shared by the replicas of one fleet (namespaced: fleets that share a
    /// Redis publish to their own topics).
    fn pending_key(&self) -> String {
        format!("rt:presence:pending:{}", self.namespace())
    }

    /// Settles `user` at `due_ms` unless already pending: changes within
    /// the debounce fold into one look at the status when it ends.
    pub async fn presence_pending(&self, user: Uuid, due_ms: i64) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        redis::cmd("ZADD")
            .arg(self.pending_key())
            .arg("NX")
            .arg(due_ms)
            .arg(user.to_string())
            .query_async(&mut connection)
            .await
    }

    /// Users whose debounce has ended, taken off the pending set.
    pub async fn presence_due(&self, limit: usize) -> redis::RedisResult<Vec<Uuid>> {
        let mut connection = self.connection().await?;
        let due: Vec<String> = TAKE_DUE
            .key(self.pending_key())
            .arg(now_ms())
            .arg(limit)
            .invoke_async(&mut connection)
            .await?;
        Ok(due
            .iter()
            .filter_map(|user| Uuid::parse_str(user).ok())
            .collect())
    }

    /// The user's new status, if it changed since it was last published.
    pub async fn settle_presence(&self, user: Uuid) -> redis::RedisResult<Option<Settled>> {
        let mut connection = self.connection().await?;
        let settled: Option<(String, u64, String)> = SETTLE
            .key(format!("rt:presence:{user}"))
            .key(format!("rt:away:{user}"))
            .key(format!("rt:presence:published:{user}"))
            .arg(now_ms())
            .arg(PUBLISHED_TTL.as_millis() as u64)
            .invoke_async(&mut connection)
            .await?;
        Ok(settled.and_then(|(status, sequence, previous)| {
            Status::parse(&status).map(|status| Settled {
                status,
                sequence,
                previous,
            })
        }))
    }

    /// Undoes [`Store::settle_presence`] for a change that was not
    /// published, so the next look at the user publishes it.
    pub async fn unsettle_presence(&self, user: Uuid, settled: &Settled) {
        let refused = format!("{}:{}", settled.status.as_str(), settled.sequence);
        let outcome = async {
            let mut connection = self.connection().await?;
            UNSETTLE
                .key(format!("rt:presence:published:{user}"))
                .arg(refused)
                .arg(&settled.previous)
                .arg(PUBLISHED_TTL.as_millis() as u64)
                .invoke_async::<i64>(&mut connection)
                .await
        };
        if let Err(err) = outcome.await {
            tracing::debug!(%err, "cannot undo a presence record");
        }
    }
}
