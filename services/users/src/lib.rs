//! The users service: accounts, profiles, credentials and refresh sessions,
//! served over gRPC, stored in the `users` schema, announced on
//! `users.events.v1`.

mod accounts;
mod convert;
pub mod domain;
mod error;
pub mod events;
mod grpc;
mod password;
#[cfg(test)]
mod proptests;
mod repo;
mod search;
mod sessions;
pub mod settings;

use messenger_platform::backend::Backend;
use messenger_platform::callers::Caller;
use messenger_platform::mtls::Transport;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::users::v1::UserEvent;
use messenger_proto::users::v1::users_service_server::UsersServiceServer;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tonic::server::NamedService;

pub const SCHEMA: &str = "users";
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/users");

/// Runs the service on `listener` until `shutdown` is cancelled: migrates
/// (if configured), serves gRPC and relays the outbox to Kafka.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Settings first: a bad one fails before anything starts.
    let hasher = password::Hasher::new(&config.section::<settings::PasswordSettings>()?)?;
    let sign_in = config.section::<settings::SignInLimit>()?;
    let transport = Transport::establish(&config, Caller::Users, &shutdown).await?;
    let backend =
        Backend::start(&config, SCHEMA, &MIGRATOR, &[UserEvent::TOPIC], &shutdown).await?;
    let service = grpc::UsersGrpc {
        accounts: accounts::Accounts::new(
            backend.pool.clone(),
            hasher,
            sign_in.login_per_account_per_minute,
        ),
        sessions: sessions::Sessions::new(backend.pool.clone(), config.auth.refresh_ttl_seconds),
    };
    let (reporter, health) = rpc::health();
    backend.report_outbox_health(reporter.clone()).await;
    reporter
        .set_serving::<UsersServiceServer<grpc::UsersGrpc>>()
        .await;
    let router = rpc::with_reflection(
        rpc::server(&transport)
            .add_service(health)
            .add_service(UsersServiceServer::new(service)),
        &[<UsersServiceServer<grpc::UsersGrpc> as NamedService>::NAME],
    )?;
    let served = rpc::serve(&transport, router, listener, backend.shutdown.clone()).await;
    backend.stop().await;
    served
}
