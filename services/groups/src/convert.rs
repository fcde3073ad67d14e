//! Conversions between rows and wire messages.

use crate::permissions::Role;
use crate::repo::{ChannelMemberRow, ChannelRow, GroupRow, MemberRow};
use messenger_proto::groups::v1 as pb;
use uuid::Uuid;

pub use messenger_platform::wire::timestamp;

pub fn role(role: Option<Role>) -> pb::Role {
    match role {
        None => pb::Role::Unspecified,
        Some(Role::Member) => pb::Role::Member,
        Some(Role::Moderator) => pb::Role::Moderator,
        Some(Role::Admin) => pb::Role::Admin,
        Some(Role::Owner) => pb::Role::Owner,
    }
}

fn role_str(raw: Option<&str>) -> i32 {
    role(raw.and_then(Role::parse)) as i32
}

fn visibility(raw: &str) -> i32 {
    crate::domain::Visibility::from_db(raw).to_pb() as i32
}

fn optional_id(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

impl From<GroupRow> for pb::Group {
    fn from(row: GroupRow) -> Self {
        pb::Group {
            id: row.id.to_string(),
            kind: if row.kind == "direct" {
                pb::GroupKind::Direct
            } else {
                pb::GroupKind::Group
            } as i32,
            name: row.name,
            description: row.description,
            avatar_media_id: optional_id(row.avatar_media_id),
            visibility: visibility(&row.visibility),
            created_by: row.created_by.to_string(),
            member_count: u32::try_from(row.member_count).unwrap_or(0),
            default_channel_id: optional_id(row.default_channel_id),
            my_role: role_str(row.my_role.as_deref()),
            created_at: Some(timestamp(row.created_at)),
            updated_at: Some(timestamp(row.updated_at)),
        }
    }
}

impl From<ChannelRow> for pb::Channel {
    fn from(row: ChannelRow) -> Self {
        pb::Channel {
            id: row.id.to_string(),
            group_id: row.group_id.to_string(),
            name: row.name,
            topic: row.topic,
            visibility: visibility(&row.visibility),
            broadcast: row.broadcast,
            is_default: row.is_default,
            created_by: row.created_by.to_string(),
            created_at: Some(timestamp(row.created_at)),
            updated_at: Some(timestamp(row.updated_at)),
        }
    }
}

impl From<MemberRow> for pb::Member {
    fn from(row: MemberRow) -> Self {
        pb::Member {
            group_id: row.group_id.to_string(),
            user_id: row.user_id.to_string(),
            role: role_str(Some(&row.role)),
            joined_at: Some(timestamp(row.joined_at)),
            muted_until: row.muted_until.map(timestamp),
        }
    }
}

impl From<ChannelMemberRow> for pb::ChannelMember {
    fn from(row: ChannelMemberRow) -> Self {
        pb::ChannelMember {
            channel_id: row.channel_id.to_string(),
            user_id: row.user_id.to_string(),
            added_at: Some(timestamp(row.added_at)),
        }
    }
}
