//! Messages, sequence numbers, threads, edits, reactions and idempotency keys.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct MessageRow {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub group_id: Uuid,
    pub seq: i64,
    pub author_id: Uuid,
    pub kind: String,
    pub content: String,
    pub reply_to: Option<Uuid>,
    pub thread_root_id: Option<Uuid>,
    pub reply_count: i32,
    pub last_reply_at: Option<OffsetDateTime>,
    pub mention_ids: Vec<Uuid>,
    pub client_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub edited_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
    pub attachment_ids: Vec<Uuid>,
    pub attachment_names: Vec<String>,
    pub attachment_types: Vec<String>,
    pub attachment_sizes: Vec<i64>,
}

/// `SELECT <message> FROM messages m WHERE ...`.
macro_rules! select_messages {
    ($rest:literal, $($arg:expr),+ $(,)?) => {
        sqlx::query_as!(
            MessageRow,
            r#"SELECT m.id, m.channel_id, m.group_id, m.seq, m.author_id, m.kind, m.content,
                      m.reply_to, m.thread_root_id, m.reply_count, m.last_reply_at,
                      m.mention_ids, m.client_id, m.created_at, m.edited_at, m.deleted_at,
                      ARRAY(SELECT a.media_id FROM message_attachments a
                            WHERE a.message_id = m.id ORDER BY a.position) AS "attachment_ids!",
                      ARRAY(SELECT a.filename FROM message_attachments a
                            WHERE a.message_id = m.id ORDER BY a.position) AS "attachment_names!",
                      ARRAY(SELECT a.content_type FROM message_attachments a
                            WHERE a.message_id = m.id ORDER BY a.position) AS "attachment_types!",
                      ARRAY(SELECT a.size FROM message_attachments a
                            WHERE a.message_id = m.id ORDER BY a.position) AS "attachment_sizes!"
               FROM messages m "# + $rest,
            $($arg),+
        )
    };
}

#[derive(Clone, Copy)]
pub struct NewMessage<'a> {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub group_id: Uuid,
    pub author_id: Uuid,
    pub kind: &'a str,
    pub content: &'a str,
    pub reply_to: Option<Uuid>,
    pub thread_root_id: Option<Uuid>,
    pub mention_ids: &'a [Uuid],
    pub client_id: Option<&'a str>,
    pub created_at: OffsetDateTime,
}

/// Claims an idempotency key for a message about to be stored. False when
/// the key was taken (after waiting for a concurrent claim to commit).
pub async fn claim_key(
    conn: &mut PgConnection,
    author: Uuid,
    key: &str,
    message: Uuid,
) -> sqlx::Result<bool> {
    let claimed = sqlx::query!(
        "INSERT INTO idempotency_keys (author_id, key, message_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
        author,
        key,
        message,
    )
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

pub async fn message_by_key(
    conn: &mut PgConnection,
    author: Uuid,
    key: &str,
) -> sqlx::Result<Option<MessageRow>> {
    select_messages!(
        "JOIN idempotency_keys k ON k.message_id = m.id WHERE k.author_id = $1 AND k.key = $2",
        author,
        key,
    )
    .fetch_optional(conn)
    .await
}

/// Removes keys older than `hours`; returns how many.
pub async fn prune_keys(conn: &mut PgConnection, hours: i32) -> sqlx::Result<u64> {
    let pruned = sqlx::query!(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
        hours,
    )
    .execute(conn)
    .await?;
    Ok(pruned.rows_affected())
}

/// Stores the message under the channel's next sequence number and moves
/// the author's read position to it, in one statement (one round trip on
/// the send path). The counter row stays locked until the transaction
/// ends, so numbers are handed out in commit order, without gaps.
/// Returns the sequence number.
pub async fn insert_message(conn: &mut PgConnection, m: NewMessage<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"WITH counter AS (
               INSERT INTO channel_state (channel_id, group_id, last_seq) VALUES ($2, $3, 1)
               ON CONFLICT (channel_id) DO UPDATE
                   SET last_seq = channel_state.last_seq + 1, updated_at = now()
               RETURNING last_seq
           ),
           author_read AS (
               INSERT INTO message_reads (channel_id, user_id, last_read_seq, last_message_id)
               SELECT $2, $4, counter.last_seq, $1 FROM counter
               ON CONFLICT (channel_id, user_id) DO UPDATE
                   SET last_read_seq = EXCLUDED.last_read_seq,
                       last_message_id = EXCLUDED.last_message_id, updated_at = now()
                   WHERE message_reads.last_read_seq < EXCLUDED.last_read_seq
           )
           INSERT INTO messages (id, channel_id, group_id, seq, author_id, kind, content,
                                 reply_to, thread_root_id, mention_ids, client_id, created_at)
           SELECT $1, $2, $3, counter.last_seq, $4, $5, $6, $7, $8, $9, $10, $11 FROM counter
           RETURNING seq"#,
        m.id,
        m.channel_id,
        m.group_id,
        m.author_id,
        m.kind,
        m.content,
        m.reply_to,
        m.thread_root_id,
        m.mention_ids,
        m.client_id,
        m.created_at,
    )
    .fetch_one(conn)
    .await
}

/// A file to attach, as the media service described it.
pub struct NewAttachment {
    pub media_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
}

pub async fn insert_attachments(
    conn: &mut PgConnection,
    message: Uuid,
    attachments: &[NewAttachment],
) -> sqlx::Result<()> {
    if attachments.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = attachments.iter().map(|a| a.media_id).collect();
    let names: Vec<String> = attachments.iter().map(|a| a.filename.clone()).collect();
    let types: Vec<String> = attachments.iter().map(|a| a.content_type.clone()).collect();
    let sizes: Vec<i64> = attachments.iter().map(|a| a.size).collect();
    sqlx::query!(
        "INSERT INTO message_attachments (message_id, position, media_id, filename, content_type, size) \
         SELECT $1, (t.ord - 1)::smallint, t.media, t.name, t.kind, t.size \
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[]) \
              WITH ORDINALITY AS t(media, name, kind, size, ord)",
        message,
        &ids,
        &names,
        &types,
        &sizes,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Channels where `media` is attached to a message that is not deleted.
pub async fn channels_with_media(conn: &mut PgConnection, media: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT DISTINCT m.channel_id FROM message_attachments a \
         JOIN messages m ON m.id = a.message_id \
         WHERE a.media_id = $1 AND m.deleted_at IS NULL LIMIT 100",
        media,
    )
    .fetch_all(conn)
    .await
}

/// Those of `media` that a stored message carries (a deleted message's
/// attachments are gone with it).
pub async fn attached_media(conn: &mut PgConnection, media: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT media_id AS "media_id!" FROM message_attachments WHERE media_id = ANY($1)"#,
        media,
    )
    .fetch_all(conn)
    .await
}

pub struct ThreadState {
    pub seq: i64,
    pub reply_count: i32,
    pub last_reply_at: Option<OffsetDateTime>,
}

pub async fn count_reply(
    conn: &mut PgConnection,
    root: Uuid,
    at: OffsetDateTime,
) -> sqlx::Result<ThreadState> {
    sqlx::query_as!(
        ThreadState,
        "UPDATE messages SET reply_count = reply_count + 1, last_reply_at = $2 WHERE id = $1 \
         RETURNING seq, reply_count, last_reply_at",
        root,
        at,
    )
    .fetch_one(conn)
    .await
}

pub async fn message(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<MessageRow>> {
    select_messages!("WHERE m.id = $1", id)
        .fetch_optional(conn)
        .await
}

/// The message, locked against concurrent edits and deletes.
pub async fn lock_message(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<MessageRow>> {
    select_messages!("WHERE m.id = $1 FOR UPDATE OF m", id)
        .fetch_optional(conn)
        .await
}

/// Up to `limit` messages before `seq` (exclusive), newest first.
pub async fn before(
    conn: &mut PgConnection,
    channel: Uuid,
    seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    select_messages!(
        "WHERE m.channel_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3",
        channel,
        seq,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Up to `limit` messages after `seq` (exclusive), oldest first.
pub async fn after(
    conn: &mut PgConnection,
    channel: Uuid,
    seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    select_messages!(
        "WHERE m.channel_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
        channel,
        seq,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Replies in a thread after `seq`, oldest first.
pub async fn thread(
    conn: &mut PgConnection,
    root: Uuid,
    seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    select_messages!(
        "WHERE m.thread_root_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
        root,
        seq,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// A group's messages in the given channels, newest first (the original
/// offset API; its offset is bounded by the caller).
pub async fn group_page(
    conn: &mut PgConnection,
    group: Uuid,
    channels: &[Uuid],
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    select_messages!(
        "WHERE m.group_id = $1 AND m.channel_id = ANY($2) ORDER BY m.id DESC LIMIT $3 OFFSET $4",
        group,
        channels,
        limit,
        offset,
    )
    .fetch_all(conn)
    .await
}

/// Full-text matches in the given channels, newest first, older than
/// `before` (a message id) when given.
pub async fn search(
    conn: &mut PgConnection,
    channels: &[Uuid],
    query: &str,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    select_messages!(
        "WHERE m.channel_id = ANY($1) AND m.deleted_at IS NULL \
           AND m.search @@ websearch_to_tsquery('simple', $2) \
           AND ($3::uuid IS NULL OR m.id < $3) \
         ORDER BY m.id DESC LIMIT $4",
        channels,
        query,
        before,
        limit,
    )
    .fetch_all(conn)
    .await
}

pub async fn edit(
    conn: &mut PgConnection,
    id: Uuid,
    previous: &str,
    content: &str,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO message_edits (message_id, previous_content, replaced_at) VALUES ($1, $2, $3)",
        id,
        previous,
        at,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE messages SET content = $2, edited_at = $3 WHERE id = $1",
        id,
        content,
        at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_mentions(
    conn: &mut PgConnection,
    id: Uuid,
    mentions: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE messages SET mention_ids = $2 WHERE id = $1",
        id,
        mentions,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct EditRow {
    pub previous_content: String,
    pub replaced_at: OffsetDateTime,
}

pub async fn edits(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Vec<EditRow>> {
    sqlx::query_as!(
        EditRow,
        "SELECT previous_content, replaced_at FROM message_edits WHERE message_id = $1 ORDER BY id",
        id,
    )
    .fetch_all(conn)
    .await
}

/// Soft delete: a tombstone keeps the message's place (its sequence number
/// and thread position); its content, edit history, attachments, reactions
/// and notifications go.
pub async fn tombstone(conn: &mut PgConnection, id: Uuid, at: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE messages SET content = '', mention_ids = '{}', deleted_at = $2 WHERE id = $1",
        id,
        at,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM message_edits WHERE message_id = $1", id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM message_attachments WHERE message_id = $1", id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM message_reactions WHERE message_id = $1", id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM notifications WHERE message_id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

pub struct ReactionRow {
    pub message_id: Uuid,
    pub emoji: String,
    pub count: i64,
    pub me: bool,
}

/// Reaction counts of each message, and whether `viewer` is among them, in
/// order of each emoji's first use.
pub async fn reactions(
    conn: &mut PgConnection,
    messages: &[Uuid],
    viewer: Uuid,
) -> sqlx::Result<Vec<ReactionRow>> {
    sqlx::query_as!(
        ReactionRow,
        r#"SELECT message_id, emoji, count(*) AS "count!", bool_or(user_id = $2) AS "me!"
           FROM message_reactions WHERE message_id = ANY($1)
           GROUP BY message_id, emoji ORDER BY message_id, min(created_at), emoji"#,
        messages,
        viewer,
    )
    .fetch_all(conn)
    .await
}

/// Adds a reaction; false if the user had already reacted with it.
pub async fn add_reaction(
    conn: &mut PgConnection,
    message: Uuid,
    emoji: &str,
    user: Uuid,
) -> sqlx::Result<bool> {
    let added = sqlx::query!(
        "INSERT INTO message_reactions (message_id, emoji, user_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
        message,
        emoji,
        user,
    )
    .execute(conn)
    .await?;
    Ok(added.rows_affected() == 1)
}

pub async fn distinct_emojis(conn: &mut PgConnection, message: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(DISTINCT emoji) AS "count!" FROM message_reactions WHERE message_id = $1"#,
        message,
    )
    .fetch_one(conn)
    .await
}

pub async fn remove_reaction(
    conn: &mut PgConnection,
    message: Uuid,
    emoji: &str,
    user: Uuid,
) -> sqlx::Result<bool> {
    let removed = sqlx::query!(
        "DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
        message,
        emoji,
        user,
    )
    .execute(conn)
    .await?;
    Ok(removed.rows_affected() == 1)
}
