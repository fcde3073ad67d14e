//! Domain events of the media service, written to the outbox in the same
//! transaction as the change. Key: the media id.

use messenger_platform::outbox::{self, OutboxEvent};
use messenger_proto::common::v1::EventMeta;
use messenger_proto::media::v1::{MediaEvent, media_event::Payload};
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub const TOPIC: &str = "media.events.v1";
const SCHEMA_VERSION: u32 = 1;

fn event_type(payload: &Payload) -> &'static str {
    match payload {
        Payload::MediaUploaded(_) => "messenger.media.v1.MediaUploaded",
        Payload::ThumbnailReady(_) => "messenger.media.v1.ThumbnailReady",
        Payload::ThumbnailFailed(_) => "messenger.media.v1.ThumbnailFailed",
        Payload::MediaDeleted(_) => "messenger.media.v1.MediaDeleted",
    }
}

pub async fn publish(
    conn: &mut PgConnection,
    media: Uuid,
    actor: Uuid,
    payload: Payload,
) -> sqlx::Result<()> {
    let event_id = Uuid::now_v7();
    let event_type = event_type(&payload);
    let event = MediaEvent {
        meta: Some(EventMeta {
            event_id: event_id.to_string(),
            event_type: event_type.to_owned(),
            version: SCHEMA_VERSION,
            occurred_at: Some(crate::convert::timestamp(OffsetDateTime::now_utc())),
            aggregate_id: media.to_string(),
        }),
        actor_id: actor.to_string(),
        payload: Some(payload),
    };
    outbox::enqueue(
        conn,
        OutboxEvent {
            event_id,
            topic: TOPIC,
            key: media.to_string(),
            event_type,
            payload: event.encode_to_vec(),
        },
    )
    .await
}
