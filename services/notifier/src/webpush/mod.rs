//! Web Push (RFC 8030) with encrypted payloads (RFC 8291) and VAPID
//! (RFC 8292): what browsers, and UnifiedPush distributors on phones,
//! receive without any vendor account. Every request leaves through the
//! egress guard: a subscription's endpoint is a URL a user supplied.

mod ece;
mod vapid;

pub use ece::{EceError, MAX_PLAINTEXT};
pub use vapid::{Vapid, VapidError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use messenger_platform::egress::{Egress, EgressError};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use ring::rand::SystemRandom;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A browser's subscription as `PushSubscription.toJSON()` gives it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Subscription {
    pub endpoint: String,
    /// `keys.p256dh`: base64url of the browser's P-256 public key.
    pub p256dh: String,
    /// `keys.auth`: base64url of its 16-byte authentication secret.
    pub auth: String,
}

/// How soon the device should wake for it (RFC 8030 section 5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    VeryLow,
    Low,
    Normal,
    High,
}

impl Urgency {
    fn header(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// One push message.
pub struct Push<'a> {
    pub payload: &'a [u8],
    /// How long the push service keeps it for an offline device.
    pub ttl: Duration,
    pub urgency: Urgency,
    /// Replaces an undelivered message with the same topic (RFC 8030
    /// section 5.4): how retries and updates stay one notification.
    pub topic: Option<&'a str>,
}

/// What the push service said.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted for delivery.
    Accepted,
    /// 404 or 410: the subscription is gone for good; delete it.
    Gone,
    /// 429 or 5xx: try again, no sooner than this when it said.
    Retry(Option<Duration>),
    /// Any other refusal (400, 401, 403, 413): the request was wrong, and
    /// sending it again would not help.
    Rejected(u16),
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid subscription: {0}")]
    Subscription(&'static str),
    #[error("invalid topic: at most 32 characters of the base64url alphabet")]
    Topic,
    #[error(transparent)]
    Payload(#[from] EceError),
    #[error(transparent)]
    Vapid(#[from] VapidError),
    #[error(transparent)]
    Egress(#[from] EgressError),
}

/// Sends push messages.
pub struct WebPush {
    egress: Egress,
    vapid: Arc<Vapid>,
    rng: SystemRandom,
}

impl WebPush {
    pub fn new(egress: Egress, vapid: Arc<Vapid>) -> WebPush {
        WebPush {
            egress,
            vapid,
            rng: SystemRandom::new(),
        }
    }

    pub fn vapid(&self) -> &Vapid {
        &self.vapid
    }

    /// The guard every push goes through (registration checks endpoints
    /// with it too).
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Encrypts and sends one message to one subscription.
    pub async fn send(
        &self,
        subscription: &Subscription,
        push: &Push<'_>,
    ) -> Result<Outcome, PushError> {
        let endpoint: reqwest::Url = subscription
            .endpoint
            .parse()
            .map_err(|_| PushError::Subscription("the endpoint is not a URL"))?;
        self.egress.check_url(&endpoint)?;
        let (public_key, auth_secret) = receiver_keys(subscription)?;
        if let Some(topic) = push.topic
            && !valid_topic(topic)
        {
            return Err(PushError::Topic);
        }
        let body = ece::encrypt(
            push.payload,
            &ece::ReceiverKeys {
                public_key: &public_key,
                auth_secret: &auth_secret,
            },
            &self.rng,
        )?;
        let mut request = self
            .egress
            .client()
            .post(endpoint.clone())
            .header("TTL", push.ttl.as_secs().to_string())
            .header("Urgency", push.urgency.header())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", self.vapid.authorization(&endpoint)?)
            .body(body);
        if let Some(topic) = push.topic {
            request = request.header("Topic", topic);
        }
        let request = request
            .build()
            .map_err(|_| PushError::Subscription("the endpoint cannot be requested"))?;
        let response = self.egress.execute(request).await?;
        Ok(outcome(response.status.as_u16(), &response.headers))
    }
}

impl Subscription {
    /// Whether the keys are what RFC 8291 needs (checked at registration,
    /// so a push never fails on them later).
    pub fn check_keys(&self) -> Result<(), PushError> {
        receiver_keys(self).map(|_| ())
    }
}

/// The subscription's public key and auth secret, decoded and checked.
fn receiver_keys(subscription: &Subscription) -> Result<(Vec<u8>, [u8; 16]), PushError> {
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text.trim().trim_end_matches('='));
    let public_key = decode(&subscription.p256dh)
        .ok()
        .filter(|key| key.len() == 65 && key[0] == 0x04)
        .ok_or(PushError::Subscription(
            "p256dh is not an uncompressed P-256 key",
        ))?;
    let auth_secret = decode(&subscription.auth)
        .ok()
        .and_then(|secret| <[u8; 16]>::try_from(secret.as_slice()).ok())
        .ok_or(PushError::Subscription("auth is not a 16-byte secret"))?;
    Ok((public_key, auth_secret))
}

/// RFC 8030 section 5.4: at most 32 characters of the URL-safe base64
/// alphabet.
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 32
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 8030 defines no redirects for a push: give [`WebPush`] an egress
/// guard with `max_redirects: 0`, and a 3xx it is shown is refused here.
fn outcome(status: u16, headers: &HeaderMap) -> Outcome {
    match status {
        200..=299 => Outcome::Accepted,
        404 | 410 => Outcome::Gone,
        429 | 500..=599 => Outcome::Retry(retry_after(headers)),
        other => Outcome::Rejected(other),
    }
}

/// The longest wait a push service's `Retry-After` is taken at: the
/// endpoint is a URL someone supplied, and "retry in a century" must not
/// park (or overflow) the retry.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds or as an HTTP date, at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(SystemTime::now()).unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn push_service_answers_map_to_what_to_do() {
        let none = HeaderMap::new();
        assert_eq!(outcome(201, &none), Outcome::Accepted);
        assert_eq!(outcome(410, &none), Outcome::Gone);
        assert_eq!(outcome(404, &none), Outcome::Gone);
        assert_eq!(outcome(413, &none), Outcome::Rejected(413));
        assert_eq!(outcome(503, &none), Outcome::Retry(None));
        let mut later = HeaderMap::new();
        later.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            outcome(429, &later),
            Outcome::Retry(Some(Duration::from_secs(7)))
        );
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        later.insert(RETRY_AFTER, HeaderValue::from_str(&date).expect("header"));
        let Outcome::Retry(Some(wait)) = outcome(503, &later) else {
            panic!("a retry with a delay");
        };
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        later.insert(
            RETRY_AFTER,
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(outcome(429, &later), Outcome::Retry(Some(MAX_RETRY_AFTER)));
    }

    #[test]
    fn topics_follow_rfc_8030() {
        assert!(valid_topic("c-0191a2b3_chan"));
        assert!(valid_topic(&"a".repeat(32)));
        assert!(!valid_topic(&"a".repeat(33)));
        assert!(!valid_topic("has space"));
        assert!(!valid_topic("slash/no"));
        assert!(!valid_topic(""));
    }
}
