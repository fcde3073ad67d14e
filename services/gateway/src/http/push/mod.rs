//! `/push` and notification settings: your devices' Web Push
//! subscriptions, and what may reach them (served by the notifier).

pub mod requests;

use crate::api::groups::parse_timestamp;
use crate::api::push::{
    ChannelNotificationSettings, Level, NotificationSettings, Privacy, PushSubscription,
    PushSubscriptionList, VapidKey,
};
use crate::backends::call;
use crate::error::{ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::groups::v1 as groups_pb;
use messenger_proto::notifier::v1 as pb;
use requests::{
    RegisterPushRequest, UpdateChannelNotificationSettingsRequest,
    UpdateNotificationSettingsRequest,
};
use uuid::Uuid;

/// The server's VAPID public key, for `PushManager.subscribe`. 409 when
/// Web Push is not enabled on this server.
#[utoipa::path(get, path = "/push/vapid-key", tag = "push",
    security(("bearer" = [])),
    responses(
        (status = 200, body = VapidKey),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn vapid_key(State(state): State<AppState>, Auth(_): Auth) -> ApiResult<Json<VapidKey>> {
    let key = call(
        "notifier.GetVapidKey",
        state.notifier().get_vapid_key(pb::GetVapidKeyRequest {}),
    )
    .await?;
    Ok(Json(VapidKey {
        public_key: key.public_key,
    }))
}

/// Your devices that receive Web Push.
#[utoipa::path(get, path = "/push/subscriptions", tag = "push",
    security(("bearer" = [])),
    responses(
        (status = 200, body = PushSubscriptionList),
        (status = 401, body = ErrorBody),
    ))]
pub async fn list_subscriptions(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<PushSubscriptionList>> {
    let request = pb::ListSubscriptionsRequest {
        actor_id: who.user_id.to_string(),
    };
    let list = call(
        "notifier.ListSubscriptions",
        state.notifier().list_subscriptions(request),
    )
    .await?;
    Ok(Json(PushSubscriptionList {
        subscriptions: list.subscriptions.into_iter().map(Into::into).collect(),
    }))
}

/// Register this device's Web Push subscription (the body is the browser's
/// `PushSubscription.toJSON()` plus a device name). Registering the same
/// endpoint again updates it. 400 for an endpoint that is not an https URL
/// to a public address or keys that are not a P-256 key and a 16-byte
/// secret; 409 when Web Push is off, or with the most devices allowed
/// already registered.
#[utoipa::path(post, path = "/push/subscriptions", tag = "push",
    request_body = RegisterPushRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = PushSubscription),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn register_subscription(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(request): Json<RegisterPushRequest>,
) -> ApiResult<(StatusCode, Json<PushSubscription>)> {
    let request = pb::RegisterSubscriptionRequest {
        endpoint: request.endpoint,
        p256dh: request.keys.p256dh,
        auth: request.keys.auth,
        device_name: request.device_name,
        actor_id: who.user_id.to_string(),
    };
    let subscription = call(
        "notifier.RegisterSubscription",
        state.notifier().register_subscription(request),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(subscription.into())))
}

/// Stop pushing to one of your devices.
#[utoipa::path(delete, path = "/push/subscriptions/{id}", tag = "push",
    params(("id" = Uuid, Path, description = "Subscription id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn delete_subscription(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let request = pb::DeleteSubscriptionRequest {
        id: id.to_string(),
        actor_id: who.user_id.to_string(),
    };
    call(
        "notifier.DeleteSubscription",
        state.notifier().delete_subscription(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your notification settings.
#[utoipa::path(get, path = "/users/me/notification-settings", tag = "push",
    security(("bearer" = [])),
    responses(
        (status = 200, body = NotificationSettings),
        (status = 401, body = ErrorBody),
    ))]
pub async fn get_settings(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<NotificationSettings>> {
    let request = pb::GetSettingsRequest {
        actor_id: who.user_id.to_string(),
    };
    let settings = call(
        "notifier.GetSettings",
        state.notifier().get_settings(request),
    )
    .await?;
    Ok(Json(settings.into()))
}

/// Change your notification settings: level, privacy, mute and
/// do-not-disturb hours.
#[utoipa::path(patch, path = "/users/me/notification-settings", tag = "push",
    request_body = UpdateNotificationSettingsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = NotificationSettings),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn update_settings(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(request): Json<UpdateNotificationSettingsRequest>,
) -> ApiResult<Json<NotificationSettings>> {
    let (muted_until, clear_muted_until) = mute(request.muted_until)?;
    let (quiet_hours, clear_quiet_hours) = match request.quiet_hours {
        Some(Some(hours)) => (
            Some(pb::QuietHours {
                start: hours.start,
                end: hours.end,
                time_zone: hours.time_zone,
            }),
            false,
        ),
        Some(None) => (None, true),
        None => (None, false),
    };
    let request = pb::UpdateSettingsRequest {
        level: request
            .level
            .as_deref()
            .map(|raw| Level::parse("level", raw))
            .transpose()?,
        privacy: request
            .privacy
            .as_deref()
            .map(|raw| Privacy::parse("privacy", raw))
            .transpose()?,
        muted_until,
        clear_muted_until,
        quiet_hours,
        clear_quiet_hours,
        actor_id: who.user_id.to_string(),
    };
    let settings = call(
        "notifier.UpdateSettings",
        state.notifier().update_settings(request),
    )
    .await?;
    Ok(Json(settings.into()))
}

/// A conversation's own notification settings (404 for a channel you
/// cannot read).
#[utoipa::path(get, path = "/channels/{id}/notification-settings", tag = "push",
    params(("id" = Uuid, Path, description = "Channel id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ChannelNotificationSettings),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn get_channel_settings(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ChannelNotificationSettings>> {
    readable_channel(&state, who.user_id, id).await?;
    let request = pb::GetChannelSettingsRequest {
        channel_id: id.to_string(),
        actor_id: who.user_id.to_string(),
    };
    let settings = call(
        "notifier.GetChannelSettings",
        state.notifier().get_channel_settings(request),
    )
    .await?;
    Ok(Json(settings.into()))
}

/// Change a conversation's own settings: its level, or mute it.
#[utoipa::path(patch, path = "/channels/{id}/notification-settings", tag = "push",
    params(("id" = Uuid, Path, description = "Channel id")),
    request_body = UpdateChannelNotificationSettingsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ChannelNotificationSettings),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn update_channel_settings(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateChannelNotificationSettingsRequest>,
) -> ApiResult<Json<ChannelNotificationSettings>> {
    let (muted_until, clear_muted_until) = mute(request.muted_until)?;
    let (level, clear_level) = match request.level {
        Some(Some(raw)) => (Some(Level::parse("level", &raw)?), false),
        Some(None) => (None, true),
        None => (None, false),
    };
    readable_channel(&state, who.user_id, id).await?;
    let request = pb::UpdateChannelSettingsRequest {
        channel_id: id.to_string(),
        level,
        clear_level,
        muted_until,
        clear_muted_until,
        actor_id: who.user_id.to_string(),
    };
    let settings = call(
        "notifier.UpdateChannelSettings",
        state.notifier().update_channel_settings(request),
    )
    .await?;
    Ok(Json(settings.into()))
}

/// A time to set, or `null` to clear, as the notifier's pair of fields.
fn mute(raw: Option<Option<String>>) -> ApiResult<(Option<prost_types::Timestamp>, bool)> {
    match raw {
        Some(Some(raw)) => Ok((Some(parse_timestamp("muted_until", &raw)?), false)),
        Some(None) => Ok((None, true)),
        None => Ok((None, false)),
    }
}

/// Settings are kept only for channels the caller may read: the groups
/// service answers 404 for any other, so nobody stores rows for (or learns
/// about) channels that are not theirs.
async fn readable_channel(state: &AppState, user: Uuid, channel: Uuid) -> ApiResult<()> {
    let request = groups_pb::GetChannelRequest {
        actor_id: user.to_string(),
        channel_id: channel.to_string(),
    };
    call("groups.GetChannel", state.groups().get_channel(request)).await?;
    Ok(())
}
