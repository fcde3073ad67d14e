//! SQL of the media service, checked against the schema at compile time
//! (offline data in `services/media/.sqlx`, refreshed by `./dev sqlx`).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct MediaRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub state: String,
    pub failure: Option<String>,
    /// JSON list of [`crate::convert::StoredThumbnail`].
    pub thumbnails: String,
    pub created_at: OffsetDateTime,
}

pub struct NewMedia<'a> {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub state: &'a str,
}

pub async fn insert(conn: &mut PgConnection, m: NewMedia<'_>) -> sqlx::Result<MediaRow> {
    sqlx::query_as!(
        MediaRow,
        "INSERT INTO media (id, owner_id, filename, content_type, size, sha256, width, height, state, \
                            unattached_since) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) \
         RETURNING id, owner_id, filename, content_type, size, sha256, width, height, state, \
                   failure, thumbnails, created_at",
        m.id,
        m.owner_id,
        m.filename,
        m.content_type,
        m.size,
        m.sha256,
        m.width,
        m.height,
        m.state,
    )
    .fetch_one(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<MediaRow>> {
    sqlx::query_as!(
        MediaRow,
        "SELECT id, owner_id, filename, content_type, size, sha256, width, height, state, \
                failure, thumbnails, created_at \
         FROM media WHERE id = $1",
        id,
    )
    .fetch_optional(conn)
    .await
}

pub async fn get_many(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<MediaRow>> {
    sqlx::query_as!(
        MediaRow,
        "SELECT id, owner_id, filename, content_type, size, sha256, width, height, state, \
                failure, thumbnails, created_at \
         FROM media WHERE id = ANY($1) ORDER BY array_position($1, id)",
        ids,
    )
    .fetch_all(conn)
    .await
}

/// Records the outcome of processing, once: only a pending row changes.
pub async fn finish_processing(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    width: Option<i32>,
    height: Option<i32>,
    thumbnails: &str,
    failure: Option<&str>,
) -> sqlx::Result<Option<MediaRow>> {
    sqlx::query_as!(
        MediaRow,
        "UPDATE media SET state = $2, width = COALESCE($3, width), height = COALESCE($4, height), \
                thumbnails = $5, failure = $6, updated_at = now() \
         WHERE id = $1 AND state = 'pending' \
         RETURNING id, owner_id, filename, content_type, size, sha256, width, height, state, \
                   failure, thumbnails, created_at",
        id,
        state,
        width,
        height,
        thumbnails,
        failure,
    )
    .fetch_optional(conn)
    .await
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!("DELETE FROM media WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Uploads still using a blob (other rows with the same content).
pub async fn blob_users(conn: &mut PgConnection, sha256: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM media WHERE sha256 = $1"#,
        sha256,
    )
    .fetch_one(conn)
    .await
}

/// Serializes the uploads and deletes of one content hash until the
/// transaction ends, so a delete cannot remove a blob a concurrent upload
/// of the same bytes is about to use.
/// Serialises the uploads of one owner for the rest of the transaction, so
/// two concurrent uploads cannot both fit the quota's last bytes.
pub async fn lock_owner(conn: &mut PgConnection, owner: Uuid) -> sqlx::Result<()> {
    sqlx::query_scalar!(
        r#"SELECT 1 AS "locked!" FROM (SELECT pg_advisory_xact_lock(hashtextextended('media-owner:' || ($1::uuid)::text, 0))) AS l"#,
        owner,
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// Bytes `owner` keeps uploaded.
pub async fn used_bytes(conn: &mut PgConnection, owner: Uuid) -> sqlx::Result<u64> {
    let used = sqlx::query_scalar!(
        r#"SELECT COALESCE(SUM(size), 0)::bigint AS "used!" FROM media WHERE owner_id = $1"#,
        owner,
    )
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(used).unwrap_or(0))
}

pub async fn lock_content(conn: &mut PgConnection, sha256: &str) -> sqlx::Result<()> {
    sqlx::query_scalar!(
        r#"SELECT 1 AS "locked!" FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS l"#,
        sha256,
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// Locks the rows of `ids` (in id order, so concurrent claims cannot
/// deadlock) until the transaction ends: a sweep of any of them waits, or
/// has already happened.
pub async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query_scalar!(
        "SELECT id FROM media WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        ids,
    )
    .fetch_all(conn)
    .await?;
    Ok(())
}

/// Locks those of `ids` that `owner` uploaded, as [`lock_rows`], and
/// returns them.
pub async fn lock_owned(
    conn: &mut PgConnection,
    owner: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM media WHERE id = ANY($1) AND owner_id = $2 ORDER BY id FOR UPDATE",
        ids,
        owner,
    )
    .fetch_all(conn)
    .await
}

/// Marks uploads as used (attached, or an avatar): the sweeper keeps them.
pub async fn claim(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<u64> {
    let claimed = sqlx::query!(
        "UPDATE media SET unattached_since = NULL, updated_at = now() \
         WHERE id = ANY($1) AND unattached_since IS NOT NULL",
        ids,
    )
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected())
}

/// Up to `limit` uploads unattached for longer than `ttl_seconds` (by the
/// database's clock, the same for every replica), oldest first. Images
/// still being processed wait until the worker is done with them.
pub async fn unattached_before(
    conn: &mut PgConnection,
    ttl_seconds: f64,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM media \
         WHERE unattached_since < now() - make_interval(secs => $1) AND state <> 'pending' \
         ORDER BY unattached_since LIMIT $2",
        ttl_seconds,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// What the sweeper needs of an upload it is about to delete.
pub struct Expired {
    pub owner_id: Uuid,
    pub sha256: String,
    pub size: i64,
}

/// Locks `id` if it is still unattached past the TTL; `None` when it was
/// claimed or deleted meanwhile, or another replica's sweeper holds it.
pub async fn lock_expired(
    conn: &mut PgConnection,
    id: Uuid,
    ttl_seconds: f64,
) -> sqlx::Result<Option<Expired>> {
    sqlx::query_as!(
        Expired,
        "SELECT owner_id, sha256, size FROM media \
         WHERE id = $1 AND unattached_since < now() - make_interval(secs => $2) \
               AND state <> 'pending' \
         FOR UPDATE SKIP LOCKED",
        id,
        ttl_seconds,
    )
    .fetch_optional(conn)
    .await
}

/// As [`lock_content`], without waiting: `false` when an upload or a
/// delete of the same bytes holds it.
pub async fn try_lock_content(conn: &mut PgConnection, sha256: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS "locked!""#,
        sha256,
    )
    .fetch_one(conn)
    .await
}
