//! Conversions every service needs between its types and protobuf ones.

use time::OffsetDateTime;

pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

/// The instant a protobuf timestamp names; `None` outside what
/// `OffsetDateTime` holds or with nanoseconds out of range.
pub fn offset_date_time(at: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    if !(0..1_000_000_000).contains(&at.nanos) {
        return None;
    }
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}
