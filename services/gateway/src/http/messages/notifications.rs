//! `/notifications`: mentions, replies and direct messages for the caller.

use super::requests::{MarkNotificationsReadRequest, NotificationParams};
use crate::api::messages::NotificationPage;
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, JsonOrEmpty, Query};
use crate::http::params::page_limit;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::messages::v1 as pb;
use uuid::Uuid;

/// Your notifications, newest first, from conversations you may still read.
#[utoipa::path(get, path = "/notifications", tag = "notifications",
    params(NotificationParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = NotificationPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn list_notifications(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(params): Query<NotificationParams>,
) -> ApiResult<Json<NotificationPage>> {
    let request = pb::ListNotificationsRequest {
        actor_id: who.user_id.to_string(),
        limit: page_limit(params.limit)?,
        cursor: params.cursor.unwrap_or_default(),
        unread_only: params.unread_only.unwrap_or(false),
    };
    let page = call(
        "messages.ListNotifications",
        state.messages().list_notifications(request),
    )
    .await?;
    Ok(Json(page.into()))
}

/// Mark notifications read: those in `ids`, or all of them when `ids` is
/// empty or left out (an empty body too).
#[utoipa::path(post, path = "/notifications/read", tag = "notifications",
    request_body = Option<MarkNotificationsReadRequest>,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Marked read"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn mark_notifications_read(
    State(state): State<AppState>,
    Auth(who): Auth,
    JsonOrEmpty(request): JsonOrEmpty<MarkNotificationsReadRequest>,
) -> ApiResult<StatusCode> {
    let request = pb::MarkNotificationsReadRequest {
        actor_id: who.user_id.to_string(),
        notification_ids: request.ids.iter().map(Uuid::to_string).collect(),
    };
    call(
        "messages.MarkNotificationsRead",
        state.messages().mark_notifications_read(request),
    )
    .await
    .map_err(|status| ApiError::from(status).rename_field("notification_ids", "ids"))?;
    Ok(StatusCode::NO_CONTENT)
}
