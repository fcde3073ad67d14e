//! Domain events of the messages service, written to the outbox in the same
//! transaction as the change. Key: the channel id, so each channel's events
//! stay in order.

use crate::domain::{ChannelId, UserId};
use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::messages::v1::{MessagesEvent, messages_event::Payload};
use sqlx::PgConnection;
use time::OffsetDateTime;

pub async fn publish(
    conn: &mut PgConnection,
    channel: ChannelId,
    actor: UserId,
    payload: Payload,
) -> sqlx::Result<()> {
    let envelope = DomainEvent {
        topic: Payload::TOPIC.name(),
        aggregate_id: channel.to_string(),
        event_type: payload.event_type(),
        occurred_at: OffsetDateTime::now_utc(),
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| MessagesEvent {
        meta: Some(meta),
        actor_id: actor.to_string(),
        payload: Some(payload),
    })
    .await
}
