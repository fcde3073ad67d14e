//! The gateway: the public REST API and the realtime WebSocket API. It owns
//! no tables; every request becomes gRPC calls to the services that own the
//! data, and every domain event reaches sockets through Kafka and Redis.

mod error;
mod extract;
pub mod http;
mod ratelimit;
pub mod realtime;
mod sessions;
mod state;

use messenger_platform::{CancellationToken, Config};
use tokio::net::TcpListener;

pub use state::AppState;

/// Serves the public API on `listener` until `shutdown` is cancelled, then
/// finishes in-flight requests.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Metrics recorded before the recorder exists are lost: install it first.
    messenger_platform::telemetry::prometheus();
    let state = AppState::new(&config)?;
    // Sockets and background tasks stop with the server, or when it fails.
    let realtime_shutdown = shutdown.child_token();
    let _stop_realtime = realtime_shutdown.clone().drop_guard();
    if !config.vault.addr.trim().is_empty() {
        // Tokens are signed and verified here, so this is where rotated JWT
        // keys must land without a restart.
        let session = messenger_platform::vault::Session::login(&config.vault).await?;
        tokio::spawn(messenger_platform::vault::watch_token_keys(
            config.clone(),
            session,
            state.key_ring(),
            realtime_shutdown.clone(),
        ));
    }
    if config.features.websocket_enabled {
        state.set_realtime(realtime::Realtime::start(
            &config,
            &state,
            realtime_shutdown,
        ));
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
