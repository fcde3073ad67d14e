//! The session deny-list. Access tokens are stateless and live for
//! `JWT_ACCESS_TTL_SECONDS`; when a session ends early (logout, or a reused
//! refresh token that revoked it) its id is kept in Redis for that long, so
//! every gateway replica and every service refuses the session's access
//! tokens at once, and announced on [`SESSIONS_REVOKED`], so gateway
//! replicas close its sockets (4003).
//!
//! Every user-scoped call asks, so a list that follows the announcements
//! ([`DenyList::follow_revocations`]) remembers for a few seconds the
//! sessions Redis said were live and answers those itself: an announcement
//! forgets the session at once, and while the feed is down nothing is
//! remembered, so an ended session is never served from memory.

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// How long a session Redis called live is believed without asking again.
const REMEMBER_LIVE: Duration = Duration::from_secs(5);
/// Most sessions remembered at once (the memory is dropped when full).
const REMEMBER_AT_MOST: usize = 65_536;

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
    /// Sessions Redis recently called live; used only while `feed_up`.
    live: Mutex<HashMap<Uuid, Instant>>,
    /// The announcements are being received.
    feed_up: AtomicBool,
    /// Counts announcements, so an answer read before one is not kept.
    announcements: AtomicU64,
}

impl DenyList {
    pub fn new(client: redis::Client, ttl_seconds: u64, namespace: &str) -> Self {
        DenyList {
            client,
            connection: OnceCell::new(),
            // Tokens are accepted up to 5 s past their expiry (clock skew).
            ttl_seconds: ttl_seconds + 5,
            namespace: namespace.to_owned(),
            live: Mutex::new(HashMap::new()),
            feed_up: AtomicBool::new(false),
            announcements: AtomicU64::new(0),
        }
    }

    /// Starts following the revocation announcements (for as long as the
    /// list lives), which lets [`Self::is_revoked`] answer recently seen
    /// live sessions without a round trip.
    pub fn follow_revocations(self: Arc<Self>) -> Arc<Self> {
        let weak = Arc::downgrade(&self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(list) = weak.upgrade() else { break };
                let client = list.client.clone();
                drop(list);
                if let Ok(mut pubsub) = client.get_async_pubsub().await
                    && pubsub.subscribe(SESSIONS_REVOKED).await.is_ok()
                {
                    backoff = Duration::from_millis(100);
                    let mut announced = pubsub.on_message();
                    if let Some(list) = weak.upgrade() {
                        list.feed_up.store(true, Ordering::SeqCst);
                    }
                    while let Some(message) = announced.next().await {
                        let Some(list) = weak.upgrade() else { return };
                        list.announcements.fetch_add(1, Ordering::SeqCst);
                        if let Ok(session) = message.get_payload::<String>()
                            && let Ok(session) = Uuid::parse_str(&session)
                        {
                            list.remembered().remove(&session);
                        }
                    }
                }
                let Some(list) = weak.upgrade() else { break };
                list.feed_up.store(false, Ordering::SeqCst);
                list.remembered().clear();
                drop(list);
                tracing::debug!("session revocation feed down; asking Redis every time");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        self
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn known_live(&self, session: Uuid) -> bool {
        self.feed_up.load(Ordering::SeqCst)
            && self
                .remembered()
                .get(&session)
                .is_some_and(|seen| seen.elapsed() < REMEMBER_LIVE)
    }

    fn remember_live(&self, session: Uuid, announcements_before: u64) {
        if !self.feed_up.load(Ordering::SeqCst)
            || self.announcements.load(Ordering::SeqCst) != announcements_before
        {
            return;
        }
        let mut live = self.remembered();
        if live.len() >= REMEMBER_AT_MOST {
            live.clear();
        }
        live.insert(session, Instant::now());
    }

    fn key(&self, session: Uuid) -> String {
        format!("deny:sid:{}{session}", self.namespace)
    }

    /// Refuses the session's access tokens from now on and tells every
    /// replica to close its sockets.
    pub async fn revoke(&self, session: Uuid) -> redis::RedisResult<()> {
        self.remembered().remove(&session);
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
        if self.known_live(session) {
            return false;
        }
        let announcements_before = self.announcements.load(Ordering::SeqCst);
        let answer: redis::RedisResult<bool> = async {
            let mut connection = self.connection().await?;
            redis::cmd("EXISTS")
                .arg(self.key(session))
                .query_async(&mut connection)
                .await
        }
        .await;
        match answer {
            Ok(revoked) => {
                if !revoked {
                    self.remember_live(session, announcements_before);
                }
                revoked
            }
            Err(err) => {
                tracing::warn!(error = %err, "session deny-list unavailable; token checked without it");
                metrics::counter!("session_denylist_unavailable_total").increment(1);
                false
            }
        }
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
