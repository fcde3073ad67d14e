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
use std::net::SocketAddr;

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

/// The caller's address: the last hop of the configured proxy header (the
/// address our own proxy saw) or the TCP peer.
fn client_address(state: &AppState, request: &Request) -> String {
    if let Some(header) = state.client_ip_header() {
        let forwarded = request
            .headers()
            .get_all(header)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .rfind(|hop| !hop.is_empty());
        if let Some(hop) = forwarded {
            return hop.to_owned();
        }
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
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
    fn routes_fall_into_their_classes() {
        let cases = [
            (Method::POST, "/api/v1/auth/login", Some(Class::Auth)),
            (Method::POST, "/api/v1/auth/register", Some(Class::Auth)),
            (Method::POST, "/api/v1/auth/logout", Some(Class::Default)),
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
