//! Realtime delivery when Redis goes away or loses its data: each test
//! runs a Redis server of its own, so it can stop it.

use crate::groups::{add_member, user};
use crate::helpers::TestApp;
use crate::messages::{group_with_channel, send};
use crate::realtime::{join, seq};
use crate::ws::{Next, Ws};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
    probe.local_addr().expect("address").port()
}

#[tokio::test]
async fn events_published_again_after_redis_forgot_them_reach_sockets_once() {
    let port = free_port();
    let redis = PrivateRedis::start(port).await;
    let app = TestApp::spawn_with(|config| config.redis.port = redis.port).await;
    let ann = user(&app, "amn_ann").await;
    let ben = user(&app, "amn_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Amnesia").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let (mut ws, _) = Ws::open(&app.base, &ben.token).await;
    join(&mut ws, &channel).await;
    send(&app, &ann, &channel, "one").await;
    send(&app, &ann, &channel, "two").await;
    assert_eq!(ws.expect("new_message").await["data"]["content"], "one");
    assert_eq!(ws.expect("new_message").await["data"]["content"], "two");

    // Redis forgets which events were published (as when it loses its
    // data), then a replica that has not read them yet starts: it numbers
    // and publishes all of them again.
    let mut redis_conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let claims: Vec<String> = redis::cmd("KEYS")
        .arg("rt:evt:*")
        .query_async(&mut redis_conn)
        .await
        .expect("KEYS");
    assert!(claims.len() >= 2, "{claims:?}");
    let () = redis::cmd("DEL")
        .arg(&claims)
        .query_async(&mut redis_conn)
        .await
        .expect("DEL");
    let counter = format!("rt:seq:c:{channel}");
    let before = number(&redis_conn, &counter).await;
    let (_late, stop_late) = app
        .second_gateway_with(|config| {
            let group = config
                .setting("websocket.consumer_group")
                .and_then(|group| group.as_str())
                .map(|group| format!("{group}-late"))
                .expect("a consumer group");
            config
                .set("websocket.consumer_group", group)
                .expect("known setting");
        })
        .await;
    messenger_testkit::eventually(Duration::from_secs(30), || async {
        (number(&redis_conn, &counter).await >= before + 2).then_some(())
    })
    .await
    .expect("the late replica publishes both events again");

    // The socket recognised both events and sent neither again.
    send(&app, &ann, &channel, "three").await;
    assert_eq!(ws.expect("new_message").await["data"]["content"], "three");
    ws.silent("new_message", Duration::from_millis(500)).await;
    stop_late.cancel();
    ws.close().await;
    app.cleanup().await;
}

/// A numeric Redis key, 0 when absent.
async fn number(conn: &redis::aio::MultiplexedConnection, key: &str) -> u64 {
    let value: Option<u64> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn.clone())
        .await
        .expect("GET");
    value.unwrap_or(0)
}

/// A Redis server of this test's own, so it can be stopped and restarted.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    async fn start(port: u16) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Redis 7) on PATH");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        PrivateRedis {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn redis_outage_keeps_rest_working_and_delivery_recovers() {
    let port = free_port();
    let mut redis = PrivateRedis::start(port).await;
    let app = TestApp::spawn_with(|config| config.redis.port = redis.port).await;
    let ann = user(&app, "out_ann").await;
    let ben = user(&app, "out_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Outage").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let (mut ws, _) = Ws::open(&app.base, &ben.token).await;
    join(&mut ws, &channel).await;
    send(&app, &ann, &channel, "before").await;
    ws.expect("new_message").await;

    redis.stop();
    // REST does not need Redis: sends and reads keep working.
    send(&app, &ann, &channel, "during").await;
    let history = app
        .call(
            Method::GET,
            format!("/api/v1/channels/{channel}/messages"),
            &ben.token,
            None,
        )
        .await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(crate::messages::seqs(&history.body), vec![1, 2]);
    // The socket stays open meanwhile.
    ws.silent("new_message", Duration::from_secs(1)).await;

    let _redis = PrivateRedis::start(port).await;
    // Fan-out resumes where it stopped; the client learns that frames
    // may have been lost with Redis' data and gets what came after.
    let mut seen = Vec::new();
    while !seen.iter().any(|f: &Value| f["type"] == "new_message") {
        match ws.next(Duration::from_secs(20)).await {
            Next::Frame(frame) => seen.push(frame),
            other => panic!("after {seen:?}: {other:?}"),
        }
    }
    let message = seen
        .iter()
        .find(|f| f["type"] == "new_message")
        .expect("frame");
    assert_eq!(message["data"]["content"], "during");
    send(&app, &ann, &channel, "after").await;
    let after = ws.expect("new_message").await;
    assert_eq!(after["data"]["content"], "after");
    assert_eq!(seq(&after), seq(message) + 1);
    ws.close().await;
    app.cleanup().await;
}

/// Anyone who can write to Redis (or Kafka) could put a `dm_opened` frame
/// naming somebody else's conversation into a user's room. The socket
/// follows a conversation only when `Authorize` says the user may read it.
#[tokio::test]
async fn a_forged_dm_opened_frame_subscribes_nobody() {
    use messenger_gateway::realtime::{frames, rooms::Room, store};
    let app = TestApp::spawn().await;
    let ann = user(&app, "forge_ann").await;
    let cat = user(&app, "forge_cat").await;
    let eve = user(&app, "forge_eve").await;
    let opened = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &ann.token,
            Some(serde_json::json!({"user_ids": [cat.id]})),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let dm_channel = opened.body["channel"]["id"]
        .as_str()
        .expect("channel")
        .to_owned();
    let (mut spy, _) = crate::ws::Ws::open(&app.base, &eve.token).await;

    let data = serde_json::json!({
        "group": opened.body["group"],
        "channel": opened.body["channel"],
        "participant_ids": [ann.id, cat.id, eve.id],
    });
    let (head, tail) = frames::sequenced_parts("dm_opened", &eve.id, &data);
    let redis = redis::Client::open(app.config.redis.url()).expect("redis url");
    let forger = store::Store::new(redis, 1000, &app.config.kafka.topic_prefix);
    let eve_room = Room::User(eve.id.parse().expect("uuid"));
    forger
        .publish(
            &uuid::Uuid::new_v4().to_string(),
            &[store::Outgoing {
                room: eve_room,
                head,
                tail,
            }],
        )
        .await
        .expect("forged frame published");
    spy.expect("dm_opened").await;

    send(&app, &ann, &dm_channel, "only for cat").await;
    spy.silent("new_message", Duration::from_secs(2)).await;
    spy.close().await;
    app.cleanup().await;
}
