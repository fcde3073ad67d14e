//! SQL of the users service. Tables are unqualified: the pool's search_path
//! is the `users` schema.

use crate::domain::{Bio, DisplayName, Email, PageSize, SearchQuery, Username};
use sqlx::{FromRow, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub bio: String,
    pub avatar_media_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const USER_COLUMNS: &str =
    "id, username, email, display_name, bio, avatar_media_id, created_at, updated_at";

pub struct NewUser<'a> {
    pub id: Uuid,
    pub username: &'a Username,
    pub email: &'a Email,
    pub display_name: &'a DisplayName,
    pub password_hash: &'a str,
}

pub async fn insert_user(conn: &mut PgConnection, user: NewUser<'_>) -> sqlx::Result<UserRow> {
    sqlx::query_as(&format!(
        "INSERT INTO users (id, username, email, display_name, password_hash) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
    ))
    .bind(user.id)
    .bind(user.username.as_str())
    .bind(user.email.as_str())
    .bind(user.display_name.as_str())
    .bind(user.password_hash)
    .fetch_one(conn)
    .await
}

pub async fn get_user(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn get_users(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = ANY($1) ORDER BY array_position($1, id)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// The account and its password hash for a username or email login.
pub async fn find_credentials(
    pool: &PgPool,
    login: &str,
) -> sqlx::Result<Option<(UserRow, String)>> {
    let login = login.trim();
    let condition = if login.contains('@') {
        "lower(email) = lower($1)"
    } else {
        "username = lower($1)"
    };
    let row: Option<(Uuid, String)> = sqlx::query_as(&format!(
        "SELECT id, password_hash FROM users WHERE {condition}"
    ))
    .bind(login)
    .fetch_optional(pool)
    .await?;
    let Some((id, hash)) = row else {
        return Ok(None);
    };
    Ok(get_user(pool, id).await?.map(|user| (user, hash)))
}

pub struct ProfileChanges {
    pub display_name: Option<DisplayName>,
    pub bio: Option<Bio>,
    /// `Some(None)` clears the avatar.
    pub avatar_media_id: Option<Option<Uuid>>,
}

pub async fn update_profile(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &ProfileChanges,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "UPDATE users SET \
            display_name = COALESCE($2, display_name), \
            bio = COALESCE($3, bio), \
            avatar_media_id = CASE WHEN $4 THEN $5 ELSE avatar_media_id END, \
            updated_at = now() \
         WHERE id = $1 RETURNING {USER_COLUMNS}"
    ))
    .bind(id)
    .bind(changes.display_name.as_ref().map(DisplayName::as_str))
    .bind(changes.bio.as_ref().map(Bio::as_str))
    .bind(changes.avatar_media_id.is_some())
    .bind(changes.avatar_media_id.flatten())
    .fetch_optional(conn)
    .await
}

/// Position of a row in a search's order: prefix matches first, then by
/// trigram similarity, then newest id. Cursors encode it exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchKey {
    pub prefix: bool,
    pub score: f64,
    pub id: Uuid,
}

#[derive(FromRow)]
struct RankedUser {
    #[sqlx(flatten)]
    user: UserRow,
    prefix: bool,
    score: f64,
}

pub enum Page {
    After(SearchKey),
    Offset(i64),
}

pub async fn search_users(
    pool: &PgPool,
    query: &SearchQuery,
    limit: PageSize,
    page: Page,
) -> sqlx::Result<Vec<(UserRow, SearchKey)>> {
    let (after, offset) = match page {
        Page::After(key) => (Some(key), 0),
        Page::Offset(offset) => (None, offset),
    };
    // Two statements rather than one with `$2 = '' OR ...`: a generic plan
    // of the combined form cannot use the trigram indexes.
    let rows: Vec<RankedUser> = if query.as_str().is_empty() {
        sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, true AS prefix, 0::float8 AS score FROM users \
             WHERE $1::uuid IS NULL OR id < $1 \
             ORDER BY id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(after.map(|key| key.id))
        .bind(limit.0)
        .bind(offset)
        .fetch_all(pool)
        .await?
    } else {
        // Prefix matches first, then by trigram similarity. The trigram
        // operators (`%`, `<%`) and the prefix LIKEs are all served by the
        // GIN indexes on username and lower(display_name).
        sqlx::query_as(&format!(
            "WITH ranked AS ( \
                SELECT {USER_COLUMNS}, \
                    (username LIKE $1 OR lower(display_name) LIKE $1) AS prefix, \
                    greatest(similarity(username, $2), \
                             word_similarity($2, lower(display_name)))::float8 AS score \
                FROM users \
                WHERE username LIKE $1 OR lower(display_name) LIKE $1 \
                   OR username % $2 OR $2 <% lower(display_name) \
             ) \
             SELECT * FROM ranked \
             WHERE $3::boolean IS NULL OR (prefix, score, id) < ($3, $4, $5) \
             ORDER BY prefix DESC, score DESC, id DESC \
             LIMIT $6 OFFSET $7"
        ))
        .bind(query.like_prefix())
        .bind(query.as_str())
        .bind(after.map(|key| key.prefix))
        .bind(after.map(|key| key.score))
        .bind(after.map(|key| key.id))
        .bind(limit.0)
        .bind(offset)
        .fetch_all(pool)
        .await?
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = SearchKey {
                prefix: row.prefix,
                score: row.score,
                id: row.user.id,
            };
            (row.user, key)
        })
        .collect())
}

/// A stored refresh token, as found by its hash.
#[derive(FromRow)]
pub struct RefreshTokenRow {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub user_agent: String,
    pub expires_at: OffsetDateTime,
    pub rotated_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

pub async fn insert_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
    family_id: Uuid,
    user_id: Uuid,
    user_agent: &str,
    expires_at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, user_agent, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(family_id)
    .bind(user_id)
    .bind(user_agent)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the token's row so two concurrent refreshes cannot both rotate it.
pub async fn lock_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> sqlx::Result<Option<RefreshTokenRow>> {
    sqlx::query_as(
        "SELECT family_id, user_id, user_agent, expires_at, rotated_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

pub async fn mark_rotated(conn: &mut PgConnection, token_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() \
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}
