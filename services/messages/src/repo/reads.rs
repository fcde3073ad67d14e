//! Read positions: one per member per channel.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct ReadRow {
    pub channel_id: Uuid,
    pub user_id: Uuid,
    pub last_read_seq: i64,
    pub last_message_id: Uuid,
    pub updated_at: OffsetDateTime,
}

/// Moves the position forward to `seq`; never backwards. Returns the
/// position when it moved, `None` when it was already there or past it.
pub async fn advance(
    conn: &mut PgConnection,
    channel: Uuid,
    user: Uuid,
    seq: i64,
    message: Uuid,
) -> sqlx::Result<Option<ReadRow>> {
    sqlx::query_as!(
        ReadRow,
        "INSERT INTO message_reads (channel_id, user_id, last_read_seq, last_message_id) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (channel_id, user_id) DO UPDATE \
             SET last_read_seq = EXCLUDED.last_read_seq, \
                 last_message_id = EXCLUDED.last_message_id, updated_at = now() \
             WHERE message_reads.last_read_seq < EXCLUDED.last_read_seq \
         RETURNING channel_id, user_id, last_read_seq, last_message_id, updated_at",
        channel,
        user,
        seq,
        message,
    )
    .fetch_optional(conn)
    .await
}

pub async fn position(
    conn: &mut PgConnection,
    channel: Uuid,
    user: Uuid,
) -> sqlx::Result<Option<ReadRow>> {
    sqlx::query_as!(
        ReadRow,
        "SELECT channel_id, user_id, last_read_seq, last_message_id, updated_at \
         FROM message_reads WHERE channel_id = $1 AND user_id = $2",
        channel,
        user,
    )
    .fetch_optional(conn)
    .await
}

/// Users whose position is at or past `seq`, by user id after `after`.
pub async fn readers(
    conn: &mut PgConnection,
    channel: Uuid,
    seq: i64,
    except: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ReadRow>> {
    sqlx::query_as!(
        ReadRow,
        "SELECT channel_id, user_id, last_read_seq, last_message_id, updated_at \
         FROM message_reads \
         WHERE channel_id = $1 AND last_read_seq >= $2 AND user_id <> $3 \
           AND ($4::uuid IS NULL OR user_id > $4) \
         ORDER BY user_id LIMIT $5",
        channel,
        seq,
        except,
        after,
        limit,
    )
    .fetch_all(conn)
    .await
}

pub struct UnreadRow {
    pub channel_id: Uuid,
    pub group_id: Uuid,
    pub last_seq: i64,
    pub last_read_seq: i64,
    pub unread: i64,
    pub mentions: i64,
}

/// Most unread messages counted per channel; clients show "999+".
pub const UNREAD_CAP: i64 = 1000;

/// Unread state of `user` in each channel that has messages. Unread counts
/// walk the channel's (channel, seq) index from the read position and stop
/// at the cap, so a channel with millions of unread messages costs the same
/// as one with a thousand.
pub async fn unread(
    conn: &mut PgConnection,
    user: Uuid,
    channels: &[Uuid],
) -> sqlx::Result<Vec<UnreadRow>> {
    sqlx::query_as!(
        UnreadRow,
        r#"SELECT c.channel_id, c.group_id, c.last_seq,
                  COALESCE(r.last_read_seq, 0) AS "last_read_seq!",
                  (SELECT count(*) FROM (
                       SELECT 1 FROM messages m
                       WHERE m.channel_id = c.channel_id
                         AND m.seq > COALESCE(r.last_read_seq, 0)
                         AND m.author_id <> $1 AND m.deleted_at IS NULL
                       LIMIT $3) AS unread_rows) AS "unread!",
                  (SELECT count(*) FROM notifications n
                   WHERE n.user_id = $1 AND n.channel_id = c.channel_id
                     AND n.read_at IS NULL) AS "mentions!"
           FROM channel_state c
           LEFT JOIN message_reads r ON r.channel_id = c.channel_id AND r.user_id = $1
           WHERE c.channel_id = ANY($2)
           ORDER BY c.channel_id"#,
        user,
        channels,
        UNREAD_CAP,
    )
    .fetch_all(conn)
    .await
}
