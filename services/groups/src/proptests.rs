//! Property tests of the groups service's input types: names, descriptions,
//! topics and ban reasons, ids, visibility, roles, page sizes and cursors.
//! Arbitrary input never panics, a value is accepted exactly when the
//! documented rule holds (restated here), refusals name their field, and
//! accepted values are normalised idempotently.
//!
//! `PROPTEST_CASES=100000 cargo test -p messenger-groups proptests` for a
//! long run.

use crate::domain::*;
use crate::error::Error;
use crate::groups::{decode_name_cursor, encode_name_cursor};
use crate::permissions::Role;
use proptest::prelude::*;
use uuid::Uuid;

/// `PROPTEST_CASES` sets the number of cases (proptest's 256 otherwise);
/// failures are reported, not saved to files beside the sources.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn field_of(error: &Error) -> Option<&'static str> {
    match error {
        Error::InvalidArgument { field, .. } => Some(field),
        _ => None,
    }
}

/// Arbitrary text, plus text rich in what the rules care about: spaces,
/// newlines, tabs, other controls and multi-byte characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    let interesting = prop::collection::vec(
        prop_oneof![
            8 => prop::char::range('a', 'z'),
            1 => prop::sample::select(vec![' ', '\t', '\n', '\r', '\u{0}', '\u{1b}', '\u{7f}', '\u{85}',
                '\u{a0}', '\u{3000}', 'я', 'İ', '👍', '%', '_', '\\']),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![3 => interesting, 1 => any::<String>()]
}

/// The rule every text field follows: trimmed, `min..=max` characters, no
/// control characters except newline and tab where `multiline`.
fn text_rule(raw: &str, min: usize, max: usize, multiline: bool) -> Option<String> {
    let value = raw.trim();
    let len = value.chars().count();
    let clean = value
        .chars()
        .all(|c| !c.is_control() || (multiline && (c == '\n' || c == '\t')));
    (min <= len && len <= max && clean).then(|| value.to_owned())
}

macro_rules! text_property {
    ($test:ident, $ty:ident, $field:literal, $min:literal, $max:literal, $multiline:literal) => {
        proptest! {
            #![proptest_config(config())]
            #[test]
            fn $test(raw in prop_oneof![text(30), text($max + 20)]) {
                let expected = text_rule(&raw, $min, $max, $multiline);
                match $ty::parse(&raw) {
                    Ok(value) => {
                        prop_assert_eq!(Some(value.as_str()), expected.as_deref(), "{:?}", raw);
                        prop_assert_eq!($ty::parse(value.as_str()).ok(), Some(value.clone()));
                    }
                    Err(error) => {
                        prop_assert!(expected.is_none(), "{:?} refused", raw);
                        prop_assert_eq!(field_of(&error), Some($field));
                    }
                }
            }
        }
    };
}

text_property!(group_names, GroupName, "name", 1, 100, false);
text_property!(descriptions, Description, "description", 0, 1000, true);
text_property!(channel_names, ChannelName, "name", 1, 80, false);
text_property!(topics, Topic, "topic", 0, 500, true);
text_property!(ban_reasons, BanReason, "reason", 0, 500, true);

fn uuid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<u128>().prop_map(|id| format!(" {} ", Uuid::from_u128(id))),
        any::<u128>().prop_map(|id| Uuid::from_u128(id).simple().to_string().to_uppercase()),
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ids(raw in uuid_text()) {
        let expected = Uuid::parse_str(raw.trim()).ok();
        prop_assert_eq!(UserId::parse(&raw, "user_id").ok().map(|id| id.0), expected);
        prop_assert_eq!(GroupId::parse(&raw, "group_id").ok().map(|id| id.0), expected);
        match ChannelId::parse(&raw, "channel_id") {
            // Displayed as the canonical form, which parses to itself.
            Ok(id) => prop_assert_eq!(ChannelId::parse(&id.to_string(), "x").ok(), Some(id)),
            Err(error) => prop_assert_eq!(field_of(&error), Some("channel_id")),
        }
    }

    #[test]
    fn media_ids(raw in uuid_text()) {
        let expected = if raw.trim().is_empty() {
            Some(None)
        } else {
            Uuid::parse_str(raw.trim()).ok().map(Some)
        };
        let parsed = media_id(&raw, "avatar_media_id");
        prop_assert_eq!(parsed.as_ref().ok().copied(), expected);
        if let Err(error) = parsed {
            prop_assert_eq!(field_of(&error), Some("avatar_media_id"));
        }
    }

    #[test]
    fn visibility_from_the_wire(raw in prop_oneof![-2i32..5, any::<i32>()]) {
        for default in [Visibility::Public, Visibility::Private] {
            match (raw, Visibility::parse(raw, default)) {
                (0, Ok(visibility)) => prop_assert_eq!(visibility, default),
                (1 | 2, Ok(visibility)) => {
                    prop_assert_eq!(visibility.to_pb() as i32, raw);
                    prop_assert_eq!(Visibility::from_db(visibility.as_str()), visibility);
                }
                (_, Err(error)) => {
                    prop_assert!(!(0..=2).contains(&raw));
                    prop_assert_eq!(field_of(&error), Some("visibility"));
                }
                (raw, Ok(visibility)) => prop_assert!(false, "{} gave {:?}", raw, visibility),
            }
        }
    }

    #[test]
    fn roles(raw in prop_oneof![
        prop::sample::select(vec!["owner", "admin", "moderator", "member", "Owner", " admin", ""])
            .prop_map(str::to_owned),
        any::<String>(),
    ]) {
        match Role::parse(&raw) {
            Some(role) => prop_assert_eq!(role.as_str(), raw.as_str()),
            None => prop_assert!(!["owner", "admin", "moderator", "member"].contains(&raw.as_str())),
        }
    }

    #[test]
    fn page_sizes(raw in prop_oneof![0u32..=120, any::<u32>()]) {
        match (raw, PageSize::parse(raw)) {
            (0, Ok(size)) => prop_assert_eq!(size.0, 50),
            (1..=100, Ok(size)) => prop_assert_eq!(size.0, i64::from(raw)),
            (101.., Err(error)) => prop_assert_eq!(field_of(&error), Some("limit")),
            (raw, result) => prop_assert!(false, "{} gave {:?}", raw, result.map(|size| size.0)),
        }
    }

    #[test]
    fn id_cursors(raw in uuid_text()) {
        // Cursors are what the API returned, exactly: no trimming.
        let expected = if raw.is_empty() { Some(None) } else { Uuid::parse_str(&raw).ok().map(Some) };
        let parsed = id_cursor(&raw);
        prop_assert_eq!(parsed.as_ref().ok().copied(), expected);
        if let Err(error) = parsed {
            prop_assert_eq!(field_of(&error), Some("cursor"));
        }
    }

    #[test]
    fn name_cursors_round_trip(name in text(120), id in any::<u128>()) {
        // Cursors are made from stored names, which are valid group names.
        let Ok(name) = GroupName::parse(&name) else { return Ok(()); };
        let name = name.as_str();
        let id = Uuid::from_u128(id);
        let cursor = encode_name_cursor(name, id);
        let decoded = decode_name_cursor(&cursor).expect("its own cursor");
        prop_assert_eq!(decoded, Some((name.to_lowercase(), id)));
    }

    #[test]
    fn garbage_name_cursors_are_refused_not_panics(raw in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,80}",
        (".{0,20}", uuid_text()).prop_map(|(name, id)| {
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, format!("{name}\n{id}"))
        }),
    ]) {
        match decode_name_cursor(&raw) {
            Ok(None) => prop_assert!(raw.is_empty()),
            Ok(Some((name, id))) => {
                prop_assert!(!name.chars().any(char::is_control), "{:?}", name);
                let again = decode_name_cursor(&encode_name_cursor(&name, id)).expect("round trip");
                prop_assert_eq!(again.map(|(_, again)| again), Some(id));
            }
            Err(error) => prop_assert_eq!(field_of(&error), Some("cursor")),
        }
    }
}
