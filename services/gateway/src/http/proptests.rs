//! Property tests of the gateway's own input parsers (what it checks before
//! calling a service): enum fields, timestamps, `Range`, `If-None-Match`,
//! `Content-Disposition`, `Idempotency-Key` and id lists. Arbitrary input
//! never panics, a value is accepted exactly when the documented rule says
//! so, and accepted values round-trip.
//!
//! `PROPTEST_CASES=100000 cargo test -p messenger-gateway proptests` for a long
//! run.

use super::media::headers::{
    ByteRange, content_disposition, disposition_filename, none_match, parse_range,
};
use super::messages::message::idempotency_key;
use super::messages::reads::channel_ids;
use crate::api::groups::{Role, Visibility, parse_timestamp};
use crate::api::messages::MessageType;
use crate::realtime::frames::proptests::config;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// Mostly the words a field takes, near misses, and anything.
fn word(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(valid.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(valid.to_vec()).prop_map(str::to_uppercase),
        1 => prop::sample::select(valid.to_vec()).prop_map(|word| format!(" {word}")),
        2 => any::<String>(),
    ]
}

fn is_bad_request_on(error: &crate::error::ApiError, field: &str) -> bool {
    error.status == StatusCode::BAD_REQUEST
        && error.details.get("field").and_then(|value| value.as_str()) == Some(field)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn roles_accept_exactly_the_four_names(raw in word(&["owner", "admin", "moderator", "member"])) {
        let valid = ["owner", "admin", "moderator", "member"].contains(&raw.as_str());
        match Role::parse("role", &raw) {
            // The wire value reads back as the same role.
            Ok(role) => prop_assert!(valid && Role::from_pb(role.to_pb()) == Some(role)),
            Err(error) => prop_assert!(!valid && is_bad_request_on(&error, "role")),
        }
    }

    #[test]
    fn visibilities_accept_public_and_private(raw in word(&["public", "private"])) {
        let valid = raw == "public" || raw == "private";
        prop_assert_eq!(Visibility::parse("visibility", &raw).is_ok(), valid);
        if let Ok(visibility) = Visibility::parse("visibility", &raw) {
            // The wire value names the same visibility.
            let public = visibility.to_pb() == Visibility::Public.to_pb();
            prop_assert_eq!(public, raw == "public");
        }
    }

    #[test]
    fn clients_send_text_image_and_file_only(raw in word(&["text", "image", "file", "system"])) {
        let valid = ["text", "image", "file"].contains(&raw.as_str());
        match MessageType::parse_sendable("message_type", &raw) {
            Ok(kind) => {
                prop_assert!(valid);
                prop_assert!(kind != MessageType::System);
            }
            Err(error) => {
                prop_assert!(!valid);
                prop_assert!(is_bad_request_on(&error, "message_type"));
            }
        }
    }

    #[test]
    fn timestamps_never_panic(raw in prop_oneof![
        any::<String>(),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
    ]) {
        let parsed = parse_timestamp("muted_until", &raw);
        prop_assert_eq!(parsed.is_ok(), OffsetDateTime::parse(&raw, &Rfc3339).is_ok());
        if let Ok(at) = parsed {
            prop_assert!((0..1_000_000_000).contains(&at.nanos));
        }
    }

    #[test]
    fn timestamps_round_trip(seconds in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
        let at = OffsetDateTime::from_unix_timestamp(seconds).expect("in range")
            .replace_nanosecond(nanos).expect("valid nanoseconds");
        let text = at.format(&Rfc3339).expect("formats");
        let parsed = parse_timestamp("muted_until", &text).expect("its own format");
        prop_assert_eq!(parsed.seconds, seconds);
        prop_assert_eq!(parsed.nanos, i32::try_from(nanos).expect("small"));
    }

    #[test]
    fn range_headers_never_panic(raw in prop_oneof![
        any::<String>(),
        "[bB]ytes ?= ?[0-9 ]{0,22}-?[0-9 ]{0,22}(,[0-9]-[0-9])?",
    ]) {
        if let Some(range) = parse_range(&raw) {
            let _ = range.offset_length();
            if let ByteRange::FromTo(start, end) = range {
                prop_assert!(start <= end);
            }
            prop_assert!(!raw.contains(','));
        }
    }

    #[test]
    fn ranges_round_trip(start in any::<u64>(), length in any::<u64>(), form in 0..3) {
        let (text, range) = match form {
            0 => (format!("bytes={start}-"), ByteRange::From(start)),
            1 => (format!("bytes=-{length}"), ByteRange::Suffix(length)),
            _ => {
                let end = start.saturating_add(length);
                (format!("bytes={start}-{end}"), ByteRange::FromTo(start, end))
            }
        };
        prop_assert_eq!(parse_range(&text), Some(range));
        if let ByteRange::FromTo(start, end) = range {
            prop_assert_eq!(range.offset_length(), Some((start, (end - start).saturating_add(1))));
        }
    }

    #[test]
    fn etags_match_quoted_weak_and_star(etag in "[0-9a-f]{1,64}", other in any::<String>()) {
        for header in [format!("\"{etag}\""), format!("W/\"{etag}\""), format!("\"x\", \"{etag}\"")] {
            prop_assert!(none_match(&header, &etag), "{} does not match", header);
        }
        prop_assert!(none_match("*", &etag));
        prop_assert!(!none_match(&etag, &etag), "an unquoted tag is not a match");
        let _ = none_match(&other, &etag);
    }

    /// What the download writes, the upload reads back exactly, and it is
    /// always a valid header value.
    #[test]
    fn content_disposition_round_trips(
        name in ".{1,80}",
        content_type in prop::sample::select(vec!["image/png", "application/pdf", "image/svg+xml", ""]),
    ) {
        let header = content_disposition(content_type, &name);
        prop_assert!(HeaderValue::from_str(&header).is_ok(), "not a header value: {}", header);
        let expected = (!name.trim().is_empty()).then(|| name.clone());
        prop_assert_eq!(disposition_filename(&header), expected);
    }

    #[test]
    fn content_disposition_parsing_never_panics(raw in prop_oneof![
        any::<String>(),
        "(attachment|inline); ?(filename\\*?=(\"[^\"]{0,10}\"?|[^;]{0,10});? ?){0,3}",
        "attachment; filename\\*=(UTF-8|utf-8|latin1)'[a-z]{0,2}'(%[0-9A-Fa-f]{0,2}|[a-z.]){0,10}",
    ]) {
        if let Some(name) = disposition_filename(&raw) {
            prop_assert!(!name.trim().is_empty());
        }
    }

    /// `Idempotency-Key` (trimmed; ASCII only) or `client_id`; both only
    /// if equal; empty means absent.
    #[test]
    fn idempotency_keys_come_from_header_or_body(
        header in proptest::option::of(prop_oneof![" ?[!-~]{0,20} ?", any::<String>()]),
        client_id in proptest::option::of(prop_oneof!["[!-~]{0,20}", any::<String>()]),
    ) {
        let mut headers = HeaderMap::new();
        let header = header.and_then(|raw| HeaderValue::from_str(&raw).ok().map(|value| (raw, value)));
        if let Some((_, value)) = &header {
            headers.insert("idempotency-key", value.clone());
        }
        let from_header = header.as_ref().map(|(raw, _)| raw.trim().to_owned()).filter(|key| !key.is_empty());
        let from_body = client_id.clone().filter(|key| !key.is_empty());
        let result = idempotency_key(&headers, client_id);
        if header.as_ref().is_some_and(|(raw, _)| !raw.is_ascii()) {
            // Header values beyond ASCII are refused, naming the header.
            let error = result.err().expect("refused");
            prop_assert!(is_bad_request_on(&error, "Idempotency-Key"));
            return Ok(());
        }
        match (&from_header, &from_body) {
            (Some(a), Some(b)) if a != b => prop_assert!(result.is_err()),
            (Some(key), _) | (None, Some(key)) => {
                let got = result.expect("accepted").expect("present");
                prop_assert_eq!(&got.value, key);
                let field = if from_header.is_some() { "Idempotency-Key" } else { "client_id" };
                prop_assert_eq!(got.field, field);
            }
            (None, None) => prop_assert!(result.expect("accepted").is_none()),
        }
    }

    #[test]
    fn channel_id_lists(items in prop::collection::vec(prop_oneof![
        3 => any::<u128>().prop_map(|id| Uuid::from_u128(id).to_string()),
        1 => any::<u128>().prop_map(|id| format!(" {} ", Uuid::from_u128(id).simple().to_string().to_uppercase())),
        1 => Just(String::new()),
        1 => "[^,]{0,40}",
    ], 0..6)) {
        let raw = items.join(",");
        let valid = items.iter().all(|item| item.trim().is_empty() || Uuid::parse_str(item.trim()).is_ok());
        match channel_ids(Some(&raw)) {
            Ok(ids) => {
                prop_assert!(valid);
                let expected = items.iter().filter(|item| !item.trim().is_empty()).count();
                prop_assert_eq!(ids.len(), expected);
                // Normalised: parsing the output again gives the output.
                prop_assert_eq!(channel_ids(Some(&ids.join(","))).ok(), Some(ids));
            }
            Err(error) => {
                prop_assert!(!valid);
                prop_assert!(is_bad_request_on(&error, "channel_ids"));
            }
        }
    }
}
