//! Push subscriptions and notification settings as the API shows them.

use super::timestamp;
use crate::error::{ApiError, ApiResult};
use messenger_proto::notifier::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// What reaches your devices from a conversation.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Mentions, replies to your messages and direct messages.
    All,
    /// Mentions and direct messages.
    Mentions,
    Nothing,
}

/// How much of a message a push shows (on a locked screen too).
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Privacy {
    /// Sender, conversation and the start of the message.
    Full,
    /// Sender and conversation, not the text.
    SenderOnly,
    /// "New message", nothing else.
    Hidden,
}

impl Level {
    fn from_pb(raw: i32) -> Level {
        match pb::Level::try_from(raw) {
            Ok(pb::Level::Mentions) => Level::Mentions,
            Ok(pb::Level::Nothing) => Level::Nothing,
            _ => Level::All,
        }
    }

    /// Parses request input; a bad value names its field.
    pub fn parse(field: &str, raw: &str) -> ApiResult<i32> {
        let level = match raw {
            "all" => pb::Level::All,
            "mentions" => pb::Level::Mentions,
            "nothing" => pb::Level::Nothing,
            _ => {
                return Err(ApiError::invalid_field(
                    field,
                    format!("{field} must be all, mentions or nothing"),
                ));
            }
        };
        Ok(level as i32)
    }
}

impl Privacy {
    fn from_pb(raw: i32) -> Privacy {
        match pb::Privacy::try_from(raw) {
            Ok(pb::Privacy::SenderOnly) => Privacy::SenderOnly,
            Ok(pb::Privacy::Hidden) => Privacy::Hidden,
            _ => Privacy::Full,
        }
    }

    pub fn parse(field: &str, raw: &str) -> ApiResult<i32> {
        let privacy = match raw {
            "full" => pb::Privacy::Full,
            "sender_only" => pb::Privacy::SenderOnly,
            "hidden" => pb::Privacy::Hidden,
            _ => {
                return Err(ApiError::invalid_field(
                    field,
                    format!("{field} must be full, sender_only or hidden"),
                ));
            }
        };
        Ok(privacy as i32)
    }
}

/// The key a browser passes to `PushManager.subscribe` as
/// `applicationServerKey`.
#[derive(Serialize, ToSchema)]
pub struct VapidKey {
    /// The uncompressed P-256 public key, base64url without padding.
    pub public_key: String,
}

/// One of your devices that receives Web Push.
#[derive(Serialize, ToSchema)]
pub struct PushSubscription {
    pub id: Uuid,
    pub endpoint: String,
    pub device_name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_delivered_at: Option<OffsetDateTime>,
}

#[derive(Serialize, ToSchema)]
pub struct PushSubscriptionList {
    pub subscriptions: Vec<PushSubscription>,
}

/// Do-not-disturb: every day from `start` to `end` (it may pass midnight)
/// in `time_zone`.
#[derive(Serialize, ToSchema)]
pub struct QuietHours {
    /// `HH:MM`
    pub start: String,
    /// `HH:MM`
    pub end: String,
    /// IANA name, e.g. `Europe/Berlin`.
    pub time_zone: String,
}

/// Your notification settings, for every conversation without its own.
#[derive(Serialize, ToSchema)]
pub struct NotificationSettings {
    pub level: Level,
    pub privacy: Privacy,
    /// No push until then.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<OffsetDateTime>,
    pub quiet_hours: Option<QuietHours>,
}

/// A conversation's own settings; `null` fields follow your global ones.
#[derive(Serialize, ToSchema)]
pub struct ChannelNotificationSettings {
    pub channel_id: Uuid,
    pub level: Option<Level>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<OffsetDateTime>,
}

impl From<pb::PushSubscription> for PushSubscription {
    fn from(subscription: pb::PushSubscription) -> Self {
        PushSubscription {
            id: Uuid::parse_str(&subscription.id).unwrap_or_default(),
            endpoint: subscription.endpoint,
            device_name: subscription.device_name,
            created_at: timestamp(subscription.created_at),
            last_delivered_at: subscription.last_delivered_at.map(|at| timestamp(Some(at))),
        }
    }
}

impl From<pb::NotificationSettings> for NotificationSettings {
    fn from(settings: pb::NotificationSettings) -> Self {
        NotificationSettings {
            level: Level::from_pb(settings.level),
            privacy: Privacy::from_pb(settings.privacy),
            muted_until: settings.muted_until.map(|at| timestamp(Some(at))),
            quiet_hours: settings.quiet_hours.map(|hours| QuietHours {
                start: hours.start,
                end: hours.end,
                time_zone: hours.time_zone,
            }),
        }
    }
}

impl From<pb::ChannelSettings> for ChannelNotificationSettings {
    fn from(settings: pb::ChannelSettings) -> Self {
        ChannelNotificationSettings {
            channel_id: Uuid::parse_str(&settings.channel_id).unwrap_or_default(),
            level: settings.level.map(Level::from_pb),
            muted_until: settings.muted_until.map(|at| timestamp(Some(at))),
        }
    }
}
