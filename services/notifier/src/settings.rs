//! The notifier's settings section. Defaults and variable names are in
//! `config/config.template.yaml`.

use messenger_platform::config::{ConfigError, Secret, Section};
use messenger_platform::egress::EgressPolicy;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierSettings {
    /// The VAPID key pair: a P-256 PKCS#8 document in base64 (Vault key
    /// `vapid_key`). Empty: Web Push is off (subscriptions are refused and
    /// nothing is sent).
    pub vapid_key: Secret,
    /// Whom push services may contact about our traffic (`mailto:` or
    /// `https:`).
    pub vapid_subject: String,
    /// How long after a message its notification waits, so that reading
    /// it meanwhile (on any device) cancels the push.
    pub grace_ms: u64,
    /// How long a push service keeps a push for an offline device.
    pub push_ttl_seconds: u64,
    /// Attempts per push before it is given up as failed.
    pub max_attempts: u32,
    /// Web Push subscriptions one user may hold.
    pub max_subscriptions_per_user: u32,
    /// Pushes sent at once by one replica.
    pub send_concurrency: usize,
    /// How long finished deliveries stay readable (the record of what was
    /// sent); 0 keeps them forever.
    pub delivery_retention_hours: u64,
    /// What push endpoints may be reached: they are URLs users supply.
    pub egress: EgressPolicy,
}

impl Section for NotifierSettings {
    const KEY: &'static str = "notifier";

    fn check(&self) -> Result<(), ConfigError> {
        ConfigError::require_positive("notifier.push_ttl_seconds", self.push_ttl_seconds)?;
        ConfigError::require_positive("notifier.max_attempts", u64::from(self.max_attempts))?;
        ConfigError::require_positive(
            "notifier.max_subscriptions_per_user",
            u64::from(self.max_subscriptions_per_user),
        )?;
        ConfigError::require_positive("notifier.send_concurrency", self.send_concurrency as u64)?;
        if !(self.vapid_subject.starts_with("mailto:")
            || self.vapid_subject.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "notifier.vapid_subject",
                "must be a mailto: or https:// URL",
            ));
        }
        if self.egress.max_redirects != 0 {
            // RFC 8030 defines no redirect for a push.
            return Err(ConfigError::invalid(
                "notifier.egress.max_redirects",
                "must be 0: a push is never redirected",
            ));
        }
        Ok(())
    }
}

impl NotifierSettings {
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }

    pub fn push_ttl(&self) -> Duration {
        Duration::from_secs(self.push_ttl_seconds)
    }

    pub fn delivery_retention(&self) -> Option<Duration> {
        (self.delivery_retention_hours > 0)
            .then(|| Duration::from_secs(self.delivery_retention_hours * 3600))
    }
}
