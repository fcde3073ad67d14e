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

/// The status a user's live connections add up to (KEYS[1] connections,
/// KEYS[2] away set, ARGV[1] now), and what was last published (KEYS[3]:
/// `status:sequence`, absent: offline, 0). Shared by the scripts below.
const STATUS_LUA: &str = r"
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
  if sep then
    last_status, last_seq = string.sub(last, 1, sep - 1), tonumber(string.sub(last, sep + 1)) or 0
  end
end
";

/// What to publish, if anything: the current status with the next
/// sequence number, or nothing when it is what was last published. The
/// record is written once the broker has the change; the sequence is
/// taken now (KEYS[4], the last one handed out), so two proposals never
/// share one, even when the first reached the broker unacknowledged. At
/// least now in ms: it keeps increasing after these keys are gone.
static PROPOSE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{STATUS_LUA}
if last_status == status then return false end
local seq = math.max(last_seq + 1, tonumber(ARGV[1]))
local handed = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if seq <= handed then seq = handed + 1 end
redis.call('SET', KEYS[4], seq, 'PX', ARGV[2])
return {{status, seq}}
"
    ))
});

/// How long the last handed-out sequence is kept: past it, the clock alone
/// keeps sequences increasing.
const HANDED_TTL: Duration = Duration::from_secs(86_400);

/// Records a change the broker acknowledged (ARGV[2] `status:sequence`),
/// unless a later one was recorded meanwhile. KEYS[1] the record.
static RECORD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local last = redis.call('GET', KEYS[1])
if last then
  local sep = string.find(last, ':', 1, true)
  if sep and (tonumber(string.sub(last, sep + 1)) or 0) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
",
    )
});

/// Takes up to ARGV[3] users whose settling is due (score <= ARGV[1]) on
/// the pending set KEYS[1], leasing each until ARGV[2]: the lease keeps
/// other replicas off the user until [`FINISH`], and if the taker dies the
/// user is due again when it ends.
static TAKE_DUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, user in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], user) end
return due
",
    )
});

/// Ends a lease (KEYS[4] the pending set, ARGV[2] the user, ARGV[3] when
/// to look again): done when the status is what was last published;
/// otherwise (it changed meanwhile, or the broker refused it) due again.
static FINISH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{STATUS_LUA}
if last_status == status then
  redis.call('ZREM', KEYS[4], ARGV[2])
  return 1
end
redis.call('ZADD', KEYS[4], 'XX', ARGV[3], ARGV[2])
return 0
"
    ))
});

/// How long a replica holds a user it is settling: longer than a produce
/// may take (`kafka.message_timeout_ms`, 10 s in the shipped settings).
pub const LEASE: Duration = Duration::from_secs(30);

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

    fn status_keys(user: Uuid) -> [String; 3] {
        [
            format!("rt:presence:{user}"),
            format!("rt:away:{user}"),
            format!("rt:presence:published:{user}"),
        ]
    }

    /// Settles `user` at `due_ms` unless already pending (or being
    /// settled): changes within the debounce fold into one look at the
    /// status when it ends.
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

    /// Users whose debounce has ended, leased to this replica.
    pub async fn presence_due(&self, limit: usize) -> redis::RedisResult<Vec<Uuid>> {
        let mut connection = self.connection().await?;
        let now = now_ms();
        let due: Vec<String> = TAKE_DUE
            .key(self.pending_key())
            .arg(now)
            .arg(now + LEASE.as_millis() as i64)
            .arg(limit)
            .invoke_async(&mut connection)
            .await?;
        Ok(due
            .iter()
            .filter_map(|user| Uuid::parse_str(user).ok())
            .collect())
    }

    /// The change to publish for `user`, if their status differs from the
    /// last one published.
    pub async fn propose_presence(&self, user: Uuid) -> redis::RedisResult<Option<Settled>> {
        let mut connection = self.connection().await?;
        let [connections, away, published] = Self::status_keys(user);
        let proposed: Option<(String, u64)> = PROPOSE
            .key(connections)
            .key(away)
            .key(published)
            .key(format!("rt:presence:handed:{user}"))
            .arg(now_ms())
            .arg(HANDED_TTL.as_millis() as u64)
            .invoke_async(&mut connection)
            .await?;
        Ok(proposed.and_then(|(status, sequence)| {
            Status::parse(&status).map(|status| Settled { status, sequence })
        }))
    }

    /// Remembers a change the broker acknowledged. Kept with no expiry:
    /// one short key per user who was ever online.
    pub async fn record_presence(&self, user: Uuid, settled: &Settled) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        RECORD
            .key(format!("rt:presence:published:{user}"))
            .arg(format!("{}:{}", settled.status.as_str(), settled.sequence))
            .arg(settled.sequence)
            .invoke_async::<i64>(&mut connection)
            .await?;
        Ok(())
    }

    /// Ends this replica's lease on `user`; `retry_in` is when to look
    /// again if what was published is not (or no longer) the status.
    pub async fn finish_presence(&self, user: Uuid, retry_in: Duration) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        let [connections, away, published] = Self::status_keys(user);
        let now = now_ms();
        FINISH
            .key(connections)
            .key(away)
            .key(published)
            .key(self.pending_key())
            .arg(now)
            .arg(user.to_string())
            .arg(now + retry_in.as_millis() as i64)
            .invoke_async::<i64>(&mut connection)
            .await?;
        Ok(())
    }
}
