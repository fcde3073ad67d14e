//! `/groups/{id}/members` and `/groups/{id}/bans`: joining, inviting,
//! leaving, roles, mutes, kicks and bans.

use super::requests::{AddMemberRequest, BanRequest, UpdateMemberRequest};
use crate::api::groups::{Member, MemberPage, Role, parse_timestamp};
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, JsonOrEmpty, Path, Query};
use crate::http::params::PageParams;
use crate::http::params::page_limit;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::groups::v1 as pb;
use messenger_proto::users::v1 as users;
use uuid::Uuid;

/// Fails with 404 unless `user_id` is an account, so inviting a stranger's
/// typo says "user not found" rather than leaving a dangling member.
async fn ensure_user_exists(state: &AppState, user_id: Uuid) -> ApiResult<()> {
    let request = users::GetUserRequest {
        id: user_id.to_string(),
    };
    match call("users.GetUser", state.users().get_user(request)).await {
        Ok(_) => Ok(()),
        Err(status) if status.code() == tonic::Code::NotFound => {
            Err(ApiError::not_found("user not found").with_detail("field", "user_id"))
        }
        Err(status) => Err(status.into()),
    }
}

/// Members of a group.
#[utoipa::path(get, path = "/groups/{id}/members", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MemberPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_members(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<MemberPage>> {
    let request = pb::ListMembersRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
        limit: page_limit(params.limit)?,
        cursor: params.cursor.unwrap_or_default(),
    };
    let page = call("groups.ListMembers", state.groups().list_members(request)).await?;
    Ok(Json(page.into()))
}

/// Join a public group (no `user_id`, or your own), or add another user.
#[utoipa::path(post, path = "/groups/{id}/members", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id")),
    request_body = Option<AddMemberRequest>,
    security(("bearer" = [])),
    responses(
        (status = 201, body = Member),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low to invite", body = ErrorBody),
        (status = 404, description = "Unknown group or user", body = ErrorBody),
        (status = 409, description = "Already a member, or banned", body = ErrorBody),
    ))]
pub async fn add_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    JsonOrEmpty(request): JsonOrEmpty<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let actor_id = who.user_id.to_string();
    let group_id = id.to_string();
    let member = match request.user_id.filter(|user_id| *user_id != who.user_id) {
        None => {
            let request = pb::JoinGroupRequest { actor_id, group_id };
            call("groups.JoinGroup", state.groups().join_group(request)).await?
        }
        Some(user_id) => {
            ensure_user_exists(&state, user_id).await?;
            let request = pb::InviteMemberRequest {
                actor_id,
                group_id,
                user_id: user_id.to_string(),
            };
            call("groups.InviteMember", state.groups().invite_member(request)).await?
        }
    };
    Ok((StatusCode::CREATED, Json(member.into())))
}

/// Leave a group (the owner must transfer ownership first).
#[utoipa::path(delete, path = "/groups/{id}/members", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Left"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The owner cannot leave", body = ErrorBody),
    ))]
pub async fn leave_group(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    leave(&state, who.user_id, id).await
}

async fn leave(state: &AppState, actor: Uuid, group: Uuid) -> ApiResult<StatusCode> {
    let request = pb::LeaveGroupRequest {
        actor_id: actor.to_string(),
        group_id: group.to_string(),
    };
    call("groups.LeaveGroup", state.groups().leave_group(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change a member's role (`owner` transfers ownership) or mute them.
#[utoipa::path(patch, path = "/groups/{id}/members/{user_id}", tag = "groups",
    params(
        ("id" = Uuid, Path, description = "Group id"),
        ("user_id" = Uuid, Path, description = "Member's user id"),
    ),
    request_body = UpdateMemberRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Member),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low, or the member ranks equal or higher", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn update_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
    Json(request): Json<UpdateMemberRequest>,
) -> ApiResult<Json<Member>> {
    // Everything is validated before the first call, so bad input never
    // leaves the change half applied.
    let role = request
        .role
        .as_deref()
        .map(|raw| Role::parse("role", raw))
        .transpose()?;
    let mute = request
        .muted_until
        .map(|until| {
            until
                .as_deref()
                .map(|raw| parse_timestamp("muted_until", raw))
                .transpose()
        })
        .transpose()?;
    let member = match (role, mute) {
        (None, None) => return Err(ApiError::bad_request("set role or muted_until")),
        (Some(role), None) => set_role(&state, who.user_id, id, user_id, role).await?,
        (role, Some(muted_until)) => {
            if let Some(role) = role {
                set_role(&state, who.user_id, id, user_id, role).await?;
            }
            let request = pb::MuteMemberRequest {
                actor_id: who.user_id.to_string(),
                group_id: id.to_string(),
                user_id: user_id.to_string(),
                muted_until,
            };
            call("groups.MuteMember", state.groups().mute_member(request)).await?
        }
    };
    Ok(Json(member.into()))
}

/// The contract has no "set role owner": handing over ownership is its own
/// call, which also demotes the previous owner.
async fn set_role(
    state: &AppState,
    actor: Uuid,
    group: Uuid,
    user: Uuid,
    role: Role,
) -> ApiResult<pb::Member> {
    let (actor_id, group_id, user_id) = (actor.to_string(), group.to_string(), user.to_string());
    let member = if role == Role::Owner {
        let request = pb::TransferOwnershipRequest {
            actor_id,
            group_id,
            user_id,
        };
        call(
            "groups.TransferOwnership",
            state.groups().transfer_ownership(request),
        )
        .await?
    } else {
        let request = pb::SetRoleRequest {
            actor_id,
            group_id,
            user_id,
            role: role.to_pb(),
        };
        call("groups.SetRole", state.groups().set_role(request)).await?
    };
    Ok(member)
}

/// Remove a member from the group (your own id leaves it).
#[utoipa::path(delete, path = "/groups/{id}/members/{user_id}", tag = "groups",
    params(
        ("id" = Uuid, Path, description = "Group id"),
        ("user_id" = Uuid, Path, description = "Member's user id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low, or the member ranks equal or higher", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    if user_id == who.user_id {
        return leave(&state, who.user_id, id).await;
    }
    let request = pb::KickMemberRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
        user_id: user_id.to_string(),
    };
    call("groups.KickMember", state.groups().kick_member(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ban a user from the group.
#[utoipa::path(put, path = "/groups/{id}/bans/{user_id}", tag = "groups",
    params(
        ("id" = Uuid, Path, description = "Group id"),
        ("user_id" = Uuid, Path, description = "User to ban"),
    ),
    request_body = Option<BanRequest>,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Banned"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low, or the member ranks equal or higher", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn ban_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
    JsonOrEmpty(request): JsonOrEmpty<BanRequest>,
) -> ApiResult<StatusCode> {
    let request = pb::BanMemberRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
        user_id: user_id.to_string(),
        reason: request.reason.unwrap_or_default(),
    };
    call("groups.BanMember", state.groups().ban_member(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a ban.
#[utoipa::path(delete, path = "/groups/{id}/bans/{user_id}", tag = "groups",
    params(
        ("id" = Uuid, Path, description = "Group id"),
        ("user_id" = Uuid, Path, description = "Banned user"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Unbanned"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn unban_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let request = pb::UnbanMemberRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
        user_id: user_id.to_string(),
    };
    call("groups.UnbanMember", state.groups().unban_member(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}
