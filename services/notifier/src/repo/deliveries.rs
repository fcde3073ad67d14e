//! Pushes to devices: one row per (message, device), leased while it is
//! sent, kept after as the record of what was sent.

use sqlx::PgConnection;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub struct NewDelivery<'a> {
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    pub unread_count: i32,
    pub notification_ids: &'a [Uuid],
    pub topic: &'a str,
    pub urgency: &'a str,
    pub payload: &'a [u8],
}

/// Queues a push; one for the same message and device exists already
/// (a replay) leaves it as it is.
pub async fn insert(conn: &mut PgConnection, new: &NewDelivery<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO deliveries (id, subscription_id, user_id, channel_id, message_id, seq,
                                 unread_count, notification_ids, topic, urgency, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (message_id, subscription_id) DO NOTHING",
        Uuid::now_v7(),
        new.subscription_id,
        new.user_id,
        new.channel_id,
        new.message_id,
        new.seq,
        new.unread_count,
        new.notification_ids,
        new.topic,
        new.urgency,
        new.payload
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The unread count of the newest push about this conversation that the
/// user has not read past: a new push adds to it.
pub async fn unread_shown(
    conn: &mut PgConnection,
    user: Uuid,
    channel: Uuid,
    read_up_to: i64,
) -> sqlx::Result<i32> {
    let shown = sqlx::query_scalar!(
        "SELECT unread_count FROM deliveries
         WHERE user_id = $1 AND channel_id = $2 AND seq > $3 AND state <> 'failed'
         ORDER BY created_at DESC LIMIT 1",
        user,
        channel,
        read_up_to
    )
    .fetch_optional(conn)
    .await?;
    Ok(shown.unwrap_or(0))
}

/// A push being sent.
pub struct Leased {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub notification_ids: Vec<Uuid>,
    pub topic: String,
    pub urgency: String,
    pub payload: Option<Vec<u8>>,
    pub attempts: i32,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// Takes up to `limit` pushes due now and leases them for `lease`: a
/// replica that dies while sending leaves them to be sent again after it,
/// under the same topic (the device shows one notification).
pub async fn lease_due(
    conn: &mut PgConnection,
    limit: i64,
    lease: Duration,
) -> sqlx::Result<Vec<Leased>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    sqlx::query_as!(
        Leased,
        "UPDATE deliveries d
         SET attempts = d.attempts + 1,
             next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0)
         FROM subscriptions s
         WHERE s.id = d.subscription_id AND d.id IN (
             SELECT id FROM deliveries
             WHERE state = 'sending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING d.id, d.subscription_id, d.user_id, d.channel_id, d.message_id,
                   d.notification_ids, d.topic, d.urgency, d.payload, d.attempts,
                   s.endpoint, s.p256dh, s.auth",
        limit,
        lease_ms
    )
    .fetch_all(conn)
    .await
}

/// The push service has it: the plaintext is dropped.
pub async fn delivered(conn: &mut PgConnection, id: Uuid, subscription: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH done AS (
             UPDATE deliveries SET state = 'delivered', payload = NULL, finished_at = now(),
                                   last_error = NULL
             WHERE id = $1)
         UPDATE subscriptions SET last_delivered_at = now() WHERE id = $2",
        id,
        subscription
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn failed(conn: &mut PgConnection, id: Uuid, reason: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE deliveries SET state = 'failed', payload = NULL, finished_at = now(), last_error = $2
         WHERE id = $1",
        id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn retry_later(
    conn: &mut PgConnection,
    id: Uuid,
    wait: Duration,
    reason: &str,
) -> sqlx::Result<()> {
    let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    sqlx::query!(
        "UPDATE deliveries
         SET next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0), last_error = $3
         WHERE id = $1",
        id,
        wait_ms,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes finished deliveries older than `older_than`.
pub async fn purge_finished(
    conn: &mut PgConnection,
    older_than: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "DELETE FROM deliveries WHERE state <> 'sending' AND finished_at < $1",
        older_than
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
