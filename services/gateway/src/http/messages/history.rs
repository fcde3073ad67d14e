//! Reading many messages: a channel's history, a group's (the original
//! API), a thread, and full-text search.

use super::requests::{GroupHistoryParams, HistoryParams, MessageSearchParams, ThreadParams};
use crate::api::messages::{MessagePage, SearchResults};
use crate::backends::call;
use crate::error::{ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, Path, Query};
use crate::http::params::page_limit;
use crate::state::AppState;
use axum::extract::State;
use messenger_proto::messages::v1 as pb;
use uuid::Uuid;

/// The contract's "none" for an optional id.
fn optional(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// A channel's messages, oldest first: the newest ones, or those before,
/// after or around a message.
#[utoipa::path(get, path = "/channels/{id}/messages", tag = "messages",
    params(("id" = Uuid, Path, description = "Channel id"), HistoryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MessagePage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown channel, or one the caller cannot read", body = ErrorBody),
    ))]
pub async fn list_channel_messages(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<MessagePage>> {
    let request = pb::ListMessagesRequest {
        actor_id: who.user_id.to_string(),
        channel_id: id.to_string(),
        before: optional(params.before),
        after: optional(params.after),
        around: optional(params.around),
        limit: page_limit(params.limit)?,
    };
    let page = call(
        "messages.ListMessages",
        state.messages().list_messages(request),
    )
    .await?;
    Ok(Json(page.into()))
}

/// The original API: a group's messages in the channels the caller may
/// read, newest first, paged by offset. Prefer `/channels/{id}/messages`.
#[utoipa::path(get, path = "/messages/group/{group_id}", tag = "messages",
    params(("group_id" = Uuid, Path, description = "Group id"), GroupHistoryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MessagePage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_group_messages(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(group_id): Path<Uuid>,
    Query(params): Query<GroupHistoryParams>,
) -> ApiResult<Json<MessagePage>> {
    let request = pb::ListGroupMessagesRequest {
        actor_id: who.user_id.to_string(),
        group_id: group_id.to_string(),
        limit: page_limit(params.limit)?,
        offset: params.offset.unwrap_or(0),
    };
    let page = call(
        "messages.ListGroupMessages",
        state.messages().list_group_messages(request),
    )
    .await?;
    Ok(Json(page.into()))
}

/// The replies in the thread a message starts, oldest first.
#[utoipa::path(get, path = "/messages/{id}/thread", tag = "messages",
    params(("id" = Uuid, Path, description = "Id of the thread's root message"), ThreadParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MessagePage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_thread(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Query(params): Query<ThreadParams>,
) -> ApiResult<Json<MessagePage>> {
    let request = pb::ListThreadRequest {
        actor_id: who.user_id.to_string(),
        root_id: id.to_string(),
        after: optional(params.after),
        limit: page_limit(params.limit)?,
    };
    let page = call("messages.ListThread", state.messages().list_thread(request)).await?;
    Ok(Json(page.into()))
}

/// Search the messages the caller may read, newest first.
#[utoipa::path(get, path = "/search/messages", tag = "search",
    params(MessageSearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SearchResults),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown channel, or one the caller cannot read", body = ErrorBody),
    ))]
pub async fn search_messages(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(params): Query<MessageSearchParams>,
) -> ApiResult<Json<SearchResults>> {
    let request = pb::SearchMessagesRequest {
        actor_id: who.user_id.to_string(),
        query: params.q,
        channel_id: optional(params.channel_id),
        group_id: optional(params.group_id),
        limit: page_limit(params.limit)?,
        cursor: params.cursor.unwrap_or_default(),
    };
    let page = call(
        "messages.SearchMessages",
        state.messages().search_messages(request),
    )
    .await?;
    Ok(Json(page.into()))
}
