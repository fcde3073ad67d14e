//! `/dm`: direct conversations.

use super::requests::OpenDirectRequest;
use crate::api::groups::DirectConversation;
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::http::extract::{Auth, Json};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::groups::v1 as pb;
use messenger_proto::users::v1 as users;
use std::collections::HashSet;
use uuid::Uuid;

/// The contract allows 1 to 9 others; checked here too so an oversized list
/// never reaches the users lookup.
const MAX_OTHERS: usize = 9;

/// Open the direct conversation between you and `user_ids` (1 to 9 others),
/// or return the one that already exists for exactly these people.
#[utoipa::path(post, path = "/dm", tag = "direct",
    request_body = OpenDirectRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "It already existed", body = DirectConversation),
        (status = 201, description = "Created", body = DirectConversation),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "A user does not exist", body = ErrorBody),
    ))]
pub async fn open_direct(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(request): Json<OpenDirectRequest>,
) -> ApiResult<(StatusCode, Json<DirectConversation>)> {
    let mut seen = HashSet::new();
    let others: Vec<Uuid> = request
        .user_ids
        .into_iter()
        .chain(request.user_id)
        .filter(|id| *id != who.user_id && seen.insert(*id))
        .collect();
    if others.is_empty() {
        return Err(ApiError::invalid_field(
            "user_ids",
            "name at least one other user",
        ));
    }
    if others.len() > MAX_OTHERS {
        return Err(ApiError::invalid_field(
            "user_ids",
            format!(
                "a direct conversation has at most {} people",
                MAX_OTHERS + 1
            ),
        ));
    }
    ensure_users_exist(&state, &others).await?;
    let request = pb::OpenDirectRequest {
        actor_id: who.user_id.to_string(),
        user_ids: others.iter().map(Uuid::to_string).collect(),
    };
    let direct = call("groups.OpenDirect", state.groups().open_direct(request)).await?;
    let (Some(group), Some(channel)) = (direct.group, direct.channel) else {
        tracing::error!("OpenDirect answered without its group or channel");
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        ));
    };
    let status = if direct.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DirectConversation {
            group: group.into(),
            channel: channel.into(),
            participant_ids: direct
                .participant_ids
                .iter()
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect(),
            created: direct.created,
        }),
    ))
}

/// Fails with 404 naming the unknown ids, so a typo does not open a
/// conversation with nobody.
async fn ensure_users_exist(state: &AppState, ids: &[Uuid]) -> ApiResult<()> {
    let request = users::GetUsersRequest {
        ids: ids.iter().map(Uuid::to_string).collect(),
    };
    // GetUsers skips unknown ids rather than failing.
    let found = call("users.GetUsers", state.users().get_users(request)).await?;
    let found: HashSet<Uuid> = found
        .users
        .iter()
        .filter_map(|user| Uuid::parse_str(&user.id).ok())
        .collect();
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !found.contains(id))
        .map(Uuid::to_string)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::not_found("user not found")
            .with_detail("field", "user_ids")
            .with_detail("missing", missing))
    }
}
