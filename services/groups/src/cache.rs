//! Redis cache of authorization facts, invalidated by membership changes.
//!
//! Keys:
//! - `groups:conv:{conversation}` → its group id (never changes);
//! - `groups:gen:{group}` → the group's generation, replaced after every
//!   committed change to its members, channels or settings;
//! - `groups:authz:{conversation}:{user}:{generation}` → encoded [`Facts`].
//!
//! A reader takes the generation *before* reading Postgres and stores what it
//! read under that generation. A writer commits, then replaces the
//! generation. So facts read before a change can only land under a
//! generation nobody asks for any more: no stale answer survives a change,
//! whatever the interleaving. Entries expire on their own; if Redis is
//! unreachable every check goes to Postgres.

use crate::access::Facts;
use crate::permissions::Role;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::OnceCell;
use uuid::Uuid;

const FACTS_TTL_SECONDS: u64 = 120;
/// Redis pub/sub channel announcing "this group's members, roles or
/// channels changed" (payload: the group id) right after each commit.
pub const CHANGES: &str = "groups:changed";
/// Longer than any facts entry lives, so an expired generation never brings
/// back entries stored under an older one.
const GENERATION_TTL_SECONDS: u64 = 86_400;

/// One round trip: the conversation's group, its generation, and the cached
/// facts of each user in ARGV[2..]. `false` when the group is not known yet.
const LOOKUP: &str = r"
local group = redis.call('GET', 'groups:conv:' .. ARGV[1])
if not group then return false end
local gen = redis.call('GET', 'groups:gen:' .. group) or '0'
local out = {gen}
for i = 2, #ARGV do
  out[i] = redis.call('GET', 'groups:authz:' .. ARGV[1] .. ':' .. ARGV[i] .. ':' .. gen) or ''
end
return out
";

pub struct AuthzCache {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    lookup: redis::Script,
}

/// What the cache knows about a conversation.
pub enum Lookup {
    /// The generation to store fresh facts under, and the cached facts of
    /// each requested user.
    Known {
        generation: String,
        facts: Vec<Option<Facts>>,
    },
    /// The conversation's group is not cached (or Redis is unavailable):
    /// read Postgres and do not store facts this time.
    Unknown,
}

impl AuthzCache {
    pub fn new(client: redis::Client) -> Self {
        AuthzCache {
            client,
            connection: OnceCell::new(),
            lookup: redis::Script::new(LOOKUP),
        }
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_millis(500))
                    .set_response_timeout(Duration::from_millis(500))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await?;
        Ok(connection.clone())
    }

    pub async fn lookup(&self, conversation: Uuid, users: &[Uuid]) -> Lookup {
        let result: redis::RedisResult<Option<Vec<String>>> = async {
            let mut connection = self.connection().await?;
            let mut invocation = self.lookup.arg(conversation.to_string());
            for user in users {
                invocation.arg(user.to_string());
            }
            invocation.invoke_async(&mut connection).await
        }
        .await;
        match result {
            Ok(Some(mut values)) if values.len() == users.len() + 1 => {
                let facts = values.split_off(1).iter().map(|raw| decode(raw)).collect();
                let generation = values.pop().unwrap_or_default();
                Lookup::Known { generation, facts }
            }
            Ok(_) => Lookup::Unknown,
            Err(err) => {
                tracing::warn!(error = %err, "authorization cache unavailable; reading Postgres");
                metrics::counter!("groups_authz_cache_errors_total").increment(1);
                Lookup::Unknown
            }
        }
    }

    /// Remembers facts read from Postgres after `generation` was looked up.
    pub async fn store(&self, conversation: Uuid, user: Uuid, generation: &str, facts: &Facts) {
        let key = format!("groups:authz:{conversation}:{user}:{generation}");
        self.set(key, encode(facts), FACTS_TTL_SECONDS).await;
    }

    /// Remembers which group a conversation belongs to.
    pub async fn store_group(&self, conversation: Uuid, group: Uuid) {
        let key = format!("groups:conv:{conversation}");
        self.set(key, group.to_string(), GENERATION_TTL_SECONDS)
            .await;
    }

    /// Makes every cached answer about `group` unreachable. Called after the
    /// change committed.
    /// Replaces the group's generation and announces the change on
    /// [`CHANGES`], in one round trip. Gateways listen there to re-check
    /// the live subscriptions of the group's rooms at once.
    pub async fn invalidate(&self, group: Uuid) {
        let result: redis::RedisResult<()> = async {
            let mut connection = self.connection().await?;
            redis::pipe()
                .cmd("SET")
                .arg(format!("groups:gen:{group}"))
                .arg(Uuid::new_v4().simple().to_string())
                .arg("EX")
                .arg(GENERATION_TTL_SECONDS)
                .ignore()
                .cmd("PUBLISH")
                .arg(CHANGES)
                .arg(group.to_string())
                .ignore()
                .query_async(&mut connection)
                .await
        }
        .await;
        if let Err(err) = result {
            // Entries expire within FACTS_TTL_SECONDS regardless.
            tracing::error!(%group, error = %err, "could not invalidate cached authorization answers");
            metrics::counter!("groups_authz_invalidation_failures_total").increment(1);
        }
    }

    async fn set(&self, key: String, value: String, ttl: u64) -> bool {
        let result: redis::RedisResult<()> = async {
            let mut connection = self.connection().await?;
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("EX")
                .arg(ttl)
                .query_async(&mut connection)
                .await
        }
        .await;
        if let Err(err) = &result {
            tracing::warn!(error = %err, key, "authorization cache write failed");
        }
        result.is_ok()
    }
}

const DIRECT: u8 = 1;
const GROUP_PUBLIC: u8 = 2;
const CHANNEL_PRIVATE: u8 = 4;
const BROADCAST: u8 = 8;
const CHANNEL_MEMBER: u8 = 16;

/// `group|channel|flags|role|muted_until (unix ns)`, empty parts for none.
fn encode(facts: &Facts) -> String {
    let flags = [
        (facts.direct, DIRECT),
        (facts.group_public, GROUP_PUBLIC),
        (facts.channel_private, CHANNEL_PRIVATE),
        (facts.broadcast, BROADCAST),
        (facts.channel_member, CHANNEL_MEMBER),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .fold(0u8, |acc, (_, bit)| acc | bit);
    format!(
        "{}|{}|{}|{}|{}",
        facts.group_id,
        facts
            .channel_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        flags,
        facts.role.map(Role::as_str).unwrap_or_default(),
        facts
            .muted_until
            .map(|at| at.unix_timestamp_nanos().to_string())
            .unwrap_or_default(),
    )
}

/// `None` for anything that is not a well-formed entry: treated as a miss.
fn decode(raw: &str) -> Option<Facts> {
    let mut parts = raw.split('|');
    let group_id = Uuid::parse_str(parts.next()?).ok()?;
    let channel_id = match parts.next()? {
        "" => None,
        id => Some(Uuid::parse_str(id).ok()?),
    };
    let flags: u8 = parts.next()?.parse().ok()?;
    let role = match parts.next()? {
        "" => None,
        role => Some(Role::parse(role)?),
    };
    let muted_until = match parts.next()? {
        "" => None,
        nanos => Some(OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?),
    };
    if parts.next().is_some() {
        return None;
    }
    Some(Facts {
        group_id,
        channel_id,
        direct: flags & DIRECT != 0,
        group_public: flags & GROUP_PUBLIC != 0,
        channel_private: flags & CHANNEL_PRIVATE != 0,
        broadcast: flags & BROADCAST != 0,
        role,
        channel_member: flags & CHANNEL_MEMBER != 0,
        muted_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_survive_the_round_trip() {
        let full = Facts {
            group_id: Uuid::now_v7(),
            channel_id: Some(Uuid::now_v7()),
            direct: false,
            group_public: true,
            channel_private: true,
            broadcast: true,
            role: Some(Role::Moderator),
            channel_member: true,
            muted_until: Some(
                OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap(),
            ),
        };
        assert_eq!(decode(&encode(&full)), Some(full.clone()));
        let outsider = Facts {
            channel_id: None,
            role: None,
            muted_until: None,
            direct: true,
            ..full
        };
        assert_eq!(decode(&encode(&outsider)), Some(outsider));
    }

    #[test]
    fn garbage_is_a_miss() {
        assert_eq!(decode(""), None);
        assert_eq!(decode("x|y|z|w|v"), None);
        assert_eq!(decode(&format!("{}||0|king|", Uuid::nil())), None);
        assert_eq!(decode(&format!("{}||0|||extra", Uuid::nil())), None);
    }
}
