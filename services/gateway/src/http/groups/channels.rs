//! `/groups/{id}/channels` and `/channels`: a group's channels and the
//! members of its private channels.

use super::requests::{AddMemberRequest, CreateChannelRequest, UpdateChannelRequest};
use crate::api::groups::{Channel, ChannelList, ChannelMember, ChannelMemberPage, Visibility};
use crate::backends::call;
use crate::error::{ApiResult, ErrorBody};
use crate::http::extract::{Auth, Json, JsonOrEmpty, Path, Query};
use crate::http::params::PageParams;
use crate::http::params::page_limit;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::groups::v1 as pb;
use uuid::Uuid;

/// The channels of a group that the caller can see.
#[utoipa::path(get, path = "/groups/{id}/channels", tag = "channels",
    params(("id" = Uuid, Path, description = "Group id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ChannelList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_channels(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ChannelList>> {
    let request = pb::ListChannelsRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
    };
    let list = call("groups.ListChannels", state.groups().list_channels(request)).await?;
    Ok(Json(ChannelList {
        channels: list.channels.into_iter().map(Channel::from).collect(),
    }))
}

/// Create a channel in a group.
#[utoipa::path(post, path = "/groups/{id}/channels", tag = "channels",
    params(("id" = Uuid, Path, description = "Group id")),
    request_body = CreateChannelRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = Channel),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Name taken, or a direct conversation", body = ErrorBody),
    ))]
pub async fn create_channel(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(request): Json<CreateChannelRequest>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let visibility = request
        .visibility
        .as_deref()
        .map(|raw| Visibility::parse("visibility", raw))
        .transpose()?
        .unwrap_or(Visibility::Public);
    let request = pb::CreateChannelRequest {
        actor_id: who.user_id.to_string(),
        group_id: id.to_string(),
        name: request.name,
        topic: request.topic.unwrap_or_default(),
        visibility: visibility.to_pb(),
        broadcast: request.broadcast.unwrap_or(false),
    };
    let channel = call(
        "groups.CreateChannel",
        state.groups().create_channel(request),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(channel.into())))
}

/// A channel the caller may read.
#[utoipa::path(get, path = "/channels/{id}", tag = "channels",
    params(("id" = Uuid, Path, description = "Channel id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Channel),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn get_channel(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Channel>> {
    let request = pb::GetChannelRequest {
        actor_id: who.user_id.to_string(),
        channel_id: id.to_string(),
    };
    let channel = call("groups.GetChannel", state.groups().get_channel(request)).await?;
    Ok(Json(channel.into()))
}

/// Change a channel; omitted fields stay as they are.
#[utoipa::path(patch, path = "/channels/{id}", tag = "channels",
    params(("id" = Uuid, Path, description = "Channel id")),
    request_body = UpdateChannelRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Channel),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Name taken, or a direct conversation", body = ErrorBody),
    ))]
pub async fn update_channel(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateChannelRequest>,
) -> ApiResult<Json<Channel>> {
    let request = pb::UpdateChannelRequest {
        actor_id: who.user_id.to_string(),
        channel_id: id.to_string(),
        name: request.name,
        topic: request.topic,
        broadcast: request.broadcast,
    };
    let channel = call(
        "groups.UpdateChannel",
        state.groups().update_channel(request),
    )
    .await?;
    Ok(Json(channel.into()))
}

/// Delete a channel (not the group's default channel).
#[utoipa::path(delete, path = "/channels/{id}", tag = "channels",
    params(("id" = Uuid, Path, description = "Channel id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The default channel", body = ErrorBody),
    ))]
pub async fn delete_channel(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let request = pb::DeleteChannelRequest {
        actor_id: who.user_id.to_string(),
        channel_id: id.to_string(),
    };
    call(
        "groups.DeleteChannel",
        state.groups().delete_channel(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of a channel.
#[utoipa::path(get, path = "/channels/{id}/members", tag = "channels",
    params(("id" = Uuid, Path, description = "Channel id"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ChannelMemberPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_channel_members(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<ChannelMemberPage>> {
    let request = pb::ListChannelMembersRequest {
        actor_id: who.user_id.to_string(),
        channel_id: id.to_string(),
        limit: page_limit(params.limit)?,
        cursor: params.cursor.unwrap_or_default(),
    };
    let page = call(
        "groups.ListChannelMembers",
        state.groups().list_channel_members(request),
    )
    .await?;
    Ok(Json(page.into()))
}

fn member_request(actor: Uuid, channel: Uuid, user: Uuid) -> pb::ChannelMemberRequest {
    pb::ChannelMemberRequest {
        actor_id: actor.to_string(),
        channel_id: channel.to_string(),
        user_id: user.to_string(),
    }
}

/// Join a channel (no `user_id`, or your own), or add a group member to it.
#[utoipa::path(post, path = "/channels/{id}/members", tag = "channels",
    params(("id" = Uuid, Path, description = "Channel id")),
    request_body = Option<AddMemberRequest>,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ChannelMember),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn add_channel_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    JsonOrEmpty(request): JsonOrEmpty<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<ChannelMember>)> {
    let member = match request.user_id.filter(|user_id| *user_id != who.user_id) {
        None => {
            let request = member_request(who.user_id, id, who.user_id);
            call("groups.JoinChannel", state.groups().join_channel(request)).await?
        }
        Some(user_id) => {
            let request = member_request(who.user_id, id, user_id);
            call(
                "groups.AddChannelMember",
                state.groups().add_channel_member(request),
            )
            .await?
        }
    };
    Ok((StatusCode::CREATED, Json(member.into())))
}

/// Leave a channel.
#[utoipa::path(delete, path = "/channels/{id}/members", tag = "channels",
    params(("id" = Uuid, Path, description = "Channel id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Left"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn leave_channel(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let request = member_request(who.user_id, id, who.user_id);
    call("groups.LeaveChannel", state.groups().leave_channel(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member from a channel (your own id leaves it).
#[utoipa::path(delete, path = "/channels/{id}/members/{user_id}", tag = "channels",
    params(
        ("id" = Uuid, Path, description = "Channel id"),
        ("user_id" = Uuid, Path, description = "Member's user id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn remove_channel_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let request = member_request(who.user_id, id, user_id);
    // Like the group route: removing yourself is leaving, which needs no
    // moderation rights.
    if user_id == who.user_id {
        call("groups.LeaveChannel", state.groups().leave_channel(request)).await?;
    } else {
        call(
            "groups.RemoveChannelMember",
            state.groups().remove_channel_member(request),
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
