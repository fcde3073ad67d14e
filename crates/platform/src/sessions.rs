//! The session deny-list. Access tokens are stateless and live for
//! `JWT_ACCESS_TTL_SECONDS`; when a session ends early (logout, or a reused
//! refresh token that revoked it) its id is kept in Redis for that long, so
//! every gateway replica and every service refuses the session's access
//! tokens at once, and announced on [`SESSIONS_REVOKED`], so gateway
//! replicas close its sockets (4003).

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Redis channel on which revoked session ids are announced.
pub const SESSIONS_REVOKED: &str = "sessions:revoked";

pub struct DenyList {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    /// How long an access token lives: longer than that, a revoked
    /// session's tokens are refused for having expired.
    ttl_seconds: u64,
    /// Keeps fleets (or tests) that share a Redis apart.
    namespace: String,
}

impl DenyList {
    pub fn new(client: redis::Client, ttl_seconds: u64, namespace: &str) -> Self {
        DenyList {
            client,
            connection: OnceCell::new(),
            // Tokens are accepted up to 5 s past their expiry (clock skew).
            ttl_seconds: ttl_seconds + 5,
            namespace: namespace.to_owned(),
        }
    }

    fn key(&self, session: Uuid) -> String {
        format!("deny:sid:{}{session}", self.namespace)
    }

    /// Refuses the session's access tokens from now on and tells every
    /// replica to close its sockets.
    pub async fn revoke(&self, session: Uuid) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        redis::pipe()
            .atomic()
            .set_ex(self.key(session), 1, self.ttl_seconds)
            .ignore()
            .publish(SESSIONS_REVOKED, session.to_string())
            .ignore()
            .query_async::<()>(&mut connection)
            .await
    }

    /// Records a revocation without announcing it, as when the announcement
    /// is missed by a replica whose subscriber is reconnecting.
    #[doc(hidden)]
    pub async fn revoke_unannounced(&self, session: Uuid) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        redis::cmd("SET")
            .arg(self.key(session))
            .arg(1)
            .arg("EX")
            .arg(self.ttl_seconds)
            .query_async(&mut connection)
            .await
    }

    /// Whether the session was revoked. If Redis cannot answer, the token's
    /// signature and expiry decide alone (as the rate limiter fails open);
    /// that is logged and counted.
    pub async fn is_revoked(&self, session: Uuid) -> bool {
        let answer: redis::RedisResult<bool> = async {
            let mut connection = self.connection().await?;
            redis::cmd("EXISTS")
                .arg(self.key(session))
                .query_async(&mut connection)
                .await
        }
        .await;
        answer.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "session deny-list unavailable; token checked without it");
            metrics::counter!("session_denylist_unavailable_total").increment(1);
            false
        })
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        fail_fast_connection(&self.client, &self.connection).await
    }
}

/// The shared connection of a per-request Redis check that must fail fast
/// (and then fail open) rather than hold the request: one attempt, 1 s to
/// connect, 500 ms to answer. Created on first use.
pub async fn fail_fast_connection(
    client: &redis::Client,
    cell: &OnceCell<ConnectionManager>,
) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_millis(500))
        .set_number_of_retries(0);
    cell.get_or_try_init(|| ConnectionManager::new_with_config(client.clone(), config))
        .await
        .cloned()
}
