//! `/groups`: creating, finding, changing and deleting groups.

use super::requests::{CreateGroupRequest, GroupListParams, UpdateGroupRequest};
use crate::api::groups::{Group, GroupPage, Visibility};
use crate::backends::call;
use crate::error::{ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, Path, Query};
use crate::http::params::page_limit;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::groups::v1 as pb;
use uuid::Uuid;

/// Create a group; the caller becomes its owner.
#[utoipa::path(post, path = "/groups", tag = "groups",
    request_body = CreateGroupRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = Group),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn create_group(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(request): Json<CreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    let visibility = request
        .visibility
        .as_deref()
        .map(|raw| Visibility::parse("visibility", raw))
        .transpose()?
        .unwrap_or(Visibility::Private);
    crate::http::media::claim_avatar(&state, who.user_id, request.avatar_media_id).await?;
    let request = pb::CreateGroupRequest {
        actor_id: who.user_id.to_string(),
        name: request.name,
        description: request.description.unwrap_or_default(),
        visibility: visibility.to_pb(),
        avatar_media_id: request
            .avatar_media_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    };
    let group = call("groups.CreateGroup", state.groups().create_group(request)).await?;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// The caller's groups and direct conversations (oldest first), or with
/// `q`, public groups whose name contains it.
#[utoipa::path(get, path = "/groups", tag = "groups",
    params(GroupListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = GroupPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn list_groups(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(params): Query<GroupListParams>,
) -> ApiResult<Json<GroupPage>> {
    let limit = page_limit(params.limit)?;
    let actor_id = who.user_id.to_string();
    let cursor = params.cursor.unwrap_or_default();
    let page = match params.q.filter(|q| !q.trim().is_empty()) {
        Some(query) => {
            let request = pb::SearchPublicGroupsRequest {
                actor_id,
                query,
                limit,
                cursor,
            };
            call(
                "groups.SearchPublicGroups",
                state.groups().search_public_groups(request),
            )
            .await?
        }
        None => {
            let request = pb::ListMyGroupsRequest {
                actor_id,
                limit,
                cursor,
            };
            call(
                "groups.ListMyGroups",
                state.groups().list_my_groups(request),
            )
            .await?
        }
    };
    Ok(Json(page.into()))
}

/// A group (or direct conversation) the caller can see.
#[utoipa::path(get, path = "/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Group),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown, or private and the caller is not a member", body = ErrorBody),
    ))]
pub async fn get_group(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Group>> {
    let request = pb::GetGroupRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
    };
    let group = call("groups.GetGroup", state.groups().get_group(request)).await?;
    Ok(Json(group.into()))
}

/// Change a group; omitted fields stay as they are.
#[utoipa::path(patch, path = "/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id")),
    request_body = UpdateGroupRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Group),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Direct conversations cannot be changed", body = ErrorBody),
    ))]
pub async fn update_group(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateGroupRequest>,
) -> ApiResult<Json<Group>> {
    let visibility = request
        .visibility
        .as_deref()
        .map(|raw| Visibility::parse("visibility", raw).map(Visibility::to_pb))
        .transpose()?;
    let avatar = request.avatar_media_id.flatten();
    crate::http::media::claim_avatar(&state, who.user_id, avatar).await?;
    let request = pb::UpdateGroupRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
        name: request.name,
        description: request.description,
        visibility,
        // The contract clears the avatar with an empty id.
        avatar_media_id: request
            .avatar_media_id
            .map(|avatar| avatar.map(|id| id.to_string()).unwrap_or_default()),
    };
    let group = call("groups.UpdateGroup", state.groups().update_group(request)).await?;
    Ok(Json(group.into()))
}

/// Delete a group with its channels (owner only).
#[utoipa::path(delete, path = "/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Direct conversations cannot be deleted", body = ErrorBody),
    ))]
pub async fn delete_group(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let request = pb::DeleteGroupRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
    };
    call("groups.DeleteGroup", state.groups().delete_group(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}
