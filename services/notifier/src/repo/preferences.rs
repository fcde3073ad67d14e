//! Notification settings: the user's global ones and each conversation's.

use sqlx::PgConnection;
use time::{OffsetDateTime, Time};
use uuid::Uuid;

#[derive(Clone, Debug, Default)]
pub struct GlobalRow {
    pub level: String,
    pub privacy: String,
    pub muted_until: Option<OffsetDateTime>,
    pub quiet_start: Option<Time>,
    pub quiet_end: Option<Time>,
    pub time_zone: Option<String>,
}

impl GlobalRow {
    pub fn defaults() -> GlobalRow {
        GlobalRow {
            level: "all".to_owned(),
            privacy: "full".to_owned(),
            ..GlobalRow::default()
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ChannelRow {
    pub level: Option<String>,
    pub muted_until: Option<OffsetDateTime>,
}

pub async fn global(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<GlobalRow> {
    let row = sqlx::query_as!(
        GlobalRow,
        "SELECT level, privacy, muted_until, quiet_start, quiet_end, time_zone
         FROM settings WHERE user_id = $1",
        user
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_else(GlobalRow::defaults))
}

pub async fn save_global(conn: &mut PgConnection, user: Uuid, row: &GlobalRow) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO settings (user_id, level, privacy, muted_until, quiet_start, quiet_end, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (user_id) DO UPDATE SET
             level = EXCLUDED.level, privacy = EXCLUDED.privacy,
             muted_until = EXCLUDED.muted_until, quiet_start = EXCLUDED.quiet_start,
             quiet_end = EXCLUDED.quiet_end, time_zone = EXCLUDED.time_zone",
        user,
        row.level,
        row.privacy,
        row.muted_until,
        row.quiet_start,
        row.quiet_end,
        row.time_zone
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn channel(
    conn: &mut PgConnection,
    user: Uuid,
    channel: Uuid,
) -> sqlx::Result<ChannelRow> {
    let row = sqlx::query_as!(
        ChannelRow,
        "SELECT level, muted_until FROM channel_settings WHERE user_id = $1 AND channel_id = $2",
        user,
        channel
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_default())
}

/// Stores a conversation's settings; both absent deletes the row (the
/// conversation follows the global settings again).
pub async fn save_channel(
    conn: &mut PgConnection,
    user: Uuid,
    channel: Uuid,
    row: &ChannelRow,
) -> sqlx::Result<()> {
    if row.level.is_none() && row.muted_until.is_none() {
        sqlx::query!(
            "DELETE FROM channel_settings WHERE user_id = $1 AND channel_id = $2",
            user,
            channel
        )
        .execute(conn)
        .await?;
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO channel_settings (user_id, channel_id, level, muted_until)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, channel_id) DO UPDATE SET
             level = EXCLUDED.level, muted_until = EXCLUDED.muted_until",
        user,
        channel,
        row.level,
        row.muted_until
    )
    .execute(conn)
    .await?;
    Ok(())
}
