//! Domain events of the groups service, written to the outbox in the same
//! transaction as the change. Key: the group id.

use crate::domain::{GroupId, UserId};
use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::groups::v1::{GroupsEvent, groups_event::Payload};
use sqlx::PgConnection;
use time::OffsetDateTime;

/// The one topic this service publishes.
pub const TOPIC: &str = "groups.events.v1";

fn event_type(payload: &Payload) -> &'static str {
    match payload {
        Payload::GroupCreated(_) => "messenger.groups.v1.GroupCreated",
        Payload::GroupUpdated(_) => "messenger.groups.v1.GroupUpdated",
        Payload::GroupDeleted(_) => "messenger.groups.v1.GroupDeleted",
        Payload::MemberJoined(_) => "messenger.groups.v1.MemberJoined",
        Payload::MemberLeft(_) => "messenger.groups.v1.MemberLeft",
        Payload::MemberKicked(_) => "messenger.groups.v1.MemberKicked",
        Payload::MemberBanned(_) => "messenger.groups.v1.MemberBanned",
        Payload::MemberUnbanned(_) => "messenger.groups.v1.MemberUnbanned",
        Payload::MemberRoleChanged(_) => "messenger.groups.v1.MemberRoleChanged",
        Payload::MemberMuted(_) => "messenger.groups.v1.MemberMuted",
        Payload::OwnershipTransferred(_) => "messenger.groups.v1.OwnershipTransferred",
        Payload::ChannelCreated(_) => "messenger.groups.v1.ChannelCreated",
        Payload::ChannelUpdated(_) => "messenger.groups.v1.ChannelUpdated",
        Payload::ChannelDeleted(_) => "messenger.groups.v1.ChannelDeleted",
        Payload::ChannelMemberAdded(_) => "messenger.groups.v1.ChannelMemberAdded",
        Payload::ChannelMemberRemoved(_) => "messenger.groups.v1.ChannelMemberRemoved",
        Payload::DirectOpened(_) => "messenger.groups.v1.DirectOpened",
    }
}

pub async fn publish(
    conn: &mut PgConnection,
    group: GroupId,
    actor: UserId,
    payload: Payload,
) -> sqlx::Result<()> {
    let envelope = DomainEvent {
        topic: TOPIC,
        aggregate_id: group.to_string(),
        event_type: event_type(&payload),
        occurred_at: OffsetDateTime::now_utc(),
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| GroupsEvent {
        meta: Some(meta),
        actor_id: actor.to_string(),
        payload: Some(payload),
    })
    .await
}
