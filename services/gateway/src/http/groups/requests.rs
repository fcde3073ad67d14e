//! Request bodies and query parameters of the groups, channels and direct
//! conversation routes. Enum-valued fields arrive as strings and are parsed
//! by the handlers (see `crate::api::groups`), so a bad value names its field.

use crate::api::groups::{Role, Visibility};
use crate::http::params::present;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    /// 1-100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Default `private`.
    #[schema(value_type = Option<Visibility>)]
    pub visibility: Option<String>,
    pub avatar_media_id: Option<Uuid>,
}

/// Omitted fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroupRequest {
    /// 1-100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[schema(value_type = Option<Visibility>)]
    pub visibility: Option<String>,
    /// A media id, or `null` to remove the avatar.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub avatar_media_id: Option<Option<Uuid>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupListParams {
    /// Search public groups by name; without it, list the caller's groups
    /// and direct conversations (empty counts as absent). Up to 100
    /// characters.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Who to add; omit `user_id` (or send an empty body) to join yourself.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub user_id: Option<Uuid>,
}

/// At least one field. With both, the role changes first.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// `owner` transfers ownership (the previous owner becomes an admin).
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    /// Mute until this time, or `null` to unmute.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<Option<String>>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// 1-80 characters, unique in the group.
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub topic: Option<String>,
    /// Default `public`.
    #[schema(value_type = Option<Visibility>)]
    pub visibility: Option<String>,
    /// Announcement channel (only owner and admins post); default false.
    pub broadcast: Option<bool>,
}

/// Omitted fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannelRequest {
    /// 1-80 characters, unique in the group.
    #[schema(min_length = 1, max_length = 80)]
    pub name: Option<String>,
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub topic: Option<String>,
    pub broadcast: Option<bool>,
}

/// The other participants (1 to 9); `user_id` is shorthand for one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDirectRequest {
    #[serde(default)]
    pub user_ids: Vec<Uuid>,
    pub user_id: Option<Uuid>,
}
