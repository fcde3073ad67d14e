//! Notifications: waiting out their grace delay, then kept as decided.

use sqlx::PgConnection;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub struct PendingRow {
    pub notification_id: Uuid,
    pub user_id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    pub kind: String,
    pub actor_id: Uuid,
    pub excerpt: String,
    pub created_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
}

/// Queues a notification; true when it is new. A replayed one finds its
/// row (waiting or decided) and changes nothing.
pub async fn enqueue(conn: &mut PgConnection, row: &PendingRow) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO pending (notification_id, user_id, channel_id, message_id, seq, kind,
                              actor_id, excerpt, created_at, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (notification_id) DO NOTHING",
        row.notification_id,
        row.user_id,
        row.channel_id,
        row.message_id,
        row.seq,
        row.kind,
        row.actor_id,
        row.excerpt,
        row.created_at,
        row.due_at
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes up to `limit` due notifications, locked for this transaction
/// (other replicas skip them).
pub async fn take_due(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<PendingRow>> {
    sqlx::query_as!(
        PendingRow,
        "SELECT notification_id, user_id, channel_id, message_id, seq, kind, actor_id, excerpt,
                created_at, due_at
         FROM pending WHERE decided_at IS NULL AND due_at <= now()
         ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit
    )
    .fetch_all(conn)
    .await
}

/// Marks notifications decided.
pub async fn settle(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE pending SET decided_at = now() WHERE notification_id = ANY($1)",
        ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts notifications off by `wait` (their decision failed).
pub async fn postpone(conn: &mut PgConnection, ids: &[Uuid], wait: Duration) -> sqlx::Result<()> {
    let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    sqlx::query!(
        "UPDATE pending SET due_at = now() + make_interval(secs => $2::bigint / 1000.0)
         WHERE notification_id = ANY($1)",
        ids,
        wait_ms
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Notifications of the conversation the user has not read: what a push
/// about it counts.
pub async fn unread(
    conn: &mut PgConnection,
    user: Uuid,
    channel: Uuid,
    read_up_to: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM pending
           WHERE user_id = $1 AND channel_id = $2 AND seq > $3"#,
        user,
        channel,
        read_up_to
    )
    .fetch_one(conn)
    .await
}

/// When the next notification comes due, if any waits.
pub async fn next_due(conn: &mut PgConnection) -> sqlx::Result<Option<OffsetDateTime>> {
    sqlx::query_scalar!("SELECT min(due_at) FROM pending WHERE decided_at IS NULL")
        .fetch_one(conn)
        .await
}

/// Forgets notifications decided before `older_than`.
pub async fn forget_decided(
    conn: &mut PgConnection,
    older_than: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM pending WHERE decided_at < $1", older_than)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
