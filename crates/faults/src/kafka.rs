//! A downstream consumer of the messages topic, as another team would run
//! one: its own group, from the beginning, at-least-once.

use crate::ledger::{KafkaRecord, Ledger};
use messenger_proto::messages::v1 as pb;
use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Creates `topic` (as the services would) so the subscription finds it.
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let topics = [NewTopic::new(topic, partitions, TopicReplication::Fixed(1))];
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}

pub fn consumer(brokers: &str, topic: &str) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("faults-ledger-{}", uuid::Uuid::new_v4()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("fetch.wait.max.ms", "50")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Records every `MessageCreated` until `stop`; other events are skipped.
pub async fn read_loop(ledger: Arc<Ledger>, consumer: StreamConsumer, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let record = match tokio::time::timeout(Duration::from_millis(250), consumer.recv()).await {
            Err(_) => continue,
            // The broker is away: librdkafka reconnects by itself.
            Ok(Err(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Ok(Ok(record)) => record,
        };
        let Some(Ok(event)) = record.payload().map(pb::MessagesEvent::decode) else {
            continue;
        };
        let Some(pb::messages_event::Payload::MessageCreated(created)) = event.payload else {
            continue;
        };
        let Some(message) = created.message else {
            continue;
        };
        ledger.consumed(KafkaRecord {
            event_id: event.meta.map(|meta| meta.event_id).unwrap_or_default(),
            key: String::from_utf8_lossy(record.key().unwrap_or_default()).into_owned(),
            message_id: message.id,
            message_seq: message.seq,
        });
    }
    // Closing a consumer blocks while it leaves its group.
    tokio::task::spawn_blocking(move || drop(consumer));
}
