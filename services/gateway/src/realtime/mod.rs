//! Realtime delivery over WebSocket (`/ws`): the Kafka → Redis fan-out,
//! this replica's Redis subscriber, presence and the socket protocol.

mod fanout;
pub mod frames;
mod hub;
mod presence;
pub mod rooms;
mod socket;
pub mod store;
mod translate;

use crate::state::AppState;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use messenger_platform::config::WebSocketConfig;
use messenger_platform::{CancellationToken, Config};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use hub::GROUP_CHANGES;

pub struct Realtime {
    hub: hub::Hub,
    store: Arc<store::Store>,
    settings: WebSocketConfig,
    next_socket: AtomicU64,
    /// Names this replica's sockets in Redis: process ids repeat across
    /// containers (every one may be pid 1), and several replicas may share
    /// a process (tests), so each draws a random id.
    instance: String,
    shutdown: CancellationToken,
}

impl Realtime {
    /// Starts the fan-out consumer, the Redis subscriber and the presence
    /// sweeper; they stop with `shutdown`.
    pub fn start(config: &Config, app: &AppState, shutdown: CancellationToken) -> Arc<Realtime> {
        let client = app.redis().clone();
        let store = Arc::new(store::Store::new(
            client.clone(),
            config.websocket.room_history,
            &config.kafka.topic_prefix,
        ));
        let realtime = Arc::new(Realtime {
            hub: hub::Hub::new(client),
            store: store.clone(),
            settings: config.websocket.clone(),
            next_socket: AtomicU64::new(1),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(realtime.hub.clone().run(shutdown.clone()));
        if config.features.kafka_enabled {
            tokio::spawn(fanout::run(config.clone(), store, shutdown.clone()));
        }
        tokio::spawn(presence::sweep(realtime.clone(), app.clone()));
        realtime
    }
}

#[derive(Deserialize)]
pub struct WsParams {
    token: Option<String>,
}

/// `GET /ws`: upgrades to the realtime protocol. The access token comes in
/// the `token` query parameter, as `Sec-WebSocket-Protocol: bearer, <token>`
/// or in a first `auth` frame.
pub async fn upgrade(
    State(app): State<AppState>,
    Query(params): Query<WsParams>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let address = crate::http::rate_limit::client_ip(&app, Some(peer), &headers);
    let protocol_token = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let mut parts = value.split(',').map(str::trim);
            (parts.next() == Some("bearer"))
                .then(|| parts.next().map(str::to_owned))
                .flatten()
        });
    let token = params.token.or(protocol_token);
    let Some(realtime) = app.realtime() else {
        return crate::error::ApiError::not_found("WebSocket delivery is disabled on this server")
            .into_response();
    };
    // Small buffers: an idle socket should cost kilobytes, not the 128 KiB
    // read buffer the WebSocket library allocates by default.
    ws.protocols(["bearer"])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(4 * 1024 * 1024)
        .max_message_size(frames::MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| socket::serve(socket, realtime, app, token, address))
}
