//! The gateway: the public REST API and the realtime WebSocket API. It owns
//! no tables; every request becomes gRPC calls to the services that own the
//! data, and every domain event reaches sockets through Kafka and Redis.

pub mod api;
mod backends;
mod error;
pub mod http;
mod ratelimit;
pub mod realtime;
pub mod settings;
mod state;

use messenger_platform::{CancellationToken, Config};
use tokio::net::TcpListener;

pub use state::AppState;

/// Serves the public API on `listener` and the operators' listener on
/// `server.internal_listen` (when set) until `shutdown` is cancelled, then
/// finishes in-flight requests.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let internal = bind_internal(&config.server.internal_listen).await?;
    serve_with(config, listener, internal, shutdown).await
}

/// Binds the operators' listener; `None` when it is turned off.
pub async fn bind_internal(address: &str) -> anyhow::Result<Option<TcpListener>> {
    let address = address.trim();
    if address.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(address).await.map_err(|err| {
        anyhow::anyhow!("server.internal_listen: cannot listen on {address}: {err}")
    })?;
    Ok(Some(listener))
}

/// [`serve`] on listeners bound by the caller (`internal`: the operators'
/// listener, if any).
pub async fn serve_with(
    config: Config,
    listener: TcpListener,
    internal: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Metrics recorded before the recorder exists are lost: install it first.
    messenger_platform::telemetry::prometheus();
    // Sockets and background tasks stop with the server, or when it fails.
    let realtime_shutdown = shutdown.child_token();
    let _stop_realtime = realtime_shutdown.clone().drop_guard();
    let transport = messenger_platform::mtls::Transport::establish(
        &config,
        messenger_platform::callers::Caller::Gateway,
        &realtime_shutdown,
    )
    .await?;
    let state = AppState::start(&config, &transport, realtime_shutdown.clone())?;
    if let Some(internal) = internal {
        let router = http::health::internal_router(state.clone());
        let stop = shutdown.clone().cancelled_owned();
        tracing::info!(addr = ?internal.local_addr().ok(), "serving /metrics and /ready for operators");
        tokio::spawn(async move {
            if let Err(err) = axum::serve(internal, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(%err, "operators' listener failed");
            }
        });
    }
    let app = http::router(state, &config);
    use axum::serve::ListenerExt;
    // Small responses must not wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
    });
    // Peer addresses feed per-address rate limits.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
