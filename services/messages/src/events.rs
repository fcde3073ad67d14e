//! Domain events of the messages service, written to the outbox in the same
//! transaction as the change. Key: the channel id, so each channel's events
//! stay in order.

use crate::domain::{ChannelId, UserId};
use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::messages::v1::{MessagesEvent, messages_event::Payload};
use sqlx::PgConnection;
use time::OffsetDateTime;

/// The one topic this service publishes.
pub const TOPIC: &str = "messages.events.v1";

fn event_type(payload: &Payload) -> &'static str {
    match payload {
        Payload::MessageCreated(_) => "messenger.messages.v1.MessageCreated",
        Payload::MessageEdited(_) => "messenger.messages.v1.MessageEdited",
        Payload::MessageDeleted(_) => "messenger.messages.v1.MessageDeleted",
        Payload::ReactionAdded(_) => "messenger.messages.v1.ReactionAdded",
        Payload::ReactionRemoved(_) => "messenger.messages.v1.ReactionRemoved",
        Payload::ReadPositionMoved(_) => "messenger.messages.v1.ReadPositionMoved",
        Payload::ThreadUpdated(_) => "messenger.messages.v1.ThreadUpdated",
        Payload::NotificationCreated(_) => "messenger.messages.v1.NotificationCreated",
    }
}

pub async fn publish(
    conn: &mut PgConnection,
    channel: ChannelId,
    actor: UserId,
    payload: Payload,
) -> sqlx::Result<()> {
    let envelope = DomainEvent {
        topic: TOPIC,
        aggregate_id: channel.to_string(),
        event_type: event_type(&payload),
        occurred_at: OffsetDateTime::now_utc(),
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| MessagesEvent {
        meta: Some(meta),
        actor_id: actor.to_string(),
        payload: Some(payload),
    })
    .await
}
