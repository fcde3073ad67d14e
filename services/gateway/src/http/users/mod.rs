//! `/users`: profiles and search.

mod types;

use crate::api::users::{Me, PublicUser};
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::auth::RegisterRequest;
use crate::http::extract::{Auth, Json, Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use messenger_proto::users::v1 as pb;
pub use types::{SearchParams, UpdateProfileRequest, UserPage};
use uuid::Uuid;

/// Create a user (the original API's registration route; returns the user
/// without signing in — use `/auth/register` to get tokens too).
#[utoipa::path(post, path = "/users", tag = "users",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = Me),
        (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Me>)> {
    let user = super::auth::create_user(&state, request).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Search users by username or display name (prefix and fuzzy).
#[utoipa::path(get, path = "/users", tag = "users",
    params(SearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    Auth(_): Auth,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<UserPage>> {
    let limit = match params.limit {
        None => 20,
        Some(limit @ 1..=100) => limit,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "limit",
                "limit must be between 1 and 100",
            ));
        }
    };
    let request = pb::SearchUsersRequest {
        query: params.q,
        limit,
        cursor: params.cursor.unwrap_or_default(),
        offset: params.offset.unwrap_or(0),
    };
    let page = call("users.SearchUsers", state.users().search_users(request)).await?;
    Ok(Json(UserPage {
        users: page.users.into_iter().map(PublicUser::from).collect(),
        next_cursor: (!page.next_cursor.is_empty()).then_some(page.next_cursor),
    }))
}

/// The signed-in user's account.
#[utoipa::path(get, path = "/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Me>> {
    let request = pb::GetUserRequest {
        id: who.user_id.to_string(),
    };
    let user = call("users.GetUser", state.users().get_user(request)).await?;
    Ok(Json(user.into()))
}

/// Change the signed-in user's profile; omitted fields stay as they are.
#[utoipa::path(patch, path = "/users/me", tag = "users",
    request_body = UpdateProfileRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Me),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(request): Json<UpdateProfileRequest>,
) -> ApiResult<Json<Me>> {
    let avatar = request.avatar_media_id.flatten();
    crate::http::media::claim_avatar(&state, who.user_id, avatar).await?;
    let request = pb::UpdateProfileRequest {
        id: who.user_id.to_string(),
        display_name: request.display_name,
        bio: request.bio,
        avatar_media_id: request
            .avatar_media_id
            .map(|avatar| avatar.map(|id| id.to_string()).unwrap_or_default()),
    };
    let user = call("users.UpdateProfile", state.users().update_profile(request)).await?;
    Ok(Json(user.into()))
}

/// A user's public profile.
#[utoipa::path(get, path = "/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PublicUser),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PublicUser>> {
    let request = pb::GetUserRequest { id: id.to_string() };
    let user = call("users.GetUser", state.users().get_user(request)).await?;
    Ok(Json(user.into()))
}
