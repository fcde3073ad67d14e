//! Sending: authorize, then store the message, its thread counters, the
//! author's read position, notifications and every event in one
//! transaction. A retried send with the same idempotency key returns the
//! message the first attempt stored.

use crate::domain::{
    ChannelId, Content, GroupId, IdempotencyKey, MAX_ATTACHMENTS, MessageId, MessageKind, UserId,
};
use crate::error::{Error, Result};
use crate::events;
use crate::messages::Messages;
use crate::notify::Recipients;
use crate::peers::Action;
use crate::repo::{self, MessageRow, NewMessage, NewNotifications};
use messenger_proto::messages::v1::{self as pb, messages_event::Payload};
use time::OffsetDateTime;
use uuid::Uuid;

pub struct SendInput {
    /// `None`: the group's default channel.
    pub channel: Option<ChannelId>,
    pub group: Option<GroupId>,
    pub content: Content,
    pub kind: MessageKind,
    pub reply_to: Option<MessageId>,
    pub attachments: Vec<Uuid>,
    pub key: Option<IdempotencyKey>,
}

pub struct Sent {
    pub message: MessageRow,
    /// False when the idempotency key had been used before.
    pub created: bool,
}

impl Messages {
    pub async fn send(&self, author: UserId, input: SendInput) -> Result<Sent> {
        if let Some(key) = &input.key {
            let mut conn = self.pool.acquire().await?;
            if let Some(message) = repo::message_by_key(&mut conn, author.0, key.as_str()).await? {
                return Ok(Sent {
                    message,
                    created: false,
                });
            }
        }
        if input.content.is_empty() && input.attachments.is_empty() {
            return Err(Error::invalid("content", "must not be empty"));
        }
        if input.attachments.len() > MAX_ATTACHMENTS {
            return Err(Error::invalid(
                "attachments",
                format!("at most {MAX_ATTACHMENTS} per message"),
            ));
        }
        let channel = match (input.channel, input.group) {
            (Some(channel), _) => channel,
            (None, Some(group)) => self.peers.default_channel(author, group).await?,
            (None, None) => {
                return Err(Error::invalid(
                    "channel_id",
                    "channel_id or group_id is required",
                ));
            }
        };
        let access = self
            .peers
            .authorize(author, channel.0, Action::PostMessage, None)
            .await?;
        if input.group.is_some_and(|group| group != access.group_id) {
            return Err(Error::invalid(
                "group_id",
                "the channel does not belong to this group",
            ));
        }
        let mut conn = self.pool.acquire().await?;
        let replied = match input.reply_to {
            Some(id) => {
                let parent = repo::message(&mut conn, id.0)
                    .await?
                    .filter(|parent| parent.channel_id == channel.0)
                    .ok_or_else(|| Error::invalid("reply_to", "no such message in this channel"))?;
                Some(parent)
            }
            None => None,
        };
        drop(conn);
        let attachments = if input.attachments.is_empty() {
            Vec::new()
        } else {
            self.peers.attachable(author, &input.attachments).await?
        };
        let recipients = self
            .recipients(author, access, &input.content, replied.as_ref())
            .await?;

        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        let mut tx = self.pool.begin().await?;
        if let Some(key) = &input.key
            && !repo::claim_key(&mut tx, author.0, key.as_str(), id).await?
        {
            // A concurrent attempt with the same key committed first.
            tx.rollback().await?;
            let mut conn = self.pool.acquire().await?;
            let message = repo::message_by_key(&mut conn, author.0, key.as_str())
                .await?
                .ok_or_else(|| {
                    Error::conflict("a request with this idempotency key is in progress, retry")
                })?;
            return Ok(Sent {
                message,
                created: false,
            });
        }
        let seq = repo::next_seq(&mut tx, channel.0, access.group_id.0).await?;
        let thread_root = replied
            .as_ref()
            .map(|parent| parent.thread_root_id.unwrap_or(parent.id));
        repo::insert_message(
            &mut tx,
            NewMessage {
                id,
                channel_id: channel.0,
                group_id: access.group_id.0,
                seq,
                author_id: author.0,
                kind: input.kind.as_str(),
                content: input.content.as_str(),
                reply_to: replied.as_ref().map(|parent| parent.id),
                thread_root_id: thread_root,
                mention_ids: &recipients.mentioned,
                client_id: input.key.as_ref().map(IdempotencyKey::as_str),
                created_at: now,
            },
        )
        .await?;
        repo::insert_attachments(&mut tx, id, &attachments).await?;
        // Your own message is read by you: it never counts as unread.
        repo::advance(&mut tx, channel.0, author.0, seq, id).await?;
        let message = repo::message(&mut tx, id)
            .await?
            .ok_or(Error::NotFound("message"))?;
        events::publish(
            &mut tx,
            channel,
            author,
            Payload::MessageCreated(pb::MessageCreated {
                message: Some(crate::convert::message(message.clone(), Vec::new())),
            }),
        )
        .await?;
        if let Some(root) = thread_root {
            let thread = repo::count_reply(&mut tx, root, now).await?;
            events::publish(
                &mut tx,
                channel,
                author,
                Payload::ThreadUpdated(pb::ThreadUpdated {
                    group_id: access.group_id.to_string(),
                    channel_id: channel.to_string(),
                    root_id: root.to_string(),
                    seq: u64::try_from(thread.seq).unwrap_or(0),
                    reply_count: u32::try_from(thread.reply_count).unwrap_or(0),
                    last_reply_at: thread.last_reply_at.map(crate::convert::timestamp),
                }),
            )
            .await?;
        }
        self.notify(&mut tx, &message, recipients, &input.content)
            .await?;
        tx.commit().await?;
        metrics::counter!("messages_sent_total").increment(1);
        Ok(Sent {
            message,
            created: true,
        })
    }

    /// Stores the notifications of `recipients` and publishes each.
    pub(crate) async fn notify(
        &self,
        tx: &mut sqlx::PgConnection,
        message: &MessageRow,
        recipients: Recipients,
        content: &Content,
    ) -> Result<()> {
        if recipients.notify.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = recipients.notify.iter().map(|_| Uuid::now_v7()).collect();
        let users: Vec<Uuid> = recipients.notify.iter().map(|(user, _)| *user).collect();
        let kinds: Vec<String> = recipients
            .notify
            .iter()
            .map(|(_, kind)| kind.as_str().to_owned())
            .collect();
        let excerpt = content.excerpt(200);
        let rows = repo::insert(
            tx,
            NewNotifications {
                ids: &ids,
                users: &users,
                kinds: &kinds,
                message_id: message.id,
                channel_id: message.channel_id,
                group_id: message.group_id,
                seq: message.seq,
                actor_id: message.author_id,
                excerpt: &excerpt,
                created_at: message.created_at,
            },
        )
        .await?;
        for row in rows {
            events::publish(
                tx,
                ChannelId(message.channel_id),
                UserId(message.author_id),
                Payload::NotificationCreated(pb::NotificationCreated {
                    seq: u64::try_from(row.seq).unwrap_or(0),
                    notification: Some(crate::convert::notification(row)),
                }),
            )
            .await?;
        }
        Ok(())
    }
}
