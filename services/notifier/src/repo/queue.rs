//! Notifications waiting out their grace delay.

use sqlx::PgConnection;
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
    pub due_at: OffsetDateTime,
}

/// Queues a notification; true when it is new. A replayed one is ignored,
/// also once decided (`decided` remembers it).
pub async fn enqueue(conn: &mut PgConnection, row: &PendingRow) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO pending
             (notification_id, user_id, channel_id, message_id, seq, kind, actor_id, excerpt, due_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
         WHERE NOT EXISTS (SELECT 1 FROM decided WHERE notification_id = $1)
         ON CONFLICT (notification_id) DO NOTHING",
        row.notification_id,
        row.user_id,
        row.channel_id,
        row.message_id,
        row.seq,
        row.kind,
        row.actor_id,
        row.excerpt,
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
        "SELECT notification_id, user_id, channel_id, message_id, seq, kind, actor_id, excerpt, due_at
         FROM pending WHERE due_at <= now()
         ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit
    )
    .fetch_all(conn)
    .await
}

/// Removes decided notifications and remembers them, so a replay of their
/// events (a consumer restarting from older offsets) queues nothing.
pub async fn settle(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH gone AS (DELETE FROM pending WHERE notification_id = ANY($1) RETURNING notification_id)
         INSERT INTO decided (notification_id) SELECT notification_id FROM gone
         ON CONFLICT DO NOTHING",
        ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// When the next notification comes due, if any waits.
pub async fn next_due(conn: &mut PgConnection) -> sqlx::Result<Option<OffsetDateTime>> {
    sqlx::query_scalar!("SELECT min(due_at) FROM pending")
        .fetch_one(conn)
        .await
}

/// Forgets decided notifications older than `older_than` (the consumer's
/// replays never reach back that far).
pub async fn forget_decided(
    conn: &mut PgConnection,
    older_than: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM decided WHERE decided_at < $1", older_than)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
