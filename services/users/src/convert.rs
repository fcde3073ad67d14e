//! Conversions between rows and wire messages.

use crate::repo::UserRow;
use messenger_proto::users::v1 as pb;

pub use messenger_platform::wire::timestamp;

impl From<UserRow> for pb::User {
    fn from(row: UserRow) -> Self {
        pb::User {
            id: row.id.to_string(),
            username: row.username,
            email: row.email,
            display_name: row.display_name,
            bio: row.bio,
            avatar_media_id: row
                .avatar_media_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            created_at: Some(timestamp(row.created_at)),
            updated_at: Some(timestamp(row.updated_at)),
        }
    }
}
