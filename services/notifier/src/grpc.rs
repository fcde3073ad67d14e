//! gRPC transport: parses requests, calls [`Api`], converts results.

use crate::api::{Api, ChannelChange, GlobalChange, QuietHoursInput, Registration};
use crate::error::{Error, Result};
use crate::repo::preferences::{ChannelRow, GlobalRow};
use crate::repo::subscriptions::SubscriptionRow;
use messenger_platform::identity::{ActorError, acting_user};
use messenger_platform::wire;
use messenger_proto::notifier::v1 as pb;
use messenger_proto::notifier::v1::notifier_service_server::NotifierService;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub struct NotifierGrpc {
    pub api: Api,
}

fn uuid(raw: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| Error::invalid(field, "must be a UUID"))
}

fn actor(raw: &str) -> Result<Uuid> {
    match acting_user(raw) {
        Ok(user) => Ok(user),
        Err(ActorError::NotTheCaller) => Err(Error::PermissionDenied(
            ActorError::NotTheCaller.to_string(),
        )),
        Err(ActorError::Invalid) => uuid(raw, "actor_id"),
    }
}

fn level_name(raw: i32, field: &'static str) -> Result<String> {
    match pb::Level::try_from(raw) {
        Ok(pb::Level::All) => Ok("all".to_owned()),
        Ok(pb::Level::Mentions) => Ok("mentions".to_owned()),
        Ok(pb::Level::Nothing) => Ok("nothing".to_owned()),
        _ => Err(Error::invalid(field, "must be all, mentions or nothing")),
    }
}

fn level_value(stored: &str) -> pb::Level {
    match stored {
        "mentions" => pb::Level::Mentions,
        "nothing" => pb::Level::Nothing,
        _ => pb::Level::All,
    }
}

fn privacy_name(raw: i32) -> Result<String> {
    match pb::Privacy::try_from(raw) {
        Ok(pb::Privacy::Full) => Ok("full".to_owned()),
        Ok(pb::Privacy::SenderOnly) => Ok("sender_only".to_owned()),
        Ok(pb::Privacy::Hidden) => Ok("hidden".to_owned()),
        _ => Err(Error::invalid(
            "privacy",
            "must be full, sender_only or hidden",
        )),
    }
}

fn privacy_value(stored: &str) -> pb::Privacy {
    match stored {
        "sender_only" => pb::Privacy::SenderOnly,
        "hidden" => pb::Privacy::Hidden,
        _ => pb::Privacy::Full,
    }
}

fn instant(at: prost_types::Timestamp, field: &'static str) -> Result<OffsetDateTime> {
    wire::offset_date_time(&at).ok_or_else(|| Error::invalid(field, "is not a valid time"))
}

/// A mute given with its clear flag: set, cleared, or kept.
fn mute(at: Option<prost_types::Timestamp>, clear: bool) -> Result<Option<Option<OffsetDateTime>>> {
    match (at, clear) {
        (Some(_), true) => Err(Error::invalid(
            "muted_until",
            "give a time or clear_muted_until, not both",
        )),
        (Some(at), false) => Ok(Some(Some(instant(at, "muted_until")?))),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

fn subscription(row: SubscriptionRow) -> pb::PushSubscription {
    pb::PushSubscription {
        id: row.id.to_string(),
        endpoint: row.endpoint,
        device_name: row.device_name,
        created_at: Some(wire::timestamp(row.created_at)),
        last_delivered_at: row.last_delivered_at.map(wire::timestamp),
    }
}

fn global(row: GlobalRow) -> pb::NotificationSettings {
    let format = |at: time::Time| format!("{:02}:{:02}", at.hour(), at.minute());
    pb::NotificationSettings {
        level: level_value(&row.level) as i32,
        privacy: privacy_value(&row.privacy) as i32,
        muted_until: row.muted_until.map(wire::timestamp),
        quiet_hours: match (row.quiet_start, row.quiet_end, row.time_zone) {
            (Some(start), Some(end), Some(time_zone)) => Some(pb::QuietHours {
                start: format(start),
                end: format(end),
                time_zone,
            }),
            _ => None,
        },
    }
}

fn channel(id: Uuid, row: ChannelRow) -> pb::ChannelSettings {
    pb::ChannelSettings {
        channel_id: id.to_string(),
        level: row.level.as_deref().map(|level| level_value(level) as i32),
        muted_until: row.muted_until.map(wire::timestamp),
    }
}

#[tonic::async_trait]
impl NotifierService for NotifierGrpc {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        Ok(Response::new(pb::InfoResponse {
            service: crate::SCHEMA.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    async fn get_vapid_key(
        &self,
        _: Request<pb::GetVapidKeyRequest>,
    ) -> Result<Response<pb::VapidKey>, Status> {
        Ok(Response::new(pb::VapidKey {
            public_key: self.api.vapid_key()?,
        }))
    }

    async fn register_subscription(
        &self,
        request: Request<pb::RegisterSubscriptionRequest>,
    ) -> Result<Response<pb::PushSubscription>, Status> {
        let request = request.into_inner();
        let user = actor(&request.actor_id)?;
        let row = self
            .api
            .register(
                user,
                Registration {
                    endpoint: request.endpoint,
                    p256dh: request.p256dh,
                    auth: request.auth,
                    device_name: request.device_name,
                },
            )
            .await?;
        Ok(Response::new(subscription(row)))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let user = actor(&request.into_inner().actor_id)?;
        let rows = self.api.list(user).await?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: rows.into_iter().map(subscription).collect(),
        }))
    }

    async fn delete_subscription(
        &self,
        request: Request<pb::DeleteSubscriptionRequest>,
    ) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        let user = actor(&request.actor_id)?;
        let id = uuid(&request.id, "id")?;
        self.api.unregister(user, id).await?;
        Ok(Response::new(()))
    }

    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::NotificationSettings>, Status> {
        let user = actor(&request.into_inner().actor_id)?;
        Ok(Response::new(global(self.api.settings(user).await?)))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::NotificationSettings>, Status> {
        let request = request.into_inner();
        let user = actor(&request.actor_id)?;
        let quiet_hours = match (request.quiet_hours, request.clear_quiet_hours) {
            (Some(_), true) => {
                return Err(Error::invalid(
                    "quiet_hours",
                    "give quiet hours or clear_quiet_hours, not both",
                )
                .into());
            }
            (Some(hours), false) => Some(Some(QuietHoursInput {
                start: hours.start,
                end: hours.end,
                time_zone: hours.time_zone,
            })),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let change = GlobalChange {
            level: request
                .level
                .map(|level| level_name(level, "level"))
                .transpose()?,
            privacy: request.privacy.map(privacy_name).transpose()?,
            muted_until: mute(request.muted_until, request.clear_muted_until)?,
            quiet_hours,
        };
        Ok(Response::new(global(
            self.api.change_settings(user, change).await?,
        )))
    }

    async fn get_channel_settings(
        &self,
        request: Request<pb::GetChannelSettingsRequest>,
    ) -> Result<Response<pb::ChannelSettings>, Status> {
        let request = request.into_inner();
        let user = actor(&request.actor_id)?;
        let id = uuid(&request.channel_id, "channel_id")?;
        Ok(Response::new(channel(
            id,
            self.api.channel_settings(user, id).await?,
        )))
    }

    async fn update_channel_settings(
        &self,
        request: Request<pb::UpdateChannelSettingsRequest>,
    ) -> Result<Response<pb::ChannelSettings>, Status> {
        let request = request.into_inner();
        let user = actor(&request.actor_id)?;
        let id = uuid(&request.channel_id, "channel_id")?;
        let level = match (request.level, request.clear_level) {
            (Some(_), true) => {
                return Err(
                    Error::invalid("level", "give a level or clear_level, not both").into(),
                );
            }
            (Some(level), false) => Some(Some(level_name(level, "level")?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let change = ChannelChange {
            level,
            muted_until: mute(request.muted_until, request.clear_muted_until)?,
        };
        Ok(Response::new(channel(
            id,
            self.api.change_channel_settings(user, id, change).await?,
        )))
    }
}
