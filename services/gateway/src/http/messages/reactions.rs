//! `/messages/{id}/reactions`: adding and removing emoji reactions.

use super::requests::ReactionRequest;
use crate::api::messages::Message;
use crate::backends::call;
use crate::error::{ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::messages::v1 as pb;
use uuid::Uuid;

fn reaction_request(actor: Uuid, message: Uuid, emoji: String) -> pb::ReactionRequest {
    pb::ReactionRequest {
        actor_id: actor.to_string(),
        message_id: message.to_string(),
        emoji,
    }
}

/// React to a message; reacting twice with the same emoji is not an error.
#[utoipa::path(post, path = "/messages/{id}/reactions", tag = "messages",
    params(("id" = Uuid, Path, description = "Message id")),
    request_body = ReactionRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The message with its reactions", body = Message),
        (status = 400, description = "Not one emoji or :custom_code:", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Deleted, or too many different reactions", body = ErrorBody),
    ))]
pub async fn add_reaction(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(request): Json<ReactionRequest>,
) -> ApiResult<Json<Message>> {
    let request = reaction_request(who.user_id, id, request.emoji);
    let message = call(
        "messages.AddReaction",
        state.messages().add_reaction(request),
    )
    .await?;
    Ok(Json(message.into()))
}

/// Take back your reaction.
#[utoipa::path(delete, path = "/messages/{id}/reactions/{emoji}", tag = "messages",
    params(
        ("id" = Uuid, Path, description = "Message id"),
        ("emoji" = String, Path, description = "The emoji, percent-encoded (e.g. `%F0%9F%91%8D`), or a custom code such as `:party_parrot:`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Unknown message, or you had not reacted so", body = ErrorBody),
    ))]
pub async fn remove_reaction(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, emoji)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    let request = reaction_request(who.user_id, id, emoji);
    call(
        "messages.RemoveReaction",
        state.messages().remove_reaction(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
