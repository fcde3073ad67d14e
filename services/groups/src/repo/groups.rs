//! Groups, members and bans.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// A group as seen by one user (`my_role` is theirs, `None` if not a member).
#[derive(Clone, Debug)]
pub struct GroupRow {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub description: String,
    pub avatar_media_id: Option<Uuid>,
    pub visibility: String,
    pub created_by: Uuid,
    pub member_count: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub default_channel_id: Option<Uuid>,
    pub my_role: Option<String>,
}

#[derive(Clone, Debug)]
pub struct MemberRow {
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub joined_at: OffsetDateTime,
    pub muted_until: Option<OffsetDateTime>,
}

#[derive(Clone, Debug)]
pub struct ChannelRow {
    pub id: Uuid,
    pub group_id: Uuid,
    pub name: String,
    pub topic: String,
    pub visibility: String,
    pub broadcast: bool,
    pub is_default: bool,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub struct ChannelMemberRow {
    pub channel_id: Uuid,
    pub user_id: Uuid,
    pub added_at: OffsetDateTime,
}

/// `SELECT <group as seen by $1> FROM groups g WHERE ...`.
macro_rules! select_groups {
    ($rest:literal, $($arg:expr),+ $(,)?) => {
        sqlx::query_as!(
            GroupRow,
            r#"SELECT g.id, g.kind, g.name, g.description, g.avatar_media_id, g.visibility,
                      g.created_by, g.member_count, g.created_at, g.updated_at,
                      (SELECT c.id FROM channels c WHERE c.group_id = g.id AND c.is_default)
                          AS "default_channel_id?",
                      (SELECT m.role FROM group_members m WHERE m.group_id = g.id AND m.user_id = $1)
                          AS "my_role?"
               FROM groups g "# + $rest,
            $($arg),+
        )
    };
}

pub async fn group(
    conn: &mut PgConnection,
    actor: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<GroupRow>> {
    select_groups!("WHERE g.id = $2", actor, id)
        .fetch_optional(conn)
        .await
}

/// The group, locked for this transaction: every change to a group's
/// membership or settings goes through this lock, so concurrent changes
/// apply one after the other and each sees the other's result.
pub async fn lock_group(
    conn: &mut PgConnection,
    actor: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<GroupRow>> {
    select_groups!("WHERE g.id = $2 FOR NO KEY UPDATE OF g", actor, id)
        .fetch_optional(conn)
        .await
}

pub async fn my_groups(
    conn: &mut PgConnection,
    actor: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<GroupRow>> {
    select_groups!(
        "JOIN group_members mine ON mine.group_id = g.id AND mine.user_id = $1 \
         WHERE ($2::uuid IS NULL OR g.id > $2) ORDER BY g.id LIMIT $3",
        actor,
        after,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Public groups whose lower-cased name starts with `prefix`, in name order
/// after `(after_name, after_id)`.
pub async fn public_groups_by_prefix(
    conn: &mut PgConnection,
    actor: Uuid,
    prefix: &str,
    after: Option<(&str, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<GroupRow>> {
    let (after_name, after_id) = after.unzip();
    select_groups!(
        r#"WHERE g.visibility = 'public'
             AND lower(g.name) COLLATE "C" LIKE $2 || '%'
             AND ($3::text IS NULL OR (lower(g.name) COLLATE "C", g.id) > ($3::text COLLATE "C", $4::uuid))
           ORDER BY lower(g.name) COLLATE "C", g.id LIMIT $5"#,
        actor,
        prefix,
        after_name,
        after_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Public groups whose lower-cased name contains `needle` (trigram index).
pub async fn public_groups_by_substring(
    conn: &mut PgConnection,
    actor: Uuid,
    needle: &str,
    after: Option<(&str, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<GroupRow>> {
    let (after_name, after_id) = after.unzip();
    select_groups!(
        r#"WHERE g.visibility = 'public'
             AND lower(g.name) LIKE '%' || $2 || '%'
             AND ($3::text IS NULL OR (lower(g.name) COLLATE "C", g.id) > ($3::text COLLATE "C", $4::uuid))
           ORDER BY lower(g.name) COLLATE "C", g.id LIMIT $5"#,
        actor,
        needle,
        after_name,
        after_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

pub struct NewGroup<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub avatar_media_id: Option<Uuid>,
    pub visibility: &'a str,
    pub direct_key: Option<&'a str>,
    pub created_by: Uuid,
}

/// Inserts the group; `false` when a direct conversation with the same
/// participants already exists.
pub async fn insert_group(conn: &mut PgConnection, group: NewGroup<'_>) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO groups (id, kind, name, description, avatar_media_id, visibility, direct_key, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (direct_key) DO NOTHING",
        group.id,
        group.kind,
        group.name,
        group.description,
        group.avatar_media_id,
        group.visibility,
        group.direct_key,
        group.created_by,
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn direct_by_key(conn: &mut PgConnection, key: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM groups WHERE direct_key = $1", key)
        .fetch_optional(conn)
        .await
}

pub struct GroupChanges<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub visibility: Option<&'a str>,
    /// `Some(None)` clears the avatar.
    pub avatar_media_id: Option<Option<Uuid>>,
}

pub async fn update_group(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &GroupChanges<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE groups SET name = COALESCE($2, name), description = COALESCE($3, description), \
                visibility = COALESCE($4, visibility), \
                avatar_media_id = CASE WHEN $5 THEN $6 ELSE avatar_media_id END, \
                updated_at = now() \
         WHERE id = $1",
        id,
        changes.name,
        changes.description,
        changes.visibility,
        changes.avatar_media_id.is_some(),
        changes.avatar_media_id.flatten(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_group(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM groups WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn member(
    conn: &mut PgConnection,
    group: Uuid,
    user: Uuid,
) -> sqlx::Result<Option<MemberRow>> {
    sqlx::query_as!(
        MemberRow,
        "SELECT group_id, user_id, role, joined_at, muted_until FROM group_members \
         WHERE group_id = $1 AND user_id = $2",
        group,
        user,
    )
    .fetch_optional(conn)
    .await
}

pub async fn insert_member(
    conn: &mut PgConnection,
    group: Uuid,
    user: Uuid,
    role: &str,
) -> sqlx::Result<MemberRow> {
    let member = sqlx::query_as!(
        MemberRow,
        "INSERT INTO group_members (group_id, user_id, role) VALUES ($1, $2, $3) \
         RETURNING group_id, user_id, role, joined_at, muted_until",
        group,
        user,
        role,
    )
    .fetch_one(&mut *conn)
    .await?;
    adjust_member_count(conn, group, 1).await?;
    Ok(member)
}

/// Removes the member (and their private channel memberships); `false` if
/// they were not one.
pub async fn delete_member(conn: &mut PgConnection, group: Uuid, user: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
        group,
        user,
    )
    .execute(&mut *conn)
    .await?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    adjust_member_count(conn, group, -1).await?;
    Ok(true)
}

async fn adjust_member_count(conn: &mut PgConnection, group: Uuid, by: i32) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE groups SET member_count = member_count + $2 WHERE id = $1",
        group,
        by,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_role(
    conn: &mut PgConnection,
    group: Uuid,
    user: Uuid,
    role: &str,
) -> sqlx::Result<MemberRow> {
    sqlx::query_as!(
        MemberRow,
        "UPDATE group_members SET role = $3 WHERE group_id = $1 AND user_id = $2 \
         RETURNING group_id, user_id, role, joined_at, muted_until",
        group,
        user,
        role,
    )
    .fetch_one(conn)
    .await
}

pub async fn set_muted(
    conn: &mut PgConnection,
    group: Uuid,
    user: Uuid,
    until: Option<OffsetDateTime>,
) -> sqlx::Result<MemberRow> {
    sqlx::query_as!(
        MemberRow,
        "UPDATE group_members SET muted_until = $3 WHERE group_id = $1 AND user_id = $2 \
         RETURNING group_id, user_id, role, joined_at, muted_until",
        group,
        user,
        until,
    )
    .fetch_one(conn)
    .await
}

pub async fn member_ids(conn: &mut PgConnection, group: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id",
        group
    )
    .fetch_all(conn)
    .await
}

pub async fn list_members(
    conn: &mut PgConnection,
    group: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<MemberRow>> {
    sqlx::query_as!(
        MemberRow,
        "SELECT group_id, user_id, role, joined_at, muted_until FROM group_members \
         WHERE group_id = $1 AND ($2::uuid IS NULL OR user_id > $2) ORDER BY user_id LIMIT $3",
        group,
        after,
        limit,
    )
    .fetch_all(conn)
    .await
}

pub async fn is_banned(conn: &mut PgConnection, group: Uuid, user: Uuid) -> sqlx::Result<bool> {
    let banned = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM group_bans WHERE group_id = $1 AND user_id = $2) AS \"banned!\"",
        group,
        user,
    )
    .fetch_one(conn)
    .await?;
    Ok(banned)
}

pub async fn upsert_ban(
    conn: &mut PgConnection,
    group: Uuid,
    user: Uuid,
    by: Uuid,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO group_bans (group_id, user_id, banned_by, reason) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_id, user_id) DO UPDATE SET banned_by = $3, reason = $4",
        group,
        user,
        by,
        reason,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_ban(conn: &mut PgConnection, group: Uuid, user: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM group_bans WHERE group_id = $1 AND user_id = $2",
        group,
        user,
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected() == 1)
}
