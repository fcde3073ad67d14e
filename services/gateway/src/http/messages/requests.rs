//! Request bodies and query parameters of the messages, reads, notifications
//! and search routes. Enum-valued fields arrive as strings and are parsed by
//! the handlers (see `crate::api::messages`), so a bad value names its field.

use crate::api::messages::MessageType;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The original send API: a message, and the conversation it goes to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// The channel to post to.
    pub channel_id: Option<Uuid>,
    /// Without `channel_id`: post to this group's default channel. With it:
    /// must be the channel's group. One of the two is required.
    pub group_id: Option<Uuid>,
    /// Up to 4000 characters; required unless there are attachments.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub content: String,
    /// `text` (default), `image` or `file`.
    #[schema(value_type = Option<MessageType>)]
    pub message_type: Option<String>,
    /// The message this one replies to (in the same channel).
    pub reply_to: Option<Uuid>,
    /// Media ids, up to 10.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachments: Vec<Uuid>,
    /// Idempotency key (1-128 printable ASCII characters), like the
    /// `Idempotency-Key` header: a retry with the same key returns the
    /// message stored by the first attempt, with status 200.
    #[schema(max_length = 128, pattern = "^[!-~]*$")]
    pub client_id: Option<String>,
}

impl SendMessageRequest {
    /// The conversation (channel, group) and the message itself.
    pub fn split(self) -> (Option<Uuid>, Option<Uuid>, NewMessage) {
        let message = NewMessage {
            content: self.content,
            message_type: self.message_type,
            reply_to: self.reply_to,
            attachments: self.attachments,
            client_id: self.client_id,
        };
        (self.channel_id, self.group_id, message)
    }
}

/// A message to post in a channel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Up to 4000 characters; required unless there are attachments.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub content: String,
    /// `text` (default), `image` or `file`.
    #[schema(value_type = Option<MessageType>)]
    pub message_type: Option<String>,
    /// The message this one replies to (in the same channel).
    pub reply_to: Option<Uuid>,
    /// Media ids, up to 10.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachments: Vec<Uuid>,
    /// Idempotency key (1-128 printable ASCII characters), like the
    /// `Idempotency-Key` header: a retry with the same key returns the
    /// message stored by the first attempt, with status 200.
    #[schema(max_length = 128, pattern = "^[!-~]*$")]
    pub client_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    /// The new text, 1-4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub content: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionRequest {
    /// One Unicode emoji, or a custom code such as `:party_parrot:`.
    #[schema(min_length = 1, max_length = 34)]
    pub emoji: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    /// The last message read; the position never moves backwards.
    pub message_id: Uuid,
}

/// Which notifications to mark read; none (or an empty body) marks all.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkNotificationsReadRequest {
    #[serde(default)]
    pub ids: Vec<Uuid>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Messages before this one (exclusive).
    pub before: Option<Uuid>,
    /// Messages after this one (exclusive).
    pub after: Option<Uuid>,
    /// Messages around this one (inclusive). At most one of `before`,
    /// `after` and `around`; without one, the newest messages.
    pub around: Option<Uuid>,
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupHistoryParams {
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Messages to skip, at most 10000; default 0.
    #[param(maximum = 10000)]
    pub offset: Option<u32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThreadParams {
    /// Replies after this one (exclusive); without it, from the start.
    pub after: Option<Uuid>,
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnreadParams {
    /// Comma-separated channel ids; without it, every channel you may read.
    pub channel_ids: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only notifications not yet read; default false.
    pub unread_only: Option<bool>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageSearchParams {
    /// 1-200 characters, web-search syntax: `"a phrase"`, `-word`, `or`.
    #[serde(default)]
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
    /// Only this channel.
    pub channel_id: Option<Uuid>,
    /// Only this group.
    pub group_id: Option<Uuid>,
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
