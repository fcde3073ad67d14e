//! gRPC transport: parses requests into domain types, calls the rules,
//! converts results. No rules here.

use crate::access::Denial;
use crate::channels::{ChannelUpdate, NewChannelInput};
use crate::domain::{
    BanReason, ChannelId, ChannelName, Description, GroupId, GroupName, PageSize, Topic, UserId,
    Visibility, id_cursor, media_id,
};
use crate::error::Error;
use crate::groups::{GroupUpdate, Groups, NewGroupInput, Page};
use crate::permissions::{Action, Role};
use messenger_platform::identity::{ActorError, acting_user};
use messenger_proto::groups::v1 as pb;
use messenger_proto::groups::v1::groups_service_server::GroupsService;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

pub struct GroupsGrpc {
    pub groups: Groups,
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

fn group_id(raw: &str) -> Result<GroupId, Error> {
    GroupId::parse(raw, "group_id")
}

fn channel_id(raw: &str) -> Result<ChannelId, Error> {
    ChannelId::parse(raw, "channel_id")
}

fn user_id(raw: &str) -> Result<UserId, Error> {
    UserId::parse(raw, "user_id")
}

fn group_page(page: Page<crate::repo::GroupRow>) -> pb::GroupPage {
    pb::GroupPage {
        groups: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor.unwrap_or_default(),
    }
}

fn role(raw: i32) -> Result<Role, Error> {
    match pb::Role::try_from(raw) {
        Ok(pb::Role::Member) => Ok(Role::Member),
        Ok(pb::Role::Moderator) => Ok(Role::Moderator),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Ok(pb::Role::Owner) => Ok(Role::Owner),
        _ => Err(Error::invalid(
            "role",
            "must be owner, admin, moderator or member",
        )),
    }
}

fn action(raw: i32) -> Result<Action, Error> {
    use pb::Action as A;
    Ok(match A::try_from(raw) {
        Ok(A::ReadMessages) => Action::ReadMessages,
        Ok(A::PostMessage) => Action::PostMessage,
        Ok(A::React) => Action::React,
        Ok(A::DeleteOthersMessage) => Action::DeleteOthersMessage,
        Ok(A::UpdateGroup) => Action::UpdateGroup,
        Ok(A::DeleteGroup) => Action::DeleteGroup,
        Ok(A::TransferOwnership) => Action::TransferOwnership,
        Ok(A::ManageChannels) => Action::ManageChannels,
        Ok(A::Invite) => Action::Invite,
        Ok(A::Mute) => Action::Mute,
        Ok(A::Kick) => Action::Kick,
        Ok(A::Ban) => Action::Ban,
        Ok(A::Unban) => Action::Unban,
        Ok(A::SetRole) => Action::SetRole,
        Ok(A::Unspecified) | Err(_) => return Err(Error::invalid("action", "unknown action")),
    })
}

fn denial(denial: Denial) -> pb::Denial {
    match denial {
        Denial::NotFound => pb::Denial::NotFound,
        Denial::NotMember => pb::Denial::NotMember,
        Denial::RoleTooLow => pb::Denial::RoleTooLow,
        Denial::TargetRank => pb::Denial::TargetRank,
        Denial::Muted => pb::Denial::Muted,
        Denial::BroadcastOnly => pb::Denial::BroadcastOnly,
        Denial::Direct => pb::Denial::DirectConversation,
    }
}

fn instant(ts: prost_types::Timestamp) -> Result<OffsetDateTime, Error> {
    let invalid = || Error::invalid("muted_until", "is not a valid timestamp");
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())
}

#[tonic::async_trait]
impl GroupsService for GroupsGrpc {
    async fn info(&self, _: Request<pb::InfoRequest>) -> Reply<pb::InfoResponse> {
        Ok(Response::new(pb::InfoResponse {
            service: crate::SCHEMA.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    async fn create_group(&self, request: Request<pb::CreateGroupRequest>) -> Reply<pb::Group> {
        let r = request.into_inner();
        let input = NewGroupInput {
            name: GroupName::parse(&r.name)?,
            description: Description::parse(&r.description)?,
            visibility: Visibility::parse(r.visibility, Visibility::Private)?,
            avatar_media_id: media_id(&r.avatar_media_id, "avatar_media_id")?,
        };
        let group = self.groups.create(actor(&r.actor_id)?, input).await?;
        Ok(Response::new(group.into()))
    }

    async fn get_group(&self, request: Request<pb::GetGroupRequest>) -> Reply<pb::Group> {
        let r = request.into_inner();
        let group = self
            .groups
            .get(actor(&r.actor_id)?, group_id(&r.group_id)?)
            .await?;
        Ok(Response::new(group.into()))
    }

    async fn update_group(&self, request: Request<pb::UpdateGroupRequest>) -> Reply<pb::Group> {
        let r = request.into_inner();
        let update = GroupUpdate {
            name: r.name.as_deref().map(GroupName::parse).transpose()?,
            description: r
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()?,
            visibility: match r.visibility {
                None | Some(0) => None,
                Some(raw) => Some(Visibility::parse(raw, Visibility::Private)?),
            },
            avatar_media_id: r
                .avatar_media_id
                .as_deref()
                .map(|raw| media_id(raw, "avatar_media_id"))
                .transpose()?,
        };
        let group = self
            .groups
            .update(actor(&r.actor_id)?, group_id(&r.group_id)?, update)
            .await?;
        Ok(Response::new(group.into()))
    }

    async fn delete_group(&self, request: Request<pb::DeleteGroupRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .delete(actor(&r.actor_id)?, group_id(&r.group_id)?)
            .await?;
        Ok(Response::new(()))
    }

    async fn list_my_groups(
        &self,
        request: Request<pb::ListMyGroupsRequest>,
    ) -> Reply<pb::GroupPage> {
        let r = request.into_inner();
        let page = self
            .groups
            .list_mine(
                actor(&r.actor_id)?,
                PageSize::parse(r.limit)?,
                id_cursor(&r.cursor)?,
            )
            .await?;
        Ok(Response::new(group_page(page)))
    }

    async fn search_public_groups(
        &self,
        request: Request<pb::SearchPublicGroupsRequest>,
    ) -> Reply<pb::GroupPage> {
        let r = request.into_inner();
        let page = self
            .groups
            .search_public(
                actor(&r.actor_id)?,
                &r.query,
                PageSize::parse(r.limit)?,
                &r.cursor,
            )
            .await?;
        Ok(Response::new(group_page(page)))
    }

    async fn join_group(&self, request: Request<pb::JoinGroupRequest>) -> Reply<pb::Member> {
        let r = request.into_inner();
        let member = self
            .groups
            .join(actor(&r.actor_id)?, group_id(&r.group_id)?)
            .await?;
        Ok(Response::new(member.into()))
    }

    async fn invite_member(&self, request: Request<pb::InviteMemberRequest>) -> Reply<pb::Member> {
        let r = request.into_inner();
        let member = self
            .groups
            .invite(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                user_id(&r.user_id)?,
            )
            .await?;
        Ok(Response::new(member.into()))
    }

    async fn leave_group(&self, request: Request<pb::LeaveGroupRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .leave(actor(&r.actor_id)?, group_id(&r.group_id)?)
            .await?;
        Ok(Response::new(()))
    }

    async fn kick_member(&self, request: Request<pb::KickMemberRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .kick(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                user_id(&r.user_id)?,
            )
            .await?;
        Ok(Response::new(()))
    }

    async fn ban_member(&self, request: Request<pb::BanMemberRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .ban(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                user_id(&r.user_id)?,
                BanReason::parse(&r.reason)?,
            )
            .await?;
        Ok(Response::new(()))
    }

    async fn unban_member(&self, request: Request<pb::UnbanMemberRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .unban(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                user_id(&r.user_id)?,
            )
            .await?;
        Ok(Response::new(()))
    }

    async fn mute_member(&self, request: Request<pb::MuteMemberRequest>) -> Reply<pb::Member> {
        let r = request.into_inner();
        let until = r.muted_until.map(instant).transpose()?;
        let member = self
            .groups
            .mute(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                user_id(&r.user_id)?,
                until,
            )
            .await?;
        Ok(Response::new(member.into()))
    }

    async fn set_role(&self, request: Request<pb::SetRoleRequest>) -> Reply<pb::Member> {
        let r = request.into_inner();
        let member = self
            .groups
            .set_role(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                user_id(&r.user_id)?,
                role(r.role)?,
            )
            .await?;
        Ok(Response::new(member.into()))
    }

    async fn transfer_ownership(
        &self,
        request: Request<pb::TransferOwnershipRequest>,
    ) -> Reply<pb::Member> {
        let r = request.into_inner();
        let member = self
            .groups
            .transfer_ownership(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                user_id(&r.user_id)?,
            )
            .await?;
        Ok(Response::new(member.into()))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Reply<pb::MemberPage> {
        let r = request.into_inner();
        let page = self
            .groups
            .list_members(
                actor(&r.actor_id)?,
                group_id(&r.group_id)?,
                PageSize::parse(r.limit)?,
                id_cursor(&r.cursor)?,
            )
            .await?;
        Ok(Response::new(pb::MemberPage {
            members: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn create_channel(
        &self,
        request: Request<pb::CreateChannelRequest>,
    ) -> Reply<pb::Channel> {
        let r = request.into_inner();
        let input = NewChannelInput {
            name: ChannelName::parse(&r.name)?,
            topic: Topic::parse(&r.topic)?,
            visibility: Visibility::parse(r.visibility, Visibility::Public)?,
            broadcast: r.broadcast,
        };
        let channel = self
            .groups
            .create_channel(actor(&r.actor_id)?, group_id(&r.group_id)?, input)
            .await?;
        Ok(Response::new(channel.into()))
    }

    async fn get_channel(&self, request: Request<pb::GetChannelRequest>) -> Reply<pb::Channel> {
        let r = request.into_inner();
        let channel = self
            .groups
            .get_channel(actor(&r.actor_id)?, channel_id(&r.channel_id)?)
            .await?;
        Ok(Response::new(channel.into()))
    }

    async fn update_channel(
        &self,
        request: Request<pb::UpdateChannelRequest>,
    ) -> Reply<pb::Channel> {
        let r = request.into_inner();
        let update = ChannelUpdate {
            name: r.name.as_deref().map(ChannelName::parse).transpose()?,
            topic: r.topic.as_deref().map(Topic::parse).transpose()?,
            broadcast: r.broadcast,
        };
        let channel = self
            .groups
            .update_channel(actor(&r.actor_id)?, channel_id(&r.channel_id)?, update)
            .await?;
        Ok(Response::new(channel.into()))
    }

    async fn delete_channel(&self, request: Request<pb::DeleteChannelRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .delete_channel(actor(&r.actor_id)?, channel_id(&r.channel_id)?)
            .await?;
        Ok(Response::new(()))
    }

    async fn list_channels(
        &self,
        request: Request<pb::ListChannelsRequest>,
    ) -> Reply<pb::ChannelList> {
        let r = request.into_inner();
        let channels = self
            .groups
            .list_channels(actor(&r.actor_id)?, group_id(&r.group_id)?)
            .await?;
        Ok(Response::new(pb::ChannelList {
            channels: channels.into_iter().map(Into::into).collect(),
        }))
    }

    async fn join_channel(
        &self,
        request: Request<pb::ChannelMemberRequest>,
    ) -> Reply<pb::ChannelMember> {
        let r = request.into_inner();
        let member = self
            .groups
            .join_channel(actor(&r.actor_id)?, channel_id(&r.channel_id)?)
            .await?;
        Ok(Response::new(member.into()))
    }

    async fn leave_channel(&self, request: Request<pb::ChannelMemberRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .leave_channel(actor(&r.actor_id)?, channel_id(&r.channel_id)?)
            .await?;
        Ok(Response::new(()))
    }

    async fn add_channel_member(
        &self,
        request: Request<pb::ChannelMemberRequest>,
    ) -> Reply<pb::ChannelMember> {
        let r = request.into_inner();
        let member = self
            .groups
            .add_channel_member(
                actor(&r.actor_id)?,
                channel_id(&r.channel_id)?,
                user_id(&r.user_id)?,
            )
            .await?;
        Ok(Response::new(member.into()))
    }

    async fn remove_channel_member(&self, request: Request<pb::ChannelMemberRequest>) -> Reply<()> {
        let r = request.into_inner();
        self.groups
            .remove_channel_member(
                actor(&r.actor_id)?,
                channel_id(&r.channel_id)?,
                user_id(&r.user_id)?,
            )
            .await?;
        Ok(Response::new(()))
    }

    async fn list_channel_members(
        &self,
        request: Request<pb::ListChannelMembersRequest>,
    ) -> Reply<pb::ChannelMemberPage> {
        let r = request.into_inner();
        let page = self
            .groups
            .list_channel_members(
                actor(&r.actor_id)?,
                channel_id(&r.channel_id)?,
                PageSize::parse(r.limit)?,
                id_cursor(&r.cursor)?,
            )
            .await?;
        Ok(Response::new(pb::ChannelMemberPage {
            members: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn open_direct(
        &self,
        request: Request<pb::OpenDirectRequest>,
    ) -> Reply<pb::DirectConversation> {
        let r = request.into_inner();
        if r.user_ids.len() > 20 {
            return Err(Error::invalid("user_ids", "too many users").into());
        }
        let others = r
            .user_ids
            .iter()
            .map(|id| UserId::parse(id, "user_ids"))
            .collect::<Result<Vec<_>, _>>()?;
        let direct = self
            .groups
            .open_direct(actor(&r.actor_id)?, &others)
            .await?;
        Ok(Response::new(pb::DirectConversation {
            group: Some(direct.group.into()),
            channel: Some(direct.channel.into()),
            participant_ids: direct.participants.iter().map(UserId::to_string).collect(),
            created: direct.created,
        }))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Reply<pb::AuthorizeResponse> {
        let r = request.into_inner();
        let user = UserId::parse(&r.user_id, "user_id")?;
        let conversation = uuid::Uuid::parse_str(r.conversation_id.trim())
            .map_err(|_| Error::invalid("conversation_id", "must be a UUID"))?;
        let action = action(r.action)?;
        let target = match r.target_user_id.trim() {
            "" => None,
            raw => Some(UserId::parse(raw, "target_user_id")?),
        };
        let decision = self
            .groups
            .authorize(user, conversation, action, target)
            .await?;
        let facts = decision.facts;
        let (allowed, denied) = match decision.outcome {
            Ok(_) => (true, pb::Denial::Unspecified),
            Err(reason) => (false, denial(reason)),
        };
        // Outsiders learn nothing about a hidden conversation.
        let hidden = denied == pb::Denial::NotFound;
        let facts = facts.filter(|_| !hidden);
        Ok(Response::new(pb::AuthorizeResponse {
            allowed,
            denial: denied as i32,
            role: crate::convert::role(facts.as_ref().and_then(|f| f.role)) as i32,
            group_id: facts
                .as_ref()
                .map(|f| f.group_id.to_string())
                .unwrap_or_default(),
            channel_id: facts
                .as_ref()
                .and_then(|f| f.channel_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
            kind: match &facts {
                None => pb::GroupKind::Unspecified,
                Some(f) if f.direct => pb::GroupKind::Direct,
                Some(_) => pb::GroupKind::Group,
            } as i32,
            muted_until: facts
                .as_ref()
                .and_then(|f| f.muted_until)
                .filter(|until| *until > OffsetDateTime::now_utc())
                .map(crate::convert::timestamp),
        }))
    }

    async fn list_readable_conversations(
        &self,
        request: Request<pb::ListReadableConversationsRequest>,
    ) -> Reply<pb::ListReadableConversationsResponse> {
        let r = request.into_inner();
        let user = UserId::parse(&r.user_id, "user_id")?;
        if r.conversation_ids.len() > crate::authorize::MAX_FILTER {
            return Err(Error::invalid("conversation_ids", "too many ids").into());
        }
        let among = r
            .conversation_ids
            .iter()
            .map(|raw| {
                uuid::Uuid::parse_str(raw.trim())
                    .map_err(|_| Error::invalid("conversation_ids", "must be UUIDs"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = self.groups.readable(user, &among).await?;
        Ok(Response::new(pb::ListReadableConversationsResponse {
            conversations: rows
                .into_iter()
                .map(|row| pb::ReadableConversation {
                    group_id: row.group_id.to_string(),
                    channel_id: row.channel_id.to_string(),
                    kind: if row.kind == "direct" {
                        pb::GroupKind::Direct
                    } else {
                        pb::GroupKind::Group
                    } as i32,
                })
                .collect(),
        }))
    }
}
