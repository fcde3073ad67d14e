//! Token buckets shared by every gateway replica through Redis: a client
//! gets the same allowance whichever replica it reaches. Each bucket holds
//! `per_minute` tokens and refills continuously over a minute, so a quiet
//! client may burst up to its whole minute's allowance.
//!
//! Redis being unreachable lets requests through (logged and counted): the
//! limiter protects the backends from abuse, it must not take the API down.

mod guard;

pub use guard::{Guard, classify, limit};
use redis::aio::ConnectionManager;

use tokio::sync::OnceCell;

/// Takes one token. Uses Redis' clock, so replicas with skewed clocks agree.
/// Returns {allowed, tokens left, ms until one token, ms until full}.
const TAKE: &str = r"
local capacity = tonumber(ARGV[1])
local refill_ms = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local rate = capacity / refill_ms
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], refill_ms)
return {allowed, math.floor(tokens), wait, math.ceil((capacity - tokens) / rate)}
";

/// What a request is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Register, log in, refresh: per client address.
    Auth,
    /// Sending, editing and reacting.
    Send,
    Upload,
    Search,
    /// Everything else.
    Default,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Send => "send",
            Class::Upload => "upload",
            Class::Search => "search",
            Class::Default => "default",
        }
    }
}

/// Requests per minute of each class.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub auth: u32,
    pub send: u32,
    pub upload: u32,
    pub search: u32,
    pub default: u32,
}

impl Limits {
    pub fn per_minute(&self, class: Class) -> u32 {
        match class {
            Class::Auth => self.auth,
            Class::Send => self.send,
            Class::Upload => self.upload,
            Class::Search => self.search,
            Class::Default => self.default,
        }
    }
}

/// The outcome of one check, with what the `RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until a refused request may succeed.
    pub retry_after: u64,
    /// Seconds until the bucket is full again.
    pub reset: u64,
}

pub struct RateLimiter {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    take: redis::Script,
    limits: Limits,
    /// Keeps fleets (or tests) that share a Redis apart.
    namespace: String,
}

impl RateLimiter {
    pub fn new(client: redis::Client, limits: Limits, namespace: &str) -> Self {
        RateLimiter {
            client,
            connection: OnceCell::new(),
            take: redis::Script::new(TAKE),
            limits,
            namespace: namespace.to_owned(),
        }
    }

    /// Counts one request of `class` by `subject` (a user id, an address or
    /// an account name). `None` when the limiter could not decide.
    pub async fn check(&self, class: Class, subject: &str) -> Option<Decision> {
        let limit = self.limits.per_minute(class).max(1);
        let key = format!("rl:{}{}:{subject}", self.namespace, class.name());
        let outcome: redis::RedisResult<(i64, i64, i64, i64)> = async {
            let mut connection = self.connection().await?;
            self.take
                .key(key)
                .arg(limit)
                .arg(60_000)
                .invoke_async(&mut connection)
                .await
        }
        .await;
        match outcome {
            Ok((allowed, remaining, wait_ms, full_ms)) => Some(Decision {
                allowed: allowed == 1,
                limit,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
                retry_after: seconds(wait_ms),
                reset: seconds(full_ms),
            }),
            Err(err) => {
                tracing::warn!(error = %err, "rate limiter cannot reach Redis; letting the request through");
                metrics::counter!("rate_limit_unavailable_total").increment(1);
                None
            }
        }
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        fail_fast_connection(&self.client, &self.connection).await
    }
}

pub(crate) use messenger_platform::sessions::fail_fast_connection;

fn seconds(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000)
}

/// A per-connection bucket for WebSocket frames: frames arrive on one
/// socket held by one replica, so no sharing is needed.
pub struct FrameBudget {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    at: std::time::Instant,
}

impl FrameBudget {
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        FrameBudget {
            capacity: per_second,
            tokens: per_second,
            per_second,
            at: std::time::Instant::now(),
        }
    }

    /// Takes one token; false when the client sends too fast.
    pub fn take(&mut self) -> bool {
        self.take_at(std::time::Instant::now())
    }

    fn take_at(&mut self, now: std::time::Instant) -> bool {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frame_budget_allows_a_burst_then_the_rate() {
        let mut budget = FrameBudget::new(5);
        let start = budget.at;
        assert_eq!((0..10).filter(|_| budget.take_at(start)).count(), 5);
        let later = start + Duration::from_millis(400);
        assert_eq!((0..10).filter(|_| budget.take_at(later)).count(), 2);
        // Idle time refills no more than the capacity.
        let much_later = later + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| budget.take_at(much_later)).count(), 5);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds(0), 0);
        assert_eq!(seconds(1), 1);
        assert_eq!(seconds(1000), 1);
        assert_eq!(seconds(1001), 2);
        assert_eq!(seconds(-5), 0);
    }
}
