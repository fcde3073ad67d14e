//! The HTTP side of rate limiting: every API request is counted against
//! its route class, signed-in callers per user, others per client address.
//! Answers carry `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset`; a refused request gets 429 with `Retry-After`.

use super::{Class, Limits, RateLimiter};
use crate::error::{ApiError, ErrorCode};
use crate::settings::RateLimitSettings;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use messenger_platform::Config;
use messenger_platform::identity::UserTokens;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What the rate-limit layer needs: the limiter (when limiting is on), the
/// proxies whose forwarding header names the client, and the token keys
/// that tell a signed-in caller.
#[derive(Clone)]
pub struct Guard {
    limiter: Option<Arc<RateLimiter>>,
    forwarded: Option<Arc<Forwarded>>,
    tokens: Arc<UserTokens>,
}

impl Guard {
    pub fn from_config(
        config: &Config,
        limits: &RateLimitSettings,
        tokens: Arc<UserTokens>,
    ) -> anyhow::Result<Self> {
        Ok(Guard {
            limiter: limiter(config, limits)?.map(Arc::new),
            forwarded: forwarded(limits)?.map(Arc::new),
            tokens,
        })
    }

    /// The caller's address: the TCP peer, or the client our trusted proxies
    /// name in the configured header.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
        let Some(peer) = peer else {
            return "unknown".to_owned();
        };
        let Some(forwarded) = &self.forwarded else {
            return peer.ip().to_string();
        };
        let values: Vec<&str> = headers
            .get_all(&forwarded.header)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let hops = values.iter().flat_map(|value| value.split(','));
        forwarded.client(peer.ip(), hops).to_string()
    }

    /// The request's bearer token (not for sign-in routes) and its client
    /// address, read before anything is awaited.
    fn identities(&self, request: &Request, class: Class) -> (Option<String>, String) {
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .filter(|_| class != Class::Auth)
            .map(str::to_owned);
        (bearer, self.address_subject(request))
    }

    /// The bucket: the user of a valid token, else the client address.
    async fn subject(&self, bearer: Option<String>, address: String) -> String {
        // Only a valid token names a user: anything else counts against
        // the address, so forged tokens cannot mint fresh buckets.
        if let Some(token) = bearer
            && let Ok((principal, _)) = self.tokens.verify(&token).await
        {
            return format!("user:{}", principal.user_id);
        }
        address
    }

    fn address_subject(&self, request: &Request) -> String {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        format!("ip:{}", self.client_ip(peer, request.headers()))
    }
}

/// The middleware: counts the request, refuses it over the allowance.
pub async fn limit(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let Some(limiter) = &guard.limiter else {
        return next.run(request).await;
    };
    let Some(class) = classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let (bearer, address) = guard.identities(&request, class);
    let subject = guard.subject(bearer, address).await;
    match limiter.check(class, &subject).await {
        Some(decision) if !decision.allowed => refusal(decision).into_response(),
        Some(decision) => {
            let mut response = next.run(request).await;
            response.headers_mut().extend(allowance_headers(decision));
            response
        }
        None => next.run(request).await,
    }
}

/// 429: the caller used up its allowance for this kind of request.
fn refusal(decision: super::Decision) -> ApiError {
    let wait = decision.retry_after.max(1);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("too many requests; retry in {wait} s"),
    )
    .with_detail("retry_after", wait);
    error.retry_after = Some(wait);
    error.headers = Some(Box::new(allowance_headers(decision)));
    error
}

fn allowance_headers(decision: super::Decision) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("ratelimit-limit", u64::from(decision.limit)),
        ("ratelimit-remaining", u64::from(decision.remaining)),
        ("ratelimit-reset", decision.reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    headers
}

/// The route class of a request; `None` for what is never limited (health
/// probes, the API document).
pub fn classify(method: &Method, path: &str) -> Option<Class> {
    // The key set is read from the users service: limited like the API.
    if path == "/ws" || path == "/.well-known/jwks.json" {
        return Some(Class::Default);
    }
    let route = path.strip_prefix("/api/v1")?;
    let reads = method == Method::GET || method == Method::HEAD;
    Some(match route {
        "/health" | "/ready" | "/openapi.json" => return None,
        "/auth/logout" => Class::Default,
        _ if route.starts_with("/auth/") => Class::Auth,
        // Creating an account hashes a password, like registering.
        "/users" if method == Method::POST => Class::Auth,
        "/media" if method == Method::POST => Class::Upload,
        "/users" if reads => Class::Search,
        _ if reads && route.starts_with("/search/") => Class::Search,
        _ if !reads && (route.starts_with("/messages") || route.ends_with("/messages")) => {
            Class::Send
        }
        _ => Class::Default,
    })
}

/// The header our proxies append the client address to, and their networks.
pub struct Forwarded {
    pub header: axum::http::HeaderName,
    pub trusted: Vec<ipnet::IpNet>,
}

impl Forwarded {
    fn trusts(&self, address: IpAddr) -> bool {
        self.trusted
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The client behind `peer`: from a trusted peer, the header's hops are
    /// read from the right (each proxy appends what it saw) and the first
    /// address outside the trusted networks is the client. A hop that is no
    /// address ends the walk: everything left of it was written by the
    /// client, so the last trusted hop answers instead.
    fn client<'a>(&self, peer: IpAddr, hops: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in hops.rev().map(str::trim).filter(|hop| !hop.is_empty()) {
            let Ok(address) = hop.parse::<IpAddr>() else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

fn limiter(config: &Config, limits: &RateLimitSettings) -> anyhow::Result<Option<RateLimiter>> {
    if !config.features.rate_limit_enabled {
        return Ok(None);
    }
    Ok(Some(RateLimiter::new(
        redis::Client::open(config.redis.url())?,
        Limits {
            auth: limits.auth_per_minute,
            send: limits.send_per_minute,
            upload: limits.upload_per_minute,
            search: limits.search_per_minute,
            default: limits.default_per_minute,
        },
        // Fleets sharing one Redis (and parallel tests) keep apart by the
        // prefix that already keeps their Kafka topics apart.
        &config.kafka.topic_prefix,
    )))
}

fn forwarded(limits: &RateLimitSettings) -> anyhow::Result<Option<Forwarded>> {
    let name = limits.client_ip_header.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let header =
        axum::http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
            anyhow::anyhow!("rate_limit.client_ip_header: {name:?} is not a header name")
        })?;
    let trusted = limits
        .trusted_proxies
        .split(',')
        .map(str::trim)
        .filter(|network| !network.is_empty())
        .map(|network| {
            network.parse::<ipnet::IpNet>().map_err(|_| {
                anyhow::anyhow!(
                    "rate_limit.trusted_proxies (env RATE_LIMIT_TRUSTED_PROXIES): {network:?} is not a network like 10.0.0.0/8"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if trusted.is_empty() {
        anyhow::bail!(
            "rate_limit.trusted_proxies (env RATE_LIMIT_TRUSTED_PROXIES) is required with \
             rate_limit.client_ip_header: without it any client could name its own address"
        );
    }
    Ok(Some(Forwarded { header, trusted }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let forwarded = Forwarded {
            header: axum::http::HeaderName::from_static("x-forwarded-for"),
            trusted: vec!["10.0.0.0/8".parse().expect("net")],
        };
        let ip = |raw: &str| raw.parse::<IpAddr>().expect("ip");
        let proxy = ip("10.1.2.3");
        let client = |peer, header: &str| forwarded.client(peer, header.split(','));
        // A direct client cannot name another address.
        assert_eq!(client(ip("203.0.113.9"), "198.51.100.1"), ip("203.0.113.9"));
        // Through our proxy: the hop it appended, not what the client wrote.
        assert_eq!(client(proxy, "1.2.3.4, 203.0.113.9"), ip("203.0.113.9"));
        // Two proxies of ours: skip the inner one.
        assert_eq!(client(proxy, "203.0.113.9, 10.9.9.9"), ip("203.0.113.9"));
        // Garbage ends the walk at the last address a proxy wrote.
        assert_eq!(client(proxy, "203.0.113.9, junk, 10.9.9.9"), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(client(proxy, ""), proxy);
    }

    #[test]
    fn routes_fall_into_their_classes() {
        let cases = [
            (Method::POST, "/api/v1/auth/login", Some(Class::Auth)),
            (Method::POST, "/api/v1/auth/register", Some(Class::Auth)),
            (Method::POST, "/api/v1/auth/logout", Some(Class::Default)),
            (Method::POST, "/api/v1/users", Some(Class::Auth)),
            (Method::POST, "/api/v1/messages", Some(Class::Send)),
            (
                Method::POST,
                "/api/v1/channels/x/messages",
                Some(Class::Send),
            ),
            (Method::PATCH, "/api/v1/messages/x", Some(Class::Send)),
            (
                Method::POST,
                "/api/v1/messages/x/reactions",
                Some(Class::Send),
            ),
            (
                Method::GET,
                "/api/v1/channels/x/messages",
                Some(Class::Default),
            ),
            (Method::POST, "/api/v1/media", Some(Class::Upload)),
            (Method::GET, "/api/v1/media/x", Some(Class::Default)),
            (Method::GET, "/api/v1/users", Some(Class::Search)),
            (Method::GET, "/api/v1/search/messages", Some(Class::Search)),
            (Method::GET, "/api/v1/groups", Some(Class::Default)),
            (Method::GET, "/ws", Some(Class::Default)),
            (Method::GET, "/api/v1/health", None),
            (Method::GET, "/api/v1/ready", None),
            (Method::GET, "/metrics", None),
        ];
        for (method, path, class) in cases {
            assert_eq!(classify(&method, path), class, "{method} {path}");
        }
    }
}
