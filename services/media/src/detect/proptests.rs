//! Property tests of what the media service decides from client input:
//! the stored filename and the detected type. Arbitrary input never panics,
//! a sanitised name follows the documented rule and sanitising it again
//! changes nothing, and a type is accepted only from the allow-list.
//!
//! `PROPTEST_CASES=100000 cargo test -p messenger-media proptests` for a
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

/// Names rich in what sanitising cares about: paths, dots, spaces,
/// controls, reserved characters, long names and multi-byte characters.
fn filename() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[a-zA-Z0-9_-]{1,12}",
        2 => prop::sample::select(vec![".", "..", "/", "\\", " ", "\t", "\n", "\u{0}", "\u{7f}", "\u{85}", "\u{a0}",
            "\u{3000}", "\"", "<", ">", ":", "|", "?", "*", "я", "👍", ".png"]).prop_map(str::to_owned),
        1 => "x{240,260}",
    ];
    let interesting = prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat());
    prop_oneof![3 => interesting, 1 => any::<String>()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn filenames_are_safe_and_sanitising_is_idempotent(raw in filename()) {
        let name = sanitize_filename(&raw);
        prop_assert!(!name.is_empty());
        prop_assert!(name.chars().count() <= 255, "{} characters", name.chars().count());
        prop_assert!(!name.chars().any(|c| c.is_control() || "/\\\"<>:|?*".contains(c)), "{:?}", name);
        prop_assert!(!name.starts_with('.'), "hidden: {:?}", name);
        prop_assert_eq!(name.trim(), name.as_str());
        prop_assert_eq!(sanitize_filename(&name), name.clone(), "not idempotent for {:?}", raw);
        // The name is what was left of the last path component.
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        if name != "file" {
            prop_assert!(name.chars().all(|c| last.contains(c)), "{:?} from {:?}", name, last);
        }
    }

    #[test]
    fn only_allowed_types_pass(
        head in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            (prop::sample::select(vec![
                &b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"[..],
                &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
                &b"GIF89a"[..],
                &b"%PDF-1.7\n"[..],
                &b"PK\x03\x04"[..],
                &b"MZ\x90\0"[..],
                &b"<html><script>"[..],
            ]), prop::collection::vec(any::<u8>(), 0..32))
                .prop_map(|(magic, rest)| [magic, &rest[..]].concat()),
        ],
        declared in prop_oneof![
            prop::sample::select(vec!["", "application/octet-stream", "image/png", "IMAGE/PNG; q=1",
                "image/jpg", "image/jpeg", "application/pdf", "text/html"]).prop_map(str::to_owned),
            any::<String>(),
        ],
    ) {
        match classify(&head, &declared) {
            Ok((mime, kind)) => {
                prop_assert_eq!(allowed(mime), Some(kind));
                let essence = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                prop_assert!(
                    ["", "application/octet-stream", "binary/octet-stream"].contains(&essence.as_str())
                        || same_type(&essence, mime),
                    "{} accepted as {:?}", mime, declared
                );
            }
            Err(error) => prop_assert!(matches!(error, Error::UnsupportedType(_))),
        }
    }
}
