//! The groups service. Its domain arrives with its own issue; today it owns
//! the `groups` schema (with its outbox), answers gRPC health checks and
//! `Info`, relays its outbox to `groups.events.v1`, and holds the role and
//! permission matrix ([`permissions`]) the rest of the domain builds on.

pub mod permissions;

use messenger_platform::backend::Backend;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::groups::v1::groups_service_server::{GroupsService, GroupsServiceServer};
use messenger_proto::groups::v1::{InfoRequest, InfoResponse};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

pub const SCHEMA: &str = "groups";
pub const TOPIC: &str = "groups.events.v1";
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/groups");

struct GroupsGrpc;

#[tonic::async_trait]
impl GroupsService for GroupsGrpc {
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
        .set_serving::<GroupsServiceServer<GroupsGrpc>>()
        .await;
    let router = rpc::server()
        .add_service(health)
        .add_service(GroupsServiceServer::new(GroupsGrpc));
    let served = rpc::serve(router, listener, backend.shutdown.clone()).await;
    backend.stop().await;
    served
}
