//! The media service's settings section. Defaults and variable names are
//! in `config/config.template.yaml`.

use messenger_platform::config::{ConfigError, Section, ServerConfig, upload_timeout};
use serde::Deserialize;
use std::time::Duration;

/// Uploads and their storage (the gateway enforces the size limits too).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// Where files live: `file:///path` (a local directory, created if
    /// missing) or `s3://bucket/prefix` (credentials and endpoint from the
    /// standard `AWS_*` variables).
    pub storage_url: String,
    /// Largest image upload in bytes.
    pub max_image_bytes: u64,
    /// Largest upload of any other allowed type in bytes.
    pub max_file_bytes: u64,
    /// Largest image in pixels (width × height); larger ones are refused
    /// as decompression bombs.
    pub max_image_pixels: u64,
    /// Bytes each user may keep uploaded (sum of their uploads' sizes).
    pub user_quota_bytes: u64,
}

impl Section for MediaSettings {
    const KEY: &'static str = "media";

    fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("media.max_image_bytes", self.max_image_bytes),
            ("media.max_file_bytes", self.max_file_bytes),
            ("media.max_image_pixels", self.max_image_pixels),
            ("media.user_quota_bytes", self.user_quota_bytes),
        ] {
            ConfigError::require_positive(key, value)?;
        }
        Ok(())
    }
}

impl MediaSettings {
    /// How long one upload call may last (the gateway allows the same).
    pub fn upload_timeout(&self, server: &ServerConfig) -> Duration {
        upload_timeout(server, self.max_image_bytes.max(self.max_file_bytes))
    }
}
