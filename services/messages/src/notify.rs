//! Who hears about a new message: the people it mentions, the author of the
//! message it replies to, and the other participants of a direct
//! conversation. Never every member of a group: unread counts come from
//! read positions instead.

use crate::domain::{ChannelId, Content, UserId};
use crate::error::{Error, Result};
use crate::messages::Messages;
use crate::peers::{Access, Action};
use crate::repo::MessageRow;
use uuid::Uuid;

/// Mentions beyond this many in one message are not resolved.
const MAX_MENTIONS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mention,
    Reply,
    Direct,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mention => "mention",
            Kind::Reply => "reply",
            Kind::Direct => "direct_message",
        }
    }
}

pub struct Recipients {
    /// Mentioned users who can read the conversation.
    pub mentioned: Vec<Uuid>,
    /// One notification per user, the most specific kind first.
    pub notify: Vec<(Uuid, Kind)>,
}

impl Messages {
    pub(crate) async fn recipients(
        &self,
        author: UserId,
        access: crate::peers::Access,
        content: &Content,
        replied: Option<&MessageRow>,
    ) -> Result<Recipients> {
        let channel = channel_of(&access)?;
        let mut names = content.mentioned_usernames();
        names.truncate(MAX_MENTIONS);
        let mut candidates: Vec<Uuid> = self
            .peers
            .resolve_usernames(&names)
            .await?
            .into_iter()
            .filter(|user| *user != author.0)
            .collect();
        candidates.dedup();
        let mentioned = self.can_read(channel, candidates).await?;
        let mut notify: Vec<(Uuid, Kind)> = mentioned
            .iter()
            .map(|user| (*user, Kind::Mention))
            .collect();
        if let Some(parent) = replied
            && parent.author_id != author.0
            && !notify.iter().any(|(user, _)| *user == parent.author_id)
            && !self
                .can_read(channel, vec![parent.author_id])
                .await?
                .is_empty()
        {
            notify.push((parent.author_id, Kind::Reply));
        }
        if access.direct {
            for user in self
                .peers
                .direct_participants(author, access.group_id)
                .await?
            {
                if user != author.0 && !notify.iter().any(|(known, _)| *known == user) {
                    notify.push((user, Kind::Direct));
                }
            }
        }
        Ok(Recipients { mentioned, notify })
    }

    /// Those of `users` who may read `channel`.
    async fn can_read(&self, channel: ChannelId, users: Vec<Uuid>) -> Result<Vec<Uuid>> {
        let checks = users.iter().map(|user| {
            self.peers
                .authorize(UserId(*user), channel.0, Action::ReadMessages, None)
        });
        let answers = futures::future::join_all(checks).await;
        let mut readers = Vec::new();
        for (user, answer) in users.into_iter().zip(answers) {
            match answer {
                Ok(_) => readers.push(user),
                Err(Error::NotFound(_) | Error::PermissionDenied(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(readers)
    }
}

fn channel_of(access: &Access) -> Result<ChannelId> {
    access
        .channel_id
        .ok_or_else(|| Error::invalid("channel_id", "must name a channel, not a group"))
}
