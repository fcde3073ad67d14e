//! Request bodies of the push routes.

use crate::api::push::{Level, Privacy};
use crate::http::params::present;
use serde::Deserialize;
use utoipa::ToSchema;

/// A browser's `PushSubscription.toJSON()` as it is, with a name for the
/// device.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPushRequest {
    /// The push service URL (https).
    pub endpoint: String,
    /// What browsers include; ignored (the push service says when a
    /// subscription has expired).
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<f64>)]
    pub expiration_time: Option<serde_json::Value>,
    pub keys: PushKeys,
    /// Up to 64 characters, e.g. "Firefox on my laptop".
    #[serde(default)]
    #[schema(max_length = 64)]
    pub device_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    /// The subscription's P-256 public key, base64url.
    pub p256dh: String,
    /// Its 16-byte authentication secret, base64url.
    pub auth: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursInput {
    /// `HH:MM`
    pub start: String,
    /// `HH:MM`
    pub end: String,
    /// IANA name, e.g. `Europe/Berlin`.
    pub time_zone: String,
}

/// Omitted fields stay as they are; `null` clears one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNotificationSettingsRequest {
    #[schema(value_type = Option<Level>)]
    pub level: Option<String>,
    #[schema(value_type = Option<Privacy>)]
    pub privacy: Option<String>,
    /// No push until then; `null` unmutes.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<Option<String>>,
    /// Do-not-disturb hours; `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<QuietHoursInput>)]
    pub quiet_hours: Option<Option<QuietHoursInput>>,
}

/// Omitted fields stay as they are; `null` makes one follow your global
/// settings again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannelNotificationSettingsRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Level>)]
    pub level: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<Option<String>>,
}
