//! Domain events of the groups service, written to the outbox in the same
//! transaction as the change. Key: the group id.

use crate::domain::{GroupId, UserId};
use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::groups::v1::{GroupsEvent, groups_event::Payload};
use sqlx::PgConnection;
use time::OffsetDateTime;

pub async fn publish(
    conn: &mut PgConnection,
    group: GroupId,
    actor: UserId,
    payload: Payload,
) -> sqlx::Result<()> {
    let envelope = DomainEvent {
        topic: Payload::TOPIC.name(),
        aggregate_id: group.to_string(),
        event_type: payload.event_type(),
        occurred_at: OffsetDateTime::now_utc(),
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| GroupsEvent {
        meta: Some(meta),
        actor_id: actor.to_string(),
        payload: Some(payload),
    })
    .await
}
