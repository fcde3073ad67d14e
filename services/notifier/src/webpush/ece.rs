//! Message encryption for Web Push (RFC 8291) in the `aes128gcm` content
//! coding (RFC 8188): only the browser that made the subscription can read
//! the payload; the push service carries ciphertext.

use ring::rand::SecureRandom;
use ring::{aead, agreement, hkdf};

/// A record of at most 4096 bytes is what every push service must accept
/// (RFC 8030 section 7.2); one record carries the whole payload.
pub const RECORD_SIZE: usize = 4096;
const HEADER_LEN: usize = 16 + 4 + 1 + PUBLIC_KEY_LEN;
const TAG_LEN: usize = 16;
/// The largest plaintext that fits one record (after its delimiter byte).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE - HEADER_LEN - TAG_LEN - 1;
/// An uncompressed P-256 point.
pub const PUBLIC_KEY_LEN: usize = 65;
pub const AUTH_SECRET_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EceError {
    #[error("the payload is {0} bytes; at most {MAX_PLAINTEXT} fit a push message")]
    TooLarge(usize),
    #[error("the subscription's p256dh key is not a P-256 public key")]
    BadKey,
    #[error("encryption failed")]
    Crypto,
}

impl From<ring::error::Unspecified> for EceError {
    fn from(_: ring::error::Unspecified) -> Self {
        EceError::Crypto
    }
}

/// The keys a browser gives with its subscription (`keys.p256dh`,
/// `keys.auth`).
pub struct ReceiverKeys<'a> {
    pub public_key: &'a [u8],
    pub auth_secret: &'a [u8; AUTH_SECRET_LEN],
}

/// Encrypts `plaintext` for the receiver: the whole body of the push
/// request (`Content-Encoding: aes128gcm`). A fresh key pair and salt are
/// drawn from `rng` for every message.
pub fn encrypt(
    plaintext: &[u8],
    receiver: &ReceiverKeys<'_>,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, EceError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EceError::TooLarge(plaintext.len()));
    }
    if receiver.public_key.len() != PUBLIC_KEY_LEN || receiver.public_key[0] != 0x04 {
        return Err(EceError::BadKey);
    }
    let sender = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, rng)?;
    let sender_public = sender.compute_public_key()?;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)?;

    let receiver_public =
        agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, receiver.public_key);
    let ikm = agreement::agree_ephemeral(sender, &receiver_public, |shared| {
        input_keying_material(
            shared,
            receiver.auth_secret,
            receiver.public_key,
            sender_public.as_ref(),
        )
    })
    .map_err(|_| EceError::BadKey)??;

    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
    let mut key = [0u8; 16];
    let mut nonce = [0u8; 12];
    expand(&prk, b"Content-Encoding: aes128gcm\0", &mut key)?;
    expand(&prk, b"Content-Encoding: nonce\0", &mut nonce)?;

    // The payload, then 0x02: "this is the last record" (no padding).
    let mut record = Vec::with_capacity(HEADER_LEN + plaintext.len() + 1 + TAG_LEN);
    record.extend_from_slice(&salt);
    record.extend_from_slice(&(RECORD_SIZE as u32).to_be_bytes());
    record.push(PUBLIC_KEY_LEN as u8);
    record.extend_from_slice(sender_public.as_ref());
    let mut sealed = Vec::with_capacity(plaintext.len() + 1 + TAG_LEN);
    sealed.extend_from_slice(plaintext);
    sealed.push(0x02);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key)?);
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut sealed,
    )?;
    record.extend_from_slice(&sealed);
    Ok(record)
}

/// IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info\0" || ua_public ||
/// as_public), 32 bytes (RFC 8291 section 3.3).
fn input_keying_material(
    shared: &[u8],
    auth_secret: &[u8; AUTH_SECRET_LEN],
    receiver_public: &[u8],
    sender_public: &[u8],
) -> Result<[u8; 32], EceError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, auth_secret).extract(shared);
    let mut info = Vec::with_capacity(14 + 2 * PUBLIC_KEY_LEN);
    info.extend_from_slice(b"WebPush: info\0");
    info.extend_from_slice(receiver_public);
    info.extend_from_slice(sender_public);
    let mut ikm = [0u8; 32];
    expand(&prk, &info, &mut ikm)?;
    Ok(ikm)
}

/// HKDF-Expand into `out` (its length is the length asked for).
fn expand(prk: &hkdf::Prk, info: &[u8], out: &mut [u8]) -> Result<(), EceError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    prk.expand(&[info], Len(out.len()))?.fill(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn receiver_public() -> Vec<u8> {
        let rng = SystemRandom::new();
        let key =
            agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).expect("a key");
        key.compute_public_key().expect("public").as_ref().to_vec()
    }

    #[test]
    fn a_record_carries_salt_size_key_and_sealed_payload() {
        let public = receiver_public();
        let auth = [7u8; AUTH_SECRET_LEN];
        let keys = ReceiverKeys {
            public_key: &public,
            auth_secret: &auth,
        };
        let body = encrypt(b"hello", &keys, &SystemRandom::new()).expect("encrypted");
        assert_eq!(body.len(), HEADER_LEN + 5 + 1 + TAG_LEN);
        assert_eq!(&body[16..20], &4096u32.to_be_bytes());
        assert_eq!(body[20] as usize, PUBLIC_KEY_LEN);
        assert_eq!(body[21], 0x04, "the sender's key, uncompressed");
        let again = encrypt(b"hello", &keys, &SystemRandom::new()).expect("encrypted");
        assert_ne!(body, again, "a fresh key and salt every time");
    }

    #[test]
    fn oversized_payloads_and_bad_keys_are_refused() {
        let public = receiver_public();
        let auth = [7u8; AUTH_SECRET_LEN];
        let keys = ReceiverKeys {
            public_key: &public,
            auth_secret: &auth,
        };
        let rng = SystemRandom::new();
        assert!(encrypt(&vec![b'x'; MAX_PLAINTEXT], &keys, &rng).is_ok());
        assert_eq!(
            encrypt(&vec![b'x'; MAX_PLAINTEXT + 1], &keys, &rng),
            Err(EceError::TooLarge(MAX_PLAINTEXT + 1))
        );
        let mut off_curve = public.clone();
        off_curve[40] ^= 0xff;
        for bad in [&public[..33], &off_curve[..], &[0u8; 65][..]] {
            let keys = ReceiverKeys {
                public_key: bad,
                auth_secret: &auth,
            };
            assert_eq!(encrypt(b"hi", &keys, &rng), Err(EceError::BadKey));
        }
        assert_eq!(MAX_PLAINTEXT + HEADER_LEN + TAG_LEN + 1, RECORD_SIZE);
    }
}
