//! Notifications: mentions, replies and direct messages.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct NotificationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub group_id: Uuid,
    pub seq: i64,
    pub actor_id: Uuid,
    pub excerpt: String,
    pub created_at: OffsetDateTime,
    pub read_at: Option<OffsetDateTime>,
}

pub struct NewNotifications<'a> {
    pub ids: &'a [Uuid],
    pub users: &'a [Uuid],
    pub kinds: &'a [String],
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub group_id: Uuid,
    pub seq: i64,
    pub actor_id: Uuid,
    pub excerpt: &'a str,
    pub created_at: OffsetDateTime,
}

pub async fn insert(
    conn: &mut PgConnection,
    n: NewNotifications<'_>,
) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as!(
        NotificationRow,
        "INSERT INTO notifications (id, user_id, kind, message_id, channel_id, group_id, seq, \
                                    actor_id, excerpt, created_at) \
         SELECT t.id, t.user_id, t.kind, $4, $5, $6, $7, $8, $9, $10 \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(id, user_id, kind) \
         ON CONFLICT (user_id, message_id) DO NOTHING \
         RETURNING id, user_id, kind, message_id, channel_id, group_id, seq, actor_id, excerpt, \
                   created_at, read_at",
        n.ids,
        n.users,
        n.kinds,
        n.message_id,
        n.channel_id,
        n.group_id,
        n.seq,
        n.actor_id,
        n.excerpt,
        n.created_at,
    )
    .fetch_all(conn)
    .await
}

/// The user's notifications in `channels`, newest first, older than
/// `before` when given.
pub async fn page(
    conn: &mut PgConnection,
    user: Uuid,
    channels: &[Uuid],
    before: Option<Uuid>,
    unread_only: bool,
    limit: i64,
) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as!(
        NotificationRow,
        "SELECT id, user_id, kind, message_id, channel_id, group_id, seq, actor_id, excerpt, \
                created_at, read_at \
         FROM notifications \
         WHERE user_id = $1 AND channel_id = ANY($2) \
           AND ($3::uuid IS NULL OR id < $3) AND (NOT $4 OR read_at IS NULL) \
         ORDER BY id DESC LIMIT $5",
        user,
        channels,
        before,
        unread_only,
        limit,
    )
    .fetch_all(conn)
    .await
}

pub async fn unread_total(
    conn: &mut PgConnection,
    user: Uuid,
    channels: &[Uuid],
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM notifications
           WHERE user_id = $1 AND channel_id = ANY($2) AND read_at IS NULL"#,
        user,
        channels,
    )
    .fetch_one(conn)
    .await
}

/// Marks the given notifications (all of them when `ids` is empty) read.
pub async fn mark_read(conn: &mut PgConnection, user: Uuid, ids: &[Uuid]) -> sqlx::Result<u64> {
    let marked = sqlx::query!(
        "UPDATE notifications SET read_at = now() \
         WHERE user_id = $1 AND read_at IS NULL AND (cardinality($2::uuid[]) = 0 OR id = ANY($2))",
        user,
        ids,
    )
    .execute(conn)
    .await?;
    Ok(marked.rows_affected())
}

/// Reading a channel up to `seq` reads its notifications up to there too.
pub async fn mark_read_up_to(
    conn: &mut PgConnection,
    user: Uuid,
    channel: Uuid,
    seq: i64,
) -> sqlx::Result<u64> {
    let marked = sqlx::query!(
        "UPDATE notifications SET read_at = now() \
         WHERE user_id = $1 AND channel_id = $2 AND seq <= $3 AND read_at IS NULL",
        user,
        channel,
        seq,
    )
    .execute(conn)
    .await?;
    Ok(marked.rows_affected())
}
