//! Realtime delivery over WebSocket against the whole fleet: Kafka →
//! fan-out → Redis → sockets, on one or two gateway replicas.

use crate::groups::{User, add_member, user};
use crate::helpers::TestApp;
use crate::messages::{group_with_channel, send};
use crate::ws::{Next, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) fn seq(frame: &Value) -> u64 {
    frame["seq"].as_u64().expect("seq")
}

fn contents(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["data"]["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Joins `room` and returns the positions the server reported.
pub(crate) async fn join(ws: &mut Ws, room: &str) -> Value {
    ws.send("join_room", json!({"room_id": room})).await;
    let joined = ws.expect("room_joined").await;
    assert_eq!(joined["data"]["room_id"], room);
    joined["data"]["rooms"].clone()
}

async fn metrics_text(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.internal))
        .send()
        .await
        .expect("operators' listener");
    response.text().await.expect("metrics text")
}

/// The value of an unlabelled sample, 0 when absent.
fn count(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn send_all(app: &TestApp, author: &User, channel: &str, texts: &[String]) {
    for text in texts {
        send(app, author, channel, text).await;
    }
}

#[tokio::test]
async fn members_receive_every_message_in_order_and_outsiders_nothing() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "rt_ann").await;
    let ben = user(&app, "rt_ben").await;
    let eve = user(&app, "rt_eve").await;
    let (group, channel) = group_with_channel(&app, &ann, "Live").await;
    add_member(&app, &group, &ann, &ben, "member").await;

    let (mut bens, hello) = Ws::open(&app.base, &ben.token).await;
    assert_eq!(hello["data"]["user_id"], ben.id.as_str());
    let rooms = join(&mut bens, &group).await;
    assert!(rooms.get(&channel).is_some(), "{rooms}");
    let (mut eves, _) = Ws::open(&app.base, &eve.token).await;
    eves.send("join_room", json!({"room_id": group})).await;
    let refused = eves.expect("error").await;
    assert_eq!(refused["data"]["code"], "not_found");
    eves.send("join_room", json!({"room_id": channel})).await;
    assert_eq!(eves.expect("error").await["data"]["code"], "not_found");

    let texts: Vec<String> = (1..=8).map(|i| format!("live {i}")).collect();
    send_all(&app, &ann, &channel, &texts).await;
    // Ben joined before the channel's first frame: nothing was missed, so
    // no resync may be asked for.
    let mut frames = Vec::new();
    while frames.len() < 8 {
        match bens.next(Duration::from_secs(15)).await {
            Next::Frame(frame) if frame["type"] == "new_message" => frames.push(frame),
            Next::Frame(frame) => assert_ne!(frame["type"], "resync_required", "{frame}"),
            other => panic!("after {} messages: {other:?}", frames.len()),
        }
    }
    assert_eq!(contents(&frames), texts);
    for pair in frames.windows(2) {
        assert_eq!(seq(&pair[1]), seq(&pair[0]) + 1, "per-room sequence");
    }
    assert!(frames.iter().all(|f| f["room_id"] == channel.as_str()));
    assert_eq!(frames[0]["data"]["author_id"], ann.id.as_str());
    // Each delivery is timed from its commit: to Redis, and to the socket.
    let metrics = metrics_text(&app).await;
    assert!(
        count(&metrics, "realtime_event_lag_seconds_count") >= 8.0,
        "{metrics}"
    );
    assert!(
        count(&metrics, "realtime_delivery_seconds_count") >= 8.0,
        "{metrics}"
    );

    // Edits, reactions and deletes follow the messages in the same room.
    let id = frames[0]["data"]["id"].as_str().expect("id").to_owned();
    let r = app
        .call(
            Method::POST,
            format!("/api/v1/messages/{id}/reactions"),
            &ben.token,
            Some(json!({"emoji": "👍"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let reaction = bens.expect("new_reaction").await;
    assert_eq!(reaction["data"]["emoji"], "👍");
    assert_eq!(seq(&reaction), seq(&frames[7]) + 1);
    eves.silent("new_message", Duration::from_millis(500)).await;
    bens.close().await;
    eves.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_kicked_member_stops_receiving_at_once() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "kick_ann").await;
    let ben = user(&app, "kick_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Kicking").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let (mut bens, _) = Ws::open(&app.base, &ben.token).await;
    join(&mut bens, &group).await;
    send(&app, &ann, &channel, "before").await;
    bens.expect("new_message").await;

    let kicked = app
        .call(
            Method::DELETE,
            format!("/api/v1/groups/{group}/members/{}", ben.id),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(kicked.status, StatusCode::NO_CONTENT);
    send(&app, &ann, &channel, "after the kick").await;
    let mut revoked = Vec::new();
    loop {
        match bens.next(Duration::from_secs(2)).await {
            Next::Frame(frame) => {
                assert_ne!(frame["type"], "new_message", "{frame}");
                if frame["type"] == "room_left" {
                    assert_eq!(frame["data"]["reason"], "access_revoked");
                    revoked.push(frame["data"]["room_id"].as_str().unwrap_or("").to_owned());
                }
            }
            Next::TimedOut => break,
            Next::Closed(code) => panic!("closed {code:?}"),
            Next::Failed(err) => panic!("failed: {err}"),
        }
    }
    assert!(revoked.contains(&channel), "{revoked:?}");
    bens.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_reconnecting_client_resumes_exactly_where_it_left_off() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "res_ann").await;
    let ben = user(&app, "res_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Resuming").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    // Ann stays connected: once she has a frame, the fan-out has logged it.
    let (mut anns, _) = Ws::open(&app.base, &ann.token).await;
    join(&mut anns, &channel).await;
    let (mut bens, _) = Ws::open(&app.base, &ben.token).await;
    join(&mut bens, &channel).await;
    send(&app, &ann, &channel, "seen").await;
    let seen = bens.expect("new_message").await;
    bens.close().await;

    let missed: Vec<String> = (1..=4).map(|i| format!("missed {i}")).collect();
    send_all(&app, &ann, &channel, &missed).await;
    // All four are in the log before the client comes back, so the resume
    // replays them (a frame logged later would arrive live, after `resumed`).
    anns.collect("new_message", 1 + missed.len()).await;

    let (mut bens, _) = Ws::open(&app.base, &ben.token).await;
    bens.send("resume", json!({"rooms": {channel.clone(): seq(&seen)}}))
        .await;
    let replayed = bens.collect("new_message", 4).await;
    assert_eq!(contents(&replayed), missed);
    assert_eq!(seq(&replayed[0]), seq(&seen) + 1);
    let resumed = bens.expect("resumed").await;
    assert_eq!(resumed["data"]["recovered"], true);
    assert_eq!(resumed["data"]["replayed"], 4);
    // Live again, with no duplicate of what was replayed.
    send(&app, &ann, &channel, "live").await;
    let live = bens.expect("new_message").await;
    assert_eq!(live["data"]["content"], "live");
    assert_eq!(seq(&live), seq(&replayed[3]) + 1);

    // Too far back for the log: the client is told to refetch.
    bens.send("resume", json!({"rooms": {channel.clone(): 1}}))
        .await;
    let stale = bens.expect("resync_required").await;
    assert_eq!(stale["data"]["room_id"], channel.as_str());
    bens.close().await;
    anns.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn two_replicas_deliver_every_event_once_in_order() {
    let app = TestApp::spawn().await;
    let (other, stop_other) = app.second_gateway().await;
    let ann = user(&app, "two_ann").await;
    let ben = user(&app, "two_ben").await;
    let cat = user(&app, "two_cat").await;
    let (group, channel) = group_with_channel(&app, &ann, "Replicated").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    add_member(&app, &group, &ann, &cat, "member").await;
    let (mut on_first, _) = Ws::open(&app.base, &ben.token).await;
    let (mut on_second, _) = Ws::open(&other, &cat.token).await;
    join(&mut on_first, &channel).await;
    join(&mut on_second, &channel).await;

    let texts: Vec<String> = (1..=20).map(|i| format!("both {i}")).collect();
    send_all(&app, &ann, &channel, &texts).await;
    let first = on_first.collect("new_message", 20).await;
    let second = on_second.collect("new_message", 20).await;
    assert_eq!(contents(&first), texts);
    assert_eq!(contents(&second), texts);
    let seqs = |frames: &[Value]| frames.iter().map(seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(&first),
        seqs(&second),
        "one numbering for all replicas"
    );
    on_first
        .silent("new_message", Duration::from_millis(700))
        .await;
    on_second
        .silent("new_message", Duration::from_millis(100))
        .await;
    on_first.close().await;
    on_second.close().await;
    stop_other.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn typing_and_presence_reach_the_group() {
    let app = TestApp::spawn_with(|config| {
        config
            .set("websocket.typing_throttle_ms", 1500)
            .expect("known setting")
    })
    .await;
    let ann = user(&app, "pr_ann").await;
    let ben = user(&app, "pr_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Presence").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let (mut anns, _) = Ws::open(&app.base, &ann.token).await;
    join(&mut anns, &group).await;

    let (mut bens, _) = Ws::open(&app.base, &ben.token).await;
    let online = anns.expect("user_online").await;
    assert_eq!(online["data"]["user_id"], ben.id.as_str());
    assert_eq!(online["room_id"], group.as_str());

    bens.send("typing", json!({"room_id": channel})).await;
    assert_eq!(bens.expect("error").await["data"]["code"], "not_joined");
    join(&mut bens, &channel).await;
    bens.send("typing", json!({"room_id": group, "channel_id": channel}))
        .await;
    let typing = anns.expect("user_typing").await;
    assert_eq!(typing["data"]["user_id"], ben.id.as_str());
    assert_eq!(typing["room_id"], channel.as_str());
    assert!(typing["seq"].is_null(), "typing is not numbered or stored");
    // Throttled: a second notice within the window is dropped.
    bens.send("typing", json!({"room_id": channel})).await;
    anns.silent("user_typing", Duration::from_millis(800)).await;

    bens.close().await;
    let offline = anns.expect("user_offline").await;
    assert_eq!(offline["data"]["user_id"], ben.id.as_str());
    anns.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn bad_tokens_bad_frames_and_silent_clients_are_handled() {
    let app = TestApp::spawn_with(|config| {
        config
            .set("websocket.heartbeat_interval_ms", 300)
            .expect("known setting")
    })
    .await;
    let ann = user(&app, "hb_ann").await;

    let mut bad = Ws::connect(&app.base, "not-a-token").await;
    assert_eq!(bad.close_code(Duration::from_secs(5)).await, Some(4001));
    // Without a token, the first frame must be `auth`.
    let url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    let mut anonymous = Ws::connect_url(&url).await;
    anonymous
        .send("join_room", json!({"room_id": ann.id}))
        .await;
    assert_eq!(
        anonymous.close_code(Duration::from_secs(5)).await,
        Some(4001)
    );
    let mut late = Ws::connect_url(&url).await;
    late.send("auth", json!({"token": ann.token})).await;
    let hello = late.expect("connected").await;
    assert_eq!(hello["data"]["user_id"], ann.id.as_str());

    // Bad frames get an error frame, and the connection stays usable.
    for bad in [
        "not json".to_owned(),
        json!({"type": "launch"}).to_string(),
        json!({"type": "join_room", "data": {"room_id": 7}}).to_string(),
    ] {
        late.send_text(bad).await;
        assert_eq!(late.expect("error").await["data"]["code"], "invalid_frame");
    }
    late.send("ping", json!({"t": 1})).await;
    assert_eq!(late.expect("pong").await["data"]["t"], 1);

    // A client that answers heartbeats stays; one that does not is closed.
    late.silent("nothing", Duration::from_millis(1200)).await;
    late.send("ping", json!({})).await;
    late.expect("pong").await;
    late.close().await;
    let mut silent = Ws::connect(&app.base, &ann.token).await;
    silent.answer_heartbeats = false;
    assert_eq!(silent.close_code(Duration::from_secs(5)).await, Some(4009));
    app.cleanup().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_not_buffered() {
    let app = TestApp::spawn_with(|config| {
        config
            .set("websocket.send_queue_frames", 8)
            .expect("known setting")
    })
    .await;
    let ann = user(&app, "slow_ann").await;
    let ben = user(&app, "slow_ben").await;
    let cat = user(&app, "slow_cat").await;
    let (group, channel) = group_with_channel(&app, &ann, "Firehose").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    add_member(&app, &group, &ann, &cat, "member").await;
    let (mut slow, _) = Ws::open(&app.base, &ben.token).await;
    let (mut fast, _) = Ws::open(&app.base, &cat.token).await;
    join(&mut slow, &channel).await;
    join(&mut fast, &channel).await;
    slow.answer_heartbeats = false;

    // About 12 MB of frames: more than the socket buffers hold.
    let total = 1500;
    let big = "я".repeat(4000);
    let reader = async {
        let frames = fast.collect("new_message", total).await;
        frames.len()
    };
    let sender = async {
        for _ in 0..total {
            let r = app
                .call(
                    Method::POST,
                    format!("/api/v1/channels/{channel}/messages"),
                    &ann.token,
                    Some(json!({"content": big})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
    };
    let (received, ()) = tokio::join!(reader, sender);
    assert_eq!(received, total, "a reading client gets everything");

    // The client that did not read was cut off instead of buffered.
    let mut delivered = 0;
    let code = loop {
        match slow.next(Duration::from_secs(10)).await {
            Next::Frame(frame) if frame["type"] == "new_message" => delivered += 1,
            Next::Frame(_) => {}
            Next::Closed(code) => break code,
            // A client that stops reading may miss our Close: it is sent
            // for GOODBYE_TIMEOUT (2 s) only, then the connection drops.
            Next::Failed(_) => break None,
            Next::TimedOut => panic!("still open after {delivered} frames"),
        }
    };
    assert!(delivered < total, "{delivered} frames, close {code:?}");
    assert!(matches!(code, None | Some(4008)), "{code:?}");
    fast.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_client_of_a_stopped_replica_resumes_on_another_without_loss() {
    let app = TestApp::spawn().await;
    let (other, stop_other) = app.second_gateway().await;
    let ann = user(&app, "fail_ann").await;
    let ben = user(&app, "fail_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Failover").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let (mut ws, _) = Ws::open(&other, &ben.token).await;
    join(&mut ws, &channel).await;

    let texts: Vec<String> = (1..=30).map(|i| format!("flow {i}")).collect();
    let mut received: Vec<Value> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        send(&app, &ann, &channel, text).await;
        if i == 9 {
            // Take the first ten, then the replica goes away mid-flow.
            received.extend(ws.collect("new_message", 10).await);
            stop_other.cancel();
        }
    }
    // The client notices, reconnects to the surviving replica and
    // resumes from the last sequence number it saw.
    loop {
        match ws.next(Duration::from_secs(10)).await {
            Next::Frame(frame) if frame["type"] == "new_message" => received.push(frame),
            Next::Frame(_) => {}
            Next::Closed(code) => {
                assert!(matches!(code, None | Some(1001)), "{code:?}");
                break;
            }
            Next::Failed(err) => panic!("the stopping replica dropped the socket: {err}"),
            Next::TimedOut => panic!("the stopped replica kept the socket open"),
        }
    }
    let last = received.last().map(seq).expect("some frames");
    let (mut ws, _) = Ws::open(&app.base, &ben.token).await;
    ws.send("resume", json!({"rooms": {channel.clone(): last}}))
        .await;
    // Replayed frames, then `resumed`, then whatever the fan-out still
    // had to deliver (it may be moving to this replica's consumer).
    let mut resumed = None;
    while received.len() < 30 || resumed.is_none() {
        match ws.next(Duration::from_secs(30)).await {
            Next::Frame(frame) if frame["type"] == "new_message" => received.push(frame),
            Next::Frame(frame) if frame["type"] == "resumed" => resumed = Some(frame),
            Next::Frame(_) => {}
            other => panic!("after {} frames: {other:?}", received.len()),
        }
    }
    assert_eq!(resumed.expect("resumed")["data"]["recovered"], true);
    assert_eq!(
        contents(&received),
        texts,
        "every message exactly once, in order"
    );
    ws.silent("new_message", Duration::from_millis(500)).await;
    ws.close().await;
    app.cleanup().await;
}
