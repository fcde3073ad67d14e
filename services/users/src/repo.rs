//! SQL of the users service, checked against the schema at compile time
//! (offline data in `services/users/.sqlx`, refreshed by `./dev sqlx`).
//! Tables are unqualified: the pool's search_path is the `users` schema.

use crate::domain::{Bio, DisplayName, Email, Username};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug)]
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

pub struct NewUser<'a> {
    pub id: Uuid,
    pub username: &'a Username,
    pub email: &'a Email,
    pub display_name: &'a DisplayName,
    pub password_hash: &'a str,
}

pub async fn insert_user(conn: &mut PgConnection, user: NewUser<'_>) -> sqlx::Result<UserRow> {
    sqlx::query_as!(
        UserRow,
        "INSERT INTO users (id, username, email, display_name, password_hash) \
         VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, username, email, display_name, bio, avatar_media_id, created_at, updated_at",
        user.id,
        user.username.as_str(),
        user.email.as_str(),
        user.display_name.as_str(),
        user.password_hash,
    )
    .fetch_one(conn)
    .await
}

pub async fn get_user(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, username, email, display_name, bio, avatar_media_id, created_at, updated_at \
         FROM users WHERE id = $1",
        id,
    )
    .fetch_optional(pool)
    .await
}

pub async fn get_users(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, username, email, display_name, bio, avatar_media_id, created_at, updated_at \
         FROM users WHERE id = ANY($1) ORDER BY array_position($1, id)",
        ids,
    )
    .fetch_all(pool)
    .await
}

pub async fn users_by_username(pool: &PgPool, usernames: &[String]) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, username, email, display_name, bio, avatar_media_id, created_at, updated_at \
         FROM users WHERE username = ANY($1)",
        usernames,
    )
    .fetch_all(pool)
    .await
}

/// The account and its password hash for a username or email login, in one
/// round trip (login is a hot path). Two statements so each uses its index.
pub async fn find_credentials(
    pool: &PgPool,
    login: &str,
) -> sqlx::Result<Option<(UserRow, String)>> {
    let login = login.trim();
    macro_rules! credentials {
        ($condition:literal) => {
            sqlx::query!(
                "SELECT id, username, email, display_name, bio, avatar_media_id, created_at, \
                        updated_at, password_hash FROM users WHERE "
                    + $condition,
                login,
            )
            .fetch_optional(pool)
            .await?
            .map(|row| {
                let user = UserRow {
                    id: row.id,
                    username: row.username,
                    email: row.email,
                    display_name: row.display_name,
                    bio: row.bio,
                    avatar_media_id: row.avatar_media_id,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                };
                (user, row.password_hash)
            })
        };
    }
    Ok(if login.contains('@') {
        credentials!("lower(email) = lower($1)")
    } else {
        credentials!("username = lower($1)")
    })
}

/// Which of `username` and `email` an account already uses (username
/// first), so registration refuses before it spends a password hash.
pub async fn taken(
    pool: &PgPool,
    username: &str,
    email: &str,
) -> sqlx::Result<Option<&'static str>> {
    let row = sqlx::query!(
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = $1) AS \"username!\", \
                EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($2)) AS \"email!\"",
        username,
        email,
    )
    .fetch_one(pool)
    .await?;
    Ok(if row.username {
        Some("username")
    } else if row.email {
        Some("email")
    } else {
        None
    })
}

/// Counts one sign-in attempt at `user` in the current one-minute window
/// (one atomic upsert, so a parallel burst is counted exactly) and returns
/// the attempts in that window and the seconds until it ends.
pub async fn count_sign_in_attempt(pool: &PgPool, user: Uuid) -> sqlx::Result<(i32, f64)> {
    let row = sqlx::query!(
        r#"INSERT INTO sign_in_attempts (user_id, window_start, attempts) VALUES ($1, now(), 1)
           ON CONFLICT (user_id) DO UPDATE SET
             attempts = CASE WHEN sign_in_attempts.window_start <= now() - interval '1 minute'
                             THEN 1 ELSE sign_in_attempts.attempts + 1 END,
             window_start = CASE WHEN sign_in_attempts.window_start <= now() - interval '1 minute'
                                 THEN now() ELSE sign_in_attempts.window_start END
           RETURNING attempts,
             EXTRACT(EPOCH FROM window_start + interval '1 minute' - now())::float8 AS "seconds_left!""#,
        user,
    )
    .fetch_one(pool)
    .await?;
    Ok((row.attempts, row.seconds_left))
}

/// The same for a login that names no account (lower-cased), pruning a few
/// rows whose window ended so the table stays as small as one minute of
/// guesses. (The login being counted is never among them: one statement
/// must not touch a row twice.)
pub async fn count_unknown_login_attempt(pool: &PgPool, login: &str) -> sqlx::Result<(i32, f64)> {
    let row = sqlx::query!(
        r#"WITH pruned AS (
             DELETE FROM sign_in_attempts_by_login
             WHERE login IN (SELECT login FROM sign_in_attempts_by_login
                             WHERE window_start <= now() - interval '1 minute' AND login <> $1
                             LIMIT 16 FOR UPDATE SKIP LOCKED)
           )
           INSERT INTO sign_in_attempts_by_login (login, window_start, attempts) VALUES ($1, now(), 1)
           ON CONFLICT (login) DO UPDATE SET
             attempts = CASE WHEN sign_in_attempts_by_login.window_start <= now() - interval '1 minute'
                             THEN 1 ELSE sign_in_attempts_by_login.attempts + 1 END,
             window_start = CASE WHEN sign_in_attempts_by_login.window_start <= now() - interval '1 minute'
                                 THEN now() ELSE sign_in_attempts_by_login.window_start END
           RETURNING attempts,
             EXTRACT(EPOCH FROM window_start + interval '1 minute' - now())::float8 AS "seconds_left!""#,
        login,
    )
    .fetch_one(pool)
    .await?;
    Ok((row.attempts, row.seconds_left))
}

/// A correct password ends the account's counting window.
pub async fn clear_sign_in_attempts(pool: &PgPool, user: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM sign_in_attempts WHERE user_id = $1", user)
        .execute(pool)
        .await?;
    Ok(())
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
    sqlx::query_as!(
        UserRow,
        "UPDATE users SET \
            display_name = COALESCE($2, display_name), \
            bio = COALESCE($3, bio), \
            avatar_media_id = CASE WHEN $4 THEN $5 ELSE avatar_media_id END, \
            updated_at = now() \
         WHERE id = $1 \
         RETURNING id, username, email, display_name, bio, avatar_media_id, created_at, updated_at",
        id,
        changes.display_name.as_ref().map(DisplayName::as_str),
        changes.bio.as_ref().map(Bio::as_str),
        changes.avatar_media_id.is_some(),
        changes.avatar_media_id.flatten(),
    )
    .fetch_optional(conn)
    .await
}

/// Most fuzzy candidates ranked per query: beyond the best few hundred,
/// typo matches stop being useful, and ranking every candidate of a broad
/// query (tens of thousands of rows at 1M users) is what made search slow.
pub const FUZZY_CANDIDATES: i64 = 200;

/// Everyone, newest first (the empty query).
pub async fn users_newest_first(
    pool: &PgPool,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, username, email, display_name, bio, avatar_media_id, created_at, updated_at \
         FROM users WHERE $1::uuid IS NULL OR id < $1 \
         ORDER BY id DESC LIMIT $2",
        before,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Usernames starting with `prefix`, in byte order, served by the
/// C-collated btree index `users_username_prefix`. The explicit range is
/// what lets a prepared (generic) plan use the index: the planner cannot
/// turn `LIKE $1` into a range when it does not know `$1`.
pub async fn username_prefix_matches(
    pool: &PgPool,
    prefix: &str,
    like_prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, username, email, display_name, bio, avatar_media_id, created_at, updated_at
         FROM users
         WHERE username COLLATE "C" >= $4 AND username COLLATE "C" < $4 || chr(1114111)
           AND username LIKE $1
           AND ($2::text IS NULL OR username COLLATE "C" > $2)
         ORDER BY username COLLATE "C" LIMIT $3"#,
        like_prefix,
        after,
        limit,
        prefix,
    )
    .fetch_all(pool)
    .await
}

/// Display names starting with the prefix (users whose username also
/// matches were listed before), served by `users_display_name_prefix`. The
/// position is the last user shown, so the cursor carries no name.
pub async fn display_name_prefix_matches(
    pool: &PgPool,
    prefix: &str,
    like_prefix: &str,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, username, email, display_name, bio, avatar_media_id, created_at, updated_at
         FROM users
         WHERE lower(display_name) COLLATE "C" >= $4
           AND lower(display_name) COLLATE "C" < $4 || chr(1114111)
           AND lower(display_name) LIKE $1
           AND username NOT LIKE $1
           AND ($2::uuid IS NULL OR (lower(display_name) COLLATE "C", id) >
                (SELECT lower(u.display_name) COLLATE "C", u.id FROM users u WHERE u.id = $2))
         ORDER BY lower(display_name) COLLATE "C", id LIMIT $3"#,
        like_prefix,
        after,
        limit,
        prefix,
    )
    .fetch_all(pool)
    .await
}

/// Typo-tolerant matches that are not prefix matches, best first: up to
/// [`FUZZY_CANDIDATES`] trigram candidates (GIN indexes) ranked by
/// similarity.
pub async fn fuzzy_matches(
    pool: &PgPool,
    like_prefix: &str,
    query: &str,
    offset: i64,
    limit: i64,
) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"WITH candidates AS (
            SELECT id, username, email, display_name, bio, avatar_media_id, created_at, updated_at
            FROM users
            WHERE (username % $2 OR $2 <% lower(display_name))
              AND username NOT LIKE $1 AND lower(display_name) NOT LIKE $1
            LIMIT $5
         )
         SELECT id AS "id!", username AS "username!", email AS "email!",
                display_name AS "display_name!", bio AS "bio!", avatar_media_id,
                created_at AS "created_at!", updated_at AS "updated_at!"
         FROM candidates
         ORDER BY greatest(similarity(username, $2), word_similarity($2, lower(display_name))) DESC, id
         OFFSET $3 LIMIT $4"#,
        like_prefix,
        query,
        offset,
        limit,
        FUZZY_CANDIDATES,
    )
    .fetch_all(pool)
    .await
}

/// A stored refresh token, as found by its hash.
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
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, user_agent, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        token_hash,
        family_id,
        user_id,
        user_agent,
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the token's row so two concurrent refreshes cannot both rotate it.
pub async fn lock_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> sqlx::Result<Option<RefreshTokenRow>> {
    sqlx::query_as!(
        RefreshTokenRow,
        "SELECT family_id, user_id, user_agent, expires_at, rotated_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        token_hash,
    )
    .fetch_optional(conn)
    .await
}

pub async fn mark_rotated(conn: &mut PgConnection, token_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1",
        token_hash,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> sqlx::Result<u64> {
    let result = sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() \
         WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}
