//! Closing handshakes as a client library sees them (tokio-tungstenite,
//! RFC 6455 §5.5.1 and §7.1): a client's Close is answered before the
//! connection goes, and every close of the server's own carries its code
//! and ends the client's stream cleanly, never in an error.

use crate::groups::user;
use crate::helpers::TestApp;
use crate::ws::Ws;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_client_close_is_answered_with_its_code() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "bye_ann").await;
    for code in [1000, 4000] {
        let (ws, _) = Ws::open(&app.base, &ann.token).await;
        assert_eq!(ws.close_with(code).await, code);
    }
    // Also before authenticating (a token sent as the first frame).
    let url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    let mut anonymous = Ws::connect_url(&url).await;
    anonymous.send("auth", json!({"token": ann.token})).await;
    anonymous.expect("connected").await;
    assert_eq!(anonymous.close_with(1000).await, 1000);
    app.cleanup().await;
}

#[tokio::test]
async fn server_closes_carry_their_code_and_end_cleanly() {
    let app = TestApp::spawn_with(|config| {
        config
            .set("websocket.heartbeat_interval_ms", 300)
            .expect("known setting")
    })
    .await;
    let ann = user(&app, "srv_ann").await;
    let wait = Duration::from_secs(5);

    let mut bad = Ws::connect(&app.base, "not-a-token").await;
    assert_eq!(bad.closed_by_server(wait).await, 4001, "bad token");

    let url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    let mut no_auth = Ws::connect_url(&url).await;
    no_auth.send("ping", json!({})).await;
    assert_eq!(
        no_auth.closed_by_server(wait).await,
        4001,
        "first frame not auth"
    );

    let mut silent = Ws::connect(&app.base, &ann.token).await;
    silent.answer_heartbeats = false;
    assert_eq!(
        silent.closed_by_server(wait).await,
        4009,
        "heartbeats missed"
    );

    let (mut leaving, _) = Ws::open(&app.base, &ann.token).await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(leaving.closed_by_server(wait).await, 1001, "shutdown");
    let env = stopping.await.expect("stop");
    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn an_expiring_token_closes_the_socket_with_4002() {
    let app = TestApp::spawn_with(|config| config.auth.access_ttl_seconds = 1).await;
    let ann = user(&app, "exp_ann").await;
    let (mut ws, _) = Ws::open(&app.base, &ann.token).await;
    assert_eq!(ws.closed_by_server(Duration::from_secs(5)).await, 4002);
    app.cleanup().await;
}
