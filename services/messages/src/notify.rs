//! Who hears about a new message: the people it mentions, the author of the
//! message it replies to, and the other participants of a direct
//! conversation. Never every member of a group: unread counts come from
//! read positions instead. Also stores and announces what they hear.

use crate::domain::{ChannelId, Content, UserId};
use crate::error::{Error, Result};
use crate::events;
use crate::peers::{Access, Action, Peers};
use crate::repo::{self, MessageRow, NewNotifications};
use messenger_proto::messages::v1::{self as pb, messages_event::Payload};
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

/// Who hears about a message `author` writes in the conversation of
/// `access`, replying to `replied`.
pub(crate) async fn recipients(
    peers: &Peers,
    author: UserId,
    access: Access,
    content: &Content,
    replied: Option<&MessageRow>,
) -> Result<Recipients> {
    let channel = channel_of(&access)?;
    let mut names = content.mentioned_usernames();
    names.truncate(MAX_MENTIONS);
    let mut candidates: Vec<Uuid> = peers
        .resolve_usernames(&names)
        .await?
        .into_iter()
        .filter(|user| *user != author.0)
        .collect();
    candidates.dedup();
    let mentioned = can_read(peers, channel, candidates).await?;
    let mut notify: Vec<(Uuid, Kind)> = mentioned
        .iter()
        .map(|user| (*user, Kind::Mention))
        .collect();
    if let Some(parent) = replied
        && parent.author_id != author.0
        && !notify.iter().any(|(user, _)| *user == parent.author_id)
        && !can_read(peers, channel, vec![parent.author_id])
            .await?
            .is_empty()
    {
        notify.push((parent.author_id, Kind::Reply));
    }
    if access.direct {
        for user in peers.direct_participants(author, access.group_id).await? {
            if user != author.0 && !notify.iter().any(|(known, _)| *known == user) {
                notify.push((user, Kind::Direct));
            }
        }
    }
    Ok(Recipients { mentioned, notify })
}

/// Those of `users` who may read `channel`.
async fn can_read(peers: &Peers, channel: ChannelId, users: Vec<Uuid>) -> Result<Vec<Uuid>> {
    let checks = users
        .iter()
        .map(|user| peers.authorize(UserId(*user), channel.0, Action::ReadMessages, None));
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

/// Stores the notifications of `recipients` and publishes each, in the
/// transaction that stores or changes `message`.
pub(crate) async fn store(
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

fn channel_of(access: &Access) -> Result<ChannelId> {
    access
        .channel_id
        .ok_or_else(|| Error::invalid("channel_id", "must name a channel, not a group"))
}
