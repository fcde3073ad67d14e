//! The messages service: messages, threads, edits, reactions, read
//! positions, notifications and search, served over gRPC, stored in the
//! `messages` schema, announced on `messages.events.v1`. Who may do what
//! is the groups service's answer, asked on every call.

mod convert;
mod domain;
mod error;
pub mod events;
mod grpc;
mod inbox;
mod messages;
mod notify;
mod peers;
mod reactions;
mod reads;
mod repo;
mod send;

use messenger_platform::backend::Backend;
use messenger_platform::callers::Caller;
use messenger_platform::mtls::Transport;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::messages::v1::MessagesEvent;
use messenger_proto::messages::v1::messages_service_server::MessagesServiceServer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::server::NamedService;

/// The Kafka topics this service writes, through its outbox: its Kafka
/// user may write these and no others (deploy/kafka/acls.tsv).
pub const KAFKA_WRITES: &[messenger_proto::events::Topic] = &[MessagesEvent::TOPIC];

pub const SCHEMA: &str = "messages";
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/messages");

/// Idempotency keys are kept at least this long (the promise is 24 hours).
const KEY_RETENTION_HOURS: i32 = 48;

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let transport = Transport::establish(&config, Caller::Messages, &shutdown).await?;
    let backend = Backend::start(&config, SCHEMA, &MIGRATOR, KAFKA_WRITES, &shutdown).await?;
    let service = grpc::MessagesGrpc {
        messages: messages::Messages {
            pool: backend.pool.clone(),
            peers: peers::Peers::new(&config, &transport)?,
        },
    };
    let pruner = tokio::spawn(prune_keys(backend.pool.clone(), backend.shutdown.clone()));
    let (reporter, health) = rpc::health();
    backend.report_outbox_health(reporter.clone()).await;
    reporter
        .set_serving::<MessagesServiceServer<grpc::MessagesGrpc>>()
        .await;
    let router = rpc::with_reflection(
        rpc::server(&transport, rpc::user_tokens(&config, &transport)?)
            .add_service(health)
            .add_service(MessagesServiceServer::new(service)),
        &[<MessagesServiceServer<grpc::MessagesGrpc> as NamedService>::NAME],
    )?;
    let served = rpc::serve(&transport, router, listener, backend.shutdown.clone()).await;
    pruner.abort();
    backend.stop().await;
    served
}

/// Forgets old idempotency keys once an hour.
async fn prune_keys(pool: PgPool, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let pruned = match pool.acquire().await {
            Ok(mut conn) => repo::prune_keys(&mut conn, KEY_RETENTION_HOURS).await,
            Err(err) => Err(err),
        };
        match pruned {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "pruned old idempotency keys"),
            Err(err) => tracing::warn!(error = %err, "pruning idempotency keys failed"),
        }
    }
}
