//! Domain events of the messages service, written to the outbox in the same
//! transaction as the change. Key: the channel id, so each channel's events
//! stay in order.

use crate::domain::{ChannelId, UserId};
use messenger_platform::outbox::{self, OutboxEvent};
use messenger_proto::common::v1::EventMeta;
use messenger_proto::messages::v1::{MessagesEvent, messages_event::Payload};
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// The one topic this service publishes.
pub const TOPIC: &str = "messages.events.v1";
const SCHEMA_VERSION: u32 = 1;

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
    let event_id = Uuid::now_v7();
    let event_type = event_type(&payload);
    let event = MessagesEvent {
        meta: Some(EventMeta {
            event_id: event_id.to_string(),
            event_type: event_type.to_owned(),
            version: SCHEMA_VERSION,
            occurred_at: Some(crate::convert::timestamp(OffsetDateTime::now_utc())),
            aggregate_id: channel.to_string(),
        }),
        actor_id: actor.to_string(),
        payload: Some(payload),
    };
    outbox::enqueue(
        conn,
        OutboxEvent {
            event_id,
            topic: TOPIC,
            key: channel.to_string(),
            event_type,
            payload: event.encode_to_vec(),
        },
    )
    .await
}
