//! `/auth`: registration, login, token refresh and logout.

use super::dto::{
    AuthResponse, LoginRequest, Me, RefreshRequest, RegisterRequest, Tokens, timestamp,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::state::{AppState, call};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use messenger_platform::auth::Principal;
use messenger_proto::users::v1 as pb;
use time::OffsetDateTime;
use uuid::Uuid;

/// Create an account and sign in.
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = AuthResponse),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 409, description = "Username or email taken", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    let user = create_user(&state, request).await?;
    let response = sign_in(&state, user, &headers).await?;
    Ok((StatusCode::CREATED, Json(response)))
}

pub(super) async fn create_user(state: &AppState, request: RegisterRequest) -> ApiResult<pb::User> {
    let request = pb::RegisterRequest {
        username: request.username,
        email: request.email,
        display_name: request.display_name,
        password: request.password,
    };
    Ok(call("users.Register", state.users().register(request)).await?)
}

/// Sign in with username or email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = AuthResponse),
        (status = 401, description = "Wrong login or password", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    if let Some(limiter) = state.rate_limiter() {
        // Per account, whatever the address: guessing one user's password
        // from many addresses is slowed too.
        let account = request.login.trim().to_lowercase();
        let decision = limiter
            .check(crate::ratelimit::Class::LoginAccount, &account)
            .await;
        if let Some(decision) = decision.filter(|decision| !decision.allowed) {
            return Err(ApiError::too_many_requests(decision));
        }
    }
    let verify = pb::VerifyPasswordRequest {
        login: request.login,
        password: request.password,
    };
    let user = call(
        "users.VerifyPassword",
        state.users().verify_password(verify),
    )
    .await?;
    Ok(Json(sign_in(&state, user, &headers).await?))
}

/// Exchange a refresh token for new tokens. The presented refresh token is
/// spent; presenting it again revokes the whole session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = Tokens),
        (status = 401, description = "Invalid, expired, revoked or reused token", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    let refresh = pb::RefreshSessionRequest {
        refresh_token: request.refresh_token,
    };
    let session = call(
        "users.RefreshSession",
        state.users().refresh_session(refresh),
    )
    .await?;
    Ok(Json(tokens(&state, session)?))
}

/// End the session the refresh token belongs to. Idempotent.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Session ended")))]
pub async fn logout(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let revoke = pb::RevokeSessionRequest {
        refresh_token: request.refresh_token,
    };
    call("users.RevokeSession", state.users().revoke_session(revoke)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sign_in(state: &AppState, user: pb::User, headers: &HeaderMap) -> ApiResult<AuthResponse> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let create = pb::CreateSessionRequest {
        user_id: user.id.clone(),
        user_agent,
    };
    let session = call("users.CreateSession", state.users().create_session(create)).await?;
    Ok(AuthResponse {
        tokens: tokens(state, session)?,
        user: Me::from(user),
    })
}

fn tokens(state: &AppState, session: pb::Session) -> ApiResult<Tokens> {
    let internal = || {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    };
    let principal = Principal {
        user_id: Uuid::parse_str(&session.user_id).map_err(|_| internal())?,
        session_id: Uuid::parse_str(&session.session_id).map_err(|_| internal())?,
    };
    let access = state.tokens().issue(principal).map_err(|err| {
        tracing::error!(error = %err, "cannot sign access token");
        internal()
    })?;
    Ok(Tokens {
        expires_in: (access.expires_at - OffsetDateTime::now_utc())
            .whole_seconds()
            .max(0),
        access_token: access.token,
        token_type: "Bearer",
        refresh_token: session.refresh_token,
        refresh_expires_at: timestamp(session.refresh_expires_at),
    })
}
