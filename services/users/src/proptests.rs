//! Property tests of the users service's input types and search cursors:
//! arbitrary input never panics, a value is accepted exactly when the
//! documented rule holds (each rule is restated here independently of the
//! code), refusals name their field, and accepted values are normalised
//! idempotently (parsing the stored form gives the stored form).
//!
//! `PROPTEST_CASES=100000 cargo test -p messenger-users proptests` for a
//! long run.

use crate::domain::*;
use crate::error::{Error, Result};
use crate::search::Cursor;
use proptest::prelude::*;

/// `PROPTEST_CASES` sets the number of cases (proptest's 256 otherwise);
/// failures are reported, not saved to files beside the sources.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn field<T>(result: &Result<T>) -> Option<&'static str> {
    result.as_ref().err().and_then(field_of)
}

fn field_of(error: &Error) -> Option<&'static str> {
    match error {
        Error::InvalidArgument { field, .. } => Some(field),
        _ => None,
    }
}

/// Arbitrary text, plus text made of what the rules care about: ASCII
/// letters, digits, `_`, `@`, `.`, `-`, whitespace, controls and non-ASCII.
fn text(max: usize) -> impl Strategy<Value = String> {
    let interesting = prop::collection::vec(
        prop_oneof![
            6 => prop::char::range('a', 'z'),
            2 => prop::char::range('A', 'Z'),
            2 => prop::char::range('0', '9'),
            1 => prop::sample::select(vec!['_', '@', '.', '-', '+', ' ', '\t', '\n', '\u{0}', '\u{7f}',
                '\u{85}', '\u{a0}', '\u{2028}', 'ö', 'я', 'İ', 'ß', 'K', '👍', '\u{200b}']),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![3 => interesting, 1 => any::<String>()]
}

fn chars(value: &str) -> usize {
    value.chars().count()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn usernames(raw in text(40)) {
        let trimmed = raw.trim();
        let valid = (3..=32).contains(&chars(trimmed))
            && trimmed.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let parsed = Username::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", raw);
        match parsed {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), trimmed.to_ascii_lowercase());
                prop_assert_eq!(Username::parse(name.as_str()).ok(), Some(name));
            }
            Err(error) => prop_assert_eq!(field_of(&error), Some("username")),
        }
    }

    #[test]
    fn emails(raw in prop_oneof![
        text(80),
        "[a-z0-9._+-]{0,70}@[a-z0-9.-]{0,20}",
        "[a-z0-9._+-]{1,20}@[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){1,3}",
    ]) {
        let email = raw.trim();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && match email.split_once('@') {
                None => false,
                Some((local, domain)) => {
                    !local.is_empty()
                        && local.len() <= 64
                        && domain.len() >= 3
                        && !domain.contains('@')
                        && domain.split('.').count() >= 2
                        && domain.split('.').all(|label| {
                            !label.is_empty() && !label.starts_with('-') && !label.ends_with('-')
                        })
                }
            };
        let parsed = Email::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", raw);
        match parsed {
            Ok(parsed) => {
                prop_assert_eq!(parsed.as_str(), email);
                prop_assert_eq!(Email::parse(parsed.as_str()).ok(), Some(parsed));
            }
            Err(error) => prop_assert_eq!(field_of(&error), Some("email")),
        }
    }

    #[test]
    fn display_names(raw in text(70)) {
        let name = raw.trim();
        let valid = (1..=64).contains(&chars(name)) && !name.chars().any(char::is_control);
        let parsed = DisplayName::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", raw);
        match parsed {
            Ok(parsed) => {
                prop_assert_eq!(parsed.as_str(), name);
                prop_assert_eq!(DisplayName::parse(parsed.as_str()).ok(), Some(parsed));
            }
            Err(error) => prop_assert_eq!(field_of(&error), Some("display_name")),
        }
    }

    #[test]
    fn bios(raw in prop_oneof![text(40), text(520)]) {
        let bio = raw.trim();
        let valid = chars(bio) <= 500 && !bio.chars().any(|c| c.is_control() && c != '\n');
        let parsed = Bio::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", raw);
        match parsed {
            Ok(parsed) => {
                prop_assert_eq!(parsed.as_str(), bio);
                prop_assert_eq!(Bio::parse(parsed.as_str()).ok(), Some(parsed));
            }
            Err(error) => prop_assert_eq!(field_of(&error), Some("bio")),
        }
    }

    #[test]
    fn passwords(raw in prop_oneof![text(12), text(300)]) {
        let valid = (8..=256).contains(&chars(&raw));
        match Password::parse(&raw) {
            // Kept exactly: spaces and all.
            Ok(password) => prop_assert!(valid && password.expose() == raw),
            Err(error) => {
                prop_assert!(!valid);
                prop_assert_eq!(field_of(&error), Some("password"));
            }
        }
    }

    #[test]
    fn search_queries(raw in text(110)) {
        let query = raw.trim().to_lowercase();
        let valid = chars(&query) <= 100 && !query.chars().any(char::is_control);
        let parsed = SearchQuery::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", raw);
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed.as_str(), query.as_str());
            // The LIKE pattern: the query with % _ \ escaped, then one
            // wildcard at the end.
            let pattern = parsed.like_prefix();
            let mut unescaped = String::new();
            let mut rest = pattern.chars();
            let mut wildcards = 0;
            while let Some(c) = rest.next() {
                match c {
                    '\\' => unescaped.push(rest.next().expect("escape has a character")),
                    '%' | '_' => wildcards += 1,
                    c => unescaped.push(c),
                }
            }
            prop_assert_eq!(wildcards, 1);
            prop_assert!(pattern.ends_with('%'));
            prop_assert_eq!(unescaped, query);
        }
    }

    #[test]
    fn page_sizes(raw in prop_oneof![0u32..=120, any::<u32>()]) {
        match (raw, PageSize::parse(raw)) {
            (0, Ok(size)) => prop_assert_eq!(size.0, 20),
            (1..=100, Ok(size)) => prop_assert_eq!(size.0, i64::from(raw)),
            (101.., Err(error)) => prop_assert_eq!(field_of(&error), Some("limit")),
            (raw, result) => prop_assert!(false, "{} gave {:?}", raw, result.map(|size| size.0)),
        }
    }

    #[test]
    fn user_ids(raw in prop_oneof![
        any::<String>(),
        any::<u128>().prop_map(|id| format!(" {} ", uuid::Uuid::from_u128(id))),
        any::<u128>().prop_map(|id| uuid::Uuid::from_u128(id).simple().to_string().to_uppercase()),
    ]) {
        let expected = uuid::Uuid::parse_str(raw.trim()).ok();
        let parsed = UserId::parse(&raw, "user_id");
        prop_assert_eq!(parsed.as_ref().ok().map(|id| id.0), expected);
        if parsed.is_err() {
            prop_assert_eq!(field(&parsed), Some("user_id"));
        }
    }

    #[test]
    fn search_cursors_round_trip(cursor in prop_oneof![
        any::<u128>().prop_map(|id| Cursor::Newest(uuid::Uuid::from_u128(id))),
        "[a-z0-9_]{3,32}".prop_map(Cursor::Username),
        any::<u128>().prop_map(|id| Cursor::DisplayName(Some(uuid::Uuid::from_u128(id)))),
        Just(Cursor::DisplayName(None)),
        any::<u32>().prop_map(Cursor::Fuzzy),
    ]) {
        let encoded = cursor.encode();
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(Cursor::decode(&encoded).ok(), Some(cursor));
    }

    #[test]
    fn garbage_cursors_are_refused_not_panics(raw in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,60}",
        "[nudfx]:.{0,40}".prop_map(|raw| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, raw)),
    ]) {
        let decoded = Cursor::decode(&raw);
        if decoded.is_err() {
            prop_assert_eq!(field(&decoded), Some("cursor"));
        }
        if let Ok(Cursor::Username(name)) = &decoded {
            // Only what a username may hold reaches the query.
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
        if let Ok(cursor) = decoded {
            // Whatever decodes is a cursor this API could have written.
            prop_assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        }
    }
}
