//! Access tokens: short-lived HS256 JWTs with a `kid` header, signed by the
//! active key of a rotatable key set and verified against every listed key.

use crate::config::{AuthConfig, ConfigError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Session (refresh token family) id, so logout can be traced to tokens.
    pub sid: Uuid,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// Who made an authenticated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token was signed with an unknown key")]
    UnknownKey,
    #[error("the access token signature or claims are invalid")]
    Invalid,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

pub struct TokenKeys {
    active_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    issuer: String,
    ttl_seconds: i64,
}

impl TokenKeys {
    pub fn from_config(auth: &AuthConfig) -> Result<Self, ConfigError> {
        let keys = auth.signing_keys()?;
        let active = keys
            .first()
            .ok_or_else(|| ConfigError::invalid("auth.jwt_keys", "is empty"))?;
        Ok(TokenKeys {
            active_kid: active.kid.clone(),
            signing: EncodingKey::from_secret(active.secret.expose().as_bytes()),
            verifying: keys
                .iter()
                .map(|key| {
                    (
                        key.kid.clone(),
                        DecodingKey::from_secret(key.secret.expose().as_bytes()),
                    )
                })
                .collect(),
            issuer: auth.jwt_issuer.clone(),
            ttl_seconds: i64::try_from(auth.access_ttl_seconds).unwrap_or(i64::MAX),
        })
    }

    /// The kid new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    pub fn issue(&self, principal: Principal) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = OffsetDateTime::now_utc();
        let expires_at = now + time::Duration::seconds(self.ttl_seconds);
        let claims = Claims {
            sub: principal.user_id,
            sid: principal.session_id,
            iss: self.issuer.clone(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.active_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)?;
        Ok(IssuedToken { token, expires_at })
    }

    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_until(token).map(|(principal, _)| principal)
    }

    /// Verifies the token and also returns when it expires (Unix seconds),
    /// for long-lived connections that must end with their token.
    pub fn verify_until(&self, token: &str) -> Result<(Principal, i64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => TokenError::Malformed,
                _ => TokenError::Invalid,
            }
        })?;
        Ok((
            Principal {
                user_id: data.claims.sub,
                session_id: data.claims.sid,
            },
            data.claims.exp,
        ))
    }
}

/// The key set in use, replaceable while requests are being served: a
/// rotation swaps the whole set at once, and callers holding the previous
/// snapshot finish with it.
pub struct KeyRing(RwLock<Arc<TokenKeys>>);

impl KeyRing {
    pub fn new(keys: TokenKeys) -> Self {
        KeyRing(RwLock::new(Arc::new(keys)))
    }

    pub fn current(&self) -> Arc<TokenKeys> {
        // A poisoned lock still holds a complete key set: the swap below
        // cannot panic halfway.
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub fn replace(&self, keys: TokenKeys) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn auth(keys: &str, active: &str) -> AuthConfig {
        AuthConfig {
            jwt_keys: Secret::new(keys),
            jwt_active_kid: active.to_owned(),
            jwt_issuer: "messenger".to_owned(),
            access_ttl_seconds: 900,
            refresh_ttl_seconds: 3600,
        }
    }

    const A: &str = "a:0123456789abcdef0123456789abcdef";
    const B: &str = "b:fedcba9876543210fedcba9876543210";

    fn principal() -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
        }
    }

    #[test]
    fn issued_token_verifies() {
        let keys = TokenKeys::from_config(&auth(A, "a")).expect("keys");
        let who = principal();
        let token = keys.issue(who).expect("issue");
        assert_eq!(keys.verify(&token.token), Ok(who));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_key_removed() {
        let old = TokenKeys::from_config(&auth(A, "a")).expect("keys");
        let token = old.issue(principal()).expect("issue").token;
        let rotated = TokenKeys::from_config(&auth(&format!("{B},{A}"), "b")).expect("keys");
        assert!(rotated.verify(&token).is_ok());
        let retired = TokenKeys::from_config(&auth(B, "b")).expect("keys");
        assert_eq!(retired.verify(&token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn forged_and_garbage_tokens_fail() {
        let keys = TokenKeys::from_config(&auth(A, "a")).expect("keys");
        let forger = TokenKeys::from_config(&auth("a:not-the-real-secret-but-32-bytes-long", "a"))
            .expect("keys");
        let forged = forger.issue(principal()).expect("issue").token;
        assert_eq!(keys.verify(&forged), Err(TokenError::Invalid));
        assert_eq!(keys.verify("not.a.jwt"), Err(TokenError::Malformed));
        assert_eq!(keys.verify(""), Err(TokenError::Malformed));
    }
}
