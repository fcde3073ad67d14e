//! What every gRPC service with a database does around its own logic:
//! connect to its schema, migrate, relay its outbox, and stop cleanly.

use crate::config::Config;
use crate::outbox::OutboxRelay;
use crate::shutdown::CancellationToken;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;

pub struct Backend {
    pub pool: PgPool,
    /// Cancelled when the process shuts down or the service stops.
    pub shutdown: CancellationToken,
    relay: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Backend {
    /// `topics` are the logical topics the service's outbox publishes to.
    pub async fn start(
        config: &Config,
        service: &str,
        migrator: &'static Migrator,
        topics: &[&str],
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
        let relay = if config.features.kafka_enabled {
            let producer = crate::kafka::producer(&config.kafka, &format!("messenger-{service}"))?;
            let relay = OutboxRelay::new(
                pool.clone(),
                producer,
                config.kafka.clone(),
                service,
                topics,
            );
            Some(tokio::spawn(relay.run(shutdown.clone())))
        } else {
            tracing::warn!(
                service,
                "KAFKA_ENABLED=false: events accumulate in the outbox"
            );
            None
        };
        Ok(Backend {
            pool,
            shutdown,
            relay,
            metrics,
        })
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
