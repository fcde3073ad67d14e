//! Shared state of the gateway: gRPC clients, token keys, Redis.

use messenger_platform::Config;
use messenger_platform::auth::{KeyRing, TokenKeys};
use messenger_platform::grpc::{TracePropagation, lazy_channel};
use messenger_proto::groups::v1::groups_service_client::GroupsServiceClient;
use messenger_proto::media::v1::media_service_client::MediaServiceClient;
use messenger_proto::messages::v1::messages_service_client::MessagesServiceClient;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

pub type UsersClient = UsersServiceClient<InterceptedService<Channel, TracePropagation>>;
pub type GroupsClient = GroupsServiceClient<InterceptedService<Channel, TracePropagation>>;
pub type MessagesClient = MessagesServiceClient<InterceptedService<Channel, TracePropagation>>;
pub type MediaClient = MediaServiceClient<InterceptedService<Channel, TracePropagation>>;

/// What the media routes need from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct MediaLimits {
    pub uploads_enabled: bool,
    pub max_image_bytes: u64,
    pub max_file_bytes: u64,
    /// Limit of one media call other than an upload (`grpc.timeout_ms`).
    pub call_timeout: Duration,
    /// Longest a client may go without sending upload bytes.
    pub upload_idle_timeout: Duration,
    /// Longest an upload may take in all, the service's answer included
    /// (`Config::media_upload_timeout`).
    pub upload_timeout: Duration,
}

impl MediaLimits {
    pub fn from_config(config: &Config) -> Self {
        let request = Duration::from_millis(config.server.request_timeout_ms);
        let max_image_bytes = config.media.max_image_bytes;
        let max_file_bytes = config.media.max_file_bytes;
        MediaLimits {
            uploads_enabled: config.features.file_upload_enabled,
            max_image_bytes,
            max_file_bytes,
            call_timeout: Duration::from_millis(config.grpc.timeout_ms),
            upload_idle_timeout: request,
            upload_timeout: config.media_upload_timeout(),
        }
    }

    /// The largest upload of any type.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_image_bytes.max(self.max_file_bytes)
    }
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    users: UsersClient,
    groups: GroupsClient,
    messages: MessagesClient,
    media: MediaClient,
    media_limits: MediaLimits,
    backends: Vec<(&'static str, HealthClient<Channel>)>,
    tokens: Arc<KeyRing>,
    redis: redis::Client,
    body_limit: usize,
    rate_limiter: Option<Arc<crate::ratelimit::RateLimiter>>,
    forwarded: Option<crate::http::rate_limit::Forwarded>,
    deny_list: crate::sessions::DenyList,
    ws_frames_per_second: Option<u32>,
    /// Set once at startup when WebSocket delivery is enabled.
    realtime: std::sync::OnceLock<Arc<crate::realtime::Realtime>>,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.grpc.timeout_ms);
        let users = lazy_channel(&config.grpc.users.url, timeout)?;
        // One connection per backend, shared by its API client and its
        // health check, so readiness reflects the channel requests use.
        let groups = lazy_channel(&config.grpc.groups.url, timeout)?;
        let messages = lazy_channel(&config.grpc.messages.url, timeout)?;
        // A channel's timeout bounds every call until its answer, and an
        // upload is answered only once the whole file went through: the
        // media channel allows a whole upload, and the other media calls
        // bound themselves by `media_limits.call_timeout`. (Health checks
        // carry their own timeout.)
        let media_limits = MediaLimits::from_config(config);
        let media = lazy_channel(&config.grpc.media.url, media_limits.upload_timeout)?;
        let backends = vec![
            ("users", HealthClient::new(users.clone())),
            ("groups", HealthClient::new(groups.clone())),
            ("messages", HealthClient::new(messages.clone())),
            ("media", HealthClient::new(media.clone())),
        ];
        Ok(AppState {
            inner: Arc::new(Inner {
                users: UsersServiceClient::with_interceptor(users, TracePropagation),
                groups: GroupsServiceClient::with_interceptor(groups, TracePropagation),
                messages: MessagesServiceClient::with_interceptor(messages, TracePropagation),
                media: MediaServiceClient::with_interceptor(media, TracePropagation),
                media_limits,
                backends,
                tokens: Arc::new(KeyRing::new(TokenKeys::from_config(&config.auth)?)),
                redis: redis::Client::open(config.redis.url())?,
                rate_limiter: rate_limiter(config)?,
                forwarded: forwarded(config)?,
                deny_list: crate::sessions::DenyList::new(
                    redis::Client::open(config.redis.url())?,
                    config.auth.access_ttl_seconds,
                    &config.kafka.topic_prefix,
                ),
                ws_frames_per_second: config
                    .features
                    .rate_limit_enabled
                    .then_some(config.rate_limit.ws_frames_per_second),
                realtime: std::sync::OnceLock::new(),
                body_limit: config.server.body_limit_bytes,
            }),
        })
    }

    pub fn users(&self) -> UsersClient {
        self.inner.users.clone()
    }

    pub fn groups(&self) -> GroupsClient {
        self.inner.groups.clone()
    }

    pub fn messages(&self) -> MessagesClient {
        self.inner.messages.clone()
    }

    pub fn media(&self) -> MediaClient {
        self.inner.media.clone()
    }

    pub fn media_limits(&self) -> &MediaLimits {
        &self.inner.media_limits
    }

    /// The JWT keys in force now (they rotate while the gateway runs).
    pub fn tokens(&self) -> Arc<TokenKeys> {
        self.inner.tokens.current()
    }

    /// The shared rate limiter, when rate limiting is on.
    pub fn rate_limiter(&self) -> Option<&crate::ratelimit::RateLimiter> {
        self.inner.rate_limiter.as_deref()
    }

    /// Sessions ended before their access tokens expired.
    pub fn deny_list(&self) -> &crate::sessions::DenyList {
        &self.inner.deny_list
    }

    pub fn forwarded(&self) -> Option<&crate::http::rate_limit::Forwarded> {
        self.inner.forwarded.as_ref()
    }

    /// Frames one socket may send per second, when rate limiting is on.
    pub fn ws_frames_per_second(&self) -> Option<u32> {
        self.inner.ws_frames_per_second
    }

    pub fn key_ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.inner.tokens)
    }

    pub fn backends(&self) -> &[(&'static str, HealthClient<Channel>)] {
        &self.inner.backends
    }

    pub fn set_realtime(&self, realtime: Arc<crate::realtime::Realtime>) {
        let _ = self.inner.realtime.set(realtime);
    }

    pub fn realtime(&self) -> Option<Arc<crate::realtime::Realtime>> {
        self.inner.realtime.get().cloned()
    }

    pub fn redis(&self) -> &redis::Client {
        &self.inner.redis
    }

    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }
}

/// Runs one gRPC call, recording `grpc_client_requests_total` and
/// `grpc_client_duration_seconds` by method and status code.
pub async fn call<T>(
    method: &'static str,
    future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let started = Instant::now();
    let result = future.await;
    let code = match &result {
        Ok(_) => "Ok".to_owned(),
        Err(status) => format!("{:?}", status.code()),
    };
    metrics::histogram!("grpc_client_duration_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("grpc_client_requests_total", "method" => method, "code" => code)
        .increment(1);
    result.map(tonic::Response::into_inner)
}

fn rate_limiter(config: &Config) -> anyhow::Result<Option<Arc<crate::ratelimit::RateLimiter>>> {
    if !config.features.rate_limit_enabled {
        return Ok(None);
    }
    let limits = &config.rate_limit;
    Ok(Some(Arc::new(crate::ratelimit::RateLimiter::new(
        redis::Client::open(config.redis.url())?,
        crate::ratelimit::Limits {
            auth: limits.auth_per_minute,
            send: limits.send_per_minute,
            upload: limits.upload_per_minute,
            search: limits.search_per_minute,
            default: limits.default_per_minute,
        },
        // Fleets sharing one Redis (and parallel tests) keep apart by the
        // prefix that already keeps their Kafka topics apart.
        &config.kafka.topic_prefix,
    ))))
}

fn forwarded(config: &Config) -> anyhow::Result<Option<crate::http::rate_limit::Forwarded>> {
    let name = config.rate_limit.client_ip_header.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let header =
        axum::http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
            anyhow::anyhow!("rate_limit.client_ip_header: {name:?} is not a header name")
        })?;
    let trusted = config
        .rate_limit
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
    Ok(Some(crate::http::rate_limit::Forwarded { header, trusted }))
}
