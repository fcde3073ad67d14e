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

use messenger_platform::auth::{KeyRing, TokenSigner};
use messenger_platform::backend::Backend;
use messenger_platform::callers::Caller;
use messenger_platform::identity::UserTokens;
use messenger_platform::mtls::Transport;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::users::v1::UserEvent;
use messenger_proto::users::v1::users_service_server::UsersServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::server::NamedService;

/// The Kafka topics this service writes, through its outbox: its Kafka
/// user may write these and no others (deploy/kafka/acls.tsv).
pub const KAFKA_WRITES: &[messenger_proto::events::Topic] = &[UserEvent::TOPIC];

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
    let signer = Arc::new(KeyRing::new(TokenSigner::from_config(&config.auth)?));
    let transport = Transport::establish(&config, Caller::Users, &shutdown).await?;
    let backend = Backend::start(&config, SCHEMA, &MIGRATOR, KAFKA_WRITES, &shutdown).await?;
    if !config.vault.addr.trim().is_empty() {
        // Only this service signs access tokens, so this is where rotated
        // keys land without a restart; verifiers fetch the new set.
        let session = messenger_platform::vault::Session::login(&config.vault).await?;
        tokio::spawn(messenger_platform::vault::watch_token_keys(
            config.clone(),
            session,
            Arc::clone(&signer),
            backend.shutdown.clone(),
        ));
    }
    let ended_sessions = rpc::deny_list(&config)?;
    let verifier = match config.grpc.user_tokens {
        true => Some(UserTokens::signed_here(
            Arc::clone(&signer),
            Arc::clone(&ended_sessions),
        )),
        false => None,
    };
    let service = grpc::UsersGrpc {
        accounts: accounts::Accounts::new(
            backend.pool.clone(),
            hasher,
            sign_in.login_per_account_per_minute,
        ),
        sessions: sessions::Sessions::new(
            backend.pool.clone(),
            config.auth.refresh_ttl_seconds,
            ended_sessions,
        ),
        signer,
    };
    let (reporter, health) = rpc::health();
    backend.report_outbox_health(reporter.clone()).await;
    reporter
        .set_serving::<UsersServiceServer<grpc::UsersGrpc>>()
        .await;
    let router = rpc::with_reflection(
        rpc::server(&transport, verifier)
            .add_service(health)
            .add_service(UsersServiceServer::new(service)),
        &[<UsersServiceServer<grpc::UsersGrpc> as NamedService>::NAME],
    )?;
    let served = rpc::serve(&transport, router, listener, backend.shutdown.clone()).await;
    backend.stop().await;
    served
}
