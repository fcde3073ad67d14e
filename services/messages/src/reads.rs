//! Read positions, unread counts and "who has read this".

use crate::domain::{ChannelId, MessageId, UserId};
use crate::error::{Error, Result};
use crate::events;
use crate::messages::Messages;
use crate::peers::Action;
use crate::repo::{self, ReadRow, UnreadRow};
use messenger_proto::messages::v1::{self as pb, messages_event::Payload};
use uuid::Uuid;

/// Most channels one unread query may name.
pub const MAX_UNREAD_CHANNELS: usize = 1000;

impl Messages {
    /// Moves `actor`'s read position in `channel` to `message` (never
    /// backwards) and reads their notifications up to there.
    pub async fn mark_read(
        &self,
        actor: UserId,
        channel: ChannelId,
        message: MessageId,
    ) -> Result<ReadRow> {
        let access = self
            .peers
            .authorize(actor, channel.0, Action::ReadMessages, None)
            .await?;
        let mut tx = self.pool.begin().await?;
        let target = repo::message(&mut tx, message.0)
            .await?
            .filter(|m| m.channel_id == channel.0)
            .ok_or_else(|| Error::invalid("message_id", "no such message in this channel"))?;
        let moved = repo::advance(&mut tx, channel.0, actor.0, target.seq, target.id).await?;
        let position = match moved {
            Some(position) => {
                repo::mark_read_up_to(&mut tx, actor.0, channel.0, position.last_read_seq).await?;
                events::publish(
                    &mut tx,
                    channel,
                    actor,
                    Payload::ReadPositionMoved(pb::ReadPositionMoved {
                        group_id: access.group_id.to_string(),
                        position: Some(crate::convert::read_position(position.clone())),
                    }),
                )
                .await?;
                position
            }
            None => repo::position(&mut tx, channel.0, actor.0)
                .await?
                .ok_or(Error::NotFound("read position"))?,
        };
        tx.commit().await?;
        Ok(position)
    }

    /// Unread state of every channel `actor` may read (or of those named).
    pub async fn unread(&self, actor: UserId, among: &[Uuid]) -> Result<Vec<UnreadRow>> {
        if among.len() > MAX_UNREAD_CHANNELS {
            return Err(Error::invalid(
                "channel_ids",
                format!("at most {MAX_UNREAD_CHANNELS} per call"),
            ));
        }
        let channels: Vec<Uuid> = self
            .peers
            .readable(actor, among)
            .await?
            .into_iter()
            .map(|readable| readable.channel_id)
            .collect();
        let mut conn = self.pool.acquire().await?;
        Ok(repo::unread(&mut conn, actor.0, &channels).await?)
    }

    /// Who has read `message` (positions at or past it), by user id.
    pub async fn readers(
        &self,
        actor: UserId,
        message: MessageId,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<(Vec<ReadRow>, Option<Uuid>)> {
        let message = self.visible(actor, message).await?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = repo::readers(
            &mut conn,
            message.channel_id,
            message.seq,
            message.author_id,
            after,
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more {
            rows.last().map(|row| row.user_id)
        } else {
            None
        };
        Ok((rows, next))
    }
}
