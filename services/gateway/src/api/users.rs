//! Users as the API shows them.

use super::timestamp;
use messenger_proto::users::v1 as pb;
use serde::Serialize;
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
