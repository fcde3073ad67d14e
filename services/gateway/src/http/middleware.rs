//! The layers every request passes through, outermost first.

use crate::error::{ApiError, ErrorCode};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use messenger_platform::Config;
use std::time::{Duration, Instant};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route whose request body may take long to arrive.
const UPLOAD_PATH: &str = "/api/v1/media";

/// How long a request may take until its response starts (a response
/// body, e.g. a download, is not timed).
#[derive(Clone, Copy)]
struct Timeouts {
    request: Duration,
    /// Uploads: a large file at a slow rate. The upload route also fails
    /// one that stalls for `request`.
    upload: Duration,
}

pub fn apply(router: Router, config: &Config, upload_timeout: Duration) -> Router {
    let timeouts = Timeouts {
        request: Duration::from_millis(config.server.request_timeout_ms),
        upload: upload_timeout,
    };
    router.layer(
        ServiceBuilder::new()
            // A request id on every request (kept if the client sent one) and
            // echoed on the response, so a client report can be found in logs.
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            // One span per request, continuing the caller's W3C trace.
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(from_fn(record_metrics))
            .layer(cors(config))
            .layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ))
            // Nothing the API serves is a page: never framed, never leaking
            // its URL, and user files opened directly run no script.
            .layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static("x-frame-options"),
                HeaderValue::from_static("DENY"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox"),
            ))
            // Bounds the time a slow client or backend can hold a request.
            .layer(from_fn_with_state(timeouts, limit_time)),
    )
}

/// Like `tower_http`'s `TimeoutLayer`, with a longer limit for uploads and
/// the API's error body on the 408.
async fn limit_time(State(timeouts): State<Timeouts>, request: Request, next: Next) -> Response {
    let limit = if request.method() == Method::POST && request.uri().path() == UPLOAD_PATH {
        timeouts.upload
    } else {
        timeouts.request
    };
    tokio::time::timeout(limit, next.run(request))
        .await
        .unwrap_or_else(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::RequestTimeout,
                "the request took too long",
            )
            .into_response()
        })
}

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    );
    messenger_platform::telemetry::set_parent_from_headers(&span, request.headers());
    span
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

fn cors(config: &Config) -> CorsLayer {
    let origins = config.server.cors_allowed_origins.trim();
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers(Any)
        // Browsers hide response headers from scripts unless listed.
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            axum::http::header::RETRY_AFTER,
            axum::http::header::ETAG,
            axum::http::header::CONTENT_DISPOSITION,
        ])
        .max_age(Duration::from_secs(600));
    if origins == "*" {
        if !config.features.debug_enabled {
            tracing::warn!(
                "CORS allows every origin (CORS_ALLOWED_ORIGINS=*): meant for development; list the web clients' origins in production"
            );
        }
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins
            .split(',')
            .filter_map(|origin| HeaderValue::from_str(origin.trim()).ok())
            .collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}
