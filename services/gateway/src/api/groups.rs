//! Public JSON shapes of groups, channels and direct conversations, and the
//! one place their proto enums become strings and back.

use super::timestamp;
use crate::error::{ApiError, ApiResult};
use messenger_proto::groups::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

/// A member's rank in a group, highest first.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Moderator,
    Member,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    Group,
    Direct,
}

impl Role {
    /// `None` for "not a member".
    pub(crate) fn from_pb(raw: i32) -> Option<Role> {
        match pb::Role::try_from(raw).ok()? {
            pb::Role::Owner => Some(Role::Owner),
            pb::Role::Admin => Some(Role::Admin),
            pb::Role::Moderator => Some(Role::Moderator),
            pb::Role::Member => Some(Role::Member),
            pb::Role::Unspecified => None,
        }
    }

    pub fn to_pb(self) -> i32 {
        let role = match self {
            Role::Owner => pb::Role::Owner,
            Role::Admin => pb::Role::Admin,
            Role::Moderator => pb::Role::Moderator,
            Role::Member => pb::Role::Member,
        };
        role as i32
    }

    /// Parses request input; the enum is not deserialized by serde so an
    /// unknown value gets a 400 naming the field rather than a JSON error.
    pub fn parse(field: &str, raw: &str) -> ApiResult<Role> {
        match raw {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "moderator" => Ok(Role::Moderator),
            "member" => Ok(Role::Member),
            _ => Err(ApiError::invalid_field(
                field,
                format!("{field} must be one of owner, admin, moderator, member"),
            )),
        }
    }
}

impl Visibility {
    // The service never sends "unspecified"; if it did, claiming less
    // exposure is the safe reading.
    fn from_pb(raw: i32) -> Visibility {
        match pb::Visibility::try_from(raw) {
            Ok(pb::Visibility::Public) => Visibility::Public,
            _ => Visibility::Private,
        }
    }

    pub fn to_pb(self) -> i32 {
        let visibility = match self {
            Visibility::Public => pb::Visibility::Public,
            Visibility::Private => pb::Visibility::Private,
        };
        visibility as i32
    }

    /// Parses request input (see [`Role::parse`]).
    pub fn parse(field: &str, raw: &str) -> ApiResult<Visibility> {
        match raw {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            _ => Err(ApiError::invalid_field(
                field,
                format!("{field} must be public or private"),
            )),
        }
    }
}

impl GroupKind {
    fn from_pb(raw: i32) -> GroupKind {
        match pb::GroupKind::try_from(raw) {
            Ok(pb::GroupKind::Direct) => GroupKind::Direct,
            _ => GroupKind::Group,
        }
    }
}

/// Parses an RFC 3339 timestamp from request input.
pub fn parse_timestamp(field: &str, raw: &str) -> ApiResult<prost_types::Timestamp> {
    let at = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
        ApiError::invalid_field(field, format!("{field} must be an RFC 3339 timestamp"))
    })?;
    Ok(prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    })
}

// Ids come from the service, which only issues UUIDs; empty means "none".
fn id(raw: &str) -> Uuid {
    Uuid::parse_str(raw).unwrap_or_default()
}

fn optional_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

fn next_cursor(raw: String) -> Option<String> {
    (!raw.is_empty()).then_some(raw)
}

/// A group or a direct conversation, as the caller sees it.
#[derive(Serialize, ToSchema)]
pub struct Group {
    pub id: Uuid,
    pub kind: GroupKind,
    pub name: String,
    pub description: String,
    pub avatar_media_id: Option<Uuid>,
    pub visibility: Visibility,
    pub created_by: Uuid,
    pub member_count: u32,
    pub default_channel_id: Option<Uuid>,
    /// The caller's role; `null` when they are not a member.
    pub my_role: Option<Role>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<pb::Group> for Group {
    fn from(group: pb::Group) -> Self {
        Group {
            id: id(&group.id),
            kind: GroupKind::from_pb(group.kind),
            avatar_media_id: optional_id(&group.avatar_media_id),
            visibility: Visibility::from_pb(group.visibility),
            created_by: id(&group.created_by),
            member_count: group.member_count,
            default_channel_id: optional_id(&group.default_channel_id),
            my_role: Role::from_pb(group.my_role),
            created_at: timestamp(group.created_at),
            updated_at: timestamp(group.updated_at),
            name: group.name,
            description: group.description,
        }
    }
}

/// A channel of a group.
#[derive(Serialize, ToSchema)]
pub struct Channel {
    pub id: Uuid,
    pub group_id: Uuid,
    pub name: String,
    pub topic: String,
    /// Public: every group member may read it. Private: only its members.
    pub visibility: Visibility,
    /// Announcement channel: only owner and admins post.
    pub broadcast: bool,
    pub is_default: bool,
    pub created_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<pb::Channel> for Channel {
    fn from(channel: pb::Channel) -> Self {
        Channel {
            id: id(&channel.id),
            group_id: id(&channel.group_id),
            visibility: Visibility::from_pb(channel.visibility),
            broadcast: channel.broadcast,
            is_default: channel.is_default,
            created_by: id(&channel.created_by),
            created_at: timestamp(channel.created_at),
            updated_at: timestamp(channel.updated_at),
            name: channel.name,
            topic: channel.topic,
        }
    }
}

/// A group member.
#[derive(Serialize, ToSchema)]
pub struct Member {
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: OffsetDateTime,
    /// Until when the member may not post; `null` when not muted.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<OffsetDateTime>,
}

impl From<pb::Member> for Member {
    fn from(member: pb::Member) -> Self {
        Member {
            group_id: id(&member.group_id),
            user_id: id(&member.user_id),
            // Every listed member has a role; "member" is the floor.
            role: Role::from_pb(member.role).unwrap_or(Role::Member),
            joined_at: timestamp(member.joined_at),
            muted_until: member.muted_until.map(|at| timestamp(Some(at))),
        }
    }
}

/// A member of a (private) channel.
#[derive(Serialize, ToSchema)]
pub struct ChannelMember {
    pub channel_id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: OffsetDateTime,
}

impl From<pb::ChannelMember> for ChannelMember {
    fn from(member: pb::ChannelMember) -> Self {
        ChannelMember {
            channel_id: id(&member.channel_id),
            user_id: id(&member.user_id),
            added_at: timestamp(member.added_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupPage {
    pub groups: Vec<Group>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<pb::GroupPage> for GroupPage {
    fn from(page: pb::GroupPage) -> Self {
        GroupPage {
            groups: page.groups.into_iter().map(Group::from).collect(),
            next_cursor: next_cursor(page.next_cursor),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    pub members: Vec<Member>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<pb::MemberPage> for MemberPage {
    fn from(page: pb::MemberPage) -> Self {
        MemberPage {
            members: page.members.into_iter().map(Member::from).collect(),
            next_cursor: next_cursor(page.next_cursor),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelMemberPage {
    pub members: Vec<ChannelMember>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<pb::ChannelMemberPage> for ChannelMemberPage {
    fn from(page: pb::ChannelMemberPage) -> Self {
        ChannelMemberPage {
            members: page.members.into_iter().map(ChannelMember::from).collect(),
            next_cursor: next_cursor(page.next_cursor),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    pub channels: Vec<Channel>,
}

/// A direct conversation: a private group with a single channel.
#[derive(Serialize, ToSchema)]
pub struct DirectConversation {
    pub group: Group,
    pub channel: Channel,
    /// Everyone in the conversation, the caller included.
    pub participant_ids: Vec<Uuid>,
    /// True when this request created it, false when it already existed.
    pub created: bool,
}
