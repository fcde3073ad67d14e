//! Domain events of the media service, written to the outbox in the same
//! transaction as the change. Key: the media id.

use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::media::v1::{MediaEvent, media_event::Payload};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn publish(
    conn: &mut PgConnection,
    media: Uuid,
    actor: Uuid,
    payload: Payload,
) -> sqlx::Result<()> {
    let envelope = DomainEvent {
        topic: Payload::TOPIC.name(),
        aggregate_id: media.to_string(),
        event_type: payload.event_type(),
        occurred_at: OffsetDateTime::now_utc(),
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| MediaEvent {
        meta: Some(meta),
        actor_id: actor.to_string(),
        payload: Some(payload),
    })
    .await
}
