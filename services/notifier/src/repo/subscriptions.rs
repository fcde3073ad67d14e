//! Web Push subscriptions, one per device.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub struct SubscriptionRow {
    pub id: Uuid,
    pub endpoint: String,
    pub device_name: String,
    pub created_at: OffsetDateTime,
    pub last_delivered_at: Option<OffsetDateTime>,
}

pub struct NewSubscription<'a> {
    pub user: Uuid,
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
    pub device_name: &'a str,
}

/// Serializes one user's registrations until the transaction ends, so
/// parallel ones cannot pass the limit together.
pub async fn lock_user(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 27))",
        user.to_string()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Drops the pushes still queued for a device that changed hands: they
/// are the previous owner's messages.
pub async fn drop_queued(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM deliveries WHERE subscription_id = $1 AND state = 'sending'",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Subscriptions `user` holds other than `endpoint` (the limit counts
/// these: registering one again is never refused).
pub async fn count_others(
    conn: &mut PgConnection,
    user: Uuid,
    endpoint: &str,
) -> sqlx::Result<i64> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM subscriptions WHERE user_id = $1 AND endpoint <> $2"#,
        user,
        endpoint
    )
    .fetch_one(conn)
    .await?;
    Ok(count)
}

/// Registers the endpoint for `new.user`, replacing whatever it was (keys,
/// name, owner). Returns the row and whether it changed owner.
pub async fn upsert(
    conn: &mut PgConnection,
    new: &NewSubscription<'_>,
) -> sqlx::Result<(SubscriptionRow, bool)> {
    let row = sqlx::query!(
        r#"WITH before AS (SELECT user_id FROM subscriptions WHERE endpoint = $2)
           INSERT INTO subscriptions AS s (id, user_id, endpoint, p256dh, auth, device_name)
           VALUES ($1, $3, $2, $4, $5, $6)
           ON CONFLICT (endpoint) DO UPDATE
               SET user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh,
                   auth = EXCLUDED.auth, device_name = EXCLUDED.device_name
           RETURNING s.id, s.endpoint, s.device_name, s.created_at, s.last_delivered_at,
                     (SELECT user_id FROM before) AS previous_owner"#,
        Uuid::now_v7(),
        new.endpoint,
        new.user,
        new.p256dh,
        new.auth,
        new.device_name
    )
    .fetch_one(conn)
    .await?;
    let moved = row.previous_owner.is_some_and(|owner| owner != new.user);
    Ok((
        SubscriptionRow {
            id: row.id,
            endpoint: row.endpoint,
            device_name: row.device_name,
            created_at: row.created_at,
            last_delivered_at: row.last_delivered_at,
        },
        moved,
    ))
}

pub async fn list(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<Vec<SubscriptionRow>> {
    sqlx::query_as!(
        SubscriptionRow,
        "SELECT id, endpoint, device_name, created_at, last_delivered_at
         FROM subscriptions WHERE user_id = $1 ORDER BY created_at, id",
        user
    )
    .fetch_all(conn)
    .await
}

/// Deletes one of `user`'s subscriptions; false when it is not theirs.
pub async fn delete(conn: &mut PgConnection, user: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM subscriptions WHERE id = $1 AND user_id = $2",
        id,
        user
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts a push the device's push service refused for good; returns the
/// failures in a row (0 when the subscription is gone).
pub async fn note_failure(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<i32> {
    let failures = sqlx::query_scalar!(
        "UPDATE subscriptions SET failures = failures + 1 WHERE id = $1 RETURNING failures",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(failures.unwrap_or(0))
}

/// Deletes a subscription the push service says is gone; returns its
/// owner when it was still there.
pub async fn expire(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "DELETE FROM subscriptions WHERE id = $1 RETURNING user_id",
        id
    )
    .fetch_optional(conn)
    .await
}

/// The user's devices a push goes to.
pub async fn devices(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM subscriptions WHERE user_id = $1", user)
        .fetch_all(conn)
        .await
}
