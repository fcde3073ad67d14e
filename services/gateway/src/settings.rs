//! The gateway's own settings sections: realtime delivery, rate limits,
//! and the media limits it enforces before a byte reaches the media
//! service. Defaults and variable names are in `config/config.template.yaml`.

use messenger_platform::config::{ConfigError, Section, ServerConfig, upload_timeout};
use serde::Deserialize;
use std::time::Duration;

/// The gateway's realtime delivery (`/ws`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSettings {
    /// How often the server sends a heartbeat; a client that has not
    /// answered two in a row is closed.
    pub heartbeat_interval_ms: u64,
    /// Frames queued for one connection before it is closed as too slow.
    pub send_queue_frames: usize,
    /// Frames kept per room for clients that resume after a disconnect.
    pub room_history: usize,
    /// Shortest gap between two typing notices of one user in one room.
    pub typing_throttle_ms: u64,
    /// A user is offline this long after their last connection's heartbeat.
    pub presence_ttl_ms: u64,
    /// How long a presence change must hold before it goes to Kafka.
    pub presence_debounce_ms: u64,
    /// Kafka consumer group shared by every gateway replica.
    pub consumer_group: String,
    /// Open sockets per user, across replicas.
    pub max_sockets_per_user: u32,
    /// Open sockets per client address, across replicas.
    pub max_sockets_per_address: u32,
    /// Rooms one socket may follow.
    pub max_rooms_per_socket: usize,
}

impl Section for WebSocketSettings {
    const KEY: &'static str = "websocket";

    fn check(&self) -> Result<(), ConfigError> {
        ConfigError::require_positive(
            "websocket.heartbeat_interval_ms",
            self.heartbeat_interval_ms,
        )?;
        ConfigError::require_positive(
            "websocket.send_queue_frames",
            self.send_queue_frames as u64,
        )?;
        ConfigError::require_positive("websocket.presence_ttl_ms", self.presence_ttl_ms)?;
        ConfigError::require_positive(
            "websocket.max_rooms_per_socket",
            self.max_rooms_per_socket as u64,
        )
    }
}

/// Allowances of the gateway's rate limiter (`features.rate_limit_enabled`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub auth_per_minute: u32,
    /// Read by the users service (sign-in guesses per account).
    pub login_per_account_per_minute: u32,
    pub send_per_minute: u32,
    pub upload_per_minute: u32,
    pub search_per_minute: u32,
    pub default_per_minute: u32,
    pub ws_frames_per_second: u32,
    /// Header carrying the client address from a trusted proxy; empty: the
    /// TCP peer is the client.
    pub client_ip_header: String,
    /// Networks (CIDR, comma-separated) whose requests may name the client
    /// in `client_ip_header`.
    pub trusted_proxies: String,
}

impl Section for RateLimitSettings {
    const KEY: &'static str = "rate_limit";

    fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("rate_limit.auth_per_minute", self.auth_per_minute),
            (
                "rate_limit.login_per_account_per_minute",
                self.login_per_account_per_minute,
            ),
            ("rate_limit.send_per_minute", self.send_per_minute),
            ("rate_limit.upload_per_minute", self.upload_per_minute),
            ("rate_limit.search_per_minute", self.search_per_minute),
            ("rate_limit.default_per_minute", self.default_per_minute),
            ("rate_limit.ws_frames_per_second", self.ws_frames_per_second),
        ] {
            ConfigError::require_positive(key, value.into())?;
        }
        Ok(())
    }
}

/// The part of the media service's section the gateway enforces.
#[derive(Clone, Debug, Deserialize)]
pub struct UploadLimits {
    pub max_image_bytes: u64,
    pub max_file_bytes: u64,
}

impl Section for UploadLimits {
    const KEY: &'static str = "media";
}

impl UploadLimits {
    /// The largest upload of any type.
    pub fn largest(&self) -> u64 {
        self.max_image_bytes.max(self.max_file_bytes)
    }

    /// How long the largest upload may take (the media service allows the
    /// same).
    pub fn upload_timeout(&self, server: &ServerConfig) -> Duration {
        upload_timeout(server, self.largest())
    }
}
