//! The egress guard: HTTP requests to URLs that users, integrations or
//! push services supply, without letting those URLs reach inside the
//! operator's network (SSRF).
//!
//! Every address is judged where the connection is made: a host name is
//! resolved by the guard's resolver, which refuses the whole name when any
//! of its addresses is forbidden, and the connector dials only what that
//! resolver returned, so a name cannot answer "public" to a check and
//! "private" to the connection (DNS rebinding). Literal addresses, which
//! skip resolution, are judged before the request is sent, and so is every
//! redirect. Proxies from the environment are ignored: they would move the
//! connection out of the guard's sight. Responses are read up to a size
//! limit, within a time limit.

mod address;
mod resolve;

pub use address::{Forbidden, forbidden, refused};
pub use resolve::{Lookup, SystemLookup};

use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use reqwest::redirect;
use serde::Deserialize;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the guard lets through. Deserializes from a configuration section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressPolicy {
    /// Networks reachable despite being special-purpose (CIDR), for a relay
    /// the operator runs on the private network. Empty: none.
    #[serde(default)]
    pub allow_networks: Vec<IpNet>,
    /// Plain `http://` targets; otherwise only `https://`.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Whole request, from connecting to the last byte of the answer.
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Answers longer than this are cut off and reported as too large.
    pub max_response_bytes: usize,
    /// Redirects followed, each judged like the first URL.
    pub max_redirects: usize,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy {
            allow_networks: Vec::new(),
            allow_plain_http: false,
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            max_response_bytes: 64 * 1024,
            max_redirects: 3,
        }
    }
}

/// Why a request did not complete.
#[derive(Clone, Debug, thiserror::Error)]
pub enum EgressError {
    /// The URL or a redirect pointed somewhere the policy forbids. Nothing
    /// was sent there.
    #[error("refused: {host} is {reason}")]
    Refused { host: String, reason: Forbidden },
    #[error("refused: {0}")]
    BadTarget(String),
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("no answer in time")]
    Timeout,
    #[error("could not reach the target: {0}")]
    Unreachable(String),
}

/// An answer, read in full (up to the policy's limit).
#[derive(Debug)]
pub struct EgressResponse {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

/// An HTTP client that only reaches what the policy allows.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl Egress {
    /// A guard that resolves names with the system resolver.
    pub fn new(policy: EgressPolicy) -> anyhow::Result<Self> {
        Self::with_lookup(policy, Arc::new(SystemLookup))
    }

    /// A guard that resolves names with `lookup` (tests give it a table).
    pub fn with_lookup(policy: EgressPolicy, lookup: Arc<dyn Lookup>) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(resolve::Guarded::new(lookup, policy.clone())))
            .redirect(redirect_policy(policy.clone()))
            .timeout(Duration::from_millis(policy.timeout_ms))
            .connect_timeout(Duration::from_millis(policy.connect_timeout_ms))
            .build()?;
        Ok(Egress { client, policy })
    }

    /// For building requests. Send them only with [`Egress::execute`]:
    /// a name is judged by the resolver whichever way a request goes, but
    /// a literal address and the size limit only there.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Judges a URL as far as can be done without resolving it: its scheme
    /// and, when its host is an address, that address.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), EgressError> {
        check_url(&self.policy, url)
    }

    /// Sends `request` if its URL passes and reads the answer.
    pub async fn execute(&self, request: reqwest::Request) -> Result<EgressResponse, EgressError> {
        let outcome = self.send(request).await;
        if let Err(EgressError::Refused { reason, .. }) = &outcome {
            metrics::counter!("egress_refused_total", "reason" => reason.label()).increment(1);
        }
        outcome
    }

    async fn send(&self, request: reqwest::Request) -> Result<EgressResponse, EgressError> {
        self.check_url(request.url())?;
        let response = self.client.execute(request).await.map_err(explain)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_limited(response, self.policy.max_response_bytes).await?;
        Ok(EgressResponse {
            status,
            headers,
            body,
        })
    }
}

fn check_url(policy: &EgressPolicy, url: &reqwest::Url) -> Result<(), EgressError> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_plain_http => {}
        other => {
            return Err(EgressError::BadTarget(format!(
                "the scheme {other}:// is not allowed"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EgressError::BadTarget(
            "credentials in the URL are not allowed".into(),
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| EgressError::BadTarget("the URL has no host".into()))?;
    // The URL parser has already normalised address forms (`0x7f.1`,
    // `2130706433`) into dotted or bracketed ones.
    let Ok(literal) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    match refused(literal, &policy.allow_networks) {
        Some(reason) => Err(EgressError::Refused {
            host: literal.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Follows at most `max_redirects`, each to a URL that passes on its own.
fn redirect_policy(policy: Arc<EgressPolicy>) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > policy.max_redirects {
            let limit = policy.max_redirects;
            return attempt.error(EgressError::TooManyRedirects(limit));
        }
        match check_url(&policy, attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    })
}

/// Reads the body, refusing to hold more than `limit` bytes of it.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Bytes, EgressError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(EgressError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(explain)? {
        if body.len() + chunk.len() > limit {
            return Err(EgressError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Finds the guard's own refusal inside reqwest's error chain, so callers
/// see "refused: … is a private address" rather than a connect error.
fn explain(err: reqwest::Error) -> EgressError {
    if err.is_timeout() {
        return EgressError::Timeout;
    }
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(inner) = source {
        if let Some(refusal) = inner.downcast_ref::<EgressError>() {
            return refusal.clone();
        }
        source = inner.source();
    }
    EgressError::Unreachable(err.without_url().to_string())
}
