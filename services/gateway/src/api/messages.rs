//! Public JSON shapes of messages, read positions, unread counts and
//! notifications, and the one place their proto enums become strings and
//! back.

use super::timestamp;
use crate::error::{ApiError, ApiResult};
use messenger_proto::messages::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// What a message holds. Clients send `text`, `image` or `file`; `system`
/// messages (e.g. "Anna joined") are written by the service.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Text,
    Image,
    File,
    System,
}

impl MessageType {
    fn from_pb(raw: i32) -> MessageType {
        match pb::MessageType::try_from(raw) {
            Ok(pb::MessageType::Image) => MessageType::Image,
            Ok(pb::MessageType::File) => MessageType::File,
            Ok(pb::MessageType::System) => MessageType::System,
            // "Unspecified" is text by contract.
            Ok(pb::MessageType::Unspecified | pb::MessageType::Text) | Err(_) => MessageType::Text,
        }
    }

    pub fn to_pb(self) -> i32 {
        let kind = match self {
            MessageType::Text => pb::MessageType::Text,
            MessageType::Image => pb::MessageType::Image,
            MessageType::File => pb::MessageType::File,
            MessageType::System => pb::MessageType::System,
        };
        kind as i32
    }

    /// Parses request input: only the types a client may send. The enum is
    /// not deserialized by serde so an unknown value gets a 400 naming the
    /// field rather than a JSON error.
    pub fn parse_sendable(field: &str, raw: &str) -> ApiResult<MessageType> {
        match raw {
            "text" => Ok(MessageType::Text),
            "image" => Ok(MessageType::Image),
            "file" => Ok(MessageType::File),
            "system" => Err(ApiError::invalid_field(
                field,
                "system messages cannot be sent by clients",
            )),
            _ => Err(ApiError::invalid_field(
                field,
                format!("{field} must be one of text, image, file"),
            )),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The message mentions you (`@username`).
    Mention,
    /// The message replies to one of yours.
    Reply,
    /// A message in one of your direct conversations.
    DirectMessage,
}

impl NotificationKind {
    /// `None` for a kind this gateway does not know (a newer service).
    fn from_pb(raw: i32) -> Option<NotificationKind> {
        match pb::NotificationKind::try_from(raw).ok()? {
            pb::NotificationKind::Mention => Some(NotificationKind::Mention),
            pb::NotificationKind::Reply => Some(NotificationKind::Reply),
            pb::NotificationKind::DirectMessage => Some(NotificationKind::DirectMessage),
            pb::NotificationKind::Unspecified => None,
        }
    }
}

// Ids come from the service, which only issues UUIDs; empty means "none".
fn id(raw: &str) -> Uuid {
    Uuid::parse_str(raw).unwrap_or_default()
}

fn optional_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

fn ids(raw: &[String]) -> Vec<Uuid> {
    raw.iter().filter_map(|id| optional_id(id)).collect()
}

fn optional_string(raw: String) -> Option<String> {
    (!raw.is_empty()).then_some(raw)
}

fn optional_timestamp(ts: Option<prost_types::Timestamp>) -> Option<OffsetDateTime> {
    ts.map(|ts| timestamp(Some(ts)))
}

/// How many people reacted with one emoji.
#[derive(Serialize, ToSchema)]
pub struct Reaction {
    /// A Unicode emoji or a custom code such as `:party_parrot:`.
    pub emoji: String,
    pub count: u32,
    /// Whether you reacted with it.
    pub me: bool,
}

/// A message as the caller sees it.
#[derive(Serialize, ToSchema)]
pub struct Message {
    /// UUIDv7: time-ordered.
    pub id: Uuid,
    pub group_id: Uuid,
    pub channel_id: Uuid,
    /// Position in the channel: 1, 2, 3… without gaps.
    pub seq: u64,
    pub author_id: Uuid,
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Empty once deleted.
    pub content: String,
    /// The message this one replies to.
    pub reply_to: Option<Uuid>,
    /// The thread this message belongs to.
    pub thread_root_id: Option<Uuid>,
    /// Replies in the thread this message starts.
    pub reply_count: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_reply_at: Option<OffsetDateTime>,
    /// Attached files, in the order they were sent.
    pub attachments: Vec<Attachment>,
    /// Users mentioned in the content.
    pub mentions: Vec<Uuid>,
    pub reactions: Vec<Reaction>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<OffsetDateTime>,
    /// Set once deleted: the message stays as a tombstone without content.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<OffsetDateTime>,
    /// The idempotency key the author sent, if any.
    pub client_id: Option<String>,
}

impl From<pb::Message> for Message {
    fn from(message: pb::Message) -> Self {
        Message {
            id: id(&message.id),
            group_id: id(&message.group_id),
            channel_id: id(&message.channel_id),
            seq: message.seq,
            author_id: id(&message.author_id),
            kind: MessageType::from_pb(message.r#type),
            reply_to: optional_id(&message.reply_to),
            thread_root_id: optional_id(&message.thread_root_id),
            reply_count: message.reply_count,
            last_reply_at: optional_timestamp(message.last_reply_at),
            attachments: message
                .attachments
                .iter()
                .map(|a| Attachment {
                    media_id: id(&a.media_id),
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size,
                })
                .collect(),
            mentions: ids(&message.mention_ids),
            reactions: message
                .reactions
                .into_iter()
                .map(|reaction| Reaction {
                    emoji: reaction.emoji,
                    count: reaction.count,
                    me: reaction.me,
                })
                .collect(),
            created_at: timestamp(message.created_at),
            edited_at: optional_timestamp(message.edited_at),
            deleted_at: optional_timestamp(message.deleted_at),
            client_id: optional_string(message.client_id),
            content: message.content,
        }
    }
}

/// A page of messages (in the order each route names), with whether there
/// are more on either side.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub has_older: bool,
    pub has_newer: bool,
}

impl From<pb::MessagePage> for MessagePage {
    fn from(page: pb::MessagePage) -> Self {
        MessagePage {
            messages: page.messages.into_iter().map(Message::from).collect(),
            has_older: page.has_older,
            has_newer: page.has_newer,
        }
    }
}

/// Search results, newest first.
#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    pub messages: Vec<Message>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<pb::MessagePage> for SearchResults {
    fn from(page: pb::MessagePage) -> Self {
        SearchResults {
            messages: page.messages.into_iter().map(Message::from).collect(),
            next_cursor: optional_string(page.next_cursor),
        }
    }
}

/// One earlier version of a message.
#[derive(Serialize, ToSchema)]
pub struct MessageEdit {
    pub previous_content: String,
    /// When an edit replaced this content.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub replaced_at: OffsetDateTime,
}

#[derive(Serialize, ToSchema)]
pub struct EditHistory {
    /// Oldest first; the current content is on the message itself.
    pub edits: Vec<MessageEdit>,
}

impl From<pb::EditHistory> for EditHistory {
    fn from(history: pb::EditHistory) -> Self {
        EditHistory {
            edits: history
                .edits
                .into_iter()
                .map(|edit| MessageEdit {
                    previous_content: edit.previous_content,
                    replaced_at: timestamp(edit.replaced_at),
                })
                .collect(),
        }
    }
}

/// How far a user has read a channel.
#[derive(Serialize, ToSchema)]
pub struct ReadPosition {
    pub channel_id: Uuid,
    pub user_id: Uuid,
    /// The last message read.
    pub message_id: Uuid,
    /// Its position in the channel.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<pb::ReadPosition> for ReadPosition {
    fn from(position: pb::ReadPosition) -> Self {
        ReadPosition {
            channel_id: id(&position.channel_id),
            user_id: id(&position.user_id),
            message_id: id(&position.message_id),
            seq: position.seq,
            updated_at: timestamp(position.updated_at),
        }
    }
}

/// Who has read up to (at least) a message.
#[derive(Serialize, ToSchema)]
pub struct ReaderPage {
    pub readers: Vec<ReadPosition>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<pb::ReaderPage> for ReaderPage {
    fn from(page: pb::ReaderPage) -> Self {
        ReaderPage {
            readers: page.readers.into_iter().map(ReadPosition::from).collect(),
            next_cursor: optional_string(page.next_cursor),
        }
    }
}

/// Unread messages in one channel.
#[derive(Serialize, ToSchema)]
pub struct ChannelUnread {
    pub channel_id: Uuid,
    pub group_id: Uuid,
    /// Messages by others after your read position (capped at 1000).
    pub unread_count: u32,
    /// Unread messages that mention you.
    pub mention_count: u32,
    pub last_read_seq: u64,
    pub last_seq: u64,
}

#[derive(Serialize, ToSchema)]
pub struct UnreadList {
    pub channels: Vec<ChannelUnread>,
}

impl From<pb::UnreadList> for UnreadList {
    fn from(list: pb::UnreadList) -> Self {
        UnreadList {
            channels: list
                .channels
                .into_iter()
                .map(|channel| ChannelUnread {
                    channel_id: id(&channel.channel_id),
                    group_id: id(&channel.group_id),
                    unread_count: channel.unread_count,
                    mention_count: channel.mention_count,
                    last_read_seq: channel.last_read_seq,
                    last_seq: channel.last_seq,
                })
                .collect(),
        }
    }
}

/// A file attached to a message, as it was when the message was sent;
/// download it from `/api/v1/media/{media_id}`.
#[derive(Serialize, ToSchema)]
pub struct Attachment {
    pub media_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// Something that happened for you: a mention, a reply, a direct message.
#[derive(Serialize, ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub kind: NotificationKind,
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub group_id: Uuid,
    /// Who wrote the message.
    pub actor_id: Uuid,
    /// The first 200 characters of the message.
    pub excerpt: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// `null` while unread.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<OffsetDateTime>,
}

impl Notification {
    /// `None` for a kind this gateway cannot name.
    pub(crate) fn from_pb(notification: pb::Notification) -> Option<Notification> {
        Some(Notification {
            kind: NotificationKind::from_pb(notification.kind)?,
            id: id(&notification.id),
            message_id: id(&notification.message_id),
            channel_id: id(&notification.channel_id),
            group_id: id(&notification.group_id),
            actor_id: id(&notification.actor_id),
            created_at: timestamp(notification.created_at),
            read_at: optional_timestamp(notification.read_at),
            excerpt: notification.excerpt,
        })
    }
}

/// Your notifications, newest first.
#[derive(Serialize, ToSchema)]
pub struct NotificationPage {
    pub notifications: Vec<Notification>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Unread notifications in all, not only on this page.
    pub unread_total: u32,
}

impl From<pb::NotificationPage> for NotificationPage {
    fn from(page: pb::NotificationPage) -> Self {
        NotificationPage {
            notifications: page
                .notifications
                .into_iter()
                .filter_map(Notification::from_pb)
                .collect(),
            next_cursor: optional_string(page.next_cursor),
            unread_total: page.unread_total,
        }
    }
}
