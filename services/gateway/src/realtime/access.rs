//! Who may read what, as the realtime side needs to know it: the rooms a
//! socket subscribes at start, whether a `join` is allowed, and the groups
//! that hear a user's presence. The groups service decides; this trait is
//! the seam that lets the socket protocol be driven in unit tests with an
//! in-memory directory instead of a running groups service.

use crate::backends::{GroupsClient, call};
use futures::future::BoxFuture;
use messenger_proto::groups::v1 as pb;
use uuid::Uuid;

/// One conversation a user may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readable {
    pub group: Uuid,
    pub channel: Uuid,
    /// A direct conversation (its rooms are subscribed at start).
    pub direct: bool,
}

/// A granted read: the conversation's group and, for a channel, the channel.
pub type Grant = (Uuid, Option<Uuid>);

pub trait ReadAccess: Send + Sync + 'static {
    /// Every conversation `user` may read.
    fn readable(&self, user: Uuid) -> BoxFuture<'_, Result<Vec<Readable>, tonic::Status>>;

    /// Whether `user` may read `conversation` (a group or channel id).
    fn authorize_read(
        &self,
        user: Uuid,
        conversation: Uuid,
    ) -> BoxFuture<'_, Result<Option<Grant>, tonic::Status>>;
}

/// The groups service's answers.
pub struct GroupsAccess {
    groups: GroupsClient,
}

impl GroupsAccess {
    pub fn new(groups: GroupsClient) -> Self {
        GroupsAccess { groups }
    }
}

impl ReadAccess for GroupsAccess {
    fn readable(&self, user: Uuid) -> BoxFuture<'_, Result<Vec<Readable>, tonic::Status>> {
        let mut groups = self.groups.clone();
        Box::pin(async move {
            let request = pb::ListReadableConversationsRequest {
                user_id: user.to_string(),
                conversation_ids: Vec::new(),
            };
            let answer = call(
                "groups.ListReadableConversations",
                groups.list_readable_conversations(request),
            )
            .await?;
            Ok(answer
                .conversations
                .iter()
                .filter_map(|c| {
                    Some(Readable {
                        group: Uuid::parse_str(&c.group_id).ok()?,
                        channel: Uuid::parse_str(&c.channel_id).ok()?,
                        direct: c.kind == pb::GroupKind::Direct as i32,
                    })
                })
                .collect())
        })
    }

    fn authorize_read(
        &self,
        user: Uuid,
        conversation: Uuid,
    ) -> BoxFuture<'_, Result<Option<Grant>, tonic::Status>> {
        let mut groups = self.groups.clone();
        Box::pin(async move {
            let request = pb::AuthorizeRequest {
                user_id: user.to_string(),
                conversation_id: conversation.to_string(),
                action: pb::Action::ReadMessages.into(),
                target_user_id: String::new(),
            };
            let answer = call("groups.Authorize", groups.authorize(request)).await?;
            if !answer.allowed {
                return Ok(None);
            }
            let Ok(group) = Uuid::parse_str(&answer.group_id) else {
                return Ok(None);
            };
            Ok(Some((group, Uuid::parse_str(&answer.channel_id).ok())))
        })
    }
}
