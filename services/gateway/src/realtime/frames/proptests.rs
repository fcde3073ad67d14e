//! Property tests of the client frame parser, the first code that sees what
//! a WebSocket client sends: arbitrary text and structurally plausible JSON
//! never panic, everything accepted is a known frame, and every frame a
//! client may send parses back to itself. Also the Redis room keys.
//!
//! `PROPTEST_CASES=100000 cargo test -p messenger-gateway proptests` runs them
//! longer than CI's default.

use super::{CLIENT_FRAME_TYPES, ClientFrame, MAX_CLIENT_FRAME};
use crate::realtime::rooms::Room;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// `PROPTEST_CASES` sets the number of cases (proptest's 256 otherwise);
/// failures are reported, not saved to files beside the sources.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// JSON without floats (serde_json does not promise to read every float
/// back bit for bit), nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        uuid().prop_map(|id| Value::from(id.to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((field_name(), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Field names the parser looks for, and a few it does not.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["type", "data", "room_id", "channel_id", "token", "n", "rooms"])
            .prop_map(str::to_owned),
        1 => "[a-z_]{0,8}",
    ]
}

fn frame_type() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(CLIENT_FRAME_TYPES.to_vec()).prop_map(str::to_owned),
        1 => ".{0,10}",
    ]
}

/// Objects shaped like frames: a known or made-up type and data that is
/// right, nearly right or anything.
fn plausible_frame() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        json_value(),
        uuid().prop_map(|id| json!({"room_id": id.to_string()})),
        (uuid(), json_value())
            .prop_map(|(id, extra)| json!({"room_id": id.to_string(), "x": extra})),
        (proptest::option::of(uuid()), proptest::option::of(uuid()))
            .prop_map(|(room, channel)| json!({"room_id": room, "channel_id": channel})),
        any::<i64>().prop_map(|n| json!({"n": n})),
        prop::collection::vec((".{0,40}", json_value()), 0..4)
            .prop_map(|rooms| { json!({"rooms": rooms.into_iter().collect::<Map<_, _>>()}) }),
        prop::collection::hash_map(uuid(), any::<u64>(), 0..4)
            .prop_map(|rooms| json!({"rooms": rooms})),
    ];
    (frame_type(), proptest::option::of(data), json_value()).prop_map(|(kind, data, noise)| {
        let mut frame = Map::new();
        frame.insert("type".into(), Value::from(kind));
        if let Some(data) = data {
            frame.insert("data".into(), data);
        }
        if noise.is_object() {
            frame.insert("extra".into(), noise);
        }
        Value::Object(frame)
    })
}

/// Every frame a client may send (tokens kept short enough for the size
/// limit).
fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        ".{0,512}".prop_map(|token| ClientFrame::Auth { token }),
        uuid().prop_map(|room_id| ClientFrame::JoinRoom { room_id }),
        uuid().prop_map(|room_id| ClientFrame::LeaveRoom { room_id }),
        uuid().prop_map(|room_id| ClientFrame::Typing { room_id }),
        json_value().prop_map(|data| ClientFrame::Ping { data }),
        any::<u64>().prop_map(|n| ClientFrame::Pong { n }),
        prop::collection::hash_map(uuid(), any::<u64>(), 0..16)
            .prop_map(|rooms| ClientFrame::Resume { rooms }),
        any::<bool>().prop_map(|away| ClientFrame::Presence { away }),
    ]
}

/// What a client library would write for `frame`.
fn encode(frame: &ClientFrame) -> String {
    let (kind, data) = match frame {
        ClientFrame::Auth { token } => ("auth", json!({"token": token})),
        ClientFrame::JoinRoom { room_id } => ("join_room", json!({"room_id": room_id})),
        ClientFrame::LeaveRoom { room_id } => ("leave_room", json!({"room_id": room_id})),
        ClientFrame::Typing { room_id } => ("typing", json!({"channel_id": room_id})),
        ClientFrame::Ping { data } => ("ping", data.clone()),
        ClientFrame::Pong { n } => ("pong", json!({"n": n})),
        ClientFrame::Resume { rooms } => ("resume", json!({"rooms": rooms})),
        ClientFrame::Presence { away } => (
            "presence",
            json!({"status": if *away { "away" } else { "online" }}),
        ),
    };
    json!({"type": kind, "data": data}).to_string()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let parsed = ClientFrame::parse(&text);
        if text.len() > MAX_CLIENT_FRAME {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ClientFrame::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn oversized_frames_are_refused(frame in client_frame(), padding in MAX_CLIENT_FRAME..MAX_CLIENT_FRAME + 64) {
        let text = format!("{}{}", encode(&frame), " ".repeat(padding));
        prop_assert!(ClientFrame::parse(&text).is_err());
    }

    #[test]
    fn plausible_json_never_panics_and_only_known_types_pass(frame in plausible_frame()) {
        let text = frame.to_string();
        if let Ok(parsed) = ClientFrame::parse(&text) {
            let kind = frame["type"].as_str().unwrap_or_default();
            prop_assert!(CLIENT_FRAME_TYPES.contains(&kind), "accepted type {kind:?}");
            // A second look at the same text gives the same answer.
            prop_assert_eq!(ClientFrame::parse(&text), Ok(parsed));
        }
    }

    #[test]
    fn any_json_never_panics(value in json_value()) {
        let _ = ClientFrame::parse(&value.to_string());
    }

    #[test]
    fn valid_frames_round_trip(frame in client_frame()) {
        prop_assert_eq!(ClientFrame::parse(&encode(&frame)), Ok(frame));
    }

    #[test]
    fn typing_prefers_the_channel(room in uuid(), channel in uuid()) {
        let text = json!({"type": "typing", "data": {"room_id": room, "channel_id": channel}}).to_string();
        prop_assert_eq!(ClientFrame::parse(&text), Ok(ClientFrame::Typing { room_id: channel }));
    }

    #[test]
    fn unknown_fields_in_data_are_refused(room in uuid(), field in "[a-z]{1,8}") {
        prop_assume!(!["room_id", "channel_id"].contains(&field.as_str()));
        for kind in ["join_room", "leave_room", "typing"] {
            let text = json!({"type": kind, "data": {"room_id": room, field.clone(): 1}}).to_string();
            prop_assert!(ClientFrame::parse(&text).is_err(), "{}", text);
        }
    }

    #[test]
    fn room_keys_round_trip(id in uuid(), user in any::<bool>()) {
        let room = if user { Room::User(id) } else { Room::Conversation(id) };
        prop_assert_eq!(Room::parse_key(&room.key()), Some(room));
        prop_assert_eq!(room.id(), id);
    }

    #[test]
    fn room_keys_accept_exactly_kind_and_uuid(key in prop_oneof![
        any::<String>(),
        ("[cux]", ".{0,40}").prop_map(|(kind, rest)| format!("{kind}:{rest}")),
        ("[cu]", uuid()).prop_map(|(kind, id)| format!("{kind}:{id}")),
    ]) {
        let expected = key.split_once(':').and_then(|(kind, id)| {
            let id = Uuid::parse_str(id).ok()?;
            match kind {
                "c" => Some(Room::Conversation(id)),
                "u" => Some(Room::User(id)),
                _ => None,
            }
        });
        prop_assert_eq!(Room::parse_key(&key), expected);
    }
}

#[test]
fn the_encoder_writes_what_the_protocol_documents() {
    let room = Uuid::nil();
    let frame = ClientFrame::Resume {
        rooms: HashMap::from([(room, 3)]),
    };
    assert_eq!(
        encode(&frame),
        format!(r#"{{"data":{{"rooms":{{"{room}":3}}}},"type":"resume"}}"#)
    );
}
