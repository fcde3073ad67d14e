//! `/messages` and `/channels/{id}/messages` (POST): sending, reading one
//! message, editing, deleting and the edit history.

use super::requests::{EditMessageRequest, NewMessage, SendMessageRequest};
use crate::api::messages::{EditHistory, Message, MessageType};
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::http::extract::{Auth, Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use messenger_proto::messages::v1 as pb;
use uuid::Uuid;

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The idempotency key of a send and where it came from, so an error about
/// it names what the client actually sent.
pub(crate) struct IdempotencyKey {
    pub(crate) value: String,
    pub(crate) field: &'static str,
}

/// The key from the `Idempotency-Key` header or the `client_id` field (an
/// empty one counts as absent); both may be given if they agree.
pub(crate) fn idempotency_key(
    headers: &HeaderMap,
    client_id: Option<String>,
) -> ApiResult<Option<IdempotencyKey>> {
    let header = headers
        .get(IDEMPOTENCY_HEADER)
        .map(|value| {
            value.to_str().map_err(|_| {
                ApiError::invalid_field(
                    IDEMPOTENCY_HEADER,
                    "Idempotency-Key must be printable ASCII",
                )
            })
        })
        .transpose()?
        .map(str::trim)
        .filter(|value| !value.is_empty());
    let client_id = client_id.filter(|value| !value.is_empty());
    match (header, client_id) {
        (Some(header), Some(client_id)) if header != client_id => Err(ApiError::invalid_field(
            "client_id",
            "client_id and the Idempotency-Key header differ; send one, or the same in both",
        )),
        (Some(header), _) => Ok(Some(IdempotencyKey {
            value: header.to_owned(),
            field: IDEMPOTENCY_HEADER,
        })),
        (None, Some(client_id)) => Ok(Some(IdempotencyKey {
            value: client_id,
            field: "client_id",
        })),
        (None, None) => Ok(None),
    }
}

/// Sends `message` to `channel` (or `group`'s default channel): 201 when
/// stored now, 200 with the original when the idempotency key was used.
async fn send(
    state: &AppState,
    actor: Uuid,
    headers: &HeaderMap,
    channel: Option<Uuid>,
    group: Option<Uuid>,
    message: NewMessage,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let kind = message
        .message_type
        .as_deref()
        .map(|raw| MessageType::parse_sendable("message_type", raw))
        .transpose()?
        .unwrap_or(MessageType::Text);
    let key = idempotency_key(headers, message.client_id)?;
    let key_field = key.as_ref().map_or("client_id", |key| key.field);
    let request = pb::SendMessageRequest {
        actor_id: actor.to_string(),
        channel_id: channel.map(|id| id.to_string()).unwrap_or_default(),
        group_id: group.map(|id| id.to_string()).unwrap_or_default(),
        content: message.content,
        r#type: kind.to_pb(),
        reply_to: message
            .reply_to
            .map(|id| id.to_string())
            .unwrap_or_default(),
        attachment_ids: message.attachments.iter().map(Uuid::to_string).collect(),
        idempotency_key: key.map(|key| key.value).unwrap_or_default(),
    };
    let sent = call(
        "messages.SendMessage",
        state.messages().send_message(request),
    )
    .await
    .map_err(|status| ApiError::from(status).rename_field("idempotency_key", key_field))?;
    let Some(stored) = sent.message else {
        tracing::error!("SendMessage answered without its message");
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        ));
    };
    let status = if sent.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored.into())))
}

/// Send a message to a channel, or to a group's default channel (the
/// original API). With an idempotency key (`Idempotency-Key` header or
/// `client_id`), a retry returns the first attempt's message with 200.
#[utoipa::path(post, path = "/messages", tag = "messages",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-128 printable ASCII characters; same as `client_id`")),
    request_body = SendMessageRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "The idempotency key was used before: the original message", body = Message),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Muted, or an announcement channel", body = ErrorBody),
        (status = 404, description = "Unknown group or channel, or not a member", body = ErrorBody),
        (status = 409, description = "An attached file whose processing failed", body = ErrorBody),
    ))]
pub async fn send_message(
    State(state): State<AppState>,
    Auth(who): Auth,
    headers: HeaderMap,
    Json(request): Json<SendMessageRequest>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let (channel, group, message) = request.split();
    send(&state, who.user_id, &headers, channel, group, message).await
}

/// Send a message to a channel. With an idempotency key (`Idempotency-Key`
/// header or `client_id`), a retry returns the first attempt's message with
/// 200.
#[utoipa::path(post, path = "/channels/{id}/messages", tag = "messages",
    params(
        ("id" = Uuid, Path, description = "Channel id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1-128 printable ASCII characters; same as `client_id`"),
    ),
    request_body = NewMessage,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "The idempotency key was used before: the original message", body = Message),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Muted, or an announcement channel", body = ErrorBody),
        (status = 404, description = "Unknown channel, or one the caller cannot read", body = ErrorBody),
        (status = 409, description = "An attached file whose processing failed", body = ErrorBody),
    ))]
pub async fn send_channel_message(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(message): Json<NewMessage>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    send(&state, who.user_id, &headers, Some(id), None, message).await
}

fn message_request(actor: Uuid, message: Uuid) -> pb::GetMessageRequest {
    pb::GetMessageRequest {
        actor_id: actor.to_string(),
        message_id: message.to_string(),
    }
}

/// A message the caller may read (deleted ones stay as tombstones).
#[utoipa::path(get, path = "/messages/{id}", tag = "messages",
    params(("id" = Uuid, Path, description = "Message id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Message),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn get_message(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Message>> {
    let request = message_request(who.user_id, id);
    let message = call("messages.GetMessage", state.messages().get_message(request)).await?;
    Ok(Json(message.into()))
}

/// Change the text of your message; the previous text goes to its edit
/// history.
#[utoipa::path(patch, path = "/messages/{id}", tag = "messages",
    params(("id" = Uuid, Path, description = "Message id")),
    request_body = EditMessageRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Message),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not the author, muted, or a system message", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Deleted", body = ErrorBody),
    ))]
pub async fn edit_message(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(request): Json<EditMessageRequest>,
) -> ApiResult<Json<Message>> {
    let request = pb::EditMessageRequest {
        actor_id: who.user_id.to_string(),
        message_id: id.to_string(),
        content: request.content,
    };
    let message = call(
        "messages.EditMessage",
        state.messages().edit_message(request),
    )
    .await?;
    Ok(Json(message.into()))
}

/// Delete a message (yours, or as a moderator one by someone you outrank):
/// it stays as a tombstone without content. Deleting twice is not an error.
#[utoipa::path(delete, path = "/messages/{id}", tag = "messages",
    params(("id" = Uuid, Path, description = "Message id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Neither the author nor a moderator", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn delete_message(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let request = pb::DeleteMessageRequest {
        actor_id: who.user_id.to_string(),
        message_id: id.to_string(),
    };
    call(
        "messages.DeleteMessage",
        state.messages().delete_message(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Earlier versions of a message, oldest first.
#[utoipa::path(get, path = "/messages/{id}/edits", tag = "messages",
    params(("id" = Uuid, Path, description = "Message id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = EditHistory),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_edits(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<EditHistory>> {
    let request = message_request(who.user_id, id);
    let history = call(
        "messages.ListEditHistory",
        state.messages().list_edit_history(request),
    )
    .await?;
    Ok(Json(history.into()))
}
