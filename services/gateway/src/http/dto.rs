//! Public JSON shapes of the REST API.

use messenger_proto::users::v1 as pb;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user as anyone signed in may see it.
#[derive(Serialize, ToSchema)]
pub struct PublicUser {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub avatar_media_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// The signed-in user's own account, including private fields.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub bio: String,
    pub avatar_media_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

pub fn timestamp(ts: Option<prost_types::Timestamp>) -> OffsetDateTime {
    ts.and_then(|ts| {
        OffsetDateTime::from_unix_timestamp(ts.seconds)
            .ok()
            .map(|at| at + time::Duration::nanoseconds(i64::from(ts.nanos)))
    })
    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn media_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

impl From<pb::User> for PublicUser {
    fn from(user: pb::User) -> Self {
        PublicUser {
            id: Uuid::parse_str(&user.id).unwrap_or_default(),
            avatar_media_id: media_id(&user.avatar_media_id),
            username: user.username,
            display_name: user.display_name,
            bio: user.bio,
            created_at: timestamp(user.created_at),
        }
    }
}

impl From<pb::User> for Me {
    fn from(user: pb::User) -> Self {
        Me {
            id: Uuid::parse_str(&user.id).unwrap_or_default(),
            avatar_media_id: media_id(&user.avatar_media_id),
            username: user.username,
            email: user.email,
            display_name: user.display_name,
            bio: user.bio,
            created_at: timestamp(user.created_at),
            updated_at: timestamp(user.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3-32 characters of a-z, 0-9 and `_`; case-insensitive.
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_]+$")]
    pub username: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 1-64 characters, no control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: String,
    /// 8-256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or email (`username` and `email` are accepted as aliases).
    #[serde(alias = "username", alias = "email")]
    pub login: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Tokens returned by register, login and refresh.
#[derive(Serialize, ToSchema)]
pub struct Tokens {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque, single-use: each refresh returns a new one.
    pub refresh_token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub refresh_expires_at: OffsetDateTime,
}

#[derive(Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: Me,
    #[serde(flatten)]
    pub tokens: Tokens,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// 1-64 characters, no control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub bio: Option<String>,
    /// A media id, or `null` to remove the avatar.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub avatar_media_id: Option<Option<Uuid>>,
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one left out
/// (`None`, via `#[serde(default)]`).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Prefix or fuzzy match on username and display name; up to 100
    /// characters.
    #[serde(default)]
    #[param(max_length = 100)]
    pub q: String,
    /// 1-100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Legacy paging, at most 10000; prefer `cursor`.
    #[param(maximum = 10000)]
    pub offset: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<PublicUser>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
