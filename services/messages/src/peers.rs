//! The services this one asks: groups (may this user do this here?) and
//! users (who is `@anna`?).

use crate::domain::{ChannelId, GroupId, UserId};
use crate::error::{Error, Result};
use messenger_platform::Config;
use messenger_platform::callers::Caller;
use messenger_platform::grpc::{TracePropagation, lazy_channel};
use messenger_platform::mtls::Transport;
use messenger_proto::groups::v1 as groups_pb;
use messenger_proto::groups::v1::groups_service_client::GroupsServiceClient;
use messenger_proto::media::v1 as media_pb;
use messenger_proto::media::v1::media_service_client::MediaServiceClient;
use messenger_proto::users::v1 as users_pb;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub use groups_pb::Action;

type Groups = GroupsServiceClient<InterceptedService<Channel, TracePropagation>>;
type Users = UsersServiceClient<InterceptedService<Channel, TracePropagation>>;
type MediaFiles = MediaServiceClient<InterceptedService<Channel, TracePropagation>>;

#[derive(Clone)]
pub struct Peers {
    groups: Groups,
    users: Users,
    media: MediaFiles,
}

/// What an allowed check tells about the conversation.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub group_id: GroupId,
    /// `None` when the conversation named was a group.
    pub channel_id: Option<ChannelId>,
    pub direct: bool,
}

/// A conversation the user may read.
pub struct Readable {
    pub group_id: Uuid,
    pub channel_id: Uuid,
}

impl Peers {
    pub fn new(config: &Config, transport: &Transport) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.grpc.timeout_ms);
        Ok(Peers {
            groups: GroupsServiceClient::with_interceptor(
                lazy_channel(transport, Caller::Groups, &config.grpc.groups.url, timeout)?,
                TracePropagation,
            ),
            users: UsersServiceClient::with_interceptor(
                lazy_channel(transport, Caller::Users, &config.grpc.users.url, timeout)?,
                TracePropagation,
            ),
            media: MediaServiceClient::with_interceptor(
                lazy_channel(transport, Caller::Media, &config.grpc.media.url, timeout)?,
                TracePropagation,
            ),
        })
    }

    /// Checks that `user` may take `action` in `conversation` (a channel, or
    /// a group for group-wide actions). Conversations the user may not see
    /// are NOT_FOUND, as if they did not exist.
    pub async fn authorize(
        &self,
        user: UserId,
        conversation: Uuid,
        action: Action,
        target: Option<UserId>,
    ) -> Result<Access> {
        let answer = self
            .groups
            .clone()
            .authorize(groups_pb::AuthorizeRequest {
                user_id: user.to_string(),
                conversation_id: conversation.to_string(),
                action: action.into(),
                target_user_id: target.map(|t| t.to_string()).unwrap_or_default(),
            })
            .await
            .map_err(Error::Dependency)?
            .into_inner();
        use groups_pb::Denial;
        let denial = Denial::try_from(answer.denial).unwrap_or(Denial::NotFound);
        if !answer.allowed {
            return Err(match denial {
                Denial::NotFound | Denial::NotMember | Denial::Unspecified => {
                    Error::NotFound("conversation")
                }
                Denial::RoleTooLow => Error::denied("your role does not allow this"),
                Denial::TargetRank => {
                    Error::denied("you cannot act on a member of equal or higher rank")
                }
                Denial::Muted => Error::denied("you are muted in this group"),
                Denial::BroadcastOnly => {
                    Error::denied("only owners and admins post in this announcement channel")
                }
                Denial::DirectConversation => {
                    Error::denied("this is not possible in a direct conversation")
                }
            });
        }
        let group_id = GroupId(parse_uuid(&answer.group_id)?);
        let channel_id = if answer.channel_id.is_empty() {
            None
        } else {
            Some(ChannelId(parse_uuid(&answer.channel_id)?))
        };
        Ok(Access {
            group_id,
            channel_id,
            direct: answer.kind == groups_pb::GroupKind::Direct as i32,
        })
    }

    /// The group's default channel, as seen by `user` (NOT_FOUND when they
    /// cannot see the group).
    pub async fn default_channel(&self, user: UserId, group: GroupId) -> Result<ChannelId> {
        let found = self
            .groups
            .clone()
            .get_group(groups_pb::GetGroupRequest {
                actor_id: user.to_string(),
                group_id: group.to_string(),
            })
            .await;
        match found {
            Ok(group) => Ok(ChannelId(parse_uuid(
                &group.into_inner().default_channel_id,
            )?)),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(Error::NotFound("conversation"))
            }
            Err(status) => Err(Error::Dependency(status)),
        }
    }

    /// Every channel `user` may read, optionally only among `among`.
    pub async fn readable(&self, user: UserId, among: &[Uuid]) -> Result<Vec<Readable>> {
        let answer = self
            .groups
            .clone()
            .list_readable_conversations(groups_pb::ListReadableConversationsRequest {
                user_id: user.to_string(),
                conversation_ids: among.iter().map(Uuid::to_string).collect(),
            })
            .await
            .map_err(Error::Dependency)?
            .into_inner();
        answer
            .conversations
            .into_iter()
            .map(|c| {
                Ok(Readable {
                    group_id: parse_uuid(&c.group_id)?,
                    channel_id: parse_uuid(&c.channel_id)?,
                })
            })
            .collect()
    }

    /// The participants of a direct conversation (at most 10).
    pub async fn direct_participants(&self, actor: UserId, group: GroupId) -> Result<Vec<Uuid>> {
        let page = self
            .groups
            .clone()
            .list_members(groups_pb::ListMembersRequest {
                actor_id: actor.to_string(),
                group_id: group.to_string(),
                limit: 100,
                cursor: String::new(),
            })
            .await
            .map_err(Error::Dependency)?
            .into_inner();
        page.members
            .iter()
            .map(|member| parse_uuid(&member.user_id))
            .collect()
    }

    /// Ids of the accounts with these usernames (unknown names are skipped).
    pub async fn resolve_usernames(&self, usernames: &[String]) -> Result<Vec<Uuid>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self
            .users
            .clone()
            .resolve_usernames(users_pb::ResolveUsernamesRequest {
                usernames: usernames.to_vec(),
            })
            .await
            .map_err(Error::Dependency)?
            .into_inner();
        answer
            .users
            .iter()
            .map(|user| parse_uuid(&user.id))
            .collect()
    }
}

impl Peers {
    /// The files `owner` attaches, as the media service describes them;
    /// refused unless each exists, is theirs and did not fail processing.
    pub async fn attachable(
        &self,
        owner: UserId,
        media: &[Uuid],
    ) -> Result<Vec<crate::repo::NewAttachment>> {
        let answer = self
            .media
            .clone()
            .check_attachable(media_pb::CheckAttachableRequest {
                owner_id: owner.to_string(),
                media_ids: media.iter().map(Uuid::to_string).collect(),
            })
            .await;
        let answer = match answer {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                return Err(match status.code() {
                    tonic::Code::NotFound => Error::invalid("attachments", "no such media"),
                    tonic::Code::PermissionDenied => {
                        Error::denied("you can only attach files you uploaded")
                    }
                    tonic::Code::Aborted | tonic::Code::FailedPrecondition => {
                        Error::conflict(status.message().to_owned())
                    }
                    _ => Error::Dependency(status),
                });
            }
        };
        answer
            .media
            .into_iter()
            .map(|file| {
                Ok(crate::repo::NewAttachment {
                    media_id: parse_uuid(&file.id)?,
                    filename: file.filename,
                    content_type: file.content_type,
                    size: i64::try_from(file.size).unwrap_or(i64::MAX),
                })
            })
            .collect()
    }
}

fn parse_uuid(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw)
        .map_err(|_| Error::Internal(anyhow::anyhow!("a peer service returned a bad id {raw:?}")))
}
