//! Reactions: one per user per emoji per message.

use crate::domain::{ChannelId, Emoji, MessageId, UserId};
use crate::error::{Error, Result};
use crate::events;
use crate::messages::Messages;
use crate::peers::Action;
use crate::repo::{self, MessageRow};
use messenger_proto::messages::v1::{self as pb, messages_event::Payload};

/// Distinct emojis one message may carry.
const MAX_DISTINCT_EMOJIS: i64 = 50;

impl Messages {
    /// Adds `emoji` from `actor`. Adding it twice is not an error (and
    /// publishes nothing the second time).
    pub async fn react(&self, actor: UserId, id: MessageId, emoji: Emoji) -> Result<MessageRow> {
        let message = self.reactable(actor, id).await?;
        let mut tx = self.pool.begin().await?;
        let locked = repo::lock_message(&mut tx, message.id)
            .await?
            .ok_or(Error::NotFound("message"))?;
        if locked.deleted_at.is_some() {
            return Err(Error::conflict("a deleted message cannot get reactions"));
        }
        if repo::distinct_emojis(&mut tx, locked.id).await? >= MAX_DISTINCT_EMOJIS {
            let reacted = repo::reactions(&mut tx, &[locked.id], actor.0).await?;
            if !reacted.iter().any(|r| r.emoji == emoji.as_str()) {
                return Err(Error::conflict(format!(
                    "a message carries at most {MAX_DISTINCT_EMOJIS} different reactions"
                )));
            }
        }
        if repo::add_reaction(&mut tx, locked.id, emoji.as_str(), actor.0).await? {
            events::publish(
                &mut tx,
                ChannelId(locked.channel_id),
                actor,
                Payload::ReactionAdded(pb::ReactionAdded {
                    group_id: locked.group_id.to_string(),
                    channel_id: locked.channel_id.to_string(),
                    message_id: locked.id.to_string(),
                    seq: u64::try_from(locked.seq).unwrap_or(0),
                    user_id: actor.to_string(),
                    emoji: emoji.as_str().to_owned(),
                }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(locked)
    }

    /// Removes `actor`'s `emoji`; NOT_FOUND when they had not reacted so.
    pub async fn unreact(&self, actor: UserId, id: MessageId, emoji: Emoji) -> Result<MessageRow> {
        let message = self.reactable(actor, id).await?;
        let mut tx = self.pool.begin().await?;
        if !repo::remove_reaction(&mut tx, message.id, emoji.as_str(), actor.0).await? {
            return Err(Error::NotFound("reaction"));
        }
        events::publish(
            &mut tx,
            ChannelId(message.channel_id),
            actor,
            Payload::ReactionRemoved(pb::ReactionRemoved {
                group_id: message.group_id.to_string(),
                channel_id: message.channel_id.to_string(),
                message_id: message.id.to_string(),
                seq: u64::try_from(message.seq).unwrap_or(0),
                user_id: actor.to_string(),
                emoji: emoji.as_str().to_owned(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(message)
    }

    async fn reactable(&self, actor: UserId, id: MessageId) -> Result<MessageRow> {
        let message = self.visible(actor, id).await?;
        self.peers
            .authorize(actor, message.channel_id, Action::React, None)
            .await?;
        Ok(message)
    }
}
