//! Conversions between rows and wire messages.

use crate::domain::MessageKind;
use crate::repo::{MessageRow, NotificationRow, ReactionRow, ReadRow};
use messenger_proto::messages::v1 as pb;
use uuid::Uuid;

pub use messenger_platform::wire::timestamp;

fn ids(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

fn optional(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

fn seq(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

pub fn message(row: MessageRow, reactions: Vec<pb::ReactionCount>) -> pb::Message {
    pb::Message {
        id: row.id.to_string(),
        group_id: row.group_id.to_string(),
        channel_id: row.channel_id.to_string(),
        seq: seq(row.seq),
        author_id: row.author_id.to_string(),
        r#type: MessageKind::to_pb(&row.kind).into(),
        content: row.content,
        reply_to: optional(row.reply_to),
        thread_root_id: optional(row.thread_root_id),
        reply_count: u32::try_from(row.reply_count).unwrap_or(0),
        last_reply_at: row.last_reply_at.map(timestamp),
        attachment_ids: ids(&row.attachment_ids),
        mention_ids: ids(&row.mention_ids),
        reactions,
        created_at: Some(timestamp(row.created_at)),
        edited_at: row.edited_at.map(timestamp),
        deleted_at: row.deleted_at.map(timestamp),
        attachments: row
            .attachment_ids
            .iter()
            .enumerate()
            .map(|(i, id)| pb::Attachment {
                media_id: id.to_string(),
                filename: row.attachment_names.get(i).cloned().unwrap_or_default(),
                content_type: row.attachment_types.get(i).cloned().unwrap_or_default(),
                size: row
                    .attachment_sizes
                    .get(i)
                    .and_then(|size| u64::try_from(*size).ok())
                    .unwrap_or(0),
            })
            .collect(),
        client_id: row.client_id.unwrap_or_default(),
    }
}

/// Messages with their reactions, as `viewer` sees them.
pub fn messages(rows: Vec<MessageRow>, reactions: Vec<ReactionRow>) -> Vec<pb::Message> {
    let mut by_message: std::collections::HashMap<Uuid, Vec<pb::ReactionCount>> =
        std::collections::HashMap::new();
    for row in reactions {
        by_message
            .entry(row.message_id)
            .or_default()
            .push(pb::ReactionCount {
                emoji: row.emoji,
                count: u32::try_from(row.count).unwrap_or(u32::MAX),
                me: row.me,
            });
    }
    rows.into_iter()
        .map(|row| {
            let reactions = by_message.remove(&row.id).unwrap_or_default();
            message(row, reactions)
        })
        .collect()
}

pub fn read_position(row: ReadRow) -> pb::ReadPosition {
    pb::ReadPosition {
        channel_id: row.channel_id.to_string(),
        user_id: row.user_id.to_string(),
        message_id: row.last_message_id.to_string(),
        seq: seq(row.last_read_seq),
        updated_at: Some(timestamp(row.updated_at)),
    }
}

pub fn notification(row: NotificationRow) -> pb::Notification {
    let kind = match row.kind.as_str() {
        "mention" => pb::NotificationKind::Mention,
        "reply" => pb::NotificationKind::Reply,
        _ => pb::NotificationKind::DirectMessage,
    };
    pb::Notification {
        id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        kind: kind.into(),
        message_id: row.message_id.to_string(),
        channel_id: row.channel_id.to_string(),
        group_id: row.group_id.to_string(),
        actor_id: row.actor_id.to_string(),
        excerpt: row.excerpt,
        created_at: Some(timestamp(row.created_at)),
        read_at: row.read_at.map(timestamp),
    }
}
