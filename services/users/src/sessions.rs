//! Refresh sessions. A login starts a family of opaque refresh tokens; each
//! refresh rotates to a new token of the family. Presenting a token that
//! was already rotated means it leaked (or a client replayed it), so the
//! whole family is revoked and its holder must log in again.
//!
//! This service is the only writer of the deny-list of ended sessions
//! (`messenger_platform::sessions`): every revocation here also refuses the
//! session's access tokens everywhere and closes its sockets; the other
//! services only read the list (their Redis users may not write it).

use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::repo;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use messenger_platform::sessions::DenyList;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    ttl: time::Duration,
    ended: Arc<DenyList>,
}

pub struct IssuedSession {
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub refresh_token: String,
    pub expires_at: OffsetDateTime,
}

const REJECTED: &str = "the refresh token is invalid, expired or revoked";

impl Sessions {
    pub fn new(pool: PgPool, ttl_seconds: u64, ended: Arc<DenyList>) -> Self {
        Sessions {
            pool,
            ttl: time::Duration::seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2)),
            ended,
        }
    }

    pub async fn create(&self, user: UserId, user_agent: &str) -> Result<IssuedSession> {
        if repo::get_user(&self.pool, user.0).await?.is_none() {
            return Err(Error::NotFound);
        }
        let mut tx = self.pool.begin().await?;
        let session = self
            .issue(&mut tx, user.0, Uuid::now_v7(), user_agent)
            .await?;
        tx.commit().await?;
        Ok(session)
    }

    pub async fn refresh(&self, token: &str) -> Result<IssuedSession> {
        let hash = hash_token(token).ok_or(Error::Unauthenticated(REJECTED))?;
        let mut tx = self.pool.begin().await?;
        let stored = repo::lock_refresh_token(&mut tx, &hash)
            .await?
            .ok_or(Error::Unauthenticated(REJECTED))?;
        if stored.revoked_at.is_some() || stored.expires_at <= OffsetDateTime::now_utc() {
            return Err(Error::Unauthenticated(REJECTED));
        }
        if stored.rotated_at.is_some() {
            let revoked = repo::revoke_family(&mut tx, stored.family_id).await?;
            tx.commit().await?;
            tracing::warn!(
                user_id = %stored.user_id,
                family_id = %stored.family_id,
                revoked,
                "rotated refresh token reused: session family revoked"
            );
            // Whoever replayed the token may hold its access tokens too.
            if let Err(err) = self.ended.revoke(stored.family_id).await {
                tracing::error!(error = %err, family_id = %stored.family_id,
                    "reused session not deny-listed: its access tokens live until they expire");
            }
            return Err(Error::SessionReused {
                user_id: stored.user_id,
                session_id: stored.family_id,
            });
        }
        repo::mark_rotated(&mut tx, &hash).await?;
        let session = self
            .issue(
                &mut tx,
                stored.user_id,
                stored.family_id,
                &stored.user_agent,
            )
            .await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Revokes the token's family, refuses its access tokens everywhere and
    /// closes its sockets; returns it as (user, session). Unknown tokens are
    /// not an error: logout is idempotent and must not reveal which tokens
    /// exist. With Redis down the family stays revoked and the call answers
    /// UNAVAILABLE: retried with the same token, it deny-lists again.
    pub async fn revoke(&self, token: &str) -> Result<Option<(Uuid, Uuid)>> {
        let Some(hash) = hash_token(token) else {
            return Ok(None);
        };
        let mut tx = self.pool.begin().await?;
        let revoked = match repo::lock_refresh_token(&mut tx, &hash).await? {
            Some(stored) => {
                repo::revoke_family(&mut tx, stored.family_id).await?;
                Some((stored.user_id, stored.family_id))
            }
            None => None,
        };
        tx.commit().await?;
        if let Some((_, session)) = revoked {
            self.ended.revoke(session).await.map_err(|err| {
                tracing::error!(error = %err, %session, "cannot deny-list an ended session");
                Error::Unavailable(
                    "the session ended, but its access tokens could not be revoked yet; retry",
                )
            })?;
        }
        Ok(revoked)
    }

    async fn issue(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        family_id: Uuid,
        user_agent: &str,
    ) -> Result<IssuedSession> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
        let refresh_token = URL_SAFE_NO_PAD.encode(secret);
        let expires_at = OffsetDateTime::now_utc() + self.ttl;
        let hash = Sha256::digest(refresh_token.as_bytes());
        let user_agent: String = user_agent.chars().take(256).collect();
        repo::insert_refresh_token(conn, &hash, family_id, user_id, &user_agent, expires_at)
            .await?;
        Ok(IssuedSession {
            user_id,
            family_id,
            refresh_token,
            expires_at,
        })
    }
}

/// SHA-256 of a well-formed token (43 base64url characters); `None` for
/// anything that cannot be one of ours.
fn hash_token(token: &str) -> Option<Vec<u8>> {
    let token = token.trim();
    let decoded = URL_SAFE_NO_PAD.decode(token).ok()?;
    (decoded.len() == 32).then(|| Sha256::digest(token.as_bytes()).to_vec())
}
