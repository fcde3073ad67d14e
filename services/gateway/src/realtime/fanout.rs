//! Kafka → Redis: every gateway replica reads every partition of the domain
//! topics, turns each event into frames and publishes them through Redis;
//! the publish script claims the event id first, so whichever replica gets
//! there first publishes and the others skip it.
//!
//! No consumer-group membership, hence no rebalances: a replica that dies
//! (kill -9, node loss) stalls nothing, because the others read the same
//! partitions; consumer groups hand a dead member's partitions over only
//! after its session expires, and brokers that never expire it (tansu 0.6)
//! stall those partitions for good. Offsets are still committed under the
//! shared group id, each replica only after Redis took the event (or showed
//! it was already published), so a restarted replica resumes at a point
//! every earlier event had reached Redis; a Redis outage or a crash delays
//! frames but never drops them.

use crate::realtime::frames;
use crate::realtime::store::{Event, Outgoing, Store};
use crate::realtime::translate::{self, Delivery};
use futures::StreamExt as _;
use messenger_platform::{CancellationToken, Config};
use messenger_proto::Topic;
use messenger_proto::groups::v1::GroupsEvent;
use messenger_proto::messages::v1::MessagesEvent;
use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

pub const TOPICS: [Topic; 2] = [MessagesEvent::TOPIC, GroupsEvent::TOPIC];

pub async fn run(
    config: Config,
    consumer_group: String,
    store: Arc<Store>,
    shutdown: CancellationToken,
) {
    let kafka = &config.kafka;
    // Records arrive under the prefixed names: map those back, rather than
    // second-guess how the prefix is applied.
    let subscribed: Vec<(String, Topic)> = TOPICS
        .into_iter()
        .map(|topic| (kafka.topic(topic.name()), topic))
        .collect();
    let topics: Vec<String> = subscribed.iter().map(|(name, _)| name.clone()).collect();
    let group = kafka.topic(&consumer_group);
    tokio::spawn(messenger_platform::kafka::report_lag(
        kafka.clone(),
        group.clone(),
        topics.clone(),
        shutdown.clone(),
    ));
    // A consumer librdkafka declared dead is replaced; anything else ends
    // only with the shutdown.
    while let Some(consumer) = start_consumer(kafka, &topics, &group, &shutdown).await {
        let fatal = consume(&consumer, &subscribed, &store, &shutdown).await;
        // Hand the stored offsets over before leaving the group.
        messenger_platform::kafka::close_consumer(consumer).await;
        match fatal {
            Some(reason) => messenger_platform::kafka::note_rebuild("gateway-fanout", &reason),
            None => break,
        }
    }
}

/// A consumer assigned every partition of `topics`; retried until it
/// works, `None` once `shutdown` is cancelled.
async fn start_consumer(
    kafka: &messenger_platform::config::KafkaConfig,
    topics: &[String],
    group: &str,
    shutdown: &CancellationToken,
) -> Option<StreamConsumer> {
    let mut backoff = Duration::from_millis(200);
    let consumer = loop {
        let attempt = async {
            messenger_platform::kafka::ensure_topics(kafka, topics).await?;
            let consumer = messenger_platform::kafka::consumer(
                kafka,
                group,
                "gateway-fanout",
                messenger_platform::kafka::Urgency::Live,
            )?;
            assign_every_partition(consumer, topics.to_vec()).await
        };
        match attempt.await {
            Ok(consumer) => break consumer,
            Err(err) => {
                tracing::warn!(error = %err, "realtime fan-out cannot start its Kafka consumer; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    tracing::info!(%group, "realtime fan-out consuming");
    Some(consumer)
}

/// Most records published to Redis in one call. Their frames reach a
/// room's sockets as one burst, which each socket's queue takes on top of
/// `websocket.send_queue_frames`: a client that reads is never cut off for
/// a burst.
pub const BATCH: usize = 64;

/// Fans records out until shutdown (`None`) or until the consumer has a
/// fatal error (`Some(reason)`). Whatever the consumer already holds goes
/// to Redis together (one round trip, in order), so a burst costs one
/// round trip rather than one per record.
async fn consume(
    consumer: &StreamConsumer,
    subscribed: &[(String, Topic)],
    store: &Store,
    shutdown: &CancellationToken,
) -> Option<String> {
    let mut records = consumer.stream().ready_chunks(BATCH);
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return None,
            batch = records.next() => batch?,
        };
        let mut received = Vec::with_capacity(batch.len());
        for record in batch {
            match record {
                Ok(record) => received.push(record),
                Err(err) => {
                    tracing::debug!(error = %err, "fan-out consumer error");
                    if let Some(fatal) = messenger_platform::kafka::fatal_error(consumer.client()) {
                        return Some(fatal);
                    }
                }
            }
        }
        // Records not ours to understand (a newer schema) are skipped, and
        // their offsets stored with the rest.
        let decoded: Vec<Decoded> = received
            .iter()
            .filter_map(|record| decode(subscribed, record.topic(), record.payload()))
            .collect();
        if !publish(store, &decoded, shutdown).await {
            return None;
        }
        for record in &received {
            if let Err(err) = consumer.store_offset_from_message(record) {
                tracing::warn!(error = %err, "cannot store fan-out offset");
            }
        }
    }
}

/// Publishes the events' frames, retrying until Redis takes them; `false`
/// when shut down first.
async fn publish(store: &Store, decoded: &[Decoded], shutdown: &CancellationToken) -> bool {
    let events: Vec<Event<'_>> = decoded
        .iter()
        .map(|event| Event {
            id: &event.event_id,
            committed_at_ms: event.occurred_at_ms,
            frames: &event.frames,
        })
        .collect();
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.publish_batch(&events).await {
            Ok(published) => {
                for (event, published) in decoded.iter().zip(published) {
                    if published {
                        metrics::counter!("ws_events_fanned_out_total").increment(1);
                        record_delivery_lag(event.occurred_at_ms);
                    }
                }
                return true;
            }
            Err(err) => {
                tracing::warn!(error = %err, "fan-out cannot publish to Redis; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Assigns all partitions of `topics`, each from the group's committed
/// offset (the oldest retained record when there is none). Metadata calls
/// block, so they run off the async runtime.
async fn assign_every_partition(
    consumer: StreamConsumer,
    topics: Vec<String>,
) -> anyhow::Result<StreamConsumer> {
    let consumer = Arc::new(consumer);
    let reader = consumer.clone();
    let partitions = tokio::task::spawn_blocking(move || {
        let mut assignment = TopicPartitionList::new();
        for topic in &topics {
            let metadata = reader.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let count = metadata
                .topics()
                .iter()
                .find(|found| found.name() == topic)
                .map_or(0, |found| found.partitions().len());
            anyhow::ensure!(count > 0, "topic {topic} has no partitions yet");
            for partition in 0..count {
                assignment.add_partition_offset(
                    topic,
                    i32::try_from(partition)?,
                    Offset::Stored,
                )?;
            }
        }
        anyhow::Ok(assignment)
    })
    .await??;
    consumer.assign(&partitions)?;
    Arc::try_unwrap(consumer)
        .map_err(|_| anyhow::anyhow!("the metadata reader still holds the consumer"))
}

/// An event's id, when it was committed, and its frames.
struct Decoded {
    event_id: String,
    occurred_at_ms: Option<i64>,
    frames: Vec<Outgoing>,
}

fn decode(subscribed: &[(String, Topic)], topic: &str, payload: Option<&[u8]>) -> Option<Decoded> {
    let payload = payload?;
    let (_, topic) = subscribed.iter().find(|(name, _)| name == topic)?;
    let (meta, deliveries) = match topic {
        Topic::Messages => {
            let event = MessagesEvent::decode(payload).ok()?;
            (event.meta.clone()?, translate::messages_event(event))
        }
        Topic::Groups => {
            let event = GroupsEvent::decode(payload).ok()?;
            (event.meta.clone()?, translate::groups_event(event))
        }
        // Not subscribed: none of their events becomes a frame.
        Topic::Users | Topic::Media | Topic::Presence | Topic::Notifier => return None,
    };
    Some(Decoded {
        event_id: meta.event_id,
        occurred_at_ms: meta.occurred_at.and_then(unix_ms),
        frames: deliveries.into_iter().map(outgoing).collect(),
    })
}

fn outgoing(delivery: Delivery) -> Outgoing {
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
}

fn unix_ms(at: prost_types::Timestamp) -> Option<i64> {
    let ms = at
        .seconds
        .checked_mul(1000)?
        .checked_add(i64::from(at.nanos) / 1_000_000)?;
    (ms > 0).then_some(ms)
}

/// Seconds from the change (committed with its event) to its frames'
/// publication to the sockets' Redis channels.
fn record_delivery_lag(occurred_at_ms: Option<i64>) {
    if let Some(lag) = occurred_at_ms.and_then(crate::realtime::store::seconds_since) {
        metrics::histogram!("realtime_event_lag_seconds").record(lag);
    }
}
