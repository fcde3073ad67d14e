//! Kafka client construction and topic management.

use crate::config::KafkaConfig;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use std::time::Duration;

/// A producer with acks=all. Idempotent by default (no duplicates or
/// reordering from its own retries within a partition); with
/// `idempotent_producer` off it keeps one request in flight per broker, so
/// retries still never reorder, and may duplicate (consumers dedup by event
/// id, as they must anyway).
pub fn producer(config: &KafkaConfig, client_id: &str) -> anyhow::Result<FutureProducer> {
    let mut producer = base(config, client_id);
    if config.idempotent_producer {
        producer.set("enable.idempotence", "true");
    } else {
        producer.set("max.in.flight.requests.per.connection", "1");
    }
    Ok(producer
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", config.message_timeout_ms.to_string())
        .create()?)
}

/// A consumer in `group` that stores an offset only when the caller says
/// the record is handled (`store_offset_from_message`), and commits stored
/// offsets in the background: at-least-once, never skipping a record.
/// A new group starts from the oldest retained record.
pub fn consumer(
    config: &KafkaConfig,
    group: &str,
    client_id: &str,
) -> anyhow::Result<rdkafka::consumer::StreamConsumer> {
    Ok(base(config, client_id)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Kafka answers a fetch as soon as data arrives; some brokers (tansu)
        // hold it for the whole wait, which would then be every record's
        // latency.
        .set("fetch.wait.max.ms", "10")
        // A replica that dies without leaving (kill -9, node loss) holds its
        // partitions until its session expires; every other member waits
        // out the rebalance meanwhile. 10 s instead of 45 s bounds that
        // stall; heartbeats every 3 s keep a live member well inside it.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        .create()?)
}

/// The client's fatal error, if it has had one: librdkafka then refuses
/// every further operation, so the only way on is a new client.
pub fn fatal_error<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
) -> Option<String> {
    client
        .fatal_error()
        .map(|(code, reason)| format!("{code}: {reason}"))
}

/// Records that a Kafka client was replaced by a new one: logged once per
/// rebuild and counted in `kafka_client_rebuilds_total{client}`.
pub fn note_rebuild(client: &str, reason: &str) {
    tracing::warn!(client, reason, "rebuilding Kafka client");
    metrics::counter!("kafka_client_rebuilds_total", "client" => client.to_owned()).increment(1);
}

/// Commits a consumer's stored offsets and closes it, off the async
/// runtime: librdkafka's close blocks its thread while it leaves the group,
/// which can take long (indefinitely, on some brokers) and must never stall
/// the tasks sharing that thread. Waits at most ten seconds for it.
pub async fn close_consumer(consumer: rdkafka::consumer::StreamConsumer) {
    use rdkafka::consumer::{CommitMode, Consumer};
    let (done, closed) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("kafka-close".to_owned())
        .spawn(move || {
            if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %err, "final consumer commit");
            }
            drop(consumer);
            let _ = done.send(());
        });
    if spawned.is_err() {
        tracing::warn!("cannot start a thread to close a Kafka consumer");
        return;
    }
    if tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .is_err()
    {
        tracing::warn!(
            "a Kafka consumer did not close within 10 s; left closing in the background"
        );
    }
}

fn base(config: &KafkaConfig, client_id: &str) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", client_id)
        // Surface a down broker as errors instead of librdkafka log spam.
        .set("log_level", "3")
        // Retry a lost broker every second at most (librdkafka's default
        // backs off to 10 s), so delivery resumes soon after it returns.
        .set("reconnect.backoff.max.ms", "1000");
    client
}

/// Creates the given (already prefixed) topics unless they exist. Brokers
/// such as tansu, and many production clusters, do not auto-create topics.
pub async fn ensure_topics(config: &KafkaConfig, topics: &[String]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base(config, "messenger-admin").create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                config.topic_partitions,
                TopicReplication::Fixed(config.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}
