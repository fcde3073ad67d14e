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

// The outbox table lives in every service's schema, so these statements
// cannot be checked against one schema at compile time: the reviewed
// exception to the checked-macros rule (clippy.toml).
#![allow(clippy::disallowed_methods)]

use crate::config::KafkaConfig;
use crate::shutdown::CancellationToken;
use messenger_proto::Topic;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

const BATCH: i64 = 256;
const IDLE_POLL: Duration = Duration::from_secs(1);
// Every failed attempt already waited out the producer's message timeout
// (or the admin timeout), so a short pause costs little during an outage
// and bounds how long events wait once the broker is back.
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// Rows pending this long with nothing acknowledged make the relay report
/// itself stalled (metric and health), though it keeps trying.
const STALLED_AFTER: Duration = Duration::from_secs(15);

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

/// The `meta` of event `event_id`.
pub fn event_meta(event_id: Uuid, event: &DomainEvent) -> messenger_proto::common::v1::EventMeta {
    messenger_proto::common::v1::EventMeta {
        event_id: event_id.to_string(),
        event_type: event.event_type.to_owned(),
        version: SCHEMA_VERSION,
        occurred_at: Some(crate::wire::timestamp(event.occurred_at)),
        aggregate_id: event.aggregate_id.clone(),
    }
}

/// The headers every record on every topic carries (docs/events.md).
pub fn record_headers(event_id: &str, event_type: &str) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: "event_id",
            value: Some(event_id.as_bytes()),
        })
        .insert(Header {
            key: "event_type",
            value: Some(event_type.as_bytes()),
        })
        .insert(Header {
            key: "content-type",
            value: Some("application/x-protobuf"),
        })
}

/// Enqueues a domain event: `build` wraps the filled-in metadata into the
/// topic's message, which is encoded and written to the outbox.
pub async fn enqueue_domain_event<E: prost::Message>(
    conn: &mut sqlx::PgConnection,
    event: DomainEvent,
    build: impl FnOnce(messenger_proto::common::v1::EventMeta) -> E,
) -> sqlx::Result<()> {
    let event_id = Uuid::now_v7();
    let meta = event_meta(event_id, &event);
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
    progress: Progress,
    stalled: watch::Sender<bool>,
}

/// Since when rows have waited with nothing acknowledged, and when the
/// producer was last replaced: what decides a rebuild and a stall.
struct Progress {
    waiting_since: Option<Instant>,
    rebuilt_at: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            waiting_since: None,
            rebuilt_at: Instant::now(),
        }
    }

    /// Rows are waiting: the clock starts unless it runs already.
    fn pending(&mut self) {
        self.waiting_since.get_or_insert_with(Instant::now);
    }

    /// `acknowledged` of `pending` rows reached the broker.
    fn record(&mut self, acknowledged: usize, pending: usize) {
        self.waiting_since = if acknowledged == pending {
            None
        } else if acknowledged > 0 {
            Some(Instant::now())
        } else {
            Some(self.waiting_since.unwrap_or_else(Instant::now))
        };
    }

    fn waited(&self) -> Duration {
        self.waiting_since
            .map(|since| since.elapsed())
            .unwrap_or_default()
    }

    /// Nothing acknowledged for `after`, counted from the later of the
    /// first unanswered attempt and the last rebuild.
    fn due_for_rebuild(&self, after: Duration) -> bool {
        self.waiting_since.is_some() && self.waited() >= after && self.rebuilt_at.elapsed() >= after
    }
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
    /// `topics` are the topics this service publishes; the relay
    /// creates them before the first publish. Fails only on settings the
    /// Kafka client refuses.
    pub fn new(
        pool: PgPool,
        kafka: KafkaConfig,
        schema: &str,
        topics: &[Topic],
    ) -> anyhow::Result<Self> {
        let producer = crate::kafka::producer(&kafka, &client_id(schema))?;
        Ok(OutboxRelay {
            pool,
            producer,
            topics: topics
                .iter()
                .map(|topic| kafka.topic(topic.name()))
                .collect(),
            kafka,
            schema: schema.to_owned(),
            progress: Progress::new(),
            stalled: watch::Sender::new(false),
        })
    }

    /// `true` while rows wait with nothing acknowledged for a while: the
    /// broker is away or refuses this producer.
    pub fn stalled(&self) -> watch::Receiver<bool> {
        self.stalled.subscribe()
    }

    /// Runs until `shutdown` is cancelled. Errors (Postgres or Kafka down)
    /// are logged and retried with exponential backoff, never fatal.
    pub async fn run(mut self, shutdown: CancellationToken) {
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
        &mut self,
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
        &mut self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&format!("{}_outbox", self.schema)).await?;
        let mut topics_ready = false;
        while !shutdown.is_cancelled() {
            let rows = self.fetch_batch().await?;
            self.report_backlog(rows.len()).await?;
            if rows.is_empty() {
                self.after_attempt(0, 0);
            } else {
                self.progress.pending();
            }
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
                    self.after_attempt(0, rows.len());
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
            self.after_attempt(published, rows.len());
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

    /// `outbox_pending` is the whole backlog, not one batch of it.
    async fn report_backlog(&self, fetched: usize) -> sqlx::Result<()> {
        let pending = if fetched < BATCH as usize {
            fetched as i64
        } else {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
                .fetch_one(&self.pool)
                .await?
        };
        metrics::gauge!("outbox_pending", "service" => self.schema.clone()).set(pending as f64);
        Ok(())
    }

    /// Updates the stall state after an attempt and replaces the producer
    /// when librdkafka declared it dead, or when it has acknowledged nothing
    /// for `kafka.producer_rebuild_after_seconds` (a broker that came back
    /// may refuse the old producer's state forever).
    fn after_attempt(&mut self, acknowledged: usize, pending: usize) {
        self.progress.record(acknowledged, pending);
        let stalled = self.progress.waited() >= STALLED_AFTER;
        self.stalled
            .send_if_modified(|state| std::mem::replace(state, stalled) != stalled);
        metrics::gauge!("outbox_relay_stalled", "service" => self.schema.clone()).set(if stalled {
            1.0
        } else {
            0.0
        });
        let rebuild_after = Duration::from_secs(self.kafka.producer_rebuild_after_seconds);
        let reason = match crate::kafka::fatal_error(self.producer.client()) {
            Some(fatal) => format!("fatal producer error ({fatal})"),
            None if self.progress.due_for_rebuild(rebuild_after) => format!(
                "{pending} rows pending, nothing acknowledged for {} s",
                self.progress.waited().as_secs()
            ),
            None => return,
        };
        match crate::kafka::producer(&self.kafka, &client_id(&self.schema)) {
            Ok(producer) => {
                crate::kafka::note_rebuild(&client_id(&self.schema), &reason);
                // The old producer's queued records fail on their own; their
                // rows are still in the outbox and go out again. Dropping it
                // joins its thread and flushes: never on the runtime's threads.
                let old = std::mem::replace(&mut self.producer, producer);
                drop(tokio::task::spawn_blocking(move || drop(old)));
                self.progress.rebuilt_at = Instant::now();
            }
            Err(err) => tracing::warn!(error = %err, "cannot build a new Kafka producer"),
        }
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
            let mut headers = record_headers(&event_id, &row.event_type);
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

fn client_id(schema: &str) -> String {
    format!("messenger-{schema}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_waits_only_while_nothing_is_acknowledged() {
        let mut progress = Progress::new();
        progress.record(0, 10);
        let first = progress.waiting_since.expect("waiting");
        progress.record(0, 10);
        assert_eq!(
            progress.waiting_since,
            Some(first),
            "the clock keeps running"
        );
        progress.record(3, 10);
        assert!(
            progress.waiting_since.expect("still waiting") >= first,
            "progress restarts it"
        );
        progress.record(7, 7);
        assert_eq!(progress.waiting_since, None);
        assert!(!progress.due_for_rebuild(Duration::ZERO));
    }

    #[test]
    fn rebuilds_are_spaced_by_the_configured_time() {
        let mut progress = Progress::new();
        progress.record(0, 1);
        assert!(progress.due_for_rebuild(Duration::ZERO));
        assert!(!progress.due_for_rebuild(Duration::from_secs(60)));
        progress.waiting_since = Some(Instant::now() - Duration::from_secs(120));
        progress.rebuilt_at = Instant::now() - Duration::from_secs(30);
        assert!(
            !progress.due_for_rebuild(Duration::from_secs(60)),
            "rebuilt recently"
        );
        progress.rebuilt_at = Instant::now() - Duration::from_secs(61);
        assert!(progress.due_for_rebuild(Duration::from_secs(60)));
    }
}
