//! The WebSocket protocol: frames in both directions and close codes.
//! Every frame is a JSON text message `{"type": ..., "data": {...}}`;
//! frames about a room also carry `room_id` and that room's `seq`.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Close codes the server uses (4000-4999 are the application's).
pub mod close {
    /// No valid token (bad, missing, or no `auth` frame in time).
    pub const UNAUTHENTICATED: u16 = 4001;
    /// The access token expired: refresh it and reconnect, or send an
    /// `auth` frame with a fresh token before it expires.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// The session ended (logout, or a reused refresh token revoked it).
    pub const SESSION_REVOKED: u16 = 4003;
    /// The client did not read its frames fast enough.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Two heartbeats went unanswered.
    pub const HEARTBEAT_TIMEOUT: u16 = 4009;
    /// Too many sockets for this user or this address (the reason says
    /// which); close others first.
    pub const TOO_MANY_SOCKETS: u16 = 4029;
    /// The gateway is shutting down; reconnect (to another replica).
    pub const GOING_AWAY: u16 = 1001;
}

/// Every `type` the server sends. docs/asyncapi.yaml describes each; a
/// test keeps the two in step.
pub const SERVER_FRAME_TYPES: &[&str] = &[
    "connected",
    "auth_ok",
    "room_joined",
    "room_left",
    "resumed",
    "resync_required",
    "heartbeat",
    "pong",
    "error",
    "new_message",
    "edit_message",
    "delete_message",
    "new_reaction",
    "remove_reaction",
    "read_position",
    "thread_updated",
    "notification",
    "user_typing",
    "user_online",
    "user_offline",
    "member_joined",
    "member_left",
    "member_removed",
    "member_updated",
    "channel_created",
    "channel_updated",
    "channel_deleted",
    "channel_member_added",
    "channel_member_removed",
    "group_updated",
    "group_deleted",
    "dm_opened",
];

/// Every `type` a client may send.
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "auth",
    "join_room",
    "leave_room",
    "typing",
    "ping",
    "pong",
    "resume",
    "presence",
];

/// What a client may send.
#[derive(Debug, PartialEq)]
pub enum ClientFrame {
    /// A fresh access token for this connection (or the first frame of a
    /// connection opened without one).
    Auth {
        token: String,
    },
    JoinRoom {
        room_id: Uuid,
    },
    LeaveRoom {
        room_id: Uuid,
    },
    Typing {
        room_id: Uuid,
    },
    Ping {
        data: Value,
    },
    /// The answer to a server `heartbeat`.
    Pong {
        n: u64,
    },
    /// The last `seq` seen per room; the server replays what was missed.
    Resume {
        rooms: HashMap<Uuid, u64>,
    },
    /// Whether this connection is in use (`online`) or not (`away`: the
    /// app went to the background, the screen locked, the user is idle).
    Presence {
        away: bool,
    },
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthData {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomData {
    room_id: Uuid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingData {
    room_id: Option<Uuid>,
    channel_id: Option<Uuid>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PongData {
    n: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeData {
    rooms: HashMap<Uuid, u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceData {
    status: PresenceStatus,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum PresenceStatus {
    Online,
    Away,
}

/// Largest client frame accepted, in bytes.
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;

impl ClientFrame {
    /// Parses a text frame; the error names what was wrong.
    pub fn parse(text: &str) -> Result<ClientFrame, String> {
        if text.len() > MAX_CLIENT_FRAME {
            return Err(format!("frames are limited to {MAX_CLIENT_FRAME} bytes"));
        }
        let raw: Raw = serde_json::from_str(text)
            .map_err(|err| format!("not a {{\"type\", \"data\"}} JSON object: {err}"))?;
        fn data<T: serde::de::DeserializeOwned>(kind: &str, data: Value) -> Result<T, String> {
            serde_json::from_value(data).map_err(|err| format!("bad data for {kind}: {err}"))
        }
        let kind = raw.kind.as_str();
        Ok(match kind {
            "auth" => ClientFrame::Auth {
                token: data::<AuthData>(kind, raw.data)?.token,
            },
            "join_room" => ClientFrame::JoinRoom {
                room_id: data::<RoomData>(kind, raw.data)?.room_id,
            },
            "leave_room" => ClientFrame::LeaveRoom {
                room_id: data::<RoomData>(kind, raw.data)?.room_id,
            },
            "typing" => {
                // The original protocol names both the room and the channel;
                // the channel is the conversation being typed in.
                let typing = data::<TypingData>(kind, raw.data)?;
                let room_id = typing
                    .channel_id
                    .or(typing.room_id)
                    .ok_or("typing needs room_id or channel_id")?;
                ClientFrame::Typing { room_id }
            }
            "ping" => ClientFrame::Ping { data: raw.data },
            "pong" => ClientFrame::Pong {
                n: data::<PongData>(kind, raw.data)?.n,
            },
            "resume" => ClientFrame::Resume {
                rooms: data::<ResumeData>(kind, raw.data)?.rooms,
            },
            "presence" => ClientFrame::Presence {
                away: data::<PresenceData>(kind, raw.data)?.status == PresenceStatus::Away,
            },
            other => return Err(format!("unknown frame type {other:?}")),
        })
    }
}

/// A frame that belongs to no room.
pub fn control(kind: &str, data: Value) -> String {
    json!({"type": kind, "data": data}).to_string()
}

/// A frame about a room without a sequence number (typing, presence):
/// not stored, not replayed.
pub fn ephemeral(kind: &str, room_id: &str, data: Value) -> String {
    json!({"type": kind, "room_id": room_id, "data": data}).to_string()
}

pub fn error(code: &str, message: &str) -> String {
    control("error", json!({"code": code, "message": message}))
}

/// A room frame split around its sequence number, which Redis assigns:
/// `head + seq + tail` is the frame.
pub fn sequenced_parts(kind: &str, room_id: &str, data: &Value) -> (String, String) {
    let head = format!(
        "{{\"type\":{},\"room_id\":{},\"seq\":",
        Value::from(kind),
        Value::from(room_id)
    );
    let tail = format!(",\"data\":{data}}}");
    (head, tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_client_frames() {
        let room = Uuid::now_v7();
        assert_eq!(
            ClientFrame::parse(&format!(
                r#"{{"type":"join_room","data":{{"room_id":"{room}"}}}}"#
            )),
            Ok(ClientFrame::JoinRoom { room_id: room })
        );
        assert_eq!(
            ClientFrame::parse(&format!(
                r#"{{"type":"typing","data":{{"room_id":"{}","channel_id":"{room}"}}}}"#,
                Uuid::now_v7()
            )),
            Ok(ClientFrame::Typing { room_id: room })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping { data: Value::Null })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"presence","data":{"status":"away"}}"#),
            Ok(ClientFrame::Presence { away: true })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"presence","data":{"status":"online"}}"#),
            Ok(ClientFrame::Presence { away: false })
        );
        let resumed = ClientFrame::parse(&format!(
            r#"{{"type":"resume","data":{{"rooms":{{"{room}":7}}}}}}"#
        ));
        assert_eq!(
            resumed,
            Ok(ClientFrame::Resume {
                rooms: HashMap::from([(room, 7)])
            })
        );
    }

    #[test]
    fn rejects_bad_frames_with_a_reason() {
        for bad in [
            "",
            "[]",
            "{\"data\":{}}",
            r#"{"type":"launch"}"#,
            r#"{"type":"join_room","data":{"room_id":"nope"}}"#,
            r#"{"type":"join_room","data":{}}"#,
            r#"{"type":"join_room","data":{"room_id":"01a2155e-db08-752c-9adf-61d6959a943b","x":1}}"#,
            r#"{"type":"typing","data":{}}"#,
            r#"{"type":"resume","data":{"rooms":{"r":1}}}"#,
            r#"{"type":"pong","data":{"n":-1}}"#,
            r#"{"type":"presence","data":{"status":"busy"}}"#,
            r#"{"type":"presence","data":{"status":"away","until":1}}"#,
        ] {
            assert!(
                ClientFrame::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(ClientFrame::parse(&"x".repeat(MAX_CLIENT_FRAME + 1)).is_err());
    }

    /// docs/asyncapi.yaml describes every frame in both directions, and
    /// nothing the code does not know.
    #[test]
    fn the_asyncapi_document_lists_every_frame() {
        let doc = include_str!("../../../../docs/asyncapi.yaml");
        for kind in SERVER_FRAME_TYPES.iter().chain(CLIENT_FRAME_TYPES) {
            assert!(
                doc.contains(&format!("\n      name: {kind}\n")),
                "docs/asyncapi.yaml has no message named {kind}"
            );
            assert!(
                doc.contains(&format!("#/channels/socket/messages/{kind}'")),
                "docs/asyncapi.yaml's operations do not list {kind}"
            );
        }
        let documented = doc.matches("#/components/messages/").count();
        let kafka_messages = messenger_proto::Topic::ALL.len();
        let known: std::collections::BTreeSet<&str> = SERVER_FRAME_TYPES
            .iter()
            .chain(CLIENT_FRAME_TYPES)
            .copied()
            .collect();
        assert_eq!(
            documented,
            known.len() + kafka_messages,
            "a frame is documented that the code does not send or accept"
        );
        for kind in CLIENT_FRAME_TYPES {
            if *kind != "ping" {
                assert!(ClientFrame::parse(&format!("{{\"type\":\"{kind}\"}}")).is_err());
            }
        }
    }

    #[test]
    fn sequenced_frames_are_valid_json_once_numbered() {
        let (head, tail) = sequenced_parts("new_message", "room\"1", &json!({"a": [1, "two"]}));
        let frame: Value = serde_json::from_str(&format!("{head}42{tail}")).expect("json");
        assert_eq!(frame["seq"], 42);
        assert_eq!(frame["room_id"], "room\"1");
        assert_eq!(frame["data"]["a"][1], "two");
    }
}

#[cfg(test)]
pub(crate) mod proptests;
