//! The public shapes the API sends: REST responses and the payloads of
//! realtime events, so a message looks the same over HTTP and WebSocket.
//! Built from the services' protobuf types; parsing what clients send
//! lives with each route in `http`.

pub mod groups;
pub mod media;
pub mod messages;
pub mod push;
pub mod users;

use time::OffsetDateTime;

/// A protobuf timestamp as a date; a missing or impossible one reads as
/// the Unix epoch rather than failing a whole response.
pub fn timestamp(ts: Option<prost_types::Timestamp>) -> OffsetDateTime {
    ts.and_then(|ts| {
        OffsetDateTime::from_unix_timestamp(ts.seconds)
            .ok()
            .map(|at| at + time::Duration::nanoseconds(i64::from(ts.nanos)))
    })
    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
