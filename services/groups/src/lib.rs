//! The groups service: groups, channels, direct conversations, members,
//! roles and bans, served over gRPC, stored in the `groups` schema,
//! announced on `groups.events.v1`; and the authorization check the rest of
//! the fleet asks on hot paths, cached in Redis.

mod access;
mod authorize;
mod cache;
mod channels;
mod convert;
mod direct;
mod domain;
mod error;
pub mod events;
mod groups;
mod grpc;
mod members;
pub mod permissions;
#[cfg(test)]
mod proptests;
mod repo;

use messenger_platform::backend::Backend;
use messenger_platform::callers::Caller;
use messenger_platform::mtls::Transport;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::groups::v1::GroupsEvent;
use messenger_proto::groups::v1::groups_service_server::GroupsServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::server::NamedService;

/// The Kafka topics this service writes, through its outbox: its Kafka
/// user may write these and no others (deploy/kafka/acls.tsv).
pub const KAFKA_WRITES: &[messenger_proto::events::Topic] = &[GroupsEvent::TOPIC];

pub const SCHEMA: &str = "groups";
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/groups");

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let transport = Transport::establish(&config, Caller::Groups, &shutdown).await?;
    let backend = Backend::start(&config, SCHEMA, &MIGRATOR, KAFKA_WRITES, &shutdown).await?;
    let cache = cache::AuthzCache::new(redis::Client::open(config.redis.url())?);
    let service = grpc::GroupsGrpc {
        groups: groups::Groups {
            pool: backend.pool.clone(),
            cache: Arc::new(cache),
        },
    };
    let (reporter, health) = rpc::health();
    backend.report_outbox_health(reporter.clone()).await;
    reporter
        .set_serving::<GroupsServiceServer<grpc::GroupsGrpc>>()
        .await;
    let router = rpc::with_reflection(
        rpc::server(&transport, rpc::user_tokens(&config, &transport)?)
            .add_service(health)
            .add_service(GroupsServiceServer::new(service)),
        &[<GroupsServiceServer<grpc::GroupsGrpc> as NamedService>::NAME],
    )?;
    let served = rpc::serve(&transport, router, listener, backend.shutdown.clone()).await;
    backend.stop().await;
    served
}
