//! Read positions: marking a channel read, unread counts, and who has read
//! a message.

use super::requests::{MarkReadRequest, UnreadParams};
use crate::api::messages::{ReadPosition, ReaderPage, UnreadList};
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, Path, Query};
use crate::http::params::PageParams;
use crate::http::params::page_limit;
use crate::state::AppState;
use axum::extract::State;
use messenger_proto::messages::v1 as pb;
use uuid::Uuid;

/// Mark a channel read up to a message; the position never moves backwards.
#[utoipa::path(post, path = "/channels/{id}/read", tag = "messages",
    params(("id" = Uuid, Path, description = "Channel id")),
    request_body = MarkReadRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The read position now", body = ReadPosition),
        (status = 400, description = "The message is not in this channel", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(request): Json<MarkReadRequest>,
) -> ApiResult<Json<ReadPosition>> {
    let request = pb::MarkReadRequest {
        actor_id: who.user_id.to_string(),
        channel_id: id.to_string(),
        message_id: request.message_id.to_string(),
    };
    let position = call("messages.MarkRead", state.messages().mark_read(request)).await?;
    Ok(Json(position.into()))
}

/// `a,b,c` as channel ids; empty items are skipped.
pub(crate) fn channel_ids(raw: Option<&str>) -> ApiResult<Vec<String>> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            Uuid::parse_str(item).map(|id| id.to_string()).map_err(|_| {
                ApiError::invalid_field(
                    "channel_ids",
                    "channel_ids must be comma-separated channel ids (UUIDs)",
                )
            })
        })
        .collect()
}

/// Unread and mention counts of every channel the caller may read, or of
/// those named (channels the caller cannot read are left out).
#[utoipa::path(get, path = "/unread", tag = "messages",
    params(UnreadParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UnreadList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn list_unread(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(params): Query<UnreadParams>,
) -> ApiResult<Json<UnreadList>> {
    let request = pb::ListUnreadRequest {
        actor_id: who.user_id.to_string(),
        channel_ids: channel_ids(params.channel_ids.as_deref())?,
    };
    let list = call("messages.ListUnread", state.messages().list_unread(request)).await?;
    Ok(Json(list.into()))
}

/// Who has read a message (their read position is at or past it), other
/// than the caller.
#[utoipa::path(get, path = "/messages/{id}/readers", tag = "messages",
    params(("id" = Uuid, Path, description = "Message id"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReaderPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_readers(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<ReaderPage>> {
    let request = pb::ListReadersRequest {
        actor_id: who.user_id.to_string(),
        message_id: id.to_string(),
        limit: page_limit(params.limit)?,
        cursor: params.cursor.unwrap_or_default(),
    };
    let page = call(
        "messages.ListReaders",
        state.messages().list_readers(request),
    )
    .await?;
    Ok(Json(page.into()))
}
