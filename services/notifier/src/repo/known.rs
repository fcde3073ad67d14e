//! What the notifier learns from the other services' events: presence,
//! read positions and names. Every write keeps the newest fact, so a
//! replayed or reordered record changes nothing.

use sqlx::PgConnection;
use uuid::Uuid;

pub async fn record_presence(
    conn: &mut PgConnection,
    user: Uuid,
    status: &str,
    sequence: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO presence (user_id, status, sequence) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status, sequence = EXCLUDED.sequence
         WHERE presence.sequence < EXCLUDED.sequence",
        user,
        status,
        sequence
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_read(
    conn: &mut PgConnection,
    user: Uuid,
    channel: Uuid,
    seq: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO read_positions (user_id, channel_id, seq) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, channel_id) DO UPDATE SET seq = GREATEST(read_positions.seq, EXCLUDED.seq)",
        user,
        channel,
        seq
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_name(conn: &mut PgConnection, id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO names (id, name) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
        id,
        name
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What a decision about one user and conversation needs to know.
pub struct Context {
    pub presence: Option<String>,
    pub read_up_to: i64,
    pub channel_name: Option<String>,
}

pub async fn context(conn: &mut PgConnection, user: Uuid, channel: Uuid) -> sqlx::Result<Context> {
    sqlx::query_as!(
        Context,
        r#"SELECT (SELECT status FROM presence WHERE user_id = $1) AS presence,
                  COALESCE((SELECT seq FROM read_positions WHERE user_id = $1 AND channel_id = $2), 0)
                      AS "read_up_to!",
                  (SELECT name FROM names WHERE id = $2) AS channel_name"#,
        user,
        channel
    )
    .fetch_one(conn)
    .await
}

pub async fn name(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT name FROM names WHERE id = $1", id)
        .fetch_optional(conn)
        .await
}
