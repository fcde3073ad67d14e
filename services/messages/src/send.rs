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
use crate::notify::{self, Recipients};
use crate::peers::{Access, Action};
use crate::repo::{self, MessageRow, NewAttachment, NewMessage};
use messenger_proto::messages::v1::{self as pb, messages_event::Payload};
use sqlx::PgConnection;
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

/// Everything a send needs that is asked of other services or read before
/// its transaction: nothing is held open while peers answer.
struct Prepared {
    channel: ChannelId,
    access: Access,
    replied: Option<MessageRow>,
    attachments: Vec<NewAttachment>,
    recipients: Recipients,
}

impl Messages {
    pub async fn send(&self, author: UserId, input: SendInput) -> Result<Sent> {
        if let Some(key) = &input.key
            && let Some(message) = self.sent_before(author, key).await?
        {
            return Ok(Sent {
                message,
                created: false,
            });
        }
        check_shape(&input)?;
        let prepared = self.prepare(author, &input).await?;

        let id = Uuid::now_v7();
        let now = to_microseconds(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        if let Some(key) = &input.key
            && !repo::claim_key(&mut tx, author.0, key.as_str(), id).await?
        {
            // A concurrent attempt with the same key committed first.
            tx.rollback().await?;
            return self.sent_concurrently(author, key).await;
        }
        let message = store(&mut tx, author, &input, &prepared, id, now).await?;
        notify::store(&mut tx, &message, prepared.recipients, &input.content).await?;
        tx.commit().await?;
        metrics::counter!("messages_sent_total").increment(1);
        Ok(Sent {
            message,
            created: true,
        })
    }

    /// The message an earlier attempt with `key` stored, if any.
    async fn sent_before(
        &self,
        author: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<MessageRow>> {
        let mut conn = self.pool.acquire().await?;
        Ok(repo::message_by_key(&mut conn, author.0, key.as_str()).await?)
    }

    /// The answer when a concurrent attempt claimed `key` first: its
    /// message once it has committed.
    async fn sent_concurrently(&self, author: UserId, key: &IdempotencyKey) -> Result<Sent> {
        let mut conn = self.pool.acquire().await?;
        let message = repo::message_by_key(&mut conn, author.0, key.as_str())
            .await?
            .ok_or_else(|| {
                Error::conflict("a request with this idempotency key is in progress, retry")
            })?;
        Ok(Sent {
            message,
            created: false,
        })
    }

    /// Authorizes the send and gathers what it stores, in the order the
    /// checks have always answered: the first refusal wins.
    async fn prepare(&self, author: UserId, input: &SendInput) -> Result<Prepared> {
        let (channel, access) = self.target(author, input).await?;
        let replied = self.replied(channel, input.reply_to).await?;
        let attachments = if input.attachments.is_empty() {
            Vec::new()
        } else {
            self.peers.attachable(author, &input.attachments).await?
        };
        let recipients = notify::recipients(
            &self.peers,
            author,
            access,
            &input.content,
            replied.as_ref(),
        )
        .await?;
        Ok(Prepared {
            channel,
            access,
            replied,
            attachments,
            recipients,
        })
    }

    /// The channel the message goes to, and what the author may do there.
    async fn target(&self, author: UserId, input: &SendInput) -> Result<(ChannelId, Access)> {
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
        Ok((channel, access))
    }

    /// The message replied to, which must be in the same channel.
    async fn replied(
        &self,
        channel: ChannelId,
        reply_to: Option<MessageId>,
    ) -> Result<Option<MessageRow>> {
        let Some(id) = reply_to else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let parent = repo::message(&mut conn, id.0)
            .await?
            .filter(|parent| parent.channel_id == channel.0)
            .ok_or_else(|| Error::invalid("reply_to", "no such message in this channel"))?;
        Ok(Some(parent))
    }
}

/// Refuses a message with nothing in it or too much attached.
fn check_shape(input: &SendInput) -> Result<()> {
    if input.content.is_empty() && input.attachments.is_empty() {
        return Err(Error::invalid("content", "must not be empty"));
    }
    if input.attachments.len() > MAX_ATTACHMENTS {
        return Err(Error::invalid(
            "attachments",
            format!("at most {MAX_ATTACHMENTS} per message"),
        ));
    }
    Ok(())
}

/// Stores the message with its attachments, moves the author's read
/// position past it and announces it (and its thread's new counters).
async fn store(
    tx: &mut PgConnection,
    author: UserId,
    input: &SendInput,
    prepared: &Prepared,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<MessageRow> {
    let (channel, group) = (prepared.channel, prepared.access.group_id);
    let thread_root = prepared
        .replied
        .as_ref()
        .map(|parent| parent.thread_root_id.unwrap_or(parent.id));
    let new = NewMessage {
        id,
        channel_id: channel.0,
        group_id: group.0,
        author_id: author.0,
        kind: input.kind.as_str(),
        content: input.content.as_str(),
        reply_to: prepared.replied.as_ref().map(|parent| parent.id),
        thread_root_id: thread_root,
        mention_ids: &prepared.recipients.mentioned,
        client_id: input.key.as_ref().map(IdempotencyKey::as_str),
        created_at: now,
    };
    // The author's read position moves with it: your own message never
    // counts as unread.
    let seq = repo::insert_message(tx, new).await?;
    repo::insert_attachments(tx, id, &prepared.attachments).await?;
    let message = stored_row(new, seq, &prepared.attachments);
    events::publish(
        tx,
        channel,
        author,
        Payload::MessageCreated(pb::MessageCreated {
            message: Some(crate::convert::message(message.clone(), Vec::new())),
        }),
    )
    .await?;
    if let Some(root) = thread_root {
        count_reply(tx, channel, group, author, root, now).await?;
    }
    Ok(message)
}

/// The row just stored, as reading it back would return it: the send path
/// saves that statement.
fn stored_row(new: NewMessage<'_>, seq: i64, attachments: &[NewAttachment]) -> MessageRow {
    MessageRow {
        id: new.id,
        channel_id: new.channel_id,
        group_id: new.group_id,
        seq,
        author_id: new.author_id,
        kind: new.kind.to_owned(),
        content: new.content.to_owned(),
        reply_to: new.reply_to,
        thread_root_id: new.thread_root_id,
        reply_count: 0,
        last_reply_at: None,
        mention_ids: new.mention_ids.to_vec(),
        client_id: new.client_id.map(str::to_owned),
        created_at: new.created_at,
        edited_at: None,
        deleted_at: None,
        attachment_ids: attachments.iter().map(|a| a.media_id).collect(),
        attachment_names: attachments.iter().map(|a| a.filename.clone()).collect(),
        attachment_types: attachments.iter().map(|a| a.content_type.clone()).collect(),
        attachment_sizes: attachments.iter().map(|a| a.size).collect(),
    }
}

/// Postgres keeps timestamps to the microsecond: the time stored and the
/// time announced must be the same.
fn to_microseconds(at: OffsetDateTime) -> OffsetDateTime {
    let micros = at.nanosecond() / 1_000 * 1_000;
    at.replace_nanosecond(micros).unwrap_or(at)
}

/// Counts a new reply in the thread under `root` and announces the
/// thread's new counters.
async fn count_reply(
    tx: &mut PgConnection,
    channel: ChannelId,
    group: GroupId,
    author: UserId,
    root: Uuid,
    now: OffsetDateTime,
) -> Result<()> {
    let thread = repo::count_reply(tx, root, now).await?;
    events::publish(
        tx,
        channel,
        author,
        Payload::ThreadUpdated(pb::ThreadUpdated {
            group_id: group.to_string(),
            channel_id: channel.to_string(),
            root_id: root.to_string(),
            seq: u64::try_from(thread.seq).unwrap_or(0),
            reply_count: u32::try_from(thread.reply_count).unwrap_or(0),
            last_reply_at: thread.last_reply_at.map(crate::convert::timestamp),
        }),
    )
    .await?;
    Ok(())
}
