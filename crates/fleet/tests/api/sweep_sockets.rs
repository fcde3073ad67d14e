//! The authorization sweep over socket delivery: every role's socket
//! follows the group while a private channel is updated and spoken in.
//! Only sockets allowed to read the channel receive anything of it (its
//! name and topic included); every group member receives the public notice
//! sent alongside.

use crate::sweep::{CREATED, ROLES, world};
use crate::ws::{Next, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn private_channel_events_reach_only_sockets_that_may_read_it() {
    let app = crate::helpers::TestApp::spawn().await;
    let w = world(&app).await;
    let created = app
        .call(
            Method::POST,
            format!("/api/v1/groups/{}/channels", w.group),
            w.owner.token.clone(),
            Some(json!({"name": "plans", "visibility": "private"})),
        )
        .await;
    assert_eq!(created.status, CREATED, "{}", created.body);
    let secret = created.body["id"].as_str().expect("channel id").to_owned();
    let member = w.callers[2].as_ref().expect("member");
    let added = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{secret}/members"),
            w.owner.token.clone(),
            Some(json!({"user_id": member.id})),
        )
        .await;
    assert_eq!(added.status, CREATED, "{}", added.body);

    // Every role follows the group (outsiders are refused, and listen on).
    let mut sockets = Vec::new();
    for (index, role) in ROLES.iter().enumerate().skip(1) {
        let caller = w.callers[index].as_ref().expect("caller");
        let (mut ws, _) = Ws::open(&app.base, &caller.token).await;
        ws.send("join_room", json!({"room_id": w.group})).await;
        let answer = if *role == "outsider" {
            "error"
        } else {
            "room_joined"
        };
        ws.expect(answer).await;
        sockets.push((*role, ws));
    }

    let patch = |channel: &str, topic: &str| {
        app.call(
            Method::PATCH,
            format!("/api/v1/channels/{channel}"),
            w.owner.token.clone(),
            Some(json!({"topic": topic})),
        )
    };
    assert_eq!(
        patch(&secret, "the secret topic").await.status,
        StatusCode::OK
    );
    let sent = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{secret}/messages"),
            w.owner.token.clone(),
            Some(json!({"content": "the secret message"})),
        )
        .await;
    assert_eq!(sent.status, CREATED, "{}", sent.body);
    assert_eq!(
        patch(&w.channel, "a public topic").await.status,
        StatusCode::OK
    );

    for (role, mut ws) in sockets {
        let readers = role == "member" || role == "owner";
        let frames = frames_until_public_notice(&mut ws, role, readers).await;
        let secrets: Vec<&Value> = frames
            .iter()
            .filter(|frame| {
                frame.to_string().contains("secret") || frame["room_id"] == secret.as_str()
            })
            .collect();
        if readers {
            let kinds: Vec<&str> = secrets.iter().filter_map(|f| f["type"].as_str()).collect();
            assert!(kinds.contains(&"channel_updated"), "{role}: {kinds:?}");
            assert!(kinds.contains(&"new_message"), "{role}: {kinds:?}");
        } else {
            assert!(secrets.is_empty(), "{role} received {secrets:?}");
        }
        ws.close().await;
    }
    app.cleanup().await;
}

/// Frames until the public channel's notice arrives (for group members),
/// plus whatever else comes within half a second after; for the outsider,
/// everything within two seconds. Readers also wait for both private frames.
async fn frames_until_public_notice(ws: &mut Ws, role: &str, reader: bool) -> Vec<Value> {
    let member = role != "outsider";
    let mut frames: Vec<Value> = Vec::new();
    let mut deadline = Instant::now() + Duration::from_secs(if member { 15 } else { 2 });
    let mut settled = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.next(left).await {
            Next::Frame(frame) => frames.push(frame),
            Next::TimedOut => break,
            other => panic!("{role}: {other:?}"),
        }
        let public = frames
            .iter()
            .any(|f| f["type"] == "channel_updated" && f["data"]["topic"] == "a public topic");
        let private_seen = frames
            .iter()
            .filter(|f| f.to_string().contains("secret"))
            .count()
            >= 2;
        if member && public && (!reader || private_seen) && !settled {
            settled = true;
            deadline = Instant::now() + Duration::from_millis(500);
        }
    }
    if member {
        assert!(settled, "{role} never got what it should: {frames:?}");
    }
    frames
}
