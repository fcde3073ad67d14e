//! The notifier's outcomes on `notifier.events.v1`, written to the outbox
//! in the same transaction as the state they report. Key: the user id.

use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::notifier::v1::{NotifierEvent, notifier_event::Payload};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn publish(conn: &mut PgConnection, user: Uuid, payload: Payload) -> sqlx::Result<()> {
    let envelope = DomainEvent {
        topic: Payload::TOPIC.name(),
        aggregate_id: user.to_string(),
        event_type: payload.event_type(),
        occurred_at: OffsetDateTime::now_utc(),
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| NotifierEvent {
        meta: Some(meta),
        payload: Some(payload),
    })
    .await
}

pub fn ids(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}
