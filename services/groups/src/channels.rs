//! Channel rules: create, change, delete and list channels, and who is in
//! private ones.

use crate::domain::{ChannelId, ChannelName, GroupId, PageSize, Topic, UserId, Visibility};
use crate::error::{Error, Result};
use crate::events;
use crate::groups::{
    Groups, Page, lock_visible, paginate, refuse_direct, require_member, role_of, visible,
};
use crate::permissions::{self, Action, Role};
use crate::repo::{self, ChannelChanges, ChannelMemberRow, ChannelRow, GroupRow, NewChannel};
use messenger_proto::groups::v1 as pb;
use pb::groups_event::Payload;
use sqlx::PgConnection;
use uuid::Uuid;

/// Most channels one group may have.
const MAX_CHANNELS: i64 = 500;

pub struct NewChannelInput {
    pub name: ChannelName,
    pub topic: Topic,
    pub visibility: Visibility,
    pub broadcast: bool,
}

pub struct ChannelUpdate {
    pub name: Option<ChannelName>,
    pub topic: Option<Topic>,
    pub broadcast: Option<bool>,
}

/// A channel and its group as the actor sees them.
struct InView {
    group: GroupRow,
    channel: ChannelRow,
    is_channel_member: bool,
}

impl InView {
    fn private(&self) -> bool {
        self.channel.visibility == "private"
    }

    /// Private channels show themselves to their members and to those who
    /// manage channels; public ones to everyone who sees the group.
    fn visible(&self) -> bool {
        !self.private()
            || self.is_channel_member
            || role_of(&self.group).is_some_and(|role| role >= Role::Admin)
    }
}

/// The channel as `actor` sees it; with `lock`, its group is locked for a
/// change. 404 for channels the actor may not know about.
async fn in_view(
    conn: &mut PgConnection,
    actor: UserId,
    id: ChannelId,
    lock: bool,
) -> Result<InView> {
    let not_found = || Error::NotFound("channel");
    let channel = repo::channel(conn, id.0).await?.ok_or_else(not_found)?;
    let group = if lock {
        lock_visible(conn, actor, GroupId(channel.group_id))
            .await
            .map_err(|err| match err {
                Error::NotFound(_) => not_found(),
                other => other,
            })?
    } else {
        let group = repo::group(conn, actor.0, channel.group_id)
            .await?
            .ok_or_else(not_found)?;
        if !visible(&group) {
            return Err(not_found());
        }
        group
    };
    // Re-read under the lock: the channel may have changed meanwhile.
    let channel = if lock {
        repo::channel(conn, id.0).await?.ok_or_else(not_found)?
    } else {
        channel
    };
    let is_channel_member = repo::is_channel_member(conn, id.0, actor.0).await?;
    let view = InView {
        group,
        channel,
        is_channel_member,
    };
    if !view.visible() {
        return Err(not_found());
    }
    Ok(view)
}

impl Groups {
    pub async fn create_channel(
        &self,
        actor: UserId,
        id: GroupId,
        input: NewChannelInput,
    ) -> Result<ChannelRow> {
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        permissions::check(role, Action::ManageChannels, None)?;
        if repo::channel_count(&mut tx, id.0).await? >= MAX_CHANNELS {
            return Err(Error::conflict(format!(
                "a group has at most {MAX_CHANNELS} channels"
            )));
        }
        let channel = repo::insert_channel(
            &mut tx,
            NewChannel {
                id: Uuid::now_v7(),
                group_id: id.0,
                name: input.name.as_str(),
                topic: input.topic.as_str(),
                visibility: input.visibility.as_str(),
                broadcast: input.broadcast,
                is_default: false,
                created_by: actor.0,
            },
        )
        .await
        .map_err(Error::from_write)?;
        let payload = Payload::ChannelCreated(pb::ChannelCreated {
            channel: Some(channel.clone().into()),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        // Whoever creates a private channel is in it.
        if input.visibility == Visibility::Private {
            add_channel_member(&mut tx, &channel, actor, actor).await?;
        }
        self.commit(tx, id).await?;
        Ok(channel)
    }

    pub async fn get_channel(&self, actor: UserId, id: ChannelId) -> Result<ChannelRow> {
        let mut conn = self.pool.acquire().await?;
        Ok(in_view(&mut conn, actor, id, false).await?.channel)
    }

    pub async fn update_channel(
        &self,
        actor: UserId,
        id: ChannelId,
        update: ChannelUpdate,
    ) -> Result<ChannelRow> {
        let mut tx = self.pool.begin().await?;
        let view = in_view(&mut tx, actor, id, true).await?;
        let role = require_member(&view.group)?;
        refuse_direct(&view.group)?;
        permissions::check(role, Action::ManageChannels, None)?;
        let changes = ChannelChanges {
            name: update.name.as_ref().map(ChannelName::as_str),
            topic: update.topic.as_ref().map(Topic::as_str),
            broadcast: update.broadcast,
        };
        let channel = repo::update_channel(&mut tx, id.0, &changes)
            .await
            .map_err(Error::from_write)?;
        let group = GroupId(channel.group_id);
        let payload = Payload::ChannelUpdated(pb::ChannelUpdated {
            channel: Some(channel.clone().into()),
        });
        events::publish(&mut tx, group, actor, payload).await?;
        self.commit(tx, group).await?;
        Ok(channel)
    }

    pub async fn delete_channel(&self, actor: UserId, id: ChannelId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let view = in_view(&mut tx, actor, id, true).await?;
        let role = require_member(&view.group)?;
        refuse_direct(&view.group)?;
        permissions::check(role, Action::ManageChannels, None)?;
        if view.channel.is_default {
            return Err(Error::conflict("the default channel cannot be deleted"));
        }
        repo::delete_channel(&mut tx, id.0).await?;
        let group = GroupId(view.channel.group_id);
        let payload = Payload::ChannelDeleted(pb::ChannelDeleted {
            group_id: group.to_string(),
            channel_id: id.to_string(),
        });
        events::publish(&mut tx, group, actor, payload).await?;
        self.commit(tx, group).await
    }

    pub async fn list_channels(&self, actor: UserId, id: GroupId) -> Result<Vec<ChannelRow>> {
        let group = self.get(actor, id).await?;
        let admin = role_of(&group).is_some_and(|role| role >= Role::Admin);
        let mut conn = self.pool.acquire().await?;
        Ok(repo::visible_channels(&mut conn, id.0, actor.0, admin).await?)
    }

    /// The actor joins a public channel of a group they belong to.
    pub async fn join_channel(&self, actor: UserId, id: ChannelId) -> Result<ChannelMemberRow> {
        let mut tx = self.pool.begin().await?;
        let view = in_view(&mut tx, actor, id, true).await?;
        require_member(&view.group)?;
        if view.private() && !view.is_channel_member {
            return Err(Error::PermissionDenied(
                "private channels are joined by invitation of an admin".to_owned(),
            ));
        }
        let member = add_channel_member(&mut tx, &view.channel, actor, actor).await?;
        self.commit(tx, GroupId(view.channel.group_id)).await?;
        Ok(member)
    }

    pub async fn leave_channel(&self, actor: UserId, id: ChannelId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let view = in_view(&mut tx, actor, id, true).await?;
        require_member(&view.group)?;
        refuse_direct(&view.group)?;
        remove_channel_member(&mut tx, &view.channel, actor, actor).await?;
        self.commit(tx, GroupId(view.channel.group_id)).await
    }

    pub async fn add_channel_member(
        &self,
        actor: UserId,
        id: ChannelId,
        user: UserId,
    ) -> Result<ChannelMemberRow> {
        let mut tx = self.pool.begin().await?;
        let view = in_view(&mut tx, actor, id, true).await?;
        let role = require_member(&view.group)?;
        refuse_direct(&view.group)?;
        permissions::check(role, Action::ManageChannels, None)?;
        if repo::member(&mut tx, view.group.id, user.0)
            .await?
            .is_none()
        {
            return Err(Error::conflict(
                "only members of the group can be added to its channels",
            ));
        }
        let member = add_channel_member(&mut tx, &view.channel, actor, user).await?;
        self.commit(tx, GroupId(view.channel.group_id)).await?;
        Ok(member)
    }

    pub async fn remove_channel_member(
        &self,
        actor: UserId,
        id: ChannelId,
        user: UserId,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let view = in_view(&mut tx, actor, id, true).await?;
        let role = require_member(&view.group)?;
        refuse_direct(&view.group)?;
        permissions::check(role, Action::ManageChannels, None)?;
        let target = repo::member(&mut tx, view.group.id, user.0).await?;
        let target_role = target
            .as_ref()
            .and_then(|member| Role::parse(&member.role))
            .unwrap_or(Role::Member);
        if actor != user && target_role >= role {
            return Err(permissions::Denied::TargetRankTooHigh.into());
        }
        if !remove_channel_member(&mut tx, &view.channel, actor, user).await? {
            return Err(Error::NotFound("channel member"));
        }
        self.commit(tx, GroupId(view.channel.group_id)).await
    }

    pub async fn list_channel_members(
        &self,
        actor: UserId,
        id: ChannelId,
        limit: PageSize,
        cursor: Option<Uuid>,
    ) -> Result<Page<ChannelMemberRow>> {
        let mut conn = self.pool.acquire().await?;
        let view = in_view(&mut conn, actor, id, false).await?;
        require_member(&view.group)?;
        let members = repo::list_channel_members(&mut conn, id.0, cursor, limit.0 + 1).await?;
        Ok(paginate(members, limit, |member| {
            member.user_id.to_string()
        }))
    }
}

/// Adds `user` to the channel (idempotent) and records it.
async fn add_channel_member(
    conn: &mut PgConnection,
    channel: &ChannelRow,
    actor: UserId,
    user: UserId,
) -> Result<ChannelMemberRow> {
    let inserted = repo::insert_channel_member(conn, channel.id, channel.group_id, user.0).await?;
    let Some(member) = inserted else {
        return repo::channel_member(conn, channel.id, user.0)
            .await?
            .ok_or(Error::NotFound("channel member"));
    };
    let payload = Payload::ChannelMemberAdded(pb::ChannelMemberAdded {
        group_id: channel.group_id.to_string(),
        channel_id: channel.id.to_string(),
        user_id: user.to_string(),
    });
    events::publish(conn, GroupId(channel.group_id), actor, payload).await?;
    Ok(member)
}

async fn remove_channel_member(
    conn: &mut PgConnection,
    channel: &ChannelRow,
    actor: UserId,
    user: UserId,
) -> Result<bool> {
    if !repo::delete_channel_member(conn, channel.id, user.0).await? {
        return Ok(false);
    }
    let payload = Payload::ChannelMemberRemoved(pb::ChannelMemberRemoved {
        group_id: channel.group_id.to_string(),
        channel_id: channel.id.to_string(),
        user_id: user.to_string(),
    });
    events::publish(conn, GroupId(channel.group_id), actor, payload).await?;
    Ok(true)
}
