//! Account rules: registration, profiles, credential checks, search.

use crate::domain::{DisplayName, Email, PageSize, Password, SearchQuery, UserId, Username};
use crate::error::{Error, Result};
use crate::password::Hasher;
use crate::repo::{self, ProfileChanges, UserRow};
use crate::search::SearchPage;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone)]
pub struct Accounts {
    pool: PgPool,
    hasher: Hasher,
    /// Password guesses one account takes per minute, from anywhere.
    attempts_per_minute: u32,
}

pub struct Registration {
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub password: Password,
}

impl Accounts {
    pub fn new(pool: PgPool, hasher: Hasher, attempts_per_minute: u32) -> Self {
        Accounts {
            pool,
            hasher,
            attempts_per_minute,
        }
    }

    pub async fn register(&self, registration: Registration) -> Result<UserRow> {
        // Cheap checks before the expensive hash; the unique indexes still
        // decide races between two registrations of one name.
        if let Some(field) = repo::taken(
            &self.pool,
            registration.username.as_str(),
            registration.email.as_str(),
        )
        .await?
        {
            return Err(Error::AlreadyExists { field });
        }
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

    /// Accounts by username; names that cannot be usernames are skipped.
    pub async fn by_usernames(&self, usernames: &[String]) -> Result<Vec<UserRow>> {
        let names: Vec<String> = usernames
            .iter()
            .filter_map(|name| Username::parse(name).ok())
            .map(|name| name.as_str().to_owned())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        Ok(repo::users_by_username(&self.pool, &names).await?)
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
        // No username or email is blank, longer than 254 bytes or holds a
        // control character (Postgres refuses NUL in text outright): such a
        // login matches nobody, and costs the same hash as any other.
        let impossible =
            login.trim().is_empty() || login.len() > 254 || login.chars().any(char::is_control);
        let found = if impossible {
            None
        } else {
            repo::find_credentials(&self.pool, login).await?
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        // A login that names no account is counted too: were it not, only
        // real accounts would ever answer 429, which would name them.
        match &user {
            Some(user) => {
                let counted = repo::count_sign_in_attempt(&self.pool, user.id).await?;
                self.within_allowance(counted, &user.id.to_string())?;
            }
            None if !impossible => {
                let key = login.trim().to_lowercase();
                let counted = repo::count_unknown_login_attempt(&self.pool, &key).await?;
                self.within_allowance(counted, "an unknown login")?;
            }
            None => {} // names no account and never could: nothing to learn
        }
        let matches = self.hasher.verify(password, hash).await?;
        match user {
            Some(user) if matches => {
                repo::clear_sign_in_attempts(&self.pool, user.id).await?;
                Ok(user)
            }
            _ => Err(Error::Unauthenticated("invalid login or password")),
        }
    }

    /// A guess is counted before the hash is checked: beyond the allowance
    /// even the right password waits for the window to end. Accounts are
    /// counted by id, so `alice`, `ALICE` and her email are one.
    fn within_allowance(&self, (attempts, seconds_left): (i32, f64), guessed: &str) -> Result<()> {
        if i64::from(attempts) > i64::from(self.attempts_per_minute) {
            tracing::warn!(guessed, attempts, "sign-in attempts over the allowance");
            return Err(Error::TooManyAttempts {
                retry_after: std::time::Duration::from_secs_f64(seconds_left.clamp(1.0, 60.0)),
            });
        }
        Ok(())
    }

    pub async fn search(
        &self,
        query: &SearchQuery,
        limit: PageSize,
        cursor: &str,
        offset: u32,
    ) -> Result<SearchPage> {
        crate::search::search(&self.pool, query, limit, cursor, offset).await
    }
}
