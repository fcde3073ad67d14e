//! Channels and channel members.

use sqlx::PgConnection;
use uuid::Uuid;

pub use super::groups::{ChannelMemberRow, ChannelRow};

pub struct NewChannel<'a> {
    pub id: Uuid,
    pub group_id: Uuid,
    pub name: &'a str,
    pub topic: &'a str,
    pub visibility: &'a str,
    pub broadcast: bool,
    pub is_default: bool,
    pub created_by: Uuid,
}

pub async fn insert_channel(
    conn: &mut PgConnection,
    channel: NewChannel<'_>,
) -> sqlx::Result<ChannelRow> {
    sqlx::query_as!(
        ChannelRow,
        "INSERT INTO channels (id, group_id, name, topic, visibility, broadcast, is_default, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         RETURNING id, group_id, name, topic, visibility, broadcast, is_default, created_by, created_at, updated_at",
        channel.id,
        channel.group_id,
        channel.name,
        channel.topic,
        channel.visibility,
        channel.broadcast,
        channel.is_default,
        channel.created_by,
    )
    .fetch_one(conn)
    .await
}

pub async fn channel(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<ChannelRow>> {
    sqlx::query_as!(
        ChannelRow,
        "SELECT id, group_id, name, topic, visibility, broadcast, is_default, created_by, created_at, updated_at \
         FROM channels WHERE id = $1",
        id,
    )
    .fetch_optional(conn)
    .await
}

/// The channels of a group `user` may see: public ones, and private ones
/// they are a member of (all of them with `all_private`, for admins).
pub async fn visible_channels(
    conn: &mut PgConnection,
    group: Uuid,
    user: Uuid,
    all_private: bool,
) -> sqlx::Result<Vec<ChannelRow>> {
    sqlx::query_as!(
        ChannelRow,
        "SELECT c.id, c.group_id, c.name, c.topic, c.visibility, c.broadcast, c.is_default, \
                c.created_by, c.created_at, c.updated_at \
         FROM channels c \
         WHERE c.group_id = $1 \
           AND (c.visibility = 'public' OR $3 OR EXISTS \
                (SELECT 1 FROM channel_members cm WHERE cm.channel_id = c.id AND cm.user_id = $2)) \
         ORDER BY c.is_default DESC, c.created_at, c.id",
        group,
        user,
        all_private,
    )
    .fetch_all(conn)
    .await
}

pub async fn channel_count(conn: &mut PgConnection, group: Uuid) -> sqlx::Result<i64> {
    let count = sqlx::query_scalar!(
        "SELECT count(*) AS \"count!\" FROM channels WHERE group_id = $1",
        group
    )
    .fetch_one(conn)
    .await?;
    Ok(count)
}

pub struct ChannelChanges<'a> {
    pub name: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub broadcast: Option<bool>,
}

pub async fn update_channel(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &ChannelChanges<'_>,
) -> sqlx::Result<ChannelRow> {
    sqlx::query_as!(
        ChannelRow,
        "UPDATE channels SET name = COALESCE($2, name), topic = COALESCE($3, topic), \
                broadcast = COALESCE($4, broadcast), updated_at = now() \
         WHERE id = $1 \
         RETURNING id, group_id, name, topic, visibility, broadcast, is_default, created_by, created_at, updated_at",
        id,
        changes.name,
        changes.topic,
        changes.broadcast,
    )
    .fetch_one(conn)
    .await
}

pub async fn delete_channel(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM channels WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn is_channel_member(
    conn: &mut PgConnection,
    channel: Uuid,
    user: Uuid,
) -> sqlx::Result<bool> {
    let member = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM channel_members WHERE channel_id = $1 AND user_id = $2) AS \"member!\"",
        channel,
        user,
    )
    .fetch_one(conn)
    .await?;
    Ok(member)
}

/// Adds the channel member; `None` if they already were one.
pub async fn insert_channel_member(
    conn: &mut PgConnection,
    channel: Uuid,
    group: Uuid,
    user: Uuid,
) -> sqlx::Result<Option<ChannelMemberRow>> {
    sqlx::query_as!(
        ChannelMemberRow,
        "INSERT INTO channel_members (channel_id, group_id, user_id) VALUES ($1, $2, $3) \
         ON CONFLICT (channel_id, user_id) DO NOTHING \
         RETURNING channel_id, user_id, added_at",
        channel,
        group,
        user,
    )
    .fetch_optional(conn)
    .await
}

pub async fn channel_member(
    conn: &mut PgConnection,
    channel: Uuid,
    user: Uuid,
) -> sqlx::Result<Option<ChannelMemberRow>> {
    sqlx::query_as!(
        ChannelMemberRow,
        "SELECT channel_id, user_id, added_at FROM channel_members WHERE channel_id = $1 AND user_id = $2",
        channel,
        user,
    )
    .fetch_optional(conn)
    .await
}

pub async fn delete_channel_member(
    conn: &mut PgConnection,
    channel: Uuid,
    user: Uuid,
) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2",
        channel,
        user,
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

pub async fn list_channel_members(
    conn: &mut PgConnection,
    channel: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ChannelMemberRow>> {
    sqlx::query_as!(
        ChannelMemberRow,
        "SELECT channel_id, user_id, added_at FROM channel_members \
         WHERE channel_id = $1 AND ($2::uuid IS NULL OR user_id > $2) ORDER BY user_id LIMIT $3",
        channel,
        after,
        limit,
    )
    .fetch_all(conn)
    .await
}
