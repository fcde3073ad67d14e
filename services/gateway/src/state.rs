//! Shared state of the gateway, built in one step at startup: gRPC
//! clients, the user-token verifier (with the session deny-list), the
//! rate-limit guard and,
//! when WebSocket delivery is on, the realtime hub.

use crate::backends::{GroupsClient, MediaClient, MessagesClient, NotifierClient, UsersClient};
use crate::ratelimit::Guard;
use crate::realtime::{Realtime, Wiring};
use crate::settings::{RateLimitSettings, UploadLimits, WebSocketSettings};
use messenger_platform::callers::Caller;
use messenger_platform::grpc::{TracePropagation, deny_list, lazy_channel};
use messenger_platform::identity::UserTokens;
use messenger_platform::mtls::Transport;
use messenger_platform::sessions::DenyList;
use messenger_platform::{CancellationToken, Config};
use messenger_proto::groups::v1::groups_service_client::GroupsServiceClient;
use messenger_proto::media::v1::media_service_client::MediaServiceClient;
use messenger_proto::messages::v1::messages_service_client::MessagesServiceClient;
use messenger_proto::notifier::v1::notifier_service_client::NotifierServiceClient;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

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
    /// (the media service allows the same).
    pub upload_timeout: Duration,
}

impl MediaLimits {
    pub fn new(config: &Config, upload: &UploadLimits) -> Self {
        let request = Duration::from_millis(config.server.request_timeout_ms);
        MediaLimits {
            uploads_enabled: config.features.file_upload_enabled,
            max_image_bytes: upload.max_image_bytes,
            max_file_bytes: upload.max_file_bytes,
            call_timeout: Duration::from_millis(config.grpc.timeout_ms),
            upload_idle_timeout: request,
            upload_timeout: upload.upload_timeout(&config.server),
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
    notifier: NotifierClient,
    backends: Vec<(&'static str, HealthClient<Channel>)>,
    tokens: Arc<UserTokens>,
    redis: redis::Client,
    body_limit: usize,
    guard: Guard,
    /// Present when WebSocket delivery is enabled.
    realtime: Option<Arc<Realtime>>,
}

impl AppState {
    /// Builds the state and starts what runs beside the API (the realtime
    /// hub, fan-out and presence sweeper, when enabled); those stop with
    /// `shutdown`.
    pub fn start(
        config: &Config,
        transport: &Transport,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        // Every section is checked at start, used or not: a bad setting
        // fails here, before the port is bound.
        let websocket: WebSocketSettings = config.section()?;
        let rate_limits: RateLimitSettings = config.section()?;
        let upload: UploadLimits = config.section()?;
        let timeout = Duration::from_millis(config.grpc.timeout_ms);
        let users = lazy_channel(transport, Caller::Users, &config.grpc.users.url, timeout)?;
        // One connection per backend, shared by its API client and its
        // health check, so readiness reflects the channel requests use.
        let groups = lazy_channel(transport, Caller::Groups, &config.grpc.groups.url, timeout)?;
        let messages = lazy_channel(
            transport,
            Caller::Messages,
            &config.grpc.messages.url,
            timeout,
        )?;
        // A channel's timeout bounds every call until its answer, and an
        // upload is answered only once the whole file went through: the
        // media channel allows a whole upload, and the other media calls
        // bound themselves by `media_limits.call_timeout`. (Health checks
        // carry their own timeout.)
        let media_limits = MediaLimits::new(config, &upload);
        let media = lazy_channel(
            transport,
            Caller::Media,
            &config.grpc.media.url,
            media_limits.upload_timeout,
        )?;
        // Not among the readiness backends: without push the API still
        // serves, so a notifier outage must not take the gateway out.
        let notifier = lazy_channel(
            transport,
            Caller::Notifier,
            &config.grpc.notifier.url,
            timeout,
        )?;
        let backends = vec![
            ("users", HealthClient::new(users.clone())),
            ("groups", HealthClient::new(groups.clone())),
            ("messages", HealthClient::new(messages.clone())),
            ("media", HealthClient::new(media.clone())),
        ];
        let groups = GroupsServiceClient::with_interceptor(groups, TracePropagation);
        // The edge verifies every token itself, whatever `grpc.user_tokens`
        // says about the services behind it.
        let tokens =
            UserTokens::from_users(users.clone(), &config.auth.jwt_issuer, deny_list(config)?);
        let redis = redis::Client::open(config.redis.url())?;
        let realtime = config.features.websocket_enabled.then(|| {
            let wiring = Wiring {
                redis: redis.clone(),
                tokens: Arc::clone(&tokens),
                access: Arc::new(crate::realtime::GroupsAccess::new(groups.clone())),
                frames_per_second: config
                    .features
                    .rate_limit_enabled
                    .then_some(rate_limits.ws_frames_per_second),
                settings: websocket,
            };
            Realtime::start(config, wiring, shutdown)
        });
        Ok(AppState {
            inner: Arc::new(Inner {
                users: UsersServiceClient::with_interceptor(users, TracePropagation),
                groups,
                messages: MessagesServiceClient::with_interceptor(messages, TracePropagation),
                media: MediaServiceClient::with_interceptor(media, TracePropagation),
                media_limits,
                notifier: NotifierServiceClient::with_interceptor(notifier, TracePropagation),
                backends,
                guard: Guard::from_config(config, &rate_limits, Arc::clone(&tokens))?,
                tokens,
                redis,
                realtime,
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

    pub fn notifier(&self) -> NotifierClient {
        self.inner.notifier.clone()
    }

    pub fn media_limits(&self) -> &MediaLimits {
        &self.inner.media_limits
    }

    /// Verifies access tokens with the users service's public keys.
    pub fn user_tokens(&self) -> &Arc<UserTokens> {
        &self.inner.tokens
    }

    /// Sessions ended before their access tokens expired.
    pub fn deny_list(&self) -> &DenyList {
        self.inner.tokens.deny_list()
    }

    /// The rate-limit layer's state.
    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    pub fn backends(&self) -> &[(&'static str, HealthClient<Channel>)] {
        &self.inner.backends
    }

    pub fn realtime(&self) -> Option<&Arc<Realtime>> {
        self.inner.realtime.as_ref()
    }

    pub fn redis(&self) -> &redis::Client {
        &self.inner.redis
    }

    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }
}
