//! Kafka → Redis: the gateway fleet consumes the domain topics in one
//! consumer group (each replica takes some partitions), turns each event
//! into frames and publishes them once through Redis to every replica.
//!
//! An offset is stored only after Redis accepted the event's frames, so a
//! crash or a Redis outage delays frames but never drops them; a repeat
//! after a crash is recognised by its event id and not published twice.

use crate::realtime::frames;
use crate::realtime::store::{Outgoing, Store};
use crate::realtime::translate::{self, Delivery};
use messenger_platform::{CancellationToken, Config};
use messenger_proto::groups::v1::GroupsEvent;
use messenger_proto::messages::v1::MessagesEvent;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use std::sync::Arc;
use std::time::Duration;

pub const TOPICS: [&str; 2] = ["messages.events.v1", "groups.events.v1"];

pub async fn run(config: Config, store: Arc<Store>, shutdown: CancellationToken) {
    let kafka = &config.kafka;
    let topics: Vec<String> = TOPICS.iter().map(|topic| kafka.topic(topic)).collect();
    let group = kafka.topic(&config.websocket.consumer_group);
    let mut backoff = Duration::from_millis(200);
    let consumer = loop {
        let attempt = async {
            messenger_platform::kafka::ensure_topics(kafka, &topics).await?;
            let consumer = messenger_platform::kafka::consumer(kafka, &group, "gateway-fanout")?;
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            consumer.subscribe(&names)?;
            anyhow::Ok(consumer)
        };
        match attempt.await {
            Ok(consumer) => break consumer,
            Err(err) => {
                tracing::warn!(error = %err, "realtime fan-out cannot start its Kafka consumer; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    tracing::info!(%group, "realtime fan-out consuming");
    'records: loop {
        let record = tokio::select! {
            _ = shutdown.cancelled() => break,
            record = consumer.recv() => record,
        };
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                tracing::debug!(error = %err, "fan-out consumer error");
                continue;
            }
        };
        let Some((event_id, deliveries)) = decode(&topics, record.topic(), record.payload()) else {
            // Not ours to understand (a newer schema): skip, but keep going.
            if let Err(err) = consumer.store_offset_from_message(&record) {
                tracing::warn!(error = %err, "cannot store fan-out offset");
            }
            continue;
        };
        let outgoing: Vec<Outgoing> = deliveries
            .into_iter()
            .map(|delivery| {
                let (head, tail) = frames::sequenced_parts(
                    delivery.kind,
                    &delivery.room.id().to_string(),
                    &delivery.data,
                );
                Outgoing {
                    room: delivery.room,
                    head,
                    tail,
                }
            })
            .collect();
        let mut backoff = Duration::from_millis(50);
        loop {
            match store.publish(&event_id, &outgoing).await {
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "fan-out cannot publish to Redis; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'records,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        metrics::counter!("ws_events_fanned_out_total").increment(1);
        if let Err(err) = consumer.store_offset_from_message(&record) {
            tracing::warn!(error = %err, "cannot store fan-out offset");
        }
    }
    // Hand the stored offsets over before leaving the group.
    messenger_platform::kafka::close_consumer(consumer).await;
}

/// The event id and the frames of one record.
fn decode(
    topics: &[String],
    topic: &str,
    payload: Option<&[u8]>,
) -> Option<(String, Vec<Delivery>)> {
    let payload = payload?;
    if topic == topics[0] {
        let event = MessagesEvent::decode(payload).ok()?;
        let id = event.meta.as_ref()?.event_id.clone();
        Some((id, translate::messages_event(event)))
    } else if topic == topics[1] {
        let event = GroupsEvent::decode(payload).ok()?;
        let id = event.meta.as_ref()?.event_id.clone();
        Some((id, translate::groups_event(event)))
    } else {
        None
    }
}
