//! Group rules: create, read, change, delete, list and search groups.

use crate::cache::AuthzCache;
use crate::domain::{Description, GroupId, GroupName, PageSize, UserId, Visibility};
use crate::error::{Error, Result};
use crate::events;
use crate::permissions::{self, Action, Role};
use crate::repo::{self, ChannelRow, GroupRow, NewChannel, NewGroup};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use messenger_proto::groups::v1 as pb;
use pb::groups_event::Payload;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
use uuid::Uuid;

/// The name of the channel every group starts with.
pub const DEFAULT_CHANNEL: &str = "general";

#[derive(Clone)]
pub struct Groups {
    pub pool: PgPool,
    pub cache: Arc<AuthzCache>,
}

pub struct NewGroupInput {
    pub name: GroupName,
    pub description: Description,
    pub visibility: Visibility,
    pub avatar_media_id: Option<Uuid>,
}

pub struct GroupUpdate {
    pub name: Option<GroupName>,
    pub description: Option<Description>,
    pub visibility: Option<Visibility>,
    pub avatar_media_id: Option<Option<Uuid>>,
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Whether `group` is visible to the user it was read for.
pub fn visible(group: &GroupRow) -> bool {
    group.my_role.is_some() || (group.kind == "group" && group.visibility == "public")
}

pub fn role_of(group: &GroupRow) -> Option<Role> {
    group.my_role.as_deref().and_then(Role::parse)
}

/// The actor's role, for actions only members take. Outsiders of private
/// groups learn nothing (404); of public ones, that they must join (403).
pub fn require_member(group: &GroupRow) -> Result<Role> {
    match role_of(group) {
        Some(role) => Ok(role),
        None if visible(group) => Err(Error::PermissionDenied(
            "you are not a member of this group".to_owned(),
        )),
        None => Err(Error::NotFound("group")),
    }
}

pub fn refuse_direct(group: &GroupRow) -> Result<()> {
    if group.kind == "direct" {
        return Err(Error::conflict(
            "direct conversations have no members to manage, channels or settings",
        ));
    }
    Ok(())
}

/// The group locked for a change, as the actor sees it (404 if they may not).
pub async fn lock_visible(
    conn: &mut PgConnection,
    actor: UserId,
    group: GroupId,
) -> Result<GroupRow> {
    let row = repo::lock_group(conn, actor.0, group.0)
        .await?
        .ok_or(Error::NotFound("group"))?;
    if !visible(&row) {
        return Err(Error::NotFound("group"));
    }
    Ok(row)
}

impl Groups {
    /// Commits a change to `group` and only then invalidates cached answers
    /// about it (see the cache module for why this order).
    pub async fn commit(&self, tx: Transaction<'static, Postgres>, group: GroupId) -> Result<()> {
        tx.commit().await?;
        self.cache.invalidate(group.0).await;
        Ok(())
    }

    pub async fn create(&self, actor: UserId, input: NewGroupInput) -> Result<GroupRow> {
        let id = GroupId(Uuid::now_v7());
        let mut tx = self.pool.begin().await?;
        repo::insert_group(
            &mut tx,
            NewGroup {
                id: id.0,
                kind: "group",
                name: input.name.as_str(),
                description: input.description.as_str(),
                avatar_media_id: input.avatar_media_id,
                visibility: input.visibility.as_str(),
                direct_key: None,
                created_by: actor.0,
            },
        )
        .await?;
        repo::insert_member(&mut tx, id.0, actor.0, Role::Owner.as_str()).await?;
        let channel = insert_default_channel(&mut tx, id, actor).await?;
        let group = repo::group(&mut tx, actor.0, id.0)
            .await?
            .ok_or(Error::NotFound("group"))?;
        events::publish(
            &mut tx,
            id,
            actor,
            Payload::GroupCreated(pb::GroupCreated {
                group: Some(pb::Group {
                    my_role: 0,
                    ..group.clone().into()
                }),
                default_channel: Some(channel.into()),
            }),
        )
        .await?;
        self.commit(tx, id).await?;
        tracing::info!(group_id = %id, "group created");
        Ok(group)
    }

    pub async fn get(&self, actor: UserId, id: GroupId) -> Result<GroupRow> {
        let mut conn = self.pool.acquire().await?;
        let group = repo::group(&mut conn, actor.0, id.0)
            .await?
            .ok_or(Error::NotFound("group"))?;
        if !visible(&group) {
            return Err(Error::NotFound("group"));
        }
        Ok(group)
    }

    pub async fn update(
        &self,
        actor: UserId,
        id: GroupId,
        update: GroupUpdate,
    ) -> Result<GroupRow> {
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        permissions::check(role, Action::UpdateGroup, None)?;
        let changes = repo::GroupChanges {
            name: update.name.as_ref().map(GroupName::as_str),
            description: update.description.as_ref().map(Description::as_str),
            visibility: update.visibility.map(Visibility::as_str),
            avatar_media_id: update.avatar_media_id,
        };
        repo::update_group(&mut tx, id.0, &changes).await?;
        let group = repo::group(&mut tx, actor.0, id.0)
            .await?
            .ok_or(Error::NotFound("group"))?;
        events::publish(
            &mut tx,
            id,
            actor,
            Payload::GroupUpdated(pb::GroupUpdated {
                group: Some(pb::Group {
                    my_role: 0,
                    ..group.clone().into()
                }),
            }),
        )
        .await?;
        self.commit(tx, id).await?;
        Ok(group)
    }

    pub async fn delete(&self, actor: UserId, id: GroupId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let group = lock_visible(&mut tx, actor, id).await?;
        let role = require_member(&group)?;
        refuse_direct(&group)?;
        permissions::check(role, Action::DeleteGroup, None)?;
        let member_ids = repo::member_ids(&mut tx, id.0).await?;
        repo::delete_group(&mut tx, id.0).await?;
        events::publish(
            &mut tx,
            id,
            actor,
            Payload::GroupDeleted(pb::GroupDeleted {
                group_id: id.to_string(),
                member_ids: member_ids.iter().map(Uuid::to_string).collect(),
            }),
        )
        .await?;
        self.commit(tx, id).await?;
        tracing::info!(group_id = %id, "group deleted");
        Ok(())
    }

    pub async fn list_mine(
        &self,
        actor: UserId,
        limit: PageSize,
        cursor: Option<Uuid>,
    ) -> Result<Page<GroupRow>> {
        let mut conn = self.pool.acquire().await?;
        let groups = repo::my_groups(&mut conn, actor.0, cursor, limit.0 + 1).await?;
        Ok(paginate(groups, limit, |group| group.id.to_string()))
    }

    pub async fn search_public(
        &self,
        actor: UserId,
        query: &str,
        limit: PageSize,
        cursor: &str,
    ) -> Result<Page<GroupRow>> {
        let needle = query.trim().to_lowercase();
        let chars = needle.chars().count();
        if chars == 0 || chars > 100 {
            return Err(Error::invalid("query", "must be 1 to 100 characters long"));
        }
        // Group names hold none, and Postgres refuses NUL in text outright.
        if needle.chars().any(char::is_control) {
            return Err(Error::invalid(
                "query",
                "must not contain control characters",
            ));
        }
        let after = decode_name_cursor(cursor)?;
        let after = after.as_ref().map(|(name, id)| (name.as_str(), *id));
        // LIKE metacharacters in the query are literal text.
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut conn = self.pool.acquire().await?;
        // Trigrams need three characters; shorter queries match name prefixes.
        let groups = if chars < 3 {
            repo::public_groups_by_prefix(&mut conn, actor.0, &escaped, after, limit.0 + 1).await?
        } else {
            repo::public_groups_by_substring(&mut conn, actor.0, &escaped, after, limit.0 + 1)
                .await?
        };
        Ok(paginate(groups, limit, |group| {
            encode_name_cursor(&group.name, group.id)
        }))
    }
}

pub async fn insert_default_channel(
    conn: &mut PgConnection,
    group: GroupId,
    actor: UserId,
) -> Result<ChannelRow> {
    Ok(repo::insert_channel(
        conn,
        NewChannel {
            id: Uuid::now_v7(),
            group_id: group.0,
            name: DEFAULT_CHANNEL,
            topic: "",
            visibility: "public",
            broadcast: false,
            is_default: true,
            created_by: actor.0,
        },
    )
    .await?)
}

/// Cuts a page fetched with one extra row; the extra row's presence means
/// there is a next page, continuing after the last row kept.
pub fn paginate<T>(mut rows: Vec<T>, limit: PageSize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit.0).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// Where a page of groups ordered by name ended: the (lower-cased) name and
/// id of its last group.
pub(crate) fn encode_name_cursor(name: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\n{}", name.to_lowercase(), id))
}

pub(crate) fn decode_name_cursor(raw: &str) -> Result<Option<(String, Uuid)>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("cursor", "is not a cursor this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (name, id) = text.rsplit_once('\n').ok_or_else(invalid)?;
    // The name of the last group shown: group names hold no control
    // characters (and Postgres refuses NUL in text outright).
    if name.chars().any(char::is_control) {
        return Err(invalid());
    }
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(Some((name.to_owned(), id)))
}
