//! Membership rules: join, invite, leave, kick, ban, mute, roles, ownership.
//! Every change locks the group first (see `repo::lock_group`), so checks
//! and writes see one consistent membership.

use crate::domain::{BanReason, GroupId, PageSize, UserId};
use crate::error::{Error, Result};
use crate::events;
use crate::groups::{Groups, Page, lock_visible, paginate, refuse_direct, require_member};
use crate::permissions::{self, Action, Role};
use crate::repo::{self, GroupRow, MemberRow};
use messenger_proto::groups::v1 as pb;
use pb::groups_event::Payload;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

fn member_role(member: &MemberRow) -> Role {
    // The column's CHECK constraint admits only known roles.
    Role::parse(&member.role).unwrap_or(Role::Member)
}

async fn target(conn: &mut PgConnection, group: GroupId, user: UserId) -> Result<MemberRow> {
    repo::member(conn, group.0, user.0)
        .await?
        .ok_or(Error::NotFound("member"))
}

fn not_self(actor: UserId, user: UserId, hint: &str) -> Result<()> {
    if actor == user {
        return Err(Error::invalid("user_id", hint.to_owned()));
    }
    Ok(())
}

impl Groups {
    pub async fn join(&self, actor: UserId, id: GroupId) -> Result<MemberRow> {
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        if let Some(existing) = repo::member(&mut tx, id.0, actor.0).await? {
            return Ok(existing);
        }
        // Visible but not a member: a public group.
        if repo::is_banned(&mut tx, id.0, actor.0).await? {
            return Err(Error::PermissionDenied(
                "you are banned from this group".to_owned(),
            ));
        }
        let member = repo::insert_member(&mut tx, id.0, actor.0, Role::Member.as_str()).await?;
        joined(&mut tx, &group, actor, &member, None).await?;
        self.commit(tx, id).await?;
        Ok(member)
    }

    pub async fn invite(&self, actor: UserId, id: GroupId, user: UserId) -> Result<MemberRow> {
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        permissions::check(role, Action::Invite, None)?;
        if let Some(existing) = repo::member(&mut tx, id.0, user.0).await? {
            return Ok(existing);
        }
        if repo::is_banned(&mut tx, id.0, user.0).await? {
            return Err(Error::conflict(
                "this user is banned from the group; unban them first",
            ));
        }
        let member = repo::insert_member(&mut tx, id.0, user.0, Role::Member.as_str()).await?;
        joined(&mut tx, &group, actor, &member, Some(actor)).await?;
        self.commit(tx, id).await?;
        Ok(member)
    }

    pub async fn leave(&self, actor: UserId, id: GroupId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        if role == Role::Owner {
            return Err(Error::conflict(
                "the owner cannot leave: transfer ownership first, or delete the group",
            ));
        }
        repo::delete_member(&mut tx, id.0, actor.0).await?;
        let payload = Payload::MemberLeft(pb::MemberLeft {
            group_id: id.to_string(),
            user_id: actor.to_string(),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await
    }

    pub async fn kick(&self, actor: UserId, id: GroupId, user: UserId) -> Result<()> {
        not_self(actor, user, "to leave a group, use LeaveGroup")?;
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        let target = target(&mut tx, id, user).await?;
        permissions::check(role, Action::Kick, Some(member_role(&target)))?;
        repo::delete_member(&mut tx, id.0, user.0).await?;
        let payload = Payload::MemberKicked(pb::MemberKicked {
            group_id: id.to_string(),
            user_id: user.to_string(),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await
    }

    /// Bans `user` (a member or not) and removes them if they are a member.
    pub async fn ban(
        &self,
        actor: UserId,
        id: GroupId,
        user: UserId,
        reason: BanReason,
    ) -> Result<()> {
        not_self(actor, user, "you cannot ban yourself")?;
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        let target = repo::member(&mut tx, id.0, user.0).await?;
        permissions::check(role, Action::Ban, target.as_ref().map(member_role))?;
        repo::upsert_ban(&mut tx, id.0, user.0, actor.0, reason.as_str()).await?;
        if target.is_some() {
            repo::delete_member(&mut tx, id.0, user.0).await?;
        }
        let payload = Payload::MemberBanned(pb::MemberBanned {
            group_id: id.to_string(),
            user_id: user.to_string(),
            reason: reason.as_str().to_owned(),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await
    }

    pub async fn unban(&self, actor: UserId, id: GroupId, user: UserId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        permissions::check(role, Action::Unban, None)?;
        if !repo::delete_ban(&mut tx, id.0, user.0).await? {
            return Err(Error::NotFound("ban"));
        }
        let payload = Payload::MemberUnbanned(pb::MemberUnbanned {
            group_id: id.to_string(),
            user_id: user.to_string(),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await
    }

    /// Mutes `user` until `until`, or unmutes them when `None`.
    pub async fn mute(
        &self,
        actor: UserId,
        id: GroupId,
        user: UserId,
        until: Option<OffsetDateTime>,
    ) -> Result<MemberRow> {
        not_self(actor, user, "you cannot mute yourself")?;
        if until.is_some_and(|until| until <= OffsetDateTime::now_utc()) {
            return Err(Error::invalid("muted_until", "must be in the future"));
        }
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        let target = target(&mut tx, id, user).await?;
        permissions::check(role, Action::Mute, Some(member_role(&target)))?;
        let member = repo::set_muted(&mut tx, id.0, user.0, until).await?;
        let payload = Payload::MemberMuted(pb::MemberMuted {
            group_id: id.to_string(),
            user_id: user.to_string(),
            muted_until: until.map(crate::convert::timestamp),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await?;
        Ok(member)
    }

    pub async fn set_role(
        &self,
        actor: UserId,
        id: GroupId,
        user: UserId,
        new_role: Role,
    ) -> Result<MemberRow> {
        if new_role == Role::Owner {
            return Err(Error::invalid(
                "role",
                "ownership moves only by transferring it",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        let target = target(&mut tx, id, user).await?;
        let current = member_role(&target);
        if current == Role::Owner && actor == user {
            return Err(Error::conflict(
                "the group needs an owner: transfer ownership instead",
            ));
        }
        permissions::check_set_role(role, current, new_role)?;
        if current == new_role {
            return Ok(target);
        }
        let member = repo::set_role(&mut tx, id.0, user.0, new_role.as_str()).await?;
        let payload = Payload::MemberRoleChanged(pb::MemberRoleChanged {
            group_id: id.to_string(),
            user_id: user.to_string(),
            old_role: crate::convert::role(Some(current)) as i32,
            new_role: crate::convert::role(Some(new_role)) as i32,
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await?;
        Ok(member)
    }

    /// Makes `user` the owner; the previous owner becomes an admin.
    pub async fn transfer_ownership(
        &self,
        actor: UserId,
        id: GroupId,
        user: UserId,
    ) -> Result<MemberRow> {
        not_self(actor, user, "you already own this group")?;
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        permissions::check(role, Action::TransferOwnership, None)?;
        target(&mut tx, id, user).await?;
        // Demote first: at most one owner exists at any moment.
        repo::set_role(&mut tx, id.0, actor.0, Role::Admin.as_str()).await?;
        let member = repo::set_role(&mut tx, id.0, user.0, Role::Owner.as_str()).await?;
        let payload = Payload::OwnershipTransferred(pb::OwnershipTransferred {
            group_id: id.to_string(),
            previous_owner_id: actor.to_string(),
            new_owner_id: user.to_string(),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await?;
        tracing::info!(group_id = %id, "ownership transferred");
        Ok(member)
    }

    pub async fn list_members(
        &self,
        actor: UserId,
        id: GroupId,
        limit: PageSize,
        cursor: Option<Uuid>,
    ) -> Result<Page<MemberRow>> {
        let group = self.get(actor, id).await?;
        require_member(&group)?;
        let mut conn = self.pool.acquire().await?;
        let members = repo::list_members(&mut conn, id.0, cursor, limit.0 + 1).await?;
        Ok(paginate(members, limit, |member| {
            member.user_id.to_string()
        }))
    }
}

async fn joined(
    conn: &mut PgConnection,
    group: &GroupRow,
    actor: UserId,
    member: &MemberRow,
    invited_by: Option<UserId>,
) -> Result<()> {
    let payload = Payload::MemberJoined(pb::MemberJoined {
        group_id: group.id.to_string(),
        user_id: member.user_id.to_string(),
        role: crate::convert::role(Some(member_role(member))) as i32,
        invited_by: invited_by.map(|id| id.to_string()).unwrap_or_default(),
    });
    events::publish(conn, GroupId(group.id), actor, payload).await?;
    Ok(())
}
