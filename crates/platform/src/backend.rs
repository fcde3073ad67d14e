//! What every gRPC service with a database does around its own logic:
//! connect to its schema, migrate, relay its outbox, and stop cleanly.

use crate::config::Config;
use crate::outbox::OutboxRelay;
use crate::shutdown::CancellationToken;
use messenger_proto::Topic;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;

/// The gRPC health service name under which a backend reports its outbox.
pub const OUTBOX_HEALTH: &str = "messenger.outbox";

pub struct Backend {
    pub pool: PgPool,
    /// Cancelled when the process shuts down or the service stops.
    pub shutdown: CancellationToken,
    relay: Option<JoinHandle<()>>,
    relay_stalled: Option<tokio::sync::watch::Receiver<bool>>,
    metrics: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Backend {
    /// `topics` are the topics the service's outbox publishes to.
    pub async fn start(
        config: &Config,
        service: &str,
        migrator: &'static Migrator,
        topics: &[Topic],
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        // Metrics recorded before the recorder exists are lost: install it first.
        crate::telemetry::prometheus();
        let pool = crate::db::connect(config, service).await?;
        if config.database.run_migrations {
            crate::db::migrate_up(&pool, migrator).await?;
        }
        let shutdown = shutdown.child_token();
        let metrics_listen = match service {
            "users" => &config.grpc.users.metrics_listen,
            "groups" => &config.grpc.groups.metrics_listen,
            "messages" => &config.grpc.messages.metrics_listen,
            "media" => &config.grpc.media.metrics_listen,
            "notifier" => &config.grpc.notifier.metrics_listen,
            _ => anyhow::bail!("unknown service {service:?}"),
        };
        let metrics = if metrics_listen.is_empty() {
            None
        } else {
            let listener = tokio::net::TcpListener::bind(metrics_listen)
                .await
                .map_err(|err| anyhow::anyhow!("cannot listen on {metrics_listen}: {err}"))?;
            tracing::info!(service, addr = %metrics_listen, "serving /metrics");
            Some(tokio::spawn(crate::telemetry::serve_metrics(
                listener,
                shutdown.clone(),
            )))
        };
        let (relay, relay_stalled) = if config.features.kafka_enabled {
            let relay = OutboxRelay::new(pool.clone(), config.kafka.clone(), service, topics)?;
            let stalled = relay.stalled();
            (
                Some(tokio::spawn(relay.run(shutdown.clone()))),
                Some(stalled),
            )
        } else {
            tracing::warn!(
                service,
                "KAFKA_ENABLED=false: events accumulate in the outbox"
            );
            (None, None)
        };
        Ok(Backend {
            pool,
            shutdown,
            relay,
            relay_stalled,
            metrics,
        })
    }

    /// Serves the outbox relay's state as the gRPC health of the service
    /// named [`OUTBOX_HEALTH`]: `NOT_SERVING` while it is stalled. The
    /// service itself stays `SERVING` (the outbox exists to absorb a Kafka
    /// outage); the gateway shows this in its readiness details only.
    pub async fn report_outbox_health(&self, reporter: tonic_health::server::HealthReporter) {
        let Some(mut stalled) = self.relay_stalled.clone() else {
            return;
        };
        let status = |stalled: bool| {
            if stalled {
                tonic_health::ServingStatus::NotServing
            } else {
                tonic_health::ServingStatus::Serving
            }
        };
        // Known before the service answers its first health check.
        let current = *stalled.borrow_and_update();
        reporter
            .set_service_status(OUTBOX_HEALTH, status(current))
            .await;
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    changed = stalled.changed() => if changed.is_err() { return },
                }
                let current = *stalled.borrow_and_update();
                reporter
                    .set_service_status(OUTBOX_HEALTH, status(current))
                    .await;
            }
        });
    }

    /// Stops the relay and the metrics endpoint, and closes the pool.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Some(relay) = self.relay {
            let _ = relay.await;
        }
        if let Some(metrics) = self.metrics {
            let _ = metrics.await;
        }
        self.pool.close().await;
    }
}
