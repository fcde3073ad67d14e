//! Every service of the fleet in one process (the "all targets" mode): the
//! same `serve` functions production runs one per process, composed.

use messenger_platform::{CancellationToken, Config};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub struct Listeners {
    pub gateway: TcpListener,
    /// The gateway's operators' listener (`server.internal_listen`).
    pub internal: Option<TcpListener>,
    pub users: TcpListener,
    pub groups: TcpListener,
    pub messages: TcpListener,
    pub media: TcpListener,
    pub notifier: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let bind = |addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))
        };
        Ok(Listeners {
            gateway: bind(format!("{}:{}", config.server.host, config.server.port)).await?,
            internal: messenger_gateway::bind_internal(&config.server.internal_listen).await?,
            users: bind(config.grpc.users.listen.clone()).await?,
            groups: bind(config.grpc.groups.listen.clone()).await?,
            messages: bind(config.grpc.messages.listen.clone()).await?,
            media: bind(config.grpc.media.listen.clone()).await?,
            notifier: bind(config.grpc.notifier.listen.clone()).await?,
        })
    }

    /// Binds free loopback ports and points `config` at them.
    pub async fn ephemeral(config: &mut Config) -> anyhow::Result<Self> {
        let gateway = TcpListener::bind("127.0.0.1:0").await?;
        config.server.port = gateway.local_addr()?.port();
        let internal = TcpListener::bind("127.0.0.1:0").await?;
        config.server.internal_listen = internal.local_addr()?.to_string();
        let mut grpc = Vec::new();
        for endpoint in [
            &mut config.grpc.users,
            &mut config.grpc.groups,
            &mut config.grpc.messages,
            &mut config.grpc.media,
            &mut config.grpc.notifier,
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            endpoint.listen = addr.to_string();
            endpoint.url = format!("http://{addr}");
            grpc.push(listener);
        }
        let [users, groups, messages, media, notifier]: [TcpListener; 5] = grpc
            .try_into()
            .map_err(|_| anyhow::anyhow!("expected five gRPC listeners"))?;
        Ok(Listeners {
            gateway,
            internal: Some(internal),
            users,
            groups,
            messages,
            media,
            notifier,
        })
    }
}

/// Runs all services until `shutdown` is cancelled or one of them fails
/// (which stops the others).
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut services = JoinSet::new();
    let token = shutdown.child_token();
    services.spawn(named(
        "users",
        messenger_users::serve(config.clone(), listeners.users, token.clone()),
    ));
    services.spawn(named(
        "groups",
        messenger_groups::serve(config.clone(), listeners.groups, token.clone()),
    ));
    services.spawn(named(
        "messages",
        messenger_messages::serve(config.clone(), listeners.messages, token.clone()),
    ));
    services.spawn(named(
        "media",
        messenger_media::serve(config.clone(), listeners.media, token.clone()),
    ));
    services.spawn(named(
        "notifier",
        messenger_notifier::serve(config.clone(), listeners.notifier, token.clone()),
    ));
    services.spawn(named(
        "gateway",
        messenger_gateway::serve_with(config, listeners.gateway, listeners.internal, token.clone()),
    ));
    let mut first_error = None;
    while let Some(joined) = services.join_next().await {
        let result = joined
            .map_err(anyhow::Error::from)
            .and_then(|result| result);
        if let Err(err) = result {
            tracing::error!(
                error = format!("{err:#}"),
                "service failed, stopping the fleet"
            );
            first_error.get_or_insert(err);
        }
        token.cancel();
    }
    first_error.map_or(Ok(()), Err)
}

async fn named(
    name: &'static str,
    service: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    service
        .await
        .map_err(|err| err.context(format!("{name} service")))
}
