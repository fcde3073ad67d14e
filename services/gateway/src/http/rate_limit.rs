//! Every API request is counted against its route class (see
//! `crate::ratelimit`): signed-in callers per user, others per client
//! address. Answers carry `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset`; a refused request gets 429 with `Retry-After`.

use crate::error::ApiError;
use crate::ratelimit::{Class, Decision};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(limiter) = state.rate_limiter() else {
        return next.run(request).await;
    };
    let Some(class) = classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let subject = subject(&state, &request, class);
    match limiter.check(class, &subject).await {
        Some(decision) if !decision.allowed => {
            ApiError::too_many_requests(decision).into_response()
        }
        Some(decision) => {
            let mut response = next.run(request).await;
            set_headers(response.headers_mut(), decision);
            response
        }
        None => next.run(request).await,
    }
}

/// The route class of a request; `None` for what is never limited (health
/// probes, the API document).
pub fn classify(method: &Method, path: &str) -> Option<Class> {
    if path == "/ws" {
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

fn subject(state: &AppState, request: &Request, class: Class) -> String {
    if class != Class::Auth {
        let bearer = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        // Only a valid token names a user: anything else counts against the
        // address, so forged tokens cannot mint fresh buckets.
        if let Some(principal) = bearer.and_then(|token| state.tokens().verify(token).ok()) {
            return format!("user:{}", principal.user_id);
        }
    }
    format!("ip:{}", client_address(state, request))
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

fn client_address(state: &AppState, request: &Request) -> String {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    client_ip(state, peer, request.headers())
}

/// The caller's address: the TCP peer, or the client our trusted proxies
/// name in the configured header.
pub fn client_ip(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
    let Some(peer) = peer else {
        return "unknown".to_owned();
    };
    let Some(forwarded) = state.forwarded() else {
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

pub fn set_headers(headers: &mut HeaderMap, decision: Decision) {
    for (name, value) in [
        ("ratelimit-limit", u64::from(decision.limit)),
        ("ratelimit-remaining", u64::from(decision.remaining)),
        ("ratelimit-reset", decision.reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
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
