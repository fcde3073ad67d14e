//! Domain events of the media service, written to the outbox in the same
//! transaction as the change. Key: the media id.

use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::media::v1::{MediaEvent, media_event::Payload};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub const TOPIC: &str = "media.events.v1";

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
    let envelope = DomainEvent {
        topic: TOPIC,
        aggregate_id: media.to_string(),
        event_type: event_type(&payload),
        occurred_at: OffsetDateTime::now_utc(),
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| MediaEvent {
        meta: Some(meta),
        actor_id: actor.to_string(),
        payload: Some(payload),
    })
    .await
}
