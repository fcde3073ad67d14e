//! Pushes to devices: one row per (device, message), leased while it is
//! sent, kept after as the record of what was sent. Every outcome is
//! written only by the holder of the current lease (`attempts` fences it),
//! so a replica whose lease ran out cannot overwrite what another did.

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
    pub notification_ids: &'a [Uuid],
    pub topic: &'a str,
    pub urgency: &'a str,
    pub payload: &'a [u8],
}

/// Queues a push, and retires the device's unsent pushes about older
/// messages of the conversation: they share its topic, and a late retry
/// must not replace the newer notification. A push for the same message
/// and device already there (a replay) is left as it is.
pub async fn insert(conn: &mut PgConnection, new: &NewDelivery<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH older AS (
             UPDATE deliveries SET state = 'superseded', payload = NULL, finished_at = now()
             WHERE subscription_id = $2 AND channel_id = $4 AND state = 'sending' AND seq < $6)
         INSERT INTO deliveries (id, subscription_id, user_id, channel_id, message_id, seq,
                                 notification_ids, topic, urgency, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (subscription_id, message_id) DO NOTHING",
        Uuid::now_v7(),
        new.subscription_id,
        new.user_id,
        new.channel_id,
        new.message_id,
        new.seq,
        new.notification_ids,
        new.topic,
        new.urgency,
        new.payload
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A push being sent.
pub struct Leased {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    /// How far the user has read the conversation now.
    pub read_up_to: i64,
    pub notification_ids: Vec<Uuid>,
    pub topic: String,
    pub urgency: String,
    pub payload: Option<Vec<u8>>,
    /// This lease's attempt number: the fence of its outcome.
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
        r#"UPDATE deliveries d
           SET attempts = d.attempts + 1,
               next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0)
           FROM subscriptions s
           WHERE s.id = d.subscription_id AND d.id IN (
               SELECT id FROM deliveries
               WHERE state = 'sending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING d.id, d.subscription_id, d.user_id, d.channel_id, d.message_id, d.seq,
                     COALESCE((SELECT r.seq FROM read_positions r
                               WHERE r.user_id = d.user_id AND r.channel_id = d.channel_id), 0)
                         AS "read_up_to!",
                     d.notification_ids, d.topic, d.urgency, d.payload, d.attempts,
                     s.endpoint, s.p256dh, s.auth"#,
        limit,
        lease_ms
    )
    .fetch_all(conn)
    .await
}

/// The push service has it: the plaintext is dropped. False when the
/// lease was lost meanwhile (another replica owns the push now).
pub async fn delivered(conn: &mut PgConnection, push: &Leased) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE deliveries SET state = 'delivered', payload = NULL, finished_at = now(),
                               last_error = NULL
         WHERE id = $1 AND state = 'sending' AND attempts = $2",
        push.id,
        push.attempts
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE subscriptions SET last_delivered_at = now(), failures = 0 WHERE id = $1",
        push.subscription_id
    )
    .execute(conn)
    .await?;
    Ok(true)
}

/// Ends a push unsent: `failed` (refused, retries used up) or `superseded`
/// (read meanwhile). False when the lease was lost meanwhile.
pub async fn finish(
    conn: &mut PgConnection,
    push: &Leased,
    state: &str,
    reason: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE deliveries SET state = $3, payload = NULL, finished_at = now(), last_error = $4
         WHERE id = $1 AND state = 'sending' AND attempts = $2",
        push.id,
        push.attempts,
        state,
        reason
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn retry_later(
    conn: &mut PgConnection,
    push: &Leased,
    wait: Duration,
    reason: &str,
) -> sqlx::Result<()> {
    let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    sqlx::query!(
        "UPDATE deliveries
         SET next_attempt_at = now() + make_interval(secs => $3::bigint / 1000.0), last_error = $4
         WHERE id = $1 AND state = 'sending' AND attempts = $2",
        push.id,
        push.attempts,
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
