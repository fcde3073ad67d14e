//! Voluntary application server identification (RFC 8292): every push
//! request carries a short-lived JWT signed with our VAPID key, so a push
//! service can tell our requests apart and a subscription made for our
//! public key works only for us.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a token is valid; RFC 8292 allows at most 24 hours.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error("the VAPID key pair is not a valid P-256 key pair: {0}")]
    BadKey(&'static str),
    #[error("the VAPID subject must be a mailto: or https: URL")]
    BadSubject,
    #[error("signing failed")]
    Signing,
}

/// Our VAPID identity: the key pair and the contact (`sub`) push services
/// may write to about our traffic.
pub struct Vapid {
    key: EcdsaKeyPair,
    /// The public key as browsers take it (`applicationServerKey`):
    /// base64url of the uncompressed point.
    public_key: String,
    subject: String,
    rng: SystemRandom,
}

impl Vapid {
    /// From the raw keys as `web-push generate-vapid-keys` and most
    /// libraries print them: base64url of the 32-byte private scalar and of
    /// the 65-byte public point.
    pub fn from_base64(private: &str, public: &str, subject: &str) -> Result<Vapid, VapidError> {
        let private = URL_SAFE_NO_PAD
            .decode(private.trim().trim_end_matches('='))
            .map_err(|_| VapidError::BadKey("the private key is not base64url"))?;
        let public = URL_SAFE_NO_PAD
            .decode(public.trim().trim_end_matches('='))
            .map_err(|_| VapidError::BadKey("the public key is not base64url"))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &private,
            &public,
            &rng,
        )
        .map_err(|_| VapidError::BadKey("the keys do not form a P-256 pair"))?;
        Self::new(key, subject, rng)
    }

    /// From a PKCS#8 document (tests generate keys this way).
    pub fn from_pkcs8(pkcs8: &[u8], subject: &str) -> Result<Vapid, VapidError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| VapidError::BadKey("not a P-256 PKCS#8 key"))?;
        Self::new(key, subject, rng)
    }

    fn new(key: EcdsaKeyPair, subject: &str, rng: SystemRandom) -> Result<Vapid, VapidError> {
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return Err(VapidError::BadSubject);
        }
        Ok(Vapid {
            public_key: URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
            key,
            subject: subject.to_owned(),
            rng,
        })
    }

    /// What clients pass as `applicationServerKey` when subscribing.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header for a request to `endpoint`'s origin.
    pub fn authorization(&self, endpoint: &reqwest::Url) -> Result<String, VapidError> {
        let expires = SystemTime::now()
            .checked_add(TOKEN_LIFETIME)
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_secs())
            .ok_or(VapidError::Signing)?;
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": endpoint.origin().ascii_serialization(),
            "exp": expires,
            "sub": self.subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| VapidError::Signing)?;
        let token = format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        );
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    fn vapid() -> Vapid {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("a key");
        Vapid::from_pkcs8(pkcs8.as_ref(), "mailto:ops@example.com").expect("vapid")
    }

    #[test]
    fn the_token_is_an_es256_jwt_for_the_endpoints_origin() {
        let vapid = vapid();
        let endpoint: reqwest::Url = "https://push.example.net:8443/wpush/v2/abc"
            .parse()
            .expect("url");
        let header = vapid.authorization(&endpoint).expect("header");
        let (token, key) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .expect("vapid t=…, k=…");
        assert_eq!(key, vapid.public_key());
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let exp = claims["exp"].as_u64().expect("exp");
        assert!(exp > now && exp <= now + 24 * 3600);
        let public = URL_SAFE_NO_PAD.decode(key).expect("b64");
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("a valid signature");
    }

    #[test]
    fn bad_keys_and_subjects_are_refused() {
        assert!(matches!(
            Vapid::from_base64("not base64!", "AAAA", "mailto:a@b.c"),
            Err(VapidError::BadKey(_))
        ));
        assert!(matches!(
            Vapid::from_base64(
                &URL_SAFE_NO_PAD.encode([1u8; 32]),
                &URL_SAFE_NO_PAD.encode([4u8; 65]),
                "mailto:a@b.c"
            ),
            Err(VapidError::BadKey(_))
        ));
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("a key");
        assert!(matches!(
            Vapid::from_pkcs8(pkcs8.as_ref(), "ops@example.com"),
            Err(VapidError::BadSubject)
        ));
    }
}
