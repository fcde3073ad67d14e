//! Presence changes on Kafka (`presence.events.v1`), produced directly:
//! presence lives in Redis, not in a database with an outbox.

use super::state::{Settled, Status};
use messenger_platform::config::KafkaConfig;
use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::presence::v1::{
    PresenceChanged, PresenceEvent, PresenceStatus, presence_event::Payload,
};
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use time::OffsetDateTime;
use uuid::Uuid;

pub struct Publisher {
    producer: FutureProducer,
    /// The prefixed topic name.
    topic: String,
}

impl Publisher {
    pub fn new(kafka: &KafkaConfig) -> anyhow::Result<Publisher> {
        Ok(Publisher {
            producer: messenger_platform::kafka::producer(kafka, "messenger-gateway")?,
            topic: kafka.topic(PresenceEvent::TOPIC.name()),
        })
    }

    /// The prefixed topic this publisher writes (created at startup).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces one change and waits for the broker's acknowledgement.
    pub async fn publish(&self, user: Uuid, settled: &Settled) -> anyhow::Result<()> {
        let (event_id, now) = (Uuid::now_v7(), OffsetDateTime::now_utc());
        let event = DomainEvent {
            topic: PresenceEvent::TOPIC.name(),
            aggregate_id: user.to_string(),
            event_type: PresenceChanged::EVENT_TYPE,
            occurred_at: now,
        };
        let payload = PresenceEvent {
            meta: Some(outbox::event_meta(event_id, &event)),
            payload: Some(Payload::PresenceChanged(PresenceChanged {
                user_id: user.to_string(),
                status: wire_status(settled.status).into(),
                sequence: settled.sequence,
                changed_at: Some(messenger_platform::wire::timestamp(now)),
            })),
        }
        .encode_to_vec();
        let event_id = event_id.to_string();
        let record = FutureRecord::to(&self.topic)
            .key(&event.aggregate_id)
            .payload(&payload)
            .headers(outbox::record_headers(&event_id, event.event_type));
        self.producer
            .send(record, Timeout::Never)
            .await
            .map_err(|(err, _)| anyhow::anyhow!("presence not produced: {err}"))?;
        Ok(())
    }
}

fn wire_status(status: Status) -> PresenceStatus {
    match status {
        Status::Offline => PresenceStatus::Offline,
        Status::Online => PresenceStatus::Online,
        Status::Away => PresenceStatus::Away,
    }
}
