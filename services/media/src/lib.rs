//! The media service: uploads streamed to object storage (deduplicated by
//! content), type detection by magic bytes, image processing by a worker
//! consuming `media.events.v1`, authorized ranged downloads, and a sweeper
//! of uploads never attached.

pub mod backup;
mod convert;
mod detect;
mod error;
pub mod events;
mod grpc;
mod media;
mod process;
mod repo;
pub mod settings;
mod storage;
mod sweeper;
mod worker;

use messenger_platform::backend::Backend;
use messenger_platform::callers::Caller;
use messenger_platform::grpc::{TracePropagation, lazy_channel};
use messenger_platform::mtls::Transport;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::media::v1::MediaEvent;
use messenger_proto::media::v1::media_service_server::MediaServiceServer;
use messenger_proto::messages::v1::messages_service_client::MessagesServiceClient;
use sqlx::migrate::Migrator;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::server::NamedService;

/// The Kafka topics this service writes, through its outbox: its Kafka
/// user may write these and no others (deploy/kafka/acls.tsv).
pub const KAFKA_WRITES: &[messenger_proto::events::Topic] = &[MediaEvent::TOPIC];

/// What the thumbnail worker reads: its Kafka user's read rights.
pub const KAFKA_READS: &[messenger_proto::events::Topic] = &[MediaEvent::TOPIC];
/// The thumbnail worker's consumer group (with `kafka.topic_prefix`).
pub const KAFKA_CONSUMER_GROUP: &str = worker::GROUP;

pub const SCHEMA: &str = "media";
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/media");

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings: settings::MediaSettings = config.section()?;
    let storage = storage::Storage::from_url(&settings.storage_url)?;
    let transport = Transport::establish(&config, Caller::Media, &shutdown).await?;
    let backend = Backend::start(&config, SCHEMA, &MIGRATOR, KAFKA_WRITES, &shutdown).await?;
    let timeout = Duration::from_millis(config.grpc.timeout_ms);
    let media = media::Media {
        pool: backend.pool.clone(),
        storage,
        limits: settings.clone(),
        messages: MessagesServiceClient::with_interceptor(
            lazy_channel(
                &transport,
                Caller::Messages,
                &config.grpc.messages.url,
                timeout,
            )?,
            TracePropagation,
        ),
    };
    let worker = config.features.kafka_enabled.then(|| {
        tokio::spawn(worker::run(
            config.clone(),
            media.clone(),
            backend.shutdown.clone(),
        ))
    });
    // Uploads never attached are deleted by every replica's sweeper, with
    // or without Kafka (its events go through the outbox).
    let sweeper = tokio::spawn(sweeper::run(media.clone(), backend.shutdown.clone()));
    let (reporter, health) = rpc::health();
    backend.report_outbox_health(reporter.clone()).await;
    reporter
        .set_serving::<MediaServiceServer<grpc::MediaGrpc>>()
        .await;
    // An upload call lasts as long as the client takes to send the file.
    let router = rpc::with_reflection(
        rpc::server_with_call_limit(
            &transport,
            rpc::user_tokens(&config, &transport)?,
            settings.upload_timeout(&config.server),
        )
        .add_service(health)
        .add_service(MediaServiceServer::new(grpc::MediaGrpc { media })),
        &[<MediaServiceServer<grpc::MediaGrpc> as NamedService>::NAME],
    )?;
    let served = rpc::serve(&transport, router, listener, backend.shutdown.clone()).await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    let _ = sweeper.await;
    backend.stop().await;
    served
}
