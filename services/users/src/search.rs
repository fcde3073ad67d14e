//! User search. Results come in tiers, each served in index order so that
//! a page costs the same at a thousand users and at a million:
//!
//! 1. usernames starting with the query, alphabetically;
//! 2. display names starting with it (lower-cased), alphabetically;
//! 3. typo-tolerant trigram matches, most similar first (the best
//!    [`repo::FUZZY_CANDIDATES`] candidates).
//!
//! The empty query lists everyone, newest first. Cursors record the tier and
//! the position in it, so paging never repeats or skips a user of tiers 1-2.

use crate::domain::{PageSize, SearchQuery};
use crate::error::{Error, Result};
use crate::repo::{self, UserRow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::PgPool;
use uuid::Uuid;

/// Where the previous page ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Cursor {
    Newest(Uuid),
    Username(String),
    /// Last user of the display-name tier shown (`None`: tier start).
    DisplayName(Option<Uuid>),
    Fuzzy(u32),
}

pub struct SearchPage {
    pub users: Vec<UserRow>,
    pub next_cursor: Option<String>,
}

/// Legacy offset paging is served by skipping rows, so it is bounded.
pub const MAX_OFFSET: u32 = 10_000;

pub async fn search(
    pool: &PgPool,
    query: &SearchQuery,
    limit: PageSize,
    cursor: &str,
    offset: u32,
) -> Result<SearchPage> {
    let start = if cursor.is_empty() {
        if offset > MAX_OFFSET {
            return Err(Error::invalid(
                "offset",
                format!("must be at most {MAX_OFFSET}; use the cursor"),
            ));
        }
        None
    } else {
        Some(Cursor::decode(cursor)?)
    };
    let skip = if start.is_none() { offset as usize } else { 0 };
    let wanted = skip + limit.0 as usize;
    let (mut users, last) = collect(pool, query, start, wanted).await?;
    let next_cursor = (users.len() == wanted)
        .then(|| last.map(|cursor| cursor.encode()))
        .flatten();
    users.drain(..skip.min(users.len()));
    Ok(SearchPage { users, next_cursor })
}

/// Up to `wanted` users from `start` on, and the cursor after the last one.
async fn collect(
    pool: &PgPool,
    query: &SearchQuery,
    start: Option<Cursor>,
    wanted: usize,
) -> Result<(Vec<UserRow>, Option<Cursor>)> {
    if query.as_str().is_empty() {
        return newest(pool, start, wanted).await;
    }
    let pattern = query.like_prefix();
    let mut tier = match &start {
        None | Some(Cursor::Username(_)) => 1,
        Some(Cursor::DisplayName(..)) => 2,
        Some(Cursor::Fuzzy(_)) => 3,
        Some(Cursor::Newest(_)) => return Err(cursor_mismatch()),
    };
    let mut users: Vec<UserRow> = Vec::with_capacity(wanted);
    let mut last = start;
    while users.len() < wanted && tier <= 3 {
        let left = (wanted - users.len()) as i64;
        let (fetched, position) =
            next_in_tier(pool, query, &pattern, tier, last.as_ref(), left).await?;
        if position.is_some() {
            last = position;
        }
        let exhausted = (fetched.len() as i64) < left;
        users.extend(fetched);
        if exhausted {
            tier += 1;
            // The next tier starts from its beginning.
            last = match tier {
                2 => Some(Cursor::DisplayName(None)),
                3 => Some(Cursor::Fuzzy(0)),
                _ => last,
            };
        }
    }
    Ok((users, last))
}

/// The empty query: everyone, newest first.
async fn newest(
    pool: &PgPool,
    start: Option<Cursor>,
    wanted: usize,
) -> Result<(Vec<UserRow>, Option<Cursor>)> {
    let before = match start {
        None => None,
        Some(Cursor::Newest(id)) => Some(id),
        Some(_) => return Err(cursor_mismatch()),
    };
    let users = repo::users_newest_first(pool, before, wanted as i64).await?;
    let last = users.last().map(|user| Cursor::Newest(user.id));
    Ok((users, last))
}

/// Up to `limit` matches of `tier` after `position`, and the cursor after
/// the last of them (`None`: no row moved it).
async fn next_in_tier(
    pool: &PgPool,
    query: &SearchQuery,
    pattern: &str,
    tier: u8,
    position: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<UserRow>, Option<Cursor>)> {
    match tier {
        1 => {
            let after = match position {
                Some(Cursor::Username(name)) => Some(name.as_str()),
                _ => None,
            };
            let rows =
                repo::username_prefix_matches(pool, query.as_str(), pattern, after, limit).await?;
            let last = rows
                .last()
                .map(|row| Cursor::Username(row.username.clone()));
            Ok((rows, last))
        }
        2 => {
            let after = match position {
                Some(Cursor::DisplayName(id)) => *id,
                _ => None,
            };
            let rows =
                repo::display_name_prefix_matches(pool, query.as_str(), pattern, after, limit)
                    .await?;
            let last = rows.last().map(|row| Cursor::DisplayName(Some(row.id)));
            Ok((rows, last))
        }
        _ => {
            let offset = match position {
                Some(Cursor::Fuzzy(offset)) => *offset,
                _ => 0,
            };
            let rows = repo::fuzzy_matches(pool, pattern, query.as_str(), i64::from(offset), limit)
                .await?;
            let last = Cursor::Fuzzy(offset + rows.len() as u32);
            Ok((rows, Some(last)))
        }
    }
}

fn cursor_mismatch() -> Error {
    Error::invalid("cursor", "belongs to a different query")
}

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = match self {
            Cursor::Newest(id) => format!("n:{id}"),
            Cursor::Username(name) => format!("u:{name}"),
            Cursor::DisplayName(Some(id)) => format!("d:{id}"),
            Cursor::DisplayName(None) => "d:".to_owned(),
            Cursor::Fuzzy(offset) => format!("f:{offset}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(cursor: &str) -> Result<Self> {
        let invalid = || Error::invalid("cursor", "is not a cursor returned by this API");
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.trim())
            .map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (kind, rest) = text.split_once(':').ok_or_else(invalid)?;
        let uuid = |raw: &str| Uuid::parse_str(raw).map_err(|_| invalid());
        match kind {
            "n" => Ok(Cursor::Newest(uuid(rest)?)),
            // The last username shown: only what a username may hold.
            "u" if !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                Ok(Cursor::Username(rest.to_owned()))
            }
            "d" if rest.is_empty() => Ok(Cursor::DisplayName(None)),
            "d" => Ok(Cursor::DisplayName(Some(uuid(rest)?))),
            "f" => rest.parse().map(Cursor::Fuzzy).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for cursor in [
            Cursor::Newest(Uuid::now_v7()),
            Cursor::Username("anna_ivanov".into()),
            Cursor::DisplayName(Some(Uuid::now_v7())),
            Cursor::DisplayName(None),
            Cursor::Fuzzy(40),
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()).expect("valid"), cursor);
        }
    }

    #[test]
    fn garbage_cursors_are_invalid_arguments() {
        for bad in [
            "",
            "!!!",
            "Zm9v",
            &URL_SAFE_NO_PAD.encode("f:x"),
            &URL_SAFE_NO_PAD.encode("n:nope"),
        ] {
            assert!(matches!(
                Cursor::decode(bad),
                Err(Error::InvalidArgument {
                    field: "cursor",
                    ..
                })
            ));
        }
    }
}
