//! Domain events from Kafka, turned into the frames clients see and the
//! rooms they go to. Message frames carry the same JSON as the REST API.

use crate::api::groups::{Channel, Group, Role};
use crate::api::messages::{Message, Notification, ReadPosition};
use crate::realtime::rooms::Room;
use messenger_proto::groups::v1 as groups_pb;
use messenger_proto::groups::v1::groups_event::Payload as G;
use messenger_proto::messages::v1 as messages_pb;
use messenger_proto::messages::v1::messages_event::Payload as M;
use serde_json::{Value, json};
use uuid::Uuid;

/// One frame for one room.
#[derive(Debug)]
pub struct Delivery {
    pub room: Room,
    pub kind: &'static str,
    pub data: Value,
}

fn uuid(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

fn to_json<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn rfc3339(at: prost_types::Timestamp) -> Value {
    crate::api::timestamp(Some(at))
        .format(&time::format_description::well_known::Rfc3339)
        .map(Value::from)
        .unwrap_or(Value::Null)
}

fn conversation(raw: &str, kind: &'static str, data: Value) -> Option<Delivery> {
    Some(Delivery {
        room: Room::Conversation(uuid(raw)?),
        kind,
        data,
    })
}

fn user(raw: &str, kind: &'static str, data: Value) -> Option<Delivery> {
    Some(Delivery {
        room: Room::User(uuid(raw)?),
        kind,
        data,
    })
}

pub fn messages_event(event: messages_pb::MessagesEvent) -> Vec<Delivery> {
    let Some(payload) = event.payload else {
        return Vec::new(); // a variant newer than this gateway
    };
    let delivery = match payload {
        M::MessageCreated(created) => created.message.and_then(|message| {
            let channel = message.channel_id.clone();
            conversation(&channel, "new_message", to_json(Message::from(message)))
        }),
        M::MessageEdited(edited) => edited.message.and_then(|message| {
            let channel = message.channel_id.clone();
            conversation(&channel, "edit_message", to_json(Message::from(message)))
        }),
        M::MessageDeleted(deleted) => conversation(
            &deleted.channel_id,
            "delete_message",
            json!({
                "message_id": deleted.message_id,
                "channel_id": deleted.channel_id,
                "group_id": deleted.group_id,
                "author_id": deleted.author_id,
                "message_seq": deleted.seq,
                "thread_root_id": uuid(&deleted.thread_root_id),
            }),
        ),
        M::ReactionAdded(r) => conversation(
            &r.channel_id,
            "new_reaction",
            json!({"message_id": r.message_id, "channel_id": r.channel_id, "user_id": r.user_id, "emoji": r.emoji}),
        ),
        M::ReactionRemoved(r) => conversation(
            &r.channel_id,
            "remove_reaction",
            json!({"message_id": r.message_id, "channel_id": r.channel_id, "user_id": r.user_id, "emoji": r.emoji}),
        ),
        M::ReadPositionMoved(moved) => moved.position.and_then(|position| {
            let channel = position.channel_id.clone();
            conversation(
                &channel,
                "read_position",
                to_json(ReadPosition::from(position)),
            )
        }),
        M::ThreadUpdated(thread) => conversation(
            &thread.channel_id,
            "thread_updated",
            json!({
                "root_id": thread.root_id,
                "channel_id": thread.channel_id,
                "reply_count": thread.reply_count,
                "last_reply_at": thread.last_reply_at.map(rfc3339),
            }),
        ),
        M::NotificationCreated(created) => created.notification.and_then(|notification| {
            let recipient = notification.user_id.clone();
            let data = Notification::from_pb(notification).map(to_json)?;
            user(&recipient, "notification", data)
        }),
    };
    delivery.into_iter().collect()
}

fn role_name(raw: i32) -> Value {
    Role::from_pb(raw).map(to_json).unwrap_or(Value::Null)
}

/// A channel's own notice goes to the group's room when every member may
/// read the channel; a private channel's name and topic reach only its own
/// room, whose sockets were authorized to read it.
fn channel_notice(channel: groups_pb::Channel, kind: &'static str) -> Option<Delivery> {
    let room = if channel.visibility == groups_pb::Visibility::Private as i32 {
        channel.id.clone()
    } else {
        channel.group_id.clone()
    };
    conversation(&room, kind, to_json(Channel::from(channel)))
}

/// Group events become notices to the group's room and, where a member
/// must hear it outside the group's rooms (removed, added to a private
/// channel, a new direct conversation), to that user's own room.
pub fn groups_event(event: groups_pb::GroupsEvent) -> Vec<Delivery> {
    let Some(payload) = event.payload else {
        return Vec::new();
    };
    match payload {
        G::GroupCreated(_) | G::MemberUnbanned(_) => Vec::new(),
        G::GroupUpdated(_) | G::GroupDeleted(_) | G::DirectOpened(_) => group_notices(payload),
        G::ChannelCreated(_)
        | G::ChannelUpdated(_)
        | G::ChannelDeleted(_)
        | G::ChannelMemberAdded(_)
        | G::ChannelMemberRemoved(_) => channel_notices(payload),
        G::MemberJoined(_)
        | G::MemberLeft(_)
        | G::MemberKicked(_)
        | G::MemberBanned(_)
        | G::MemberRoleChanged(_)
        | G::MemberMuted(_)
        | G::OwnershipTransferred(_) => member_notices(payload),
    }
}

/// A group changed, went away, or a direct conversation opened.
fn group_notices(payload: G) -> Vec<Delivery> {
    let mut out = Vec::new();
    match payload {
        G::GroupUpdated(updated) => {
            if let Some(group) = updated.group {
                let id = group.id.clone();
                out.extend(conversation(
                    &id,
                    "group_updated",
                    to_json(Group::from(group)),
                ));
            }
        }
        G::GroupDeleted(deleted) => {
            let data = json!({"group_id": deleted.group_id});
            out.extend(conversation(
                &deleted.group_id,
                "group_deleted",
                data.clone(),
            ));
            for member in &deleted.member_ids {
                out.extend(user(member, "group_deleted", data.clone()));
            }
        }
        G::DirectOpened(opened) => {
            let data = json!({
                "group": opened.group.map(|g| to_json(Group::from(g))),
                "channel": opened.channel.map(|c| to_json(Channel::from(c))),
                "participant_ids": opened.participant_ids,
            });
            for participant in &opened.participant_ids {
                out.extend(user(participant, "dm_opened", data.clone()));
            }
        }
        _ => {}
    }
    out
}

/// Who belongs to a group and in which role.
fn member_notices(payload: G) -> Vec<Delivery> {
    let mut out = Vec::new();
    let mut both = |group: &str, member: &str, kind: &'static str, data: Value| {
        out.extend(conversation(group, kind, data.clone()));
        out.extend(user(member, kind, data));
    };
    match payload {
        G::MemberJoined(joined) => both(
            &joined.group_id,
            &joined.user_id,
            "member_joined",
            json!({"group_id": joined.group_id, "user_id": joined.user_id, "role": role_name(joined.role), "invited_by": uuid(&joined.invited_by)}),
        ),
        G::MemberLeft(left) => both(
            &left.group_id,
            &left.user_id,
            "member_left",
            json!({"group_id": left.group_id, "user_id": left.user_id}),
        ),
        G::MemberKicked(kicked) => both(
            &kicked.group_id,
            &kicked.user_id,
            "member_removed",
            json!({"group_id": kicked.group_id, "user_id": kicked.user_id, "reason": "kicked"}),
        ),
        G::MemberBanned(banned) => both(
            &banned.group_id,
            &banned.user_id,
            "member_removed",
            json!({"group_id": banned.group_id, "user_id": banned.user_id, "reason": "banned"}),
        ),
        G::MemberRoleChanged(changed) => out.extend(conversation(
            &changed.group_id,
            "member_updated",
            json!({"group_id": changed.group_id, "user_id": changed.user_id, "role": role_name(changed.new_role)}),
        )),
        G::MemberMuted(muted) => out.extend(conversation(
            &muted.group_id,
            "member_updated",
            json!({
                "group_id": muted.group_id,
                "user_id": muted.user_id,
                "muted_until": muted.muted_until.map(rfc3339),
            }),
        )),
        G::OwnershipTransferred(transfer) => {
            for (user_id, role) in [
                (&transfer.new_owner_id, "owner"),
                (&transfer.previous_owner_id, "admin"),
            ] {
                out.extend(conversation(
                    &transfer.group_id,
                    "member_updated",
                    json!({"group_id": transfer.group_id, "user_id": user_id, "role": role}),
                ));
            }
        }
        _ => {}
    }
    out
}

/// Channels of a group and their members.
fn channel_notices(payload: G) -> Vec<Delivery> {
    let mut out = Vec::new();
    match payload {
        G::ChannelCreated(created) => {
            out.extend(created.channel.and_then(|c| channel_notice(c, "channel_created")));
        }
        G::ChannelUpdated(updated) => {
            out.extend(updated.channel.and_then(|c| channel_notice(c, "channel_updated")));
        }
        G::ChannelDeleted(deleted) => out.extend(conversation(
            &deleted.group_id,
            "channel_deleted",
            json!({"group_id": deleted.group_id, "channel_id": deleted.channel_id}),
        )),
        G::ChannelMemberAdded(added) => out.extend(user(
            &added.user_id,
            "channel_member_added",
            json!({"group_id": added.group_id, "channel_id": added.channel_id, "user_id": added.user_id}),
        )),
        G::ChannelMemberRemoved(removed) => out.extend(user(
            &removed.user_id,
            "channel_member_removed",
            json!({"group_id": removed.group_id, "channel_id": removed.channel_id, "user_id": removed.user_id}),
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel_event(visibility: groups_pb::Visibility) -> (Uuid, Uuid, groups_pb::GroupsEvent) {
        let (group, channel) = (Uuid::now_v7(), Uuid::now_v7());
        let event = groups_pb::GroupsEvent {
            meta: None,
            actor_id: String::new(),
            payload: Some(G::ChannelUpdated(groups_pb::ChannelUpdated {
                channel: Some(groups_pb::Channel {
                    id: channel.to_string(),
                    group_id: group.to_string(),
                    name: "secret plans".to_owned(),
                    visibility: visibility as i32,
                    ..Default::default()
                }),
            })),
        };
        (group, channel, event)
    }

    #[test]
    fn private_channel_notices_reach_only_the_channel_room() {
        let (_, channel, event) = channel_event(groups_pb::Visibility::Private);
        let rooms: Vec<Room> = groups_event(event).into_iter().map(|d| d.room).collect();
        assert_eq!(rooms, vec![Room::Conversation(channel)]);

        let (group, _, event) = channel_event(groups_pb::Visibility::Public);
        let rooms: Vec<Room> = groups_event(event).into_iter().map(|d| d.room).collect();
        assert_eq!(rooms, vec![Room::Conversation(group)]);
    }
}
