//! Reading and changing stored messages. Every read checks that the caller
//! may read the conversation; a message in a conversation they cannot read
//! does not exist for them.

use crate::domain::{ChannelId, Content, GroupId, MessageId, UserId};
use crate::error::{Error, Result};
use crate::events;
use crate::notify::{self, Kind, Recipients};
use crate::peers::{Action, Peers};
use crate::repo::{self, EditRow, MessageRow};
use messenger_proto::messages::v1::{self as pb, messages_event::Payload};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Deepest offset the original offset-paged API accepts.
pub const MAX_OFFSET: u32 = 10_000;

#[derive(Clone)]
pub struct Messages {
    pub pool: PgPool,
    pub peers: Peers,
}

/// Where a history page starts.
pub enum Anchor {
    Latest,
    Before(MessageId),
    After(MessageId),
    Around(MessageId),
}

pub struct HistoryPage {
    pub messages: Vec<pb::Message>,
    pub has_older: bool,
    pub has_newer: bool,
}

impl Messages {
    /// The message, if `actor` may read its conversation.
    pub async fn visible(&self, actor: UserId, id: MessageId) -> Result<MessageRow> {
        let mut conn = self.pool.acquire().await?;
        let message = repo::message(&mut conn, id.0)
            .await?
            .ok_or(Error::NotFound("message"))?;
        drop(conn);
        self.peers
            .authorize(actor, message.channel_id, Action::ReadMessages, None)
            .await
            .map_err(not_found_as_message)?;
        Ok(message)
    }

    /// Rows with their reactions as `viewer` sees them.
    pub async fn present(&self, viewer: UserId, rows: Vec<MessageRow>) -> Result<Vec<pb::Message>> {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut conn = self.pool.acquire().await?;
        let reactions = repo::reactions(&mut conn, &ids, viewer.0).await?;
        Ok(crate::convert::messages(rows, reactions))
    }

    pub async fn present_one(&self, viewer: UserId, row: MessageRow) -> Result<pb::Message> {
        let mut presented = self.present(viewer, vec![row]).await?;
        presented.pop().ok_or(Error::NotFound("message"))
    }

    pub async fn history(
        &self,
        actor: UserId,
        channel: ChannelId,
        anchor: Anchor,
        limit: i64,
    ) -> Result<HistoryPage> {
        self.peers
            .authorize(actor, channel.0, Action::ReadMessages, None)
            .await?;
        let mut conn = self.pool.acquire().await?;
        let anchor_seq = match &anchor {
            Anchor::Latest => i64::MAX,
            Anchor::Before(id) | Anchor::After(id) | Anchor::Around(id) => {
                repo::message(&mut conn, id.0)
                    .await?
                    .filter(|message| message.channel_id == channel.0)
                    .map(|message| message.seq)
                    .ok_or_else(|| Error::invalid("anchor", "no such message in this channel"))?
            }
        };
        // Each query asks for one row more than it keeps: that row tells
        // whether there is more in that direction. The anchor of a
        // before/after page is itself on the other side.
        let (rows, has_older, has_newer) = match anchor {
            Anchor::Latest | Anchor::Before(_) => {
                let (older, more) = newest_first(
                    repo::before(&mut conn, channel.0, anchor_seq, limit + 1).await?,
                    limit,
                );
                (older, more, !matches!(anchor, Anchor::Latest))
            }
            Anchor::After(_) => {
                let (newer, more) = keep(
                    repo::after(&mut conn, channel.0, anchor_seq, limit + 1).await?,
                    limit,
                );
                (newer, true, more)
            }
            Anchor::Around(_) => {
                let half = limit / 2;
                let (mut rows, more_older) = newest_first(
                    repo::before(&mut conn, channel.0, anchor_seq + 1, limit - half + 1).await?,
                    limit - half,
                );
                let (newer, more_newer) = keep(
                    repo::after(&mut conn, channel.0, anchor_seq, half + 1).await?,
                    half,
                );
                rows.extend(newer);
                (rows, more_older, more_newer)
            }
        };
        drop(conn);
        Ok(HistoryPage {
            messages: self.present(actor, rows).await?,
            has_older,
            has_newer,
        })
    }

    pub async fn thread(
        &self,
        actor: UserId,
        root: MessageId,
        after: Option<MessageId>,
        limit: i64,
    ) -> Result<HistoryPage> {
        let root = self.visible(actor, root).await?;
        if root.thread_root_id.is_some() {
            return Err(Error::invalid(
                "root_id",
                "this message is a reply, not a thread root",
            ));
        }
        let mut conn = self.pool.acquire().await?;
        let from = match after {
            Some(id) => repo::message(&mut conn, id.0)
                .await?
                .filter(|reply| reply.thread_root_id == Some(root.id))
                .map(|reply| reply.seq)
                .ok_or_else(|| Error::invalid("after", "no such reply in this thread"))?,
            None => 0,
        };
        let (replies, has_newer) = keep(
            repo::thread(&mut conn, root.id, from, limit + 1).await?,
            limit,
        );
        drop(conn);
        Ok(HistoryPage {
            messages: self.present(actor, replies).await?,
            has_older: after.is_some(),
            has_newer,
        })
    }

    /// The original API: a group's messages in the channels the caller may
    /// read, newest first, by offset.
    pub async fn group_history(
        &self,
        actor: UserId,
        group: GroupId,
        limit: i64,
        offset: u32,
    ) -> Result<HistoryPage> {
        if offset > MAX_OFFSET {
            return Err(Error::invalid(
                "offset",
                format!(
                    "must be at most {MAX_OFFSET}; page with before= on /channels/{{id}}/messages"
                ),
            ));
        }
        // Authorizing on the group answers NOT_FOUND for outsiders.
        self.peers
            .authorize(actor, group.0, Action::ReadMessages, None)
            .await?;
        let channels: Vec<Uuid> = self
            .peers
            .readable(actor, &[])
            .await?
            .into_iter()
            .filter(|readable| readable.group_id == group.0)
            .map(|readable| readable.channel_id)
            .collect();
        let mut conn = self.pool.acquire().await?;
        let (rows, has_older) = keep(
            repo::group_page(&mut conn, group.0, &channels, limit + 1, i64::from(offset)).await?,
            limit,
        );
        drop(conn);
        Ok(HistoryPage {
            messages: self.present(actor, rows).await?,
            has_older,
            has_newer: offset > 0,
        })
    }

    pub async fn edit(&self, actor: UserId, id: MessageId, content: Content) -> Result<MessageRow> {
        if content.is_empty() {
            return Err(Error::invalid("content", "must not be empty"));
        }
        let current = self.visible(actor, id).await?;
        if current.author_id != actor.0 {
            return Err(Error::denied("only the author can edit a message"));
        }
        // Editing is posting: a muted member, or a member who may no longer
        // post in an announcement channel, cannot edit either.
        let access = self
            .peers
            .authorize(actor, current.channel_id, Action::PostMessage, None)
            .await?;
        // Members newly mentioned by the edit are notified; those mentioned
        // before are not notified again.
        // (Only resolved when the text mentions anyone: most edits do not.)
        let newly: Vec<Uuid> = if content.mentioned_usernames().is_empty() {
            Vec::new()
        } else {
            notify::recipients(&self.peers, actor, access, &content, None)
                .await?
                .mentioned
                .into_iter()
                .filter(|user| !current.mention_ids.contains(user))
                .collect()
        };
        let mut tx = self.pool.begin().await?;
        let message = repo::lock_message(&mut tx, id.0)
            .await?
            .ok_or(Error::NotFound("message"))?;
        if message.deleted_at.is_some() {
            return Err(Error::conflict("a deleted message cannot be edited"));
        }
        if message.kind == "system" {
            return Err(Error::denied("system messages cannot be edited"));
        }
        if message.content == content.as_str() {
            return Ok(message);
        }
        let now = OffsetDateTime::now_utc();
        repo::edit(&mut tx, id.0, &message.content, content.as_str(), now).await?;
        if !newly.is_empty() {
            let mut mentions = message.mention_ids.clone();
            mentions.extend(newly.iter().copied());
            repo::set_mentions(&mut tx, id.0, &mentions).await?;
        }
        let edited = repo::message(&mut tx, id.0)
            .await?
            .ok_or(Error::NotFound("message"))?;
        events::publish(
            &mut tx,
            ChannelId(edited.channel_id),
            actor,
            Payload::MessageEdited(pb::MessageEdited {
                message: Some(crate::convert::message(edited.clone(), Vec::new())),
            }),
        )
        .await?;
        let notify = newly.iter().map(|user| (*user, Kind::Mention)).collect();
        notify::store(
            &mut tx,
            &edited,
            Recipients {
                mentioned: newly,
                notify,
            },
            &content,
        )
        .await?;
        tx.commit().await?;
        Ok(edited)
    }

    pub async fn edit_history(&self, actor: UserId, id: MessageId) -> Result<Vec<EditRow>> {
        let message = self.visible(actor, id).await?;
        let mut conn = self.pool.acquire().await?;
        Ok(repo::edits(&mut conn, message.id).await?)
    }

    /// Soft delete by the author, or by a moderator or above who outranks
    /// the author.
    pub async fn delete(&self, actor: UserId, id: MessageId) -> Result<MessageRow> {
        let current = self.visible(actor, id).await?;
        if current.author_id != actor.0 {
            self.peers
                .authorize(
                    actor,
                    current.channel_id,
                    Action::DeleteOthersMessage,
                    Some(UserId(current.author_id)),
                )
                .await?;
        }
        let mut tx = self.pool.begin().await?;
        let message = repo::lock_message(&mut tx, id.0)
            .await?
            .ok_or(Error::NotFound("message"))?;
        if message.deleted_at.is_some() {
            // Deleting twice is not an error: the outcome is the same.
            return Ok(message);
        }
        repo::tombstone(&mut tx, id.0, OffsetDateTime::now_utc()).await?;
        events::publish(
            &mut tx,
            ChannelId(message.channel_id),
            actor,
            Payload::MessageDeleted(pb::MessageDeleted {
                group_id: message.group_id.to_string(),
                channel_id: message.channel_id.to_string(),
                message_id: message.id.to_string(),
                seq: u64::try_from(message.seq).unwrap_or(0),
                author_id: message.author_id.to_string(),
                thread_root_id: message
                    .thread_root_id
                    .map(|root| root.to_string())
                    .unwrap_or_default(),
            }),
        )
        .await?;
        let deleted = repo::message(&mut tx, id.0)
            .await?
            .ok_or(Error::NotFound("message"))?;
        tx.commit().await?;
        Ok(deleted)
    }
}

/// The first `limit` rows, and whether there were more.
fn keep(mut rows: Vec<MessageRow>, limit: i64) -> (Vec<MessageRow>, bool) {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

/// Rows fetched newest first, kept up to `limit` and put back in order.
fn newest_first(rows: Vec<MessageRow>, limit: i64) -> (Vec<MessageRow>, bool) {
    let (mut rows, more) = keep(rows, limit);
    rows.reverse();
    (rows, more)
}

/// A conversation the caller cannot read hides its messages as well.
fn not_found_as_message(err: Error) -> Error {
    match err {
        Error::NotFound(_) => Error::NotFound("message"),
        other => other,
    }
}

impl Messages {
    /// May `user` read a conversation where `media` is attached?
    pub async fn media_access(&self, user: UserId, media: Uuid) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let channels = repo::channels_with_media(&mut conn, media).await?;
        drop(conn);
        for channel in channels {
            match self
                .peers
                .authorize(user, channel, Action::ReadMessages, None)
                .await
            {
                Ok(_) => return Ok(true),
                Err(Error::NotFound(_) | Error::PermissionDenied(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(false)
    }

    /// Which of `media` a stored message carries: asked by the media
    /// service's sweeper before it deletes uploads it believes unattached.
    pub async fn attached_media(&self, media: &[Uuid]) -> Result<Vec<Uuid>> {
        if media.len() > MAX_ATTACHED_MEDIA_QUERY {
            return Err(Error::invalid(
                "media_ids",
                format!("at most {MAX_ATTACHED_MEDIA_QUERY} per call"),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        Ok(repo::attached_media(&mut conn, media).await?)
    }
}

/// Most ids one `ListAttachedMedia` call may ask about.
const MAX_ATTACHED_MEDIA_QUERY: usize = 1000;
