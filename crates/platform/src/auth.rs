//! Access tokens: short-lived EdDSA (Ed25519) JWTs with a `kid` header.
//! Only the users service holds the private keys ([`TokenSigner`]); every
//! other service verifies with the public halves ([`TokenVerifier`]), which
//! the users service publishes (`GetSigningKeys`, and the gateway's
//! `/.well-known/jwks.json`). A service that can verify cannot forge.
//!
//! The key set is `auth.jwt_keys` ("kid:secret,…", the first or
//! `jwt_active_kid` signs): each secret of at least 32 bytes is the input of
//! an HKDF that yields the key's Ed25519 seed, so secrets keep the format
//! operators already rotate in Vault.

use crate::config::{AuthConfig, ConfigError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::KeyPair;
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

/// The public half of a signing key, as a JWK names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub x: String,
}

/// The key set as a JSON Web Key Set (RFC 7517, OKP keys of RFC 8037).
pub fn jwks(keys: &[PublicKey]) -> serde_json::Value {
    let keys: Vec<_> = keys
        .iter()
        .map(|key| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": key.kid,
                "x": key.x,
            })
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// The private keys: held by the users service alone.
pub struct TokenSigner {
    active_kid: String,
    signing: EncodingKey,
    public: Vec<PublicKey>,
    verifier: Arc<TokenVerifier>,
    ttl_seconds: i64,
}

/// The v1 PKCS#8 envelope of an Ed25519 seed (RFC 8410), which is what
/// `jsonwebtoken` signs with.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

const KEY_DERIVATION_SALT: &[u8] = b"messenger access-token signing key v1";

fn derive_seed(kid: &str, secret: &[u8]) -> Result<[u8; 32], ConfigError> {
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, KEY_DERIVATION_SALT);
    let info = [kid.as_bytes()];
    let mut seed = [0u8; 32];
    salt.extract(secret)
        .expand(&info, ring::hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut seed))
        .map_err(|_| ConfigError::invalid("auth.jwt_keys", "cannot derive a signing key"))?;
    Ok(seed)
}

impl TokenSigner {
    pub fn from_config(auth: &AuthConfig) -> Result<Self, ConfigError> {
        let keys = auth.signing_keys()?;
        let active = keys
            .first()
            .ok_or_else(|| ConfigError::invalid("auth.jwt_keys", "is empty"))?;
        let mut signing = None;
        let mut public = Vec::with_capacity(keys.len());
        for key in &keys {
            let seed = derive_seed(&key.kid, key.secret.expose().as_bytes())?;
            let pair =
                ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| {
                    ConfigError::invalid("auth.jwt_keys", format!("kid {:?} is unusable", key.kid))
                })?;
            public.push(PublicKey {
                kid: key.kid.clone(),
                x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            if key.kid == active.kid {
                let mut der = PKCS8_ED25519_PREFIX.to_vec();
                der.extend_from_slice(&seed);
                signing = Some(EncodingKey::from_ed_der(&der));
            }
        }
        let signing =
            signing.ok_or_else(|| ConfigError::invalid("auth.jwt_active_kid", "names no key"))?;
        let verifier = TokenVerifier::new(&public, &auth.jwt_issuer)
            .map_err(|_| ConfigError::invalid("auth.jwt_keys", "a public key is unusable"))?;
        Ok(TokenSigner {
            active_kid: active.kid.clone(),
            signing,
            public,
            verifier: Arc::new(verifier),
            ttl_seconds: i64::try_from(auth.access_ttl_seconds).unwrap_or(i64::MAX),
        })
    }

    /// The kid new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// Every key tokens may be signed with (the active one first): the set
    /// verifiers fetch.
    pub fn public_keys(&self) -> &[PublicKey] {
        &self.public
    }

    /// A verifier for the tokens this signer issues.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        Arc::clone(&self.verifier)
    }

    pub fn issue(&self, principal: Principal) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        self.issue_for(principal, time::Duration::seconds(self.ttl_seconds))
    }

    /// A token living `lifetime` from now (a negative one is born expired:
    /// what tests of refusals need).
    pub fn issue_for(
        &self,
        principal: Principal,
        lifetime: time::Duration,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = OffsetDateTime::now_utc();
        let expires_at = now + lifetime;
        let claims = Claims {
            sub: principal.user_id,
            sid: principal.session_id,
            iss: self.verifier.issuer.clone(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.active_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)?;
        Ok(IssuedToken { token, expires_at })
    }
}

/// Public keys only: what every service but the users service holds.
pub struct TokenVerifier {
    verifying: HashMap<String, DecodingKey>,
    issuer: String,
}

impl TokenVerifier {
    /// Refuses a key whose `x` is not 32 bytes of base64url.
    pub fn new(keys: &[PublicKey], issuer: &str) -> Result<Self, TokenError> {
        let mut verifying = HashMap::with_capacity(keys.len());
        for key in keys {
            let raw = URL_SAFE_NO_PAD
                .decode(&key.x)
                .map_err(|_| TokenError::Malformed)?;
            if raw.len() != 32 {
                return Err(TokenError::Malformed);
            }
            verifying.insert(key.kid.clone(), DecodingKey::from_ed_der(&raw));
        }
        Ok(TokenVerifier {
            verifying,
            issuer: issuer.to_owned(),
        })
    }

    /// A verifier that knows no key yet (before the first fetch).
    pub fn empty(issuer: &str) -> Self {
        TokenVerifier {
            verifying: HashMap::new(),
            issuer: issuer.to_owned(),
        }
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.verifying.contains_key(kid)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_until(token).map(|(principal, _)| principal)
    }

    /// Verifies the token and also returns when it expires (Unix seconds),
    /// for long-lived connections that must end with their token.
    pub fn verify_until(&self, token: &str) -> Result<(Principal, i64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        // The algorithm is fixed, never taken from the token: no `none`, and
        // no HMAC keyed with a public key.
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
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

/// The kid a token names, read without verifying anything (to decide
/// whether the verifier must fetch keys first).
pub fn token_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// A key set in use, replaceable while requests are being served: a
/// rotation swaps the whole set at once, and callers holding the previous
/// snapshot finish with it.
pub struct KeyRing<K>(RwLock<Arc<K>>);

impl<K> KeyRing<K> {
    pub fn new(keys: K) -> Self {
        KeyRing(RwLock::new(Arc::new(keys)))
    }

    pub fn current(&self) -> Arc<K> {
        // A poisoned lock still holds a complete key set: the swap below
        // cannot panic halfway.
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub fn replace(&self, keys: K) {
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

    fn public_only(signer: &TokenSigner) -> TokenVerifier {
        TokenVerifier::new(signer.public_keys(), "messenger").expect("public keys")
    }

    #[test]
    fn issued_token_verifies_with_the_public_key_alone() {
        let signer = TokenSigner::from_config(&auth(A, "a")).expect("keys");
        let who = principal();
        let token = signer.issue(who).expect("issue");
        assert_eq!(public_only(&signer).verify(&token.token), Ok(who));
        let header = jsonwebtoken::decode_header(&token.token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some("a"));
    }

    #[test]
    fn the_same_secret_yields_the_same_key() {
        let one = TokenSigner::from_config(&auth(A, "a")).expect("keys");
        let two = TokenSigner::from_config(&auth(&format!("{B},{A}"), "b")).expect("keys");
        assert_eq!(one.public_keys()[0], two.public_keys()[1]);
        assert_eq!(two.public_keys()[0].kid, "b");
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_key_removed() {
        let old = TokenSigner::from_config(&auth(A, "a")).expect("keys");
        let token = old.issue(principal()).expect("issue").token;
        let rotated = TokenSigner::from_config(&auth(&format!("{B},{A}"), "b")).expect("keys");
        assert!(public_only(&rotated).verify(&token).is_ok());
        let retired = TokenSigner::from_config(&auth(B, "b")).expect("keys");
        assert_eq!(
            public_only(&retired).verify(&token),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn forged_and_garbage_tokens_fail() {
        let keys = TokenSigner::from_config(&auth(A, "a")).expect("keys");
        let forger =
            TokenSigner::from_config(&auth("a:not-the-real-secret-but-32-bytes-long", "a"))
                .expect("keys");
        let forged = forger.issue(principal()).expect("issue").token;
        let verifier = public_only(&keys);
        assert_eq!(verifier.verify(&forged), Err(TokenError::Invalid));
        assert_eq!(verifier.verify("not.a.jwt"), Err(TokenError::Malformed));
        assert_eq!(verifier.verify(""), Err(TokenError::Malformed));
    }

    #[test]
    fn hmac_tokens_keyed_with_the_public_key_are_refused() {
        let signer = TokenSigner::from_config(&auth(A, "a")).expect("keys");
        let public = URL_SAFE_NO_PAD
            .decode(&signer.public_keys()[0].x)
            .expect("x");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            iss: "messenger".into(),
            iat: now,
            exp: now + 60,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("a".into());
        let confused =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).expect("hs");
        assert_eq!(
            public_only(&signer).verify(&confused),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn the_key_set_is_published_as_okp_jwks() {
        let signer = TokenSigner::from_config(&auth(A, "a")).expect("keys");
        let set = jwks(signer.public_keys());
        assert_eq!(set["keys"][0]["kty"], "OKP");
        assert_eq!(set["keys"][0]["crv"], "Ed25519");
        assert_eq!(set["keys"][0]["kid"], "a");
        let x = set["keys"][0]["x"].as_str().expect("x");
        let decoding = DecodingKey::from_ed_components(x).expect("jwk x");
        let token = signer.issue(principal()).expect("issue").token;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&["messenger"]);
        assert!(jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).is_ok());
    }
}
