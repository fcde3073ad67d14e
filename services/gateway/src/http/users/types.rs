//! Request and response bodies of the user routes.

use crate::api::users::PublicUser;
use crate::http::params::present;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
