//! `/auth`: registration, login, token refresh and logout.

mod types;

use crate::api::timestamp;
use crate::api::users::Me;
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::http::extract::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use messenger_platform::auth::PublicKey;
use messenger_proto::users::v1 as pb;
use time::OffsetDateTime;
pub use types::{AuthResponse, LoginRequest, RefreshRequest, RegisterRequest, Tokens};

/// Answers that carry tokens must not be kept by any cache (RFC 6749 §5.1).
type NoStore = [(header::HeaderName, &'static str); 2];
const NO_STORE: NoStore = [
    (header::CACHE_CONTROL, "no-store"),
    (header::PRAGMA, "no-cache"),
];

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
) -> ApiResult<(StatusCode, NoStore, Json<AuthResponse>)> {
    let sign_up = pb::SignUpRequest {
        account: Some(account(request)),
        user_agent: user_agent(&headers),
    };
    let signed_in = call("users.SignUp", state.users().sign_up(sign_up)).await?;
    Ok((
        StatusCode::CREATED,
        NO_STORE,
        Json(auth_response(signed_in)?),
    ))
}

pub(super) async fn create_user(state: &AppState, request: RegisterRequest) -> ApiResult<pb::User> {
    Ok(call("users.Register", state.users().register(account(request))).await?)
}

fn account(request: RegisterRequest) -> pb::RegisterRequest {
    pb::RegisterRequest {
        username: request.username,
        email: request.email,
        display_name: request.display_name,
        password: request.password,
    }
}

/// Sign in with username or email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = AuthResponse),
        (status = 401, description = "Wrong login or password", body = ErrorBody),
        (status = 503, description = "Too many passwords being checked at once; retry after Retry-After", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> ApiResult<(NoStore, Json<AuthResponse>)> {
    // Guesses per account (whatever login or address names it) are counted
    // by the users service, which resolves the login: over its allowance
    // the answer is 429 with Retry-After.
    let sign_in = pb::SignInRequest {
        login: request.login,
        password: request.password,
        user_agent: user_agent(&headers),
    };
    let signed_in = call("users.SignIn", state.users().sign_in(sign_in)).await?;
    Ok((NO_STORE, Json(auth_response(signed_in)?)))
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
) -> ApiResult<(NoStore, Json<Tokens>)> {
    let refresh = pb::RefreshSessionRequest {
        refresh_token: request.refresh_token,
    };
    // A reused token ends its session: the users service deny-lists it.
    let session = state
        .users()
        .refresh_session(refresh)
        .await
        .map_err(ApiError::from)?
        .into_inner();
    Ok((NO_STORE, Json(tokens(session)?)))
}

/// End the session the refresh token belongs to. Idempotent.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Session ended: its access tokens are refused and its sockets closed (4003)"),
        (status = 503, description = "Session ended, but its access tokens could not be revoked yet; retry", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let revoke = pb::RevokeSessionRequest {
        refresh_token: request.refresh_token,
    };
    // The users service ends the session everywhere (the deny-list's only
    // writer), or answers UNAVAILABLE: 503, retry.
    call("users.RevokeSession", state.users().revoke_session(revoke)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The public keys access tokens are signed with, as a JSON Web Key Set
/// (RFC 7517; Ed25519 keys, `alg` EdDSA), for services of other teams that
/// verify our tokens. The active key is listed first; a new key appears
/// here before it signs, and a retired one stays until its tokens expired.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses(
        (status = 200, description = "The key set", body = Object,
            example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "2026-12", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})),
        (status = 503, description = "The users service cannot be reached", body = ErrorBody),
    ))]
pub async fn jwks(
    State(state): State<AppState>,
) -> ApiResult<(
    [(header::HeaderName, &'static str); 1],
    axum::Json<serde_json::Value>,
)> {
    let request = pb::GetSigningKeysRequest {};
    let published = call(
        "users.GetSigningKeys",
        state.users().get_signing_keys(request),
    )
    .await?;
    let keys: Vec<PublicKey> = published
        .keys
        .into_iter()
        .map(|key| PublicKey {
            kid: key.kid,
            x: key.x,
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=60")],
        axum::Json(messenger_platform::auth::jwks(&keys)),
    ))
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn auth_response(signed_in: pb::SignedIn) -> ApiResult<AuthResponse> {
    let (Some(user), Some(session)) = (signed_in.user, signed_in.session) else {
        tracing::error!("users service answered a sign-in without user or session");
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        ));
    };
    Ok(AuthResponse {
        tokens: tokens(session)?,
        user: Me::from(user),
    })
}

/// The session's tokens as the users service issued them: the gateway
/// holds no signing key.
fn tokens(session: pb::Session) -> ApiResult<Tokens> {
    let Some(expires_at) = session
        .access_expires_at
        .filter(|_| !session.access_token.is_empty())
    else {
        tracing::error!("users service answered a session without an access token");
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        ));
    };
    Ok(Tokens {
        expires_in: (expires_at.seconds - OffsetDateTime::now_utc().unix_timestamp()).max(0),
        access_token: session.access_token,
        token_type: "Bearer",
        refresh_token: session.refresh_token,
        refresh_expires_at: timestamp(session.refresh_expires_at),
    })
}
