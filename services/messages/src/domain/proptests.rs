//! Property tests of the messages service's input types: content (and what
//! is derived from it: mentions, excerpts), idempotency keys, reactions,
//! ids, search queries, message types and page sizes. Arbitrary input never
//! panics, a value is accepted exactly when the documented rule holds
//! (restated here), refusals name their field, and accepted values are
//! normalised idempotently.
//!
//! `PROPTEST_CASES=100000 cargo test -p messenger-messages proptests` for a
//! long run.

use super::*;
use proptest::prelude::*;

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

/// Arbitrary text, plus message-like text: words, `@mentions`, emails,
/// whitespace, controls and multi-byte characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[a-zA-Z0-9_]{1,8}",
        2 => "@[a-zA-Z0-9_]{0,40}",
        1 => "[a-z]{1,5}@[a-z]{3,6}\\.com",
        2 => prop::sample::select(vec![" ", "\n", "\t", "\r", "\u{0}", "\u{1b}", "\u{7f}", "\u{85}", "\u{a0}",
            "(", ".", "я", "İ", "👍", "👨‍👩‍👧", "é", "@"]).prop_map(str::to_owned),
    ];
    let interesting = prop::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat());
    prop_oneof![3 => interesting, 1 => any::<String>()]
}

fn uuid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<u128>().prop_map(|id| format!(" {} ", Uuid::from_u128(id))),
        any::<u128>().prop_map(|id| Uuid::from_u128(id).simple().to_string().to_uppercase()),
        Just(String::new()),
        Just(" ".to_owned()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn content(raw in prop_oneof![text(40), "a{3990,4010}", "я{3990,4010}"]) {
        let value = raw.trim();
        let valid = value.chars().count() <= MAX_CONTENT_CHARS
            && value.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'));
        match Content::parse(&raw) {
            Ok(content) => {
                prop_assert!(valid, "{:?} accepted", raw);
                prop_assert_eq!(content.as_str(), value);
                prop_assert_eq!(content.is_empty(), value.is_empty());
                prop_assert_eq!(Content::parse(content.as_str()).ok(), Some(content));
            }
            Err(error) => {
                prop_assert!(!valid, "{:?} refused", raw);
                prop_assert_eq!(field_of(&error), Some("content"));
            }
        }
    }

    #[test]
    fn mentions_are_usernames_written_in_the_content(raw in text(40)) {
        let Ok(content) = Content::parse(&raw) else { return Ok(()); };
        let mentions = content.mentioned_usernames();
        let lower = content.as_str().to_ascii_lowercase();
        for (i, name) in mentions.iter().enumerate() {
            prop_assert!((3..=32).contains(&name.len()), "{:?}", name);
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            let written = format!("@{name}");
            prop_assert!(lower.contains(&written), "{:?} not in the text", written);
            prop_assert!(!mentions[..i].contains(name), "duplicate {:?}", name);
        }
        // A mention is found at the start of the text and after a space.
        if let Some(name) = mentions.first() {
            let again = Content::parse(&format!("@{name} {}", content.as_str())).expect("still valid");
            let found = again.mentioned_usernames();
            prop_assert_eq!(found.first(), Some(name));
        }
    }

    #[test]
    fn excerpts_cut_on_characters(raw in text(40), chars in 0usize..50) {
        let Ok(content) = Content::parse(&raw) else { return Ok(()); };
        let excerpt = content.excerpt(chars);
        let total = content.as_str().chars().count();
        if total <= chars {
            prop_assert_eq!(excerpt.as_str(), content.as_str());
        } else {
            let kept: String = content.as_str().chars().take(chars).collect();
            prop_assert_eq!(excerpt, format!("{kept}…"));
        }
    }

    #[test]
    fn idempotency_keys(raw in prop_oneof![
        "[!-~]{0,130}",
        "[ -~]{0,20}",
        any::<String>(),
    ]) {
        let valid = raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_graphic());
        match IdempotencyKey::parse_optional(&raw) {
            Ok(None) => prop_assert!(raw.is_empty()),
            Ok(Some(key)) => {
                prop_assert!(valid && !raw.is_empty());
                prop_assert_eq!(key.as_str(), raw.as_str());
            }
            Err(error) => {
                prop_assert!(!valid);
                prop_assert_eq!(field_of(&error), Some("idempotency_key"));
            }
        }
    }

    #[test]
    fn reactions(raw in prop_oneof![
        ":[a-z0-9_+-]{0,34}:",
        ":[a-zA-Z0-9 _+-]{0,10}:?",
        prop::sample::select(vec!["👍", "👍\u{fe0f}", "👍🏽", "👨‍👩‍👧", "❤", "❤\u{fe0f}", "🇺🇦", " 🎉 ", "👍👍", "a", "©"])
            .prop_map(str::to_owned),
        any::<String>(),
    ]) {
        let value = raw.trim();
        match Emoji::parse(&raw) {
            Ok(emoji) => {
                if let Some(code) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
                    prop_assert!((1..=32).contains(&code.len()));
                    prop_assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b)));
                    prop_assert_eq!(emoji.as_str(), value);
                } else {
                    prop_assert!(emojis::get(value).is_some());
                }
                // The stored form is canonical: it parses to itself.
                prop_assert_eq!(Emoji::parse(emoji.as_str()).ok(), Some(emoji));
            }
            Err(error) => {
                let custom = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')).is_some_and(|code| {
                    (1..=32).contains(&code.len())
                        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b))
                });
                prop_assert!(!custom && emojis::get(value).is_none(), "{:?} refused", raw);
                prop_assert_eq!(field_of(&error), Some("emoji"));
            }
        }
    }

    #[test]
    fn ids(raw in uuid_text()) {
        let expected = Uuid::parse_str(raw.trim()).ok();
        prop_assert_eq!(MessageId::parse(&raw, "message_id").ok().map(|id| id.0), expected);
        match ChannelId::parse_optional(&raw, "channel_id") {
            Ok(None) => prop_assert!(raw.trim().is_empty()),
            Ok(Some(id)) => {
                prop_assert_eq!(Some(id.0), expected);
                prop_assert_eq!(ChannelId::parse(&id.to_string(), "x").ok(), Some(id));
            }
            Err(error) => {
                prop_assert!(expected.is_none());
                prop_assert_eq!(field_of(&error), Some("channel_id"));
            }
        }
    }

    #[test]
    fn search_queries(raw in prop_oneof![text(20), "x{195,205}"]) {
        let value = raw.trim();
        let valid = (1..=200).contains(&value.chars().count()) && !value.chars().any(char::is_control);
        match SearchQuery::parse(&raw) {
            Ok(query) => {
                prop_assert!(valid);
                prop_assert_eq!(query.as_str(), value);
            }
            Err(error) => {
                prop_assert!(!valid);
                prop_assert_eq!(field_of(&error), Some("q"));
            }
        }
    }

    #[test]
    fn message_types_from_clients(raw in prop_oneof![-1i32..6, any::<i32>()]) {
        match MessageKind::from_client(raw) {
            Ok(kind) => {
                let wire = MessageKind::to_pb(kind.as_str());
                prop_assert!(wire != pb::MessageType::System);
                prop_assert!(raw == 0 || wire as i32 == raw);
            }
            Err(error) => {
                prop_assert!(raw == pb::MessageType::System as i32 || pb::MessageType::try_from(raw).is_err());
                prop_assert_eq!(field_of(&error), Some("message_type"));
            }
        }
    }

    #[test]
    fn page_sizes(raw in prop_oneof![0u32..=120, any::<u32>()]) {
        match (raw, limit(raw)) {
            (0, Ok(size)) => prop_assert_eq!(size, 50),
            (1..=100, Ok(size)) => prop_assert_eq!(size, i64::from(raw)),
            (101.., Err(error)) => prop_assert_eq!(field_of(&error), Some("limit")),
            (raw, result) => prop_assert!(false, "{} gave {:?}", raw, result.ok()),
        }
    }
}
