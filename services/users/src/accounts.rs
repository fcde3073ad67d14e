//! Account rules: registration, profiles, credential checks, search.

use crate::domain::{DisplayName, Email, PageSize, Password, SearchQuery, UserId, Username};
use crate::error::{Error, Result};
use crate::password::Hasher;
use crate::repo::{self, Page, ProfileChanges, SearchKey, UserRow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone)]
pub struct Accounts {
    pool: PgPool,
    hasher: Hasher,
}

pub struct Registration {
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub password: Password,
}

pub struct SearchPage {
    pub users: Vec<UserRow>,
    pub next_cursor: Option<String>,
}

impl Accounts {
    pub fn new(pool: PgPool, hasher: Hasher) -> Self {
        Accounts { pool, hasher }
    }

    pub async fn register(&self, registration: Registration) -> Result<UserRow> {
        let password_hash = self.hasher.hash(&registration.password).await?;
        let mut tx = self.pool.begin().await?;
        let user = repo::insert_user(
            &mut tx,
            repo::NewUser {
                id: Uuid::now_v7(),
                username: &registration.username,
                email: &registration.email,
                display_name: &registration.display_name,
                password_hash: &password_hash,
            },
        )
        .await
        .map_err(Error::from_insert)?;
        crate::events::user_registered(&mut tx, &user).await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(user)
    }

    pub async fn get(&self, id: UserId) -> Result<UserRow> {
        repo::get_user(&self.pool, id.0)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn get_many(&self, ids: &[UserId]) -> Result<Vec<UserRow>> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        Ok(repo::get_users(&self.pool, &ids).await?)
    }

    pub async fn update_profile(&self, id: UserId, changes: ProfileChanges) -> Result<UserRow> {
        let mut tx = self.pool.begin().await?;
        let user = repo::update_profile(&mut tx, id.0, &changes)
            .await?
            .ok_or(Error::NotFound)?;
        crate::events::profile_updated(&mut tx, &user).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The account for a correct login and password; the same error for a
    /// wrong password and an unknown login.
    pub async fn verify_password(&self, login: &str, password: &str) -> Result<UserRow> {
        let found = if login.trim().is_empty() || login.len() > 254 {
            None
        } else {
            repo::find_credentials(&self.pool, login).await?
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let matches = self.hasher.verify(password, hash).await?;
        match user {
            Some(user) if matches => Ok(user),
            _ => Err(Error::Unauthenticated("invalid login or password")),
        }
    }

    pub async fn search(
        &self,
        query: &SearchQuery,
        limit: PageSize,
        cursor: &str,
        offset: u32,
    ) -> Result<SearchPage> {
        let page = if cursor.is_empty() {
            if offset > 10_000 {
                return Err(Error::invalid(
                    "offset",
                    "must be at most 10000; use the cursor",
                ));
            }
            Page::Offset(i64::from(offset))
        } else {
            Page::After(decode_cursor(cursor)?)
        };
        let rows = repo::search_users(&self.pool, query, limit, page).await?;
        let next_cursor = (rows.len() as i64 == limit.0)
            .then(|| rows.last().map(|(_, key)| encode_cursor(key)))
            .flatten();
        Ok(SearchPage {
            users: rows.into_iter().map(|(user, _)| user).collect(),
            next_cursor,
        })
    }
}

fn encode_cursor(key: &SearchKey) -> String {
    let raw = format!(
        "{}:{:016x}:{}",
        u8::from(key.prefix),
        key.score.to_bits(),
        key.id
    );
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Result<SearchKey> {
    let invalid = || Error::invalid("cursor", "is not a cursor returned by this API");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, ':');
    let prefix = match parts.next() {
        Some("1") => true,
        Some("0") => false,
        _ => return Err(invalid()),
    };
    let score = parts
        .next()
        .and_then(|bits| u64::from_str_radix(bits, 16).ok())
        .map(f64::from_bits)
        .filter(|score| score.is_finite())
        .ok_or_else(invalid)?;
    let id = parts
        .next()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(invalid)?;
    Ok(SearchKey { prefix, score, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_exactly() {
        let key = SearchKey {
            prefix: true,
            score: 0.3333333432674408,
            id: Uuid::now_v7(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&key)).expect("valid"), key);
    }

    #[test]
    fn garbage_cursors_are_invalid_arguments() {
        for bad in ["", "!!!", "Zm9v", &URL_SAFE_NO_PAD.encode("1:zz:nope")] {
            assert!(matches!(
                decode_cursor(bad),
                Err(Error::InvalidArgument {
                    field: "cursor",
                    ..
                })
            ));
        }
    }
}
