//! `GET /ws`: the upgrade to the realtime protocol (`crate::realtime`).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct WsParams {
    token: Option<String>,
}

/// The access token comes in the `token` query parameter, as
/// `Sec-WebSocket-Protocol: bearer, <token>` or in a first `auth` frame.
pub async fn upgrade(
    State(app): State<AppState>,
    Query(params): Query<WsParams>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(realtime) = app.realtime().cloned() else {
        return ApiError::not_found("WebSocket delivery is disabled on this server")
            .into_response();
    };
    let address = app.guard().client_ip(Some(peer), &headers);
    let token = params.token.or_else(|| protocol_token(&headers));
    // Small buffers: an idle socket should cost kilobytes, not the 128 KiB
    // read buffer the WebSocket library allocates by default. Clients send
    // small frames (pongs, joins, typing); a larger one grows the buffer
    // for as long as it takes to read it.
    ws.protocols(["bearer"])
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(4 * 1024 * 1024)
        .max_message_size(crate::realtime::MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            crate::realtime::serve(sink, stream, realtime, token, address)
        })
}

/// The token of `Sec-WebSocket-Protocol: bearer, <token>`.
fn protocol_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let mut parts = value.split(',').map(str::trim);
    (parts.next() == Some("bearer"))
        .then(|| parts.next().map(str::to_owned))
        .flatten()
}
