//! gRPC transport: parses requests into domain types, calls the rules,
//! converts results. No rules here.

use crate::domain::{
    ChannelId, Content, Emoji, GroupId, IdempotencyKey, MessageId, MessageKind, NotificationId,
    SearchQuery, UserId, limit,
};
use crate::error::Error;
use crate::messages::{Anchor, HistoryPage, Messages};
use crate::send::SendInput;
use messenger_platform::identity::{ActorError, acting_user};
use messenger_proto::messages::v1 as pb;
use messenger_proto::messages::v1::messages_service_server::MessagesService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub struct MessagesGrpc {
    pub messages: Messages,
}

type Reply<T> = Result<Response<T>, Status>;

/// The acting user: the one of the verified access token (a request field
/// naming someone else is refused).
fn actor(raw: &str) -> Result<UserId, Error> {
    match acting_user(raw) {
        Ok(user) => Ok(UserId(user)),
        Err(ActorError::NotTheCaller) => Err(Error::PermissionDenied(
            ActorError::NotTheCaller.to_string(),
        )),
        Err(ActorError::Invalid) => UserId::parse(raw, "actor_id"),
    }
}

fn message_id(raw: &str) -> Result<MessageId, Error> {
    MessageId::parse(raw, "message_id")
}

fn cursor(raw: &str) -> Result<Option<Uuid>, Error> {
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw)
        .map(Some)
        .map_err(|_| Error::invalid("cursor", "not a cursor this API returned"))
}

fn page(page: HistoryPage) -> pb::MessagePage {
    pb::MessagePage {
        messages: page.messages,
        has_older: page.has_older,
        has_newer: page.has_newer,
        next_cursor: String::new(),
    }
}

fn next_cursor(next: Option<Uuid>) -> String {
    next.map(|id| id.to_string()).unwrap_or_default()
}

#[tonic::async_trait]
impl MessagesService for MessagesGrpc {
    async fn info(&self, _: Request<pb::InfoRequest>) -> Reply<pb::InfoResponse> {
        Ok(Response::new(pb::InfoResponse {
            service: crate::SCHEMA.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Reply<pb::SendMessageResponse> {
        let r = request.into_inner();
        let author = actor(&r.actor_id)?;
        let input = SendInput {
            channel: ChannelId::parse_optional(&r.channel_id, "channel_id")?,
            group: GroupId::parse_optional(&r.group_id, "group_id")?,
            content: Content::parse(&r.content)?,
            kind: MessageKind::from_client(r.r#type)?,
            reply_to: MessageId::parse_optional(&r.reply_to, "reply_to")?,
            attachments: r
                .attachment_ids
                .iter()
                .map(|id| {
                    Uuid::parse_str(id)
                        .map_err(|_| Error::invalid("attachments", "must be media ids (UUIDs)"))
                })
                .collect::<Result<_, _>>()?,
            key: IdempotencyKey::parse_optional(&r.idempotency_key)?,
        };
        let sent = self.messages.send(author, input).await?;
        let message = self.messages.present_one(author, sent.message).await?;
        Ok(Response::new(pb::SendMessageResponse {
            message: Some(message),
            created: sent.created,
        }))
    }

    async fn get_message(&self, request: Request<pb::GetMessageRequest>) -> Reply<pb::Message> {
        let r = request.into_inner();
        let viewer = actor(&r.actor_id)?;
        let row = self
            .messages
            .visible(viewer, message_id(&r.message_id)?)
            .await?;
        Ok(Response::new(self.messages.present_one(viewer, row).await?))
    }

    async fn edit_message(&self, request: Request<pb::EditMessageRequest>) -> Reply<pb::Message> {
        let r = request.into_inner();
        let author = actor(&r.actor_id)?;
        let content = Content::parse(&r.content)?;
        let row = self
            .messages
            .edit(author, message_id(&r.message_id)?, content)
            .await?;
        Ok(Response::new(self.messages.present_one(author, row).await?))
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Reply<pb::Message> {
        let r = request.into_inner();
        let who = actor(&r.actor_id)?;
        let row = self
            .messages
            .delete(who, message_id(&r.message_id)?)
            .await?;
        Ok(Response::new(self.messages.present_one(who, row).await?))
    }

    async fn list_edit_history(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Reply<pb::EditHistory> {
        let r = request.into_inner();
        let edits = self
            .messages
            .edit_history(actor(&r.actor_id)?, message_id(&r.message_id)?)
            .await?;
        Ok(Response::new(pb::EditHistory {
            edits: edits
                .into_iter()
                .map(|edit| pb::MessageEdit {
                    previous_content: edit.previous_content,
                    replaced_at: Some(crate::convert::timestamp(edit.replaced_at)),
                })
                .collect(),
        }))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Reply<pb::MessagePage> {
        let r = request.into_inner();
        let anchors = [
            MessageId::parse_optional(&r.before, "before")?.map(Anchor::Before),
            MessageId::parse_optional(&r.after, "after")?.map(Anchor::After),
            MessageId::parse_optional(&r.around, "around")?.map(Anchor::Around),
        ];
        let mut given = anchors.into_iter().flatten();
        let anchor = given.next().unwrap_or(Anchor::Latest);
        if given.next().is_some() {
            return Err(
                Error::invalid("before", "use at most one of before, after and around").into(),
            );
        }
        let history = self
            .messages
            .history(
                actor(&r.actor_id)?,
                ChannelId::parse(&r.channel_id, "channel_id")?,
                anchor,
                limit(r.limit)?,
            )
            .await?;
        Ok(Response::new(page(history)))
    }

    async fn list_group_messages(
        &self,
        request: Request<pb::ListGroupMessagesRequest>,
    ) -> Reply<pb::MessagePage> {
        let r = request.into_inner();
        let history = self
            .messages
            .group_history(
                actor(&r.actor_id)?,
                GroupId::parse(&r.group_id, "group_id")?,
                limit(r.limit)?,
                r.offset,
            )
            .await?;
        Ok(Response::new(page(history)))
    }

    async fn list_thread(&self, request: Request<pb::ListThreadRequest>) -> Reply<pb::MessagePage> {
        let r = request.into_inner();
        let thread = self
            .messages
            .thread(
                actor(&r.actor_id)?,
                MessageId::parse(&r.root_id, "root_id")?,
                MessageId::parse_optional(&r.after, "after")?,
                limit(r.limit)?,
            )
            .await?;
        Ok(Response::new(page(thread)))
    }

    async fn add_reaction(&self, request: Request<pb::ReactionRequest>) -> Reply<pb::Message> {
        let r = request.into_inner();
        let who = actor(&r.actor_id)?;
        let row = self
            .messages
            .react(who, message_id(&r.message_id)?, Emoji::parse(&r.emoji)?)
            .await?;
        Ok(Response::new(self.messages.present_one(who, row).await?))
    }

    async fn remove_reaction(&self, request: Request<pb::ReactionRequest>) -> Reply<pb::Message> {
        let r = request.into_inner();
        let who = actor(&r.actor_id)?;
        let row = self
            .messages
            .unreact(who, message_id(&r.message_id)?, Emoji::parse(&r.emoji)?)
            .await?;
        Ok(Response::new(self.messages.present_one(who, row).await?))
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Reply<pb::ReadPosition> {
        let r = request.into_inner();
        let position = self
            .messages
            .mark_read(
                actor(&r.actor_id)?,
                ChannelId::parse(&r.channel_id, "channel_id")?,
                message_id(&r.message_id)?,
            )
            .await?;
        Ok(Response::new(crate::convert::read_position(position)))
    }

    async fn list_unread(&self, request: Request<pb::ListUnreadRequest>) -> Reply<pb::UnreadList> {
        let r = request.into_inner();
        let among = r
            .channel_ids
            .iter()
            .map(|id| ChannelId::parse(id, "channel_ids").map(|id| id.0))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = self.messages.unread(actor(&r.actor_id)?, &among).await?;
        Ok(Response::new(pb::UnreadList {
            channels: rows
                .into_iter()
                .map(|row| pb::ChannelUnread {
                    channel_id: row.channel_id.to_string(),
                    group_id: row.group_id.to_string(),
                    unread_count: u32::try_from(row.unread).unwrap_or(0),
                    mention_count: u32::try_from(row.mentions).unwrap_or(u32::MAX),
                    last_read_seq: u64::try_from(row.last_read_seq).unwrap_or(0),
                    last_seq: u64::try_from(row.last_seq).unwrap_or(0),
                })
                .collect(),
        }))
    }

    async fn list_readers(
        &self,
        request: Request<pb::ListReadersRequest>,
    ) -> Reply<pb::ReaderPage> {
        let r = request.into_inner();
        let (rows, next) = self
            .messages
            .readers(
                actor(&r.actor_id)?,
                message_id(&r.message_id)?,
                cursor(&r.cursor)?,
                limit(r.limit)?,
            )
            .await?;
        Ok(Response::new(pb::ReaderPage {
            readers: rows
                .into_iter()
                .map(crate::convert::read_position)
                .collect(),
            next_cursor: next_cursor(next),
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Reply<pb::NotificationPage> {
        let r = request.into_inner();
        let page = self
            .messages
            .notifications(
                actor(&r.actor_id)?,
                NotificationId::parse_optional(&r.cursor, "cursor")?,
                r.unread_only,
                limit(r.limit)?,
            )
            .await?;
        Ok(Response::new(pb::NotificationPage {
            notifications: page
                .notifications
                .into_iter()
                .map(crate::convert::notification)
                .collect(),
            next_cursor: next_cursor(page.next),
            unread_total: u32::try_from(page.unread_total).unwrap_or(u32::MAX),
        }))
    }

    async fn mark_notifications_read(
        &self,
        request: Request<pb::MarkNotificationsReadRequest>,
    ) -> Reply<()> {
        let r = request.into_inner();
        let ids = r
            .notification_ids
            .iter()
            .map(|id| NotificationId::parse(id, "notification_ids"))
            .collect::<Result<Vec<_>, _>>()?;
        self.messages
            .mark_notifications_read(actor(&r.actor_id)?, &ids)
            .await?;
        Ok(Response::new(()))
    }

    async fn media_access(
        &self,
        request: Request<pb::MediaAccessRequest>,
    ) -> Reply<pb::MediaAccessResponse> {
        let r = request.into_inner();
        let allowed = self
            .messages
            .media_access(
                UserId::parse(&r.user_id, "user_id")?,
                Uuid::parse_str(&r.media_id)
                    .map_err(|_| Error::invalid("media_id", "must be a UUID"))?,
            )
            .await?;
        Ok(Response::new(pb::MediaAccessResponse { allowed }))
    }

    async fn list_attached_media(
        &self,
        request: Request<pb::ListAttachedMediaRequest>,
    ) -> Reply<pb::ListAttachedMediaResponse> {
        let ids = request
            .into_inner()
            .media_ids
            .iter()
            .map(|id| {
                Uuid::parse_str(id.trim()).map_err(|_| Error::invalid("media_ids", "must be UUIDs"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let attached = self.messages.attached_media(&ids).await?;
        Ok(Response::new(pb::ListAttachedMediaResponse {
            media_ids: attached.iter().map(Uuid::to_string).collect(),
        }))
    }

    async fn search_messages(
        &self,
        request: Request<pb::SearchMessagesRequest>,
    ) -> Reply<pb::MessagePage> {
        let r = request.into_inner();
        let viewer = actor(&r.actor_id)?;
        let (rows, next) = self
            .messages
            .search(
                viewer,
                SearchQuery::parse(&r.query)?,
                ChannelId::parse_optional(&r.channel_id, "channel_id")?,
                GroupId::parse_optional(&r.group_id, "group_id")?,
                cursor(&r.cursor)?,
                limit(r.limit)?,
            )
            .await?;
        Ok(Response::new(pb::MessagePage {
            messages: self.messages.present(viewer, rows).await?,
            has_older: next.is_some(),
            has_newer: false,
            next_cursor: next_cursor(next),
        }))
    }
}
