//! Extractors whose rejections are [`ApiError`]s, so malformed input gets
//! the documented error shape and a 4xx, never axum's plain-text default.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use messenger_platform::auth::{Principal, TokenError};
use messenger_platform::identity::{self, Rejected};
use std::sync::Arc;

/// A JSON object body. Like `axum::Json` (content type, syntax, shape), but
/// only an object is accepted: serde would otherwise also read a struct
/// from an array of its fields in order (`[null, null]`).
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (request, first) = buffer(request, state).await?;
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        if first != Some(b'{') {
            return Err(not_an_object());
        }
        Ok(Json(value))
    }
}

/// Reads the body (within the configured body limit) and puts it back,
/// returning its first non-blank byte.
async fn buffer<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<(Request, Option<u8>), ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
        .await
        .map_err(JsonRejection::from)?;
    let first = bytes
        .iter()
        .copied()
        .find(|byte| !byte.is_ascii_whitespace());
    Ok((Request::from_parts(parts, Body::from(bytes)), first))
}

fn not_an_object() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        ErrorCode::InvalidJson,
        "the body must be a JSON object",
    )
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON body whose fields are all optional: an empty body (with or
/// without a content type) means `T::default()`, so a client need not send
/// `{}`. A non-empty body gets exactly [`Json`]'s checks (content type,
/// syntax, shape).
pub struct JsonOrEmpty<T>(pub T);

impl<T, S> FromRequest<S> for JsonOrEmpty<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        // Read through `Bytes` rather than the raw body so the configured
        // body limit still applies.
        let (request, first) = buffer(request, state).await?;
        if first.is_none() {
            return Ok(JsonOrEmpty(T::default()));
        }
        // `null` reads as "nothing to say" too, like an empty body.
        let axum::Json(value) = axum::Json::<Option<T>>::from_request(request, state).await?;
        if !matches!(first, Some(b'{' | b'n')) {
            return Err(not_an_object());
        }
        Ok(JsonOrEmpty(value.unwrap_or_default()))
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// The caller, from a valid `Authorization: Bearer <access token>`
/// (verified by [`authenticate`]).
pub struct Auth(pub Principal);

/// What [`authenticate`] found in a request's `Authorization` header.
#[derive(Clone)]
enum Bearer {
    Verified(Principal),
    Refused(Arc<Rejected>),
}

/// Verifies the request's access token, if it has one, once for the whole
/// request: handlers asking for [`Auth`] get the verdict, and the backends
/// the handler calls receive the token with every call (see
/// `messenger_platform::identity`), so each verifies the user itself.
/// Routes without `Auth` (sign-in, health) are served whatever the token.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> axum::response::Response {
    let Some(token) = identity::bearer(request.headers()).map(str::to_owned) else {
        return next.run(request).await;
    };
    match state.user_tokens().authenticate(&token).await {
        Ok(user) => {
            request
                .extensions_mut()
                .insert(Bearer::Verified(user.principal));
            identity::scope(Arc::new(user), next.run(request)).await
        }
        Err(rejected) => {
            request
                .extensions_mut()
                .insert(Bearer::Refused(Arc::new(rejected)));
            next.run(request).await
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        match parts.extensions.get::<Bearer>() {
            Some(Bearer::Verified(principal)) => Ok(Auth(*principal)),
            Some(Bearer::Refused(rejected)) => Err(refusal(rejected)),
            None if parts.headers.contains_key(header::AUTHORIZATION) => Err(
                ApiError::unauthenticated("Authorization must be \"Bearer <token>\""),
            ),
            None => Err(ApiError::unauthenticated(
                "missing Authorization: Bearer token",
            )),
        }
    }
}

fn refusal(rejected: &Rejected) -> ApiError {
    use axum::http::StatusCode;
    match rejected {
        Rejected::Revoked => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SessionRevoked,
            "this session has ended (logged out); sign in again",
        ),
        Rejected::Token(TokenError::Expired) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::TokenExpired,
            TokenError::Expired.to_string(),
        ),
        Rejected::KeysUnavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            rejected.to_string(),
        ),
        other => ApiError::unauthenticated(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields)]
    struct Update {
        name: Option<String>,
        bio: Option<String>,
    }

    fn request(body: &'static str) -> Request {
        Request::builder()
            .method("PATCH")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("request")
    }

    /// serde reads a struct from an array of its fields too; a body that is
    /// not an object is refused all the same.
    #[tokio::test]
    async fn only_objects_are_bodies() {
        for body in ["[null, null]", " [\"a\", \"b\"]", "[]", "\"x\"", "1"] {
            let Err(error) = Json::<Update>::from_request(request(body), &()).await else {
                panic!("{body} accepted");
            };
            assert_eq!(
                (error.status, error.code),
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidJson),
                "{body}"
            );
            let Err(error) = JsonOrEmpty::<Update>::from_request(request(body), &()).await else {
                panic!("{body} accepted");
            };
            assert_eq!(error.code, ErrorCode::InvalidJson, "{body}");
        }
        let Ok(Json(update)) =
            Json::<Update>::from_request(request(r#" {"name": "a"}"#), &()).await
        else {
            panic!("an object refused");
        };
        assert_eq!(update.name.as_deref(), Some("a"));
        assert!(update.bio.is_none());
        for empty in ["", "  ", "null"] {
            let Ok(JsonOrEmpty(update)) =
                JsonOrEmpty::<Update>::from_request(request(empty), &()).await
            else {
                panic!("{empty:?} refused");
            };
            assert!(update.name.is_none());
        }
    }
}
