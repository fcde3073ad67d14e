//! Realtime state in Redis: per-room sequence counters, bounded per-room
//! logs for resume, the dedup set of fanned-out events, typing throttles
//! and presence.

use crate::realtime::rooms::Room;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Publishes a batch of events' frames, each event once: the first caller
/// for an event id numbers each frame in its room, appends it to the room's
/// log and publishes it; a repeat (Kafka redelivery) does nothing. Returns
/// 1 or 0 per event, in order. A room's first number is the current Unix
/// time × 1000, so numbers keep increasing even if Redis loses its data
/// (clients then see a gap and resync), while staying below 10^14: Lua
/// prints numbers with 14 significant digits. Log entries and published
/// payloads carry the event's token (its id, and when it was committed), so
/// a socket can drop an event published again after Redis lost the claim.
/// One call for many events is one round trip, and keeps their order.
///
/// ARGV: claim TTL, log length, log TTL, first number; then per event its
/// claim key, token and frame count, followed by room, head, tail per frame.
const PUBLISH: &str = r"
local published = {}
local i = 5
while i <= #ARGV do
  local claimed = redis.call('SET', ARGV[i], '1', 'NX', 'EX', ARGV[1])
  local event = ARGV[i + 1]
  local frames = tonumber(ARGV[i + 2])
  i = i + 3
  if claimed then
    for f = i, i + 3 * (frames - 1), 3 do
      local room = ARGV[f]
      local counter = 'rt:seq:' .. room
      local seq = redis.call('INCR', counter)
      if seq == 1 then
        seq = redis.call('INCRBY', counter, ARGV[4])
        redis.call('SET', 'rt:first:' .. room, seq)
      end
      local frame = ARGV[f + 1] .. seq .. ARGV[f + 2]
      local log = 'rt:log:' .. room
      redis.call('XADD', log, 'MAXLEN', '~', ARGV[2], seq .. '-1', 'f', frame, 'e', event)
      redis.call('EXPIRE', log, ARGV[3])
      redis.call('PUBLISH', 'rt:room:' .. room, seq .. ' ' .. event .. '\n' .. frame)
    end
  end
  published[#published + 1] = claimed and 1 or 0
  i = i + 3 * frames
end
return published
";

/// A connection comes online or renews its lease: returns 1 when it is
/// the user's first live connection (the user just came online). The set
/// of connections that said `away` (KEYS[3]) lives as long as the user's.
const CONNECT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
if before == 0 then return 1 else return 0 end
";

/// A connection ends: returns 1 when it was the user's last (the user
/// went offline).
const DISCONNECT: &str = r"
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 1
end
return 0
";

/// Claims users whose presence expired (their gateway died): returns the
/// ids this caller removed from the online set.
const SWEEP: &str = r"
local gone = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)) do
  local conns = 'rt:presence:' .. user
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', ARGV[1])
  if redis.call('ZCARD', conns) == 0 then
    if redis.call('ZREM', KEYS[1], user) == 1 then table.insert(gone, user) end
  end
end
return gone
";

/// Admits or renews one socket's leases in its user's and its address's
/// sets, across every replica: 0 admitted, 1 over the user's cap, 2 over the
/// address's. A socket already holding its lease (a heartbeat) is never
/// refused; expired leases (a replica that died) stop counting.
const LEASE: &str = r"
for i = 1, 2 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1]) end
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ARGV[6])
end
return 0
";

const ONLINE: &str = "rt:online";
const DEDUP_TTL_SECONDS: u64 = 7 * 86_400;
const LOG_TTL_SECONDS: u64 = 86_400;

pub struct Store {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    publish: redis::Script,
    connect: redis::Script,
    disconnect: redis::Script,
    sweep: redis::Script,
    lease: redis::Script,
    room_history: usize,
    /// Keeps fleets (or tests) that share a Redis apart in keys that are
    /// not ids (client addresses).
    namespace: String,
}

/// Where one socket counts against the caps.
pub struct SocketLease<'a> {
    pub user: uuid::Uuid,
    pub address: &'a str,
    pub member: &'a str,
}

/// Which cap refused a socket.
#[derive(Debug, PartialEq, Eq)]
pub enum OverCap {
    User,
    Address,
}

/// A consistent view of a room's log.
pub struct LogRead {
    /// The room's latest number (0 before its first frame).
    pub current: u64,
    /// The room's first number (0 before its first frame).
    pub first: u64,
    /// Logged frames in the requested range, in order.
    pub entries: Vec<Logged>,
}

/// One frame of a room's log.
pub struct Logged {
    pub seq: u64,
    /// The event it came from; empty in entries written before event ids
    /// were logged.
    pub event: String,
    pub frame: String,
}

/// One event to publish: its frames, and when it was committed.
pub struct Event<'a> {
    pub id: &'a str,
    pub committed_at_ms: Option<i64>,
    pub frames: &'a [Outgoing],
}

impl Event<'_> {
    /// What the log and the published payloads carry: the event id, and
    /// `@` with the commit time in Unix milliseconds when it is known (for
    /// the send → deliver measurement at each socket). Sockets treat the
    /// whole token as opaque for their once-per-event check.
    fn token(&self) -> String {
        match self.committed_at_ms {
            Some(at) => format!("{}@{at}", self.id),
            None => self.id.to_owned(),
        }
    }
}

/// When an event was committed, from its token (see [`Event`]).
pub fn committed_at_ms(token: &str) -> Option<i64> {
    token.rsplit_once('@')?.1.parse().ok()
}

/// Seconds from `committed_at_ms` (Unix milliseconds) until now; `None` if
/// that is in the future (clocks of different hosts).
pub fn seconds_since(committed_at_ms: i64) -> Option<f64> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let lag_ms = now - i128::from(committed_at_ms);
    (lag_ms >= 0).then(|| lag_ms as f64 / 1000.0)
}

/// One frame to number and publish.
pub struct Outgoing {
    pub room: Room,
    pub head: String,
    pub tail: String,
}

pub(super) fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

impl Store {
    pub fn new(client: redis::Client, room_history: usize, namespace: &str) -> Self {
        Store {
            client,
            connection: OnceCell::new(),
            publish: redis::Script::new(PUBLISH),
            connect: redis::Script::new(CONNECT),
            disconnect: redis::Script::new(DISCONNECT),
            sweep: redis::Script::new(SWEEP),
            lease: redis::Script::new(LEASE),
            room_history,
            namespace: namespace.to_owned(),
        }
    }

    /// The deployment's topic prefix, which keeps fleets sharing a Redis
    /// apart where keys are not ids.
    pub(super) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(super) async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
    }

    /// Publishes the frames of one event, once per `event_id`.
    pub async fn publish(&self, event_id: &str, frames: &[Outgoing]) -> redis::RedisResult<bool> {
        let event = Event {
            id: event_id,
            committed_at_ms: None,
            frames,
        };
        let published = self.publish_batch(&[event]).await?;
        Ok(published.first() == Some(&true))
    }

    /// Publishes the frames of several events, in order, each once per
    /// event id, in one round trip: which of them this call published.
    pub async fn publish_batch(&self, events: &[Event<'_>]) -> redis::RedisResult<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection().await?;
        let mut invocation = self.publish.prepare_invoke();
        invocation
            .arg(DEDUP_TTL_SECONDS)
            .arg(self.room_history)
            .arg(LOG_TTL_SECONDS)
            .arg(now_ms() / 1000 * 1000);
        for event in events {
            invocation
                .arg(format!("rt:evt:{}", event.id))
                .arg(event.token())
                .arg(event.frames.len());
            for frame in event.frames {
                invocation
                    .arg(frame.room.key())
                    .arg(&frame.head)
                    .arg(&frame.tail);
            }
        }
        let published: Vec<i64> = invocation.invoke_async(&mut connection).await?;
        Ok(published.into_iter().map(|flag| flag == 1).collect())
    }

    /// The room's latest sequence number (0 before its first frame).
    pub async fn current_seq(&self, room: Room) -> redis::RedisResult<u64> {
        let mut connection = self.connection().await?;
        let value: Option<u64> = redis::cmd("GET")
            .arg(format!("rt:seq:{}", room.key()))
            .query_async(&mut connection)
            .await?;
        Ok(value.unwrap_or(0))
    }

    /// The logged frames of `room` numbered after `after` (up to `upto`),
    /// with the room's current and first numbers, read in one atomic step:
    /// read separately, a frame numbered between the reads would count as
    /// seen without having been replayed.
    pub async fn read_log(
        &self,
        room: Room,
        after: u64,
        upto: Option<u64>,
    ) -> redis::RedisResult<LogRead> {
        let mut connection = self.connection().await?;
        let key = room.key();
        let end = upto
            .map(|upto| format!("{upto}-1"))
            .unwrap_or_else(|| "+".to_owned());
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let (current, first, entries): (Option<u64>, Option<u64>, Entries) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(format!("rt:seq:{key}"))
            .cmd("GET")
            .arg(format!("rt:first:{key}"))
            .cmd("XRANGE")
            .arg(format!("rt:log:{key}"))
            .arg(format!("{}-0", after.saturating_add(1)))
            .arg(end)
            .query_async(&mut connection)
            .await?;
        let entries = entries
            .into_iter()
            .filter_map(|(id, fields)| {
                let seq = id.split('-').next()?.parse().ok()?;
                let mut frame = None;
                let mut event = String::new();
                for (name, value) in fields {
                    match name.as_str() {
                        "f" => frame = Some(value),
                        "e" => event = value,
                        _ => {}
                    }
                }
                Some(Logged {
                    seq,
                    event,
                    frame: frame?,
                })
            })
            .collect();
        Ok(LogRead {
            current: current.unwrap_or(0),
            first: first.unwrap_or(0),
            entries,
        })
    }

    /// Publishes a frame that is not numbered or logged (typing,
    /// presence).
    pub async fn publish_ephemeral(&self, room: Room, frame: &str) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        redis::cmd("PUBLISH")
            .arg(room.pubsub_channel())
            .arg(format!("0\n{frame}"))
            .query_async(&mut connection)
            .await
    }

    /// True at most once per `throttle` for a user typing in a room.
    pub async fn typing_allowed(
        &self,
        room: Room,
        user: uuid::Uuid,
        throttle: Duration,
    ) -> redis::RedisResult<bool> {
        let mut connection = self.connection().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("rt:typing:{}:{user}", room.key()))
            .arg("1")
            .arg("PX")
            .arg(throttle.as_millis().max(1) as u64)
            .arg("NX")
            .query_async(&mut connection)
            .await?;
        Ok(set.is_some())
    }

    /// Marks a connection alive until now + `ttl`; true when the user just
    /// came online.
    pub async fn connection_alive(
        &self,
        user: uuid::Uuid,
        connection_id: &str,
        ttl: Duration,
    ) -> redis::RedisResult<bool> {
        let mut connection = self.connection().await?;
        let now = now_ms();
        let came_online: i64 = self
            .connect
            .key(format!("rt:presence:{user}"))
            .key(ONLINE)
            .key(format!("rt:away:{user}"))
            .arg(now)
            .arg(now + ttl.as_millis() as i64)
            .arg(connection_id)
            .arg(ttl.as_millis() as u64 * 2)
            .arg(user.to_string())
            .invoke_async(&mut connection)
            .await?;
        Ok(came_online == 1)
    }

    fn lease_keys(&self, lease: &SocketLease<'_>) -> [String; 2] {
        [
            format!("rt:socks:u:{}", lease.user),
            format!("rt:socks:a:{}{}", self.namespace, lease.address),
        ]
    }

    /// Takes (or renews, for `ttl`) the socket's place under the caps.
    pub async fn lease_socket(
        &self,
        lease: &SocketLease<'_>,
        caps: (u32, u32),
        ttl: Duration,
    ) -> redis::RedisResult<Result<(), OverCap>> {
        let mut connection = self.connection().await?;
        let now = now_ms();
        let [user_key, address_key] = self.lease_keys(lease);
        let outcome: i64 = self
            .lease
            .key(user_key)
            .key(address_key)
            .arg(now)
            .arg(now + ttl.as_millis() as i64)
            .arg(lease.member)
            .arg(caps.0)
            .arg(caps.1)
            .arg(ttl.as_millis() as u64 * 2)
            .invoke_async(&mut connection)
            .await?;
        Ok(match outcome {
            1 => Err(OverCap::User),
            2 => Err(OverCap::Address),
            _ => Ok(()),
        })
    }

    /// Gives a closed socket's place back.
    pub async fn release_socket(&self, lease: &SocketLease<'_>) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        let [user_key, address_key] = self.lease_keys(lease);
        redis::pipe()
            .zrem(user_key, lease.member)
            .ignore()
            .zrem(address_key, lease.member)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
    }

    /// Removes a closed connection; true when the user went offline.
    pub async fn connection_closed(
        &self,
        user: uuid::Uuid,
        connection_id: &str,
    ) -> redis::RedisResult<bool> {
        let mut connection = self.connection().await?;
        let went_offline: i64 = self
            .disconnect
            .key(format!("rt:presence:{user}"))
            .key(ONLINE)
            .key(format!("rt:away:{user}"))
            .arg(now_ms())
            .arg(connection_id)
            .arg(user.to_string())
            .invoke_async(&mut connection)
            .await?;
        Ok(went_offline == 1)
    }

    /// Users whose every connection expired without saying goodbye.
    pub async fn sweep_expired(&self) -> redis::RedisResult<Vec<uuid::Uuid>> {
        let mut connection = self.connection().await?;
        let gone: Vec<String> = self
            .sweep
            .key(ONLINE)
            .arg(now_ms())
            .invoke_async(&mut connection)
            .await?;
        Ok(gone
            .iter()
            .filter_map(|user| uuid::Uuid::parse_str(user).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, Outgoing, Store, committed_at_ms};
    use crate::realtime::rooms::Room;
    use futures::StreamExt;
    use uuid::Uuid;

    #[test]
    fn tokens_carry_the_commit_time_when_known() {
        let frames = [];
        let timed = Event {
            id: "evt-1",
            committed_at_ms: Some(1_765_000_000_123),
            frames: &frames,
        };
        assert_eq!(timed.token(), "evt-1@1765000000123");
        assert_eq!(committed_at_ms(&timed.token()), Some(1_765_000_000_123));
        let untimed = Event {
            committed_at_ms: None,
            ..timed
        };
        assert_eq!(untimed.token(), "evt-1");
        assert_eq!(committed_at_ms("evt-1"), None);
        assert_eq!(committed_at_ms("evt@soon"), None);
    }

    fn frame(room: Room, text: &str) -> Outgoing {
        Outgoing {
            room,
            head: format!("{{\"text\":\"{text}\",\"seq\":"),
            tail: "}".to_owned(),
        }
    }

    /// One call publishes many events in order, numbers each room's frames
    /// consecutively, and skips the events already published.
    #[tokio::test]
    async fn a_batch_publishes_in_order_and_each_event_once() {
        let vars = [
            ("JWT_KEYS", "test:store-tests-secret-0123456789abcdef"),
            ("KAFKA_ENABLED", "false"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let config = messenger_platform::Config::load(None, vars).expect("test settings");
        let client = redis::Client::open(config.redis.url()).expect("redis url");
        let store = Store::new(client.clone(), 100, "store-test");
        let room = Room::Conversation(Uuid::new_v4());
        let mut pubsub = client.get_async_pubsub().await.expect("subscriber");
        pubsub
            .subscribe(room.pubsub_channel())
            .await
            .expect("subscribe");
        let mut published = pubsub.into_on_message();

        let ids: Vec<String> = (0..3).map(|_| Uuid::new_v4().to_string()).collect();
        let frames: Vec<[Outgoing; 1]> = (0..3).map(|n| [frame(room, &n.to_string())]).collect();
        let events: Vec<Event<'_>> = ids
            .iter()
            .zip(&frames)
            .map(|(id, frames)| Event {
                id,
                committed_at_ms: Some(1_000),
                frames,
            })
            .collect();
        let first = store.publish_batch(&events[..2]).await.expect("publish");
        assert_eq!(first, vec![true, true]);
        // The second event again, with the third: only the third is new.
        let second = store.publish_batch(&events[1..]).await.expect("publish");
        assert_eq!(second, vec![false, true]);

        let mut seen = Vec::new();
        for _ in 0..3 {
            let message = tokio::time::timeout(std::time::Duration::from_secs(5), published.next())
                .await
                .expect("published in time")
                .expect("subscription open");
            seen.push(message.get_payload::<String>().expect("text"));
        }
        let seqs: Vec<u64> = seen
            .iter()
            .map(|payload| {
                payload
                    .split(' ')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("seq")
            })
            .collect();
        assert_eq!(seqs[1], seqs[0] + 1);
        assert_eq!(seqs[2], seqs[1] + 1);
        for (payload, n) in seen.iter().zip(0..) {
            assert!(payload.contains(&format!("{}@1000\n", ids[n])), "{payload}");
            assert!(payload.contains(&format!("\"text\":\"{n}\"")), "{payload}");
        }
        assert_eq!(store.current_seq(room).await.expect("seq"), seqs[2]);

        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connection");
        let key = room.key();
        let mut keys = vec![
            format!("rt:seq:{key}"),
            format!("rt:first:{key}"),
            format!("rt:log:{key}"),
        ];
        keys.extend(ids.iter().map(|id| format!("rt:evt:{id}")));
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut connection)
            .await
            .expect("clean up");
    }
}
