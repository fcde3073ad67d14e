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
    /// Age after which an upload never attached to a message nor used as
    /// an avatar is deleted, freeing its quota; 0 keeps them forever.
    pub unattached_upload_ttl_seconds: u64,
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
    /// How old an unattached upload gets before it is swept; `None`: never.
    pub fn unattached_ttl(&self) -> Option<Duration> {
        (self.unattached_upload_ttl_seconds > 0)
            .then(|| Duration::from_secs(self.unattached_upload_ttl_seconds))
    }

    /// How often the sweeper looks: a 24th of the TTL, between 1 s and
    /// 5 min, so an upload outlives its TTL by at most that.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs((self.unattached_upload_ttl_seconds / 24).clamp(1, 300))
    }

    /// How long one upload call may last (the gateway allows the same).
    pub fn upload_timeout(&self, server: &ServerConfig) -> Duration {
        upload_timeout(server, self.max_image_bytes.max(self.max_file_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ttl(seconds: u64) -> MediaSettings {
        MediaSettings {
            storage_url: "file://unused".to_owned(),
            max_image_bytes: 1,
            max_file_bytes: 1,
            max_image_pixels: 1,
            user_quota_bytes: 1,
            unattached_upload_ttl_seconds: seconds,
        }
    }

    #[test]
    fn the_sweep_looks_every_24th_of_the_ttl_within_bounds() {
        assert_eq!(with_ttl(0).unattached_ttl(), None);
        let day = with_ttl(86_400);
        assert_eq!(day.unattached_ttl(), Some(Duration::from_secs(86_400)));
        assert_eq!(day.sweep_interval(), Duration::from_secs(300));
        assert_eq!(with_ttl(72).sweep_interval(), Duration::from_secs(3));
        assert_eq!(with_ttl(5).sweep_interval(), Duration::from_secs(1));
    }
}
