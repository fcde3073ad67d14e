//! User identity inside the fleet. The gateway forwards the caller's access
//! token on its internal calls (metadata `authorization: Bearer …`); every
//! service verifies it itself, at the door, for each method
//! [`crate::callers::RULES`] marks user-scoped, and takes the acting user
//! from it rather than from a request field. While such a call is served its
//! verified user is the task's [`current`] caller, and the calls it makes to
//! other services forward the same token, the way the trace context travels.
//!
//! Verifying needs only public keys: the users service signs, and the
//! others fetch its key set (`GetSigningKeys`) when they meet a key they do
//! not know, and every minute to drop retired keys.

use crate::auth::{KeyRing, Principal, PublicKey, TokenError, TokenSigner, TokenVerifier};
use crate::sessions::DenyList;
use messenger_proto::users::v1 as users_pb;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use uuid::Uuid;

/// A call being served for a user whose token was verified.
#[derive(Debug)]
pub struct UserCall {
    pub principal: Principal,
    /// The token as received, forwarded on the calls this one makes.
    pub token: String,
}

tokio::task_local! {
    static CALLER: Arc<UserCall>;
}

/// The user the current call is served for, if any.
pub fn current() -> Option<Arc<UserCall>> {
    CALLER.try_with(Arc::clone).ok()
}

/// Runs `work` as a call for `user`: [`current`] answers it, and internal
/// calls made meanwhile forward its token.
pub async fn scope<F: Future>(user: Arc<UserCall>, work: F) -> F::Output {
    CALLER.scope(user, work).await
}

/// The token of an `authorization: Bearer …` header or metadata entry.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Why the acting user of a call could not be established.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error("the request names another user than the caller's access token")]
    NotTheCaller,
    #[error("is not a valid user id")]
    Invalid,
}

/// The acting user of the call being served: the user of its verified
/// token, and a request field (`actor_id`, kept for older callers) that
/// names someone else is refused. Without a user context (a fleet running
/// with `grpc.user_tokens` off, for measurements only) the field decides.
pub fn acting_user(claimed: &str) -> Result<Uuid, ActorError> {
    match current() {
        Some(call) => {
            let user = call.principal.user_id;
            if claimed.is_empty() || Uuid::parse_str(claimed.trim()).ok() == Some(user) {
                Ok(user)
            } else {
                Err(ActorError::NotTheCaller)
            }
        }
        None => Uuid::parse_str(claimed.trim()).map_err(|_| ActorError::Invalid),
    }
}

/// Why a call's user token was refused at the door.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("{0} acts for a user: send the user's access token as `authorization: Bearer …`")]
    Missing(String),
    #[error("{0}")]
    Token(TokenError),
    #[error("the access token's session has ended")]
    Revoked,
    #[error("the token's signing key is unknown and the users service cannot be asked now")]
    KeysUnavailable,
}

impl Rejected {
    pub fn status(&self) -> tonic::Status {
        match self {
            Rejected::KeysUnavailable => tonic::Status::unavailable(self.to_string()),
            _ => tonic::Status::unauthenticated(self.to_string()),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Rejected::Missing(_) => "missing",
            Rejected::Token(TokenError::Expired) => "expired",
            Rejected::Token(TokenError::UnknownKey) => "unknown_key",
            Rejected::Token(_) => "invalid",
            Rejected::Revoked => "revoked",
            Rejected::KeysUnavailable => "keys_unavailable",
        }
    }
}

type UsersClient = users_pb::users_service_client::UsersServiceClient<Channel>;

enum Source {
    /// The users service verifies with the keys it signs with.
    Signer(Arc<KeyRing<TokenSigner>>),
    /// Everyone else asks the users service for the public keys.
    Users(Box<RemoteKeys>),
}

struct RemoteKeys {
    client: UsersClient,
    keys: KeyRing<TokenVerifier>,
    issuer: String,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// Verifies user tokens: signature, expiry, issuer, and the deny-list of
/// ended sessions.
pub struct UserTokens {
    source: Source,
    deny_list: Arc<DenyList>,
    /// Tokens whose signature was checked, by their whole text: a user's
    /// token comes back with every call for its lifetime, and an Ed25519
    /// check costs more than the rest of a cached `Authorize`.
    verified: std::sync::Mutex<Verified>,
}

/// Checked tokens, valid for the key set they were checked against.
#[derive(Default)]
struct Verified {
    /// Held, so its address cannot be reused by a later key set.
    keys: Option<Arc<TokenVerifier>>,
    tokens: std::collections::HashMap<String, (Principal, i64)>,
}

/// Most checked tokens remembered (about 400 bytes each); the memory is
/// dropped when full.
const VERIFIED_AT_MOST: usize = 16_384;
/// Seconds a token is accepted past its `exp` (as the verifier's leeway).
const EXPIRY_LEEWAY: i64 = 5;

/// How often a verifier re-reads the key set (a retired key stops verifying
/// within this), and how soon it may ask again for an unknown key.
const REFRESH_EVERY: Duration = Duration::from_secs(60);
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(1);
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl UserTokens {
    /// For the users service, whose signer rotates from Vault.
    pub fn signed_here(signer: Arc<KeyRing<TokenSigner>>, deny_list: Arc<DenyList>) -> Arc<Self> {
        Arc::new(UserTokens {
            source: Source::Signer(signer),
            deny_list,
            verified: Default::default(),
        })
    }

    /// For every other service: public keys from the users service behind
    /// `channel`. Must be called inside a Tokio runtime (a task keeps the
    /// keys fresh for as long as the verifier lives).
    pub fn from_users(channel: Channel, issuer: &str, deny_list: Arc<DenyList>) -> Arc<Self> {
        let tokens = Arc::new(UserTokens {
            source: Source::Users(Box::new(RemoteKeys {
                client: UsersClient::new(channel),
                keys: KeyRing::new(TokenVerifier::empty(issuer)),
                issuer: issuer.to_owned(),
                last_fetch: tokio::sync::Mutex::new(None),
            })),
            deny_list,
            verified: Default::default(),
        });
        // Fetched at once, so the first requests do not wait for (or fail
        // on) the users service; retried every second until it answers.
        let weak = Arc::downgrade(&tokens);
        tokio::spawn(async move {
            loop {
                let Some(tokens) = weak.upgrade() else { break };
                let fetched = tokens.fetch_keys(true).await;
                drop(tokens);
                tokio::time::sleep(if fetched { REFRESH_EVERY } else { RETRY_AFTER }).await;
            }
        });
        tokens
    }

    /// The keys known now, without asking anyone (for checks that must not
    /// wait, such as choosing a rate-limit bucket).
    pub fn known_keys(&self) -> Arc<TokenVerifier> {
        match &self.source {
            Source::Signer(signer) => signer.current().verifier(),
            Source::Users(remote) => remote.keys.current(),
        }
    }

    pub fn deny_list(&self) -> &Arc<DenyList> {
        &self.deny_list
    }

    /// Checks signature, issuer and expiry, fetching the key set first when
    /// the token names a key not known yet. Returns when the token expires.
    pub async fn verify(&self, token: &str) -> Result<(Principal, i64), Rejected> {
        // What was checked holds for the key set it was checked against:
        // a rotation (or a fetch) starts afresh.
        let keys = self.known_keys();
        if let Some(known) = self.already_verified(token, &keys) {
            return Ok(known);
        }
        let verified = self.verify_signature(token).await?;
        self.remember_verified(token, &keys, verified);
        Ok(verified)
    }

    fn checked(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn already_verified(&self, token: &str, keys: &Arc<TokenVerifier>) -> Option<(Principal, i64)> {
        let checked = self.checked();
        let current = checked
            .keys
            .as_ref()
            .is_some_and(|held| Arc::ptr_eq(held, keys));
        let (principal, expires) = *checked.tokens.get(token).filter(|_| current)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        (now <= expires + EXPIRY_LEEWAY).then_some((principal, expires))
    }

    fn remember_verified(
        &self,
        token: &str,
        keys: &Arc<TokenVerifier>,
        verified: (Principal, i64),
    ) {
        let mut checked = self.checked();
        let current = checked
            .keys
            .as_ref()
            .is_some_and(|held| Arc::ptr_eq(held, keys));
        if !current || checked.tokens.len() >= VERIFIED_AT_MOST {
            checked.tokens.clear();
            checked.keys = Some(Arc::clone(keys));
        }
        checked.tokens.insert(token.to_owned(), verified);
    }

    async fn verify_signature(&self, token: &str) -> Result<(Principal, i64), Rejected> {
        match self.known_keys().verify_until(token) {
            Err(TokenError::UnknownKey) if matches!(self.source, Source::Users(_)) => {
                let kid =
                    crate::auth::token_kid(token).ok_or(Rejected::Token(TokenError::UnknownKey))?;
                if !self.fetch_keys(false).await && !self.known_keys().knows(&kid) {
                    return Err(Rejected::KeysUnavailable);
                }
                self.known_keys()
                    .verify_until(token)
                    .map_err(Rejected::Token)
            }
            verified => verified.map_err(Rejected::Token),
        }
    }

    /// [`Self::verify`] plus the deny-list: what every user-scoped call
    /// passes.
    pub async fn authenticate(&self, token: &str) -> Result<UserCall, Rejected> {
        let (principal, _) = self.verify(token).await?;
        if self.deny_list.is_revoked(principal.session_id).await {
            return Err(Rejected::Revoked);
        }
        Ok(UserCall {
            principal,
            token: token.to_owned(),
        })
    }

    /// Counts and logs a refusal.
    pub fn note_refusal(method: &str, rejected: &Rejected) {
        metrics::counter!("grpc_user_token_refusals_total", "reason" => rejected.reason())
            .increment(1);
        tracing::info!(%method, reason = rejected.reason(), "user token refused");
    }

    /// Re-reads the key set from the users service; false when it could
    /// not be asked. Unforced fetches are spaced out, so a flood of tokens
    /// naming made-up keys costs the users service one call a second.
    async fn fetch_keys(&self, forced: bool) -> bool {
        let Source::Users(remote) = &self.source else {
            return true;
        };
        let RemoteKeys {
            client,
            keys,
            issuer,
            last_fetch,
        } = remote.as_ref();
        let mut last = last_fetch.lock().await;
        if !forced && last.is_some_and(|at| at.elapsed() < REFETCH_AT_MOST_EVERY) {
            return true;
        }
        *last = Some(Instant::now());
        let mut request = tonic::Request::new(users_pb::GetSigningKeysRequest {});
        request.set_timeout(Duration::from_secs(2));
        let fetched = client.clone().get_signing_keys(request).await;
        let published = match fetched {
            Ok(reply) => reply.into_inner().keys,
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "cannot fetch the token signing keys");
                metrics::counter!("user_token_key_fetch_failures_total").increment(1);
                return false;
            }
        };
        let public: Vec<PublicKey> = published
            .into_iter()
            .map(|key| PublicKey {
                kid: key.kid,
                x: key.x,
            })
            .collect();
        match TokenVerifier::new(&public, issuer) {
            Ok(verifier) => {
                keys.replace(verifier);
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "the users service published an unusable key set");
                false
            }
        }
    }
}
