//! The media service. Its domain arrives with its own issue; today it owns
//! the `media` schema (with its outbox), answers gRPC health checks and
//! `Info`, and relays its outbox to `media.events.v1`.

use messenger_platform::backend::Backend;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::media::v1::media_service_server::{MediaService, MediaServiceServer};
use messenger_proto::media::v1::{InfoRequest, InfoResponse};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

pub const SCHEMA: &str = "media";
pub const TOPIC: &str = "media.events.v1";
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/media");

struct MediaGrpc;

#[tonic::async_trait]
impl MediaService for MediaGrpc {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(InfoResponse {
            service: SCHEMA.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }
}

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let backend = Backend::start(&config, SCHEMA, &MIGRATOR, &[TOPIC], &shutdown).await?;
    let (reporter, health) = rpc::health();
    reporter
        .set_serving::<MediaServiceServer<MediaGrpc>>()
        .await;
    let router = rpc::server()
        .add_service(health)
        .add_service(MediaServiceServer::new(MediaGrpc));
    let served = rpc::serve(router, listener, backend.shutdown.clone()).await;
    backend.stop().await;
    served
}
