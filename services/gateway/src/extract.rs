//! Extractors whose rejections are [`ApiError`]s, so malformed input gets
//! the documented error shape and a 4xx, never axum's plain-text default.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use messenger_platform::auth::{Principal, TokenError};

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

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
        let (parts, body) = request.into_parts();
        // Read through `Bytes` rather than the raw body so the configured
        // body limit still applies.
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(JsonRejection::from)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        let request = Request::from_parts(parts, Body::from(bytes));
        // `null` reads as "nothing to say" too, like an empty body.
        let axum::Json(value) = axum::Json::<Option<T>>::from_request(request, state).await?;
        Ok(JsonOrEmpty(value.unwrap_or_default()))
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// The caller, from a valid `Authorization: Bearer <access token>`.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("Authorization must be \"Bearer <token>\""))?;
        match state.tokens().verify(token) {
            Ok(principal) => Ok(Auth(principal)),
            Err(TokenError::Expired) => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "token_expired",
                TokenError::Expired.to_string(),
            )),
            Err(err) => Err(ApiError::unauthenticated(err.to_string())),
        }
    }
}
