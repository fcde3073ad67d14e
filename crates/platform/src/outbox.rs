//! Transactional outbox.
//!
//! A service writes each domain event into its own `outbox` table in the
//! same transaction as the state change ([`enqueue`]). [`OutboxRelay`]
//! publishes committed rows to Kafka in id order and deletes them once the
//! broker acknowledged them. A crash between publish and delete re-sends a
//! row, so delivery is at-least-once and consumers deduplicate on the event
//! id (also sent as the `event_id` header).
//!
//! Exactly one relay per service publishes at a time (a Postgres advisory
//! lock), which keeps per-key order across replicas.

use crate::config::KafkaConfig;
use crate::shutdown::CancellationToken;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

const BATCH: i64 = 256;
const IDLE_POLL: Duration = Duration::from_secs(1);
// Every failed attempt already waited out the producer's message timeout
// (or the admin timeout), so a short pause costs little during an outage
// and bounds how long events wait once the broker is back.
const MAX_BACKOFF: Duration = Duration::from_secs(3);

/// The envelope of a domain event: what every topic's `meta` says.
pub struct DomainEvent {
    /// Logical topic name (without the configured prefix).
    pub topic: &'static str,
    /// The aggregate the event is about; also the Kafka key.
    pub aggregate_id: String,
    /// Fully qualified protobuf name of the payload's variant.
    pub event_type: &'static str,
    pub occurred_at: time::OffsetDateTime,
}

/// Payload schema version of every topic. An incompatible change gets a new
/// topic (`….v2`) instead.
const SCHEMA_VERSION: u32 = 1;

/// Enqueues a domain event: `build` wraps the filled-in metadata into the
/// topic's message, which is encoded and written to the outbox.
pub async fn enqueue_domain_event<E: prost::Message>(
    conn: &mut sqlx::PgConnection,
    event: DomainEvent,
    build: impl FnOnce(messenger_proto::common::v1::EventMeta) -> E,
) -> sqlx::Result<()> {
    let event_id = Uuid::now_v7();
    let meta = messenger_proto::common::v1::EventMeta {
        event_id: event_id.to_string(),
        event_type: event.event_type.to_owned(),
        version: SCHEMA_VERSION,
        occurred_at: Some(crate::wire::timestamp(event.occurred_at)),
        aggregate_id: event.aggregate_id.clone(),
    };
    enqueue(
        conn,
        OutboxEvent {
            event_id,
            topic: event.topic,
            key: event.aggregate_id,
            event_type: event.event_type,
            payload: build(meta).encode_to_vec(),
        },
    )
    .await
}

/// One event to publish.
pub struct OutboxEvent<'a> {
    pub event_id: Uuid,
    /// Logical topic name (without the configured prefix).
    pub topic: &'a str,
    /// Kafka key: the aggregate id, which fixes the partition and the order.
    pub key: String,
    /// Fully qualified protobuf message name of the payload's variant.
    pub event_type: &'a str,
    pub payload: Vec<u8>,
}

/// Stores `event` in the caller's transaction, with the current trace
/// context so the trace continues through Kafka.
pub async fn enqueue(conn: &mut PgConnection, event: OutboxEvent<'_>) -> sqlx::Result<()> {
    let headers = serde_json::to_value(crate::telemetry::trace_headers()).unwrap_or_default();
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, partition_key, event_type, payload, headers) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.event_id)
    .bind(event.topic)
    .bind(event.key)
    .bind(event.event_type)
    .bind(event.payload)
    .bind(headers)
    .execute(conn)
    .await?;
    Ok(())
}

pub struct OutboxRelay {
    pool: PgPool,
    producer: FutureProducer,
    kafka: KafkaConfig,
    schema: String,
    topics: Vec<String>,
}

struct OutboxRow {
    id: i64,
    event_id: Uuid,
    topic: String,
    key: String,
    event_type: String,
    payload: Vec<u8>,
    headers: BTreeMap<String, String>,
    created_at: OffsetDateTime,
}

impl OutboxRelay {
    /// `topics` are the logical topics this service publishes; the relay
    /// creates them before the first publish.
    pub fn new(
        pool: PgPool,
        producer: FutureProducer,
        kafka: KafkaConfig,
        schema: &str,
        topics: &[&str],
    ) -> Self {
        OutboxRelay {
            pool,
            producer,
            topics: topics.iter().map(|topic| kafka.topic(topic)).collect(),
            kafka,
            schema: schema.to_owned(),
        }
    }

    /// Runs until `shutdown` is cancelled. Errors (Postgres or Kafka down)
    /// are logged and retried with exponential backoff, never fatal.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            if let Err(err) = self.lead(&shutdown, &mut backoff).await {
                tracing::warn!(schema = %self.schema, error = %err, "outbox relay error, retrying");
                metrics::counter!("outbox_relay_errors_total", "service" => self.schema.clone())
                    .increment(1);
                backoff.wait(&shutdown).await;
            }
        }
        // Let records already handed to the producer reach the broker (or
        // fail) before the process goes; their rows stay in the outbox
        // either way and are sent again by the next leader.
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    }

    /// Takes the advisory lock, then publishes while it holds it.
    async fn lead(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> anyhow::Result<()> {
        // Detached from the pool: if this task dies, the connection closes
        // and Postgres releases the lock, instead of an idle pooled
        // connection holding leadership forever.
        let mut lock_conn = self.pool.acquire().await?.detach();
        let lock_key = format!("messenger.outbox.{}", self.schema);
        loop {
            let locked: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                    .bind(&lock_key)
                    .fetch_one(&mut lock_conn)
                    .await?;
            if locked {
                break;
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        tracing::info!(schema = %self.schema, "outbox relay is leader");
        let result = self.publish_loop(shutdown, backoff).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&lock_key)
            .execute(&mut lock_conn)
            .await;
        result
    }

    async fn publish_loop(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&format!("{}_outbox", self.schema)).await?;
        let mut topics_ready = false;
        while !shutdown.is_cancelled() {
            let rows = self.fetch_batch().await?;
            metrics::gauge!("outbox_pending", "service" => self.schema.clone())
                .set(rows.len() as f64);
            if let Some(oldest) = rows.first() {
                let lag = (OffsetDateTime::now_utc() - oldest.created_at).as_seconds_f64();
                metrics::gauge!("outbox_oldest_age_seconds", "service" => self.schema.clone())
                    .set(lag.max(0.0));
            } else {
                metrics::gauge!("outbox_oldest_age_seconds", "service" => self.schema.clone())
                    .set(0.0);
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    notification = listener.recv() => { notification?; }
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
                continue;
            }
            if !topics_ready {
                let ensured = tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    ensured = crate::kafka::ensure_topics(&self.kafka, &self.topics) => ensured,
                };
                if let Err(err) = ensured {
                    tracing::warn!(schema = %self.schema, error = %err, "cannot ensure topics");
                    backoff.wait(shutdown).await;
                    continue;
                }
                topics_ready = true;
            }
            // Stopping mid-batch leaves the rows in place: they are sent
            // again by the next leader, and consumers drop the duplicates.
            let published = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                published = self.publish(&rows) => published,
            };
            if published > 0 {
                let ids: Vec<i64> = rows[..published].iter().map(|row| row.id).collect();
                sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                    .bind(&ids)
                    .execute(&self.pool)
                    .await?;
                metrics::counter!("outbox_published_total", "service" => self.schema.clone())
                    .increment(published as u64);
            }
            if published < rows.len() {
                // The topic may have been deleted, or the broker replaced:
                // check it again before the next attempt.
                topics_ready = false;
                backoff.wait(shutdown).await;
            } else {
                backoff.reset();
            }
        }
        Ok(())
    }

    async fn fetch_batch(&self) -> sqlx::Result<Vec<OutboxRow>> {
        let rows = sqlx::query(
            "SELECT id, event_id, topic, partition_key, event_type, payload, headers, created_at \
             FROM outbox ORDER BY id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let headers: serde_json::Value = row.try_get("headers")?;
                Ok(OutboxRow {
                    id: row.try_get("id")?,
                    event_id: row.try_get("event_id")?,
                    topic: row.try_get("topic")?,
                    key: row.try_get("partition_key")?,
                    event_type: row.try_get("event_type")?,
                    payload: row.try_get("payload")?,
                    headers: serde_json::from_value(headers).unwrap_or_default(),
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Sends the batch; returns how many rows from the front were
    /// acknowledged. Rows after the first failure are retried (and may
    /// reach Kafka twice, which the event id makes harmless).
    async fn publish(&self, rows: &[OutboxRow]) -> usize {
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in rows {
            let topic = self.kafka.topic(&row.topic);
            let event_id = row.event_id.to_string();
            let mut headers = OwnedHeaders::new()
                .insert(Header {
                    key: "event_id",
                    value: Some(event_id.as_bytes()),
                })
                .insert(Header {
                    key: "event_type",
                    value: Some(row.event_type.as_bytes()),
                })
                .insert(Header {
                    key: "content-type",
                    value: Some("application/x-protobuf"),
                });
            for (key, value) in &row.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
            let record = FutureRecord::to(&topic)
                .key(&row.key)
                .payload(&row.payload)
                .headers(headers);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((err, _)) => {
                    tracing::warn!(error = %err, "kafka producer queue rejected record");
                    break;
                }
            }
        }
        let mut acknowledged = 0;
        let mut failed = false;
        for (row, delivery) in rows.iter().zip(deliveries) {
            match delivery.await {
                Ok(Ok(_)) if !failed => {
                    acknowledged += 1;
                    let lag = (OffsetDateTime::now_utc() - row.created_at).as_seconds_f64();
                    metrics::histogram!("outbox_publish_lag_seconds", "service" => self.schema.clone())
                        .record(lag.max(0.0));
                }
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => {
                    if !failed {
                        tracing::warn!(event_id = %row.event_id, error = %err, "kafka did not acknowledge event");
                        self.record_failure(row.id, &err.to_string()).await;
                    }
                    failed = true;
                }
                Err(_) => failed = true,
            }
        }
        acknowledged
    }

    async fn record_failure(&self, id: i64, error: &str) {
        let _ =
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                .bind(id)
                .bind(error)
                .execute(&self.pool)
                .await;
    }
}

#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    async fn wait(&mut self, shutdown: &CancellationToken) {
        let delay = Duration::from_millis(100u64 << self.attempt.min(9)).min(MAX_BACKOFF);
        self.attempt += 1;
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}
