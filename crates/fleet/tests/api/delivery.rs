//! Messages are never lost or duplicated: a retry through another gateway
//! replica returns the first attempt's message, and sends made while Kafka
//! is down reach it later, in order.

use crate::groups::{User, add_member, user};
use crate::helpers::TestApp;
use crate::messages::{group_with_channel, send};
use messenger_proto::messages::v1 as pb;
use prost::Message as _;
use rdkafka::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

async fn send_keyed(
    http: &reqwest::Client,
    base: &str,
    author: &User,
    channel: &str,
    key: &str,
) -> (StatusCode, Value) {
    let response = http
        .post(format!("{base}/api/v1/channels/{channel}/messages"))
        .bearer_auth(&author.token)
        .header("Idempotency-Key", key)
        .json(&json!({"content": "sent once, whatever happens"}))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_retry_through_another_replica_returns_the_first_message() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "rep_ann").await;
    let (_, channel) = group_with_channel(&app, &ann, "Replicas").await;
    let (other, stop_other) = app.second_gateway().await;
    let http = reqwest::Client::new();

    let (status, first) = send_keyed(&http, &app.base, &ann, &channel, "phone-42").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The client timed out and retries through the other replica.
    let (status, retried) = send_keyed(&http, &other, &ann, &channel, "phone-42").await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["id"], first["id"]);

    // Both replicas at once, many times over: still one message.
    let attempts = futures::future::join_all((0..12).map(|i| {
        let base = if i % 2 == 0 { &app.base } else { &other };
        send_keyed(&http, base, &ann, &channel, "tablet-7")
    }))
    .await;
    let ids: HashSet<String> = attempts
        .iter()
        .map(|(_, body)| body["id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{attempts:?}");
    assert_eq!(
        attempts
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .count(),
        1
    );
    let history = app
        .call(
            reqwest::Method::GET,
            format!("/api/v1/channels/{channel}/messages"),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(crate::messages::seqs(&history.body), vec![1, 2]);
    stop_other.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn sends_while_kafka_is_down_arrive_later_in_order() {
    let probe = messenger_testkit::TestEnv::new().await.expect("env");
    let brokers = probe.config.kafka.brokers.clone();
    probe.cleanup().await.expect("cleanup");

    let app = TestApp::spawn_with(|config| config.kafka.brokers = "127.0.0.1:1".to_owned()).await;
    let ann = user(&app, "outage_ann").await;
    let ben = user(&app, "outage_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Outage").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    for i in 1..=6 {
        let author = if i % 2 == 0 { &ben } else { &ann };
        let sent = send(&app, author, &channel, &format!("during the outage {i}")).await;
        assert_eq!(sent["seq"], i);
    }
    let pool = app.env.pool("messages").await.expect("pool");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(pending, 6, "every event waits in the outbox");
    pool.close().await;

    let env = app.stop().await;
    let mut app = TestApp::start(env, |config| config.kafka.brokers = brokers).await;
    let consumer = app
        .env
        .consume(pb::MessagesEvent::TOPIC.name())
        .await
        .expect("consumer");
    let mut seqs = Vec::new();
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seqs.len() < 6 {
        let left = deadline.saturating_duration_since(Instant::now());
        let record = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(record)) => record,
            Ok(Err(err)) => {
                eprintln!("transient consumer error: {err}");
                continue;
            }
            Err(_) => panic!("only {seqs:?} arrived"),
        };
        assert_eq!(record.key(), Some(channel.as_bytes()));
        let event = pb::MessagesEvent::decode(record.payload().expect("payload")).expect("event");
        let meta = event.meta.expect("meta");
        if !seen.insert(meta.event_id) {
            continue; // at-least-once: dedup by event id
        }
        if let Some(pb::messages_event::Payload::MessageCreated(created)) = event.payload {
            seqs.push(created.message.expect("message").seq);
        }
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    drop(consumer);
    app.cleanup().await;
}
