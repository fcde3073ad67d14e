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
    let mut producer = base(config, client_id)?;
    if config.idempotent_producer {
        producer.set("enable.idempotence", "true");
    } else {
        producer.set("max.in.flight.requests.per.connection", "1");
    }
    Ok(producer
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", &config.compression)
        .set("message.timeout.ms", config.message_timeout_ms.to_string())
        .create()?)
}

/// How soon a consumer must see new records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// Someone is waiting for them (frames to sockets): fetches are held at
    /// most `kafka.fetch_wait_max_ms`.
    Live,
    /// Work that may start half a second later (thumbnails): fetches are
    /// held at least that long, so an idle consumer costs the broker little.
    Background,
}

/// The longest a background consumer's fetch is held.
const BACKGROUND_FETCH_WAIT_MS: u64 = 500;

/// A consumer in `group` that stores an offset only when the caller says
/// the record is handled (`store_offset_from_message`), and commits stored
/// offsets in the background: at-least-once, never skipping a record.
/// A new group starts from the oldest retained record.
pub fn consumer(
    config: &KafkaConfig,
    group: &str,
    client_id: &str,
    urgency: Urgency,
) -> anyhow::Result<rdkafka::consumer::StreamConsumer> {
    let fetch_wait_ms = match urgency {
        Urgency::Live => config.fetch_wait_max_ms,
        Urgency::Background => config.fetch_wait_max_ms.max(BACKGROUND_FETCH_WAIT_MS),
    };
    Ok(base(config, client_id)?
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Kafka answers a fetch as soon as data arrives; some brokers (tansu)
        // hold it for the whole wait, which is then every record's latency.
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        // A replica that dies without leaving (kill -9, node loss) holds its
        // partitions until its session expires; every other member waits
        // out the rebalance meanwhile. 10 s instead of 45 s bounds that
        // stall; heartbeats every 3 s keep a live member well inside it.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        .create()?)
}

/// A [`consumer`] subscribed to `topics` (created when missing), retried
/// with backoff until it works; `None` once `shutdown` is cancelled. A
/// background worker's way to start, and to start again after librdkafka
/// declared its client dead.
pub async fn subscribed_consumer(
    config: &KafkaConfig,
    topics: &[String],
    group: &str,
    client_id: &str,
    urgency: Urgency,
    shutdown: &crate::CancellationToken,
) -> Option<rdkafka::consumer::StreamConsumer> {
    use rdkafka::consumer::Consumer;
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = async {
            ensure_topics(config, topics).await?;
            let consumer = consumer(config, group, client_id, urgency)?;
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            consumer.subscribe(&names)?;
            anyhow::Ok(consumer)
        };
        match attempt.await {
            Ok(consumer) => return Some(consumer),
            Err(err) => {
                tracing::warn!(error = %err, client = client_id, "cannot start a Kafka consumer; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
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

/// How often consumer lag is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(15);

/// Reports how far consumer `group` is behind on `topics` until `shutdown`:
/// `kafka_consumer_lag{group, topic}`, the records between the group's
/// committed offset and the end of each partition, summed per topic. A
/// separate client that never joins the group asks the broker, every 15 s.
pub async fn report_lag(
    config: KafkaConfig,
    group: String,
    topics: Vec<String>,
    shutdown: crate::shutdown::CancellationToken,
) {
    let created = base(&config, "messenger-lag").and_then(|mut client| {
        Ok(client
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create::<rdkafka::consumer::BaseConsumer>()?)
    });
    let client = match created {
        Ok(client) => std::sync::Arc::new(client),
        Err(err) => {
            tracing::warn!(error = %err, "cannot measure consumer lag");
            return;
        }
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(LAG_INTERVAL) => {}
        }
        let (measuring, asked) = (client.clone(), topics.clone());
        let lags = tokio::task::spawn_blocking(move || measure_lag(&measuring, &asked)).await;
        for (topic, lag) in lags.unwrap_or_default() {
            metrics::gauge!("kafka_consumer_lag", "group" => group.clone(), "topic" => topic)
                .set(lag as f64);
        }
    }
    // Closing talks to the broker: never on the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || drop(client)).await;
}

/// Per topic: the sum over its partitions of end offset minus the group's
/// committed offset (the start of the partition when nothing is committed).
fn measure_lag(
    consumer: &rdkafka::consumer::BaseConsumer,
    topics: &[String],
) -> Vec<(String, i64)> {
    use rdkafka::consumer::Consumer;
    let timeout = Duration::from_secs(5);
    let mut lags = Vec::new();
    for topic in topics {
        let Ok(metadata) = consumer.fetch_metadata(Some(topic), timeout) else {
            continue;
        };
        let mut partitions = rdkafka::TopicPartitionList::new();
        for meta in metadata.topics().iter().filter(|meta| meta.name() == topic) {
            for partition in meta.partitions() {
                partitions.add_partition(topic, partition.id());
            }
        }
        let Ok(committed) = consumer.committed_offsets(partitions, timeout) else {
            continue;
        };
        let mut lag = 0i64;
        for element in committed.elements() {
            let Ok((low, high)) = consumer.fetch_watermarks(topic, element.partition(), timeout)
            else {
                continue;
            };
            let position = match element.offset() {
                rdkafka::Offset::Offset(offset) => offset,
                _ => low,
            };
            lag += (high - position).max(0);
        }
        lags.push((topic.clone(), lag));
    }
    lags
}

fn base(config: &KafkaConfig, client_id: &str) -> anyhow::Result<ClientConfig> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", client_id)
        // Surface a down broker as errors instead of librdkafka log spam.
        .set("log_level", "3")
        // Retry a lost broker every second at most (librdkafka's default
        // backs off to 10 s), so delivery resumes soon after it returns.
        .set("reconnect.backoff.max.ms", "1000");
    secure(&mut client, config)?;
    Ok(client)
}

/// Signs the client in as this service's Kafka user and verifies the
/// brokers' certificates, as `security_protocol` asks. Refuses to go on
/// without the credentials, which usually come from Vault.
fn secure(client: &mut ClientConfig, config: &KafkaConfig) -> anyhow::Result<()> {
    client.set("security.protocol", &config.security_protocol);
    if config.security_protocol.starts_with("sasl_") {
        if config.sasl_username.is_empty() || config.sasl_password.is_empty() {
            anyhow::bail!(
                "kafka.security_protocol {} needs this service's Kafka user: Vault keys \
                 kafka_username and kafka_password (env KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)",
                config.security_protocol
            );
        }
        client
            .set("sasl.mechanism", &config.sasl_mechanism)
            .set("sasl.username", &config.sasl_username)
            .set("sasl.password", config.sasl_password.expose());
    }
    if config.security_protocol.ends_with("ssl") {
        client.set("ssl.endpoint.identification.algorithm", "https");
        if !config.ssl_ca_location.is_empty() {
            client.set("ssl.ca.location", &config.ssl_ca_location);
        }
    }
    Ok(())
}

/// Creates the given (already prefixed) topics unless they exist. Brokers
/// such as tansu, and many production clusters, do not auto-create topics.
pub async fn ensure_topics(config: &KafkaConfig, topics: &[String]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base(config, "messenger-admin")?.create()?;
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
            // Where ACLs give services no Create right, the topics are the
            // operator's (kafka-init, Strimzi KafkaTopics): use them as found.
            Err((
                topic,
                code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed),
            )) => {
                tracing::info!(%topic, %code, "not allowed to create topics; expecting them to exist")
            }
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}
