use crate::helpers::{TestApp, token};
use messenger_proto::users::v1::{UserEvent, UserRegistered, user_event};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Headers;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Received {
    key: String,
    headers: HashMap<String, String>,
    event: UserEvent,
}

async fn next_event(consumer: &StreamConsumer) -> Received {
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv())
            .await
            .expect("an event within 30 s")
        {
            Ok(message) => break message,
            // A just-created topic can be briefly unknown to the group.
            Err(err) => eprintln!("transient consumer error: {err}"),
        }
    };
    let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key");
    let mut headers = HashMap::new();
    if let Some(list) = message.headers() {
        for header in list.iter() {
            let value = header
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            headers.insert(header.key.to_owned(), value);
        }
    }
    let event = UserEvent::decode(message.payload().expect("payload")).expect("protobuf UserEvent");
    Received {
        key,
        headers,
        event,
    }
}

#[tokio::test]
async fn registration_is_published_to_kafka_and_decodes() {
    let mut app = TestApp::spawn().await;
    let consumer = app
        .env
        .consume(UserEvent::TOPIC.name())
        .await
        .expect("consumer");

    // The caller's trace continues through gateway -> gRPC -> outbox -> Kafka.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let started = Instant::now();
    let response = app
        .http
        .post(format!("{}/api/v1/auth/register", app.base))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({
            "username": "eventful",
            "email": "eventful@example.com",
            "display_name": "Eventful",
            "password": "correct horse",
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: serde_json::Value = response.json().await.expect("json");
    let received = next_event(&consumer).await;
    println!("register -> event on Kafka: {:?}", started.elapsed());

    let user_id = registered["user"]["id"].as_str().expect("id");
    assert_eq!(received.key, user_id);
    let meta = received.event.meta.expect("meta");
    assert_eq!(meta.event_type, UserRegistered::EVENT_TYPE);
    assert_eq!(meta.version, 1);
    assert_eq!(meta.aggregate_id, user_id);
    assert!(meta.occurred_at.is_some());
    assert_eq!(received.headers.get("event_id"), Some(&meta.event_id));
    assert_eq!(
        received.headers.get("event_type").map(String::as_str),
        Some(UserRegistered::EVENT_TYPE)
    );
    let traceparent = received
        .headers
        .get("traceparent")
        .expect("trace context in headers");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    match received.event.payload {
        Some(user_event::Payload::UserRegistered(payload)) => {
            assert_eq!(payload.user_id, user_id);
            assert_eq!(payload.username, "eventful");
        }
        other => panic!("unexpected payload {other:?}"),
    }
    drop(consumer);
    app.cleanup().await;
}

#[tokio::test]
async fn events_survive_kafka_outage_and_arrive_in_order() {
    let real_brokers = messenger_testkit::TestEnv::new().await.expect("env");
    let brokers = real_brokers.config.kafka.brokers.clone();
    real_brokers.cleanup().await.expect("cleanup");

    // Kafka unreachable: writes must still succeed.
    let app = TestApp::spawn_with(|config| config.kafka.brokers = "127.0.0.1:1".to_owned()).await;
    let auth = app.register("patient").await;
    let user_id = auth["user"]["id"].as_str().expect("id").to_owned();
    for n in 1..=3 {
        let response = app
            .request(
                Method::PATCH,
                "/api/v1/users/me",
                Some(&token(&auth)),
                Some(json!({"display_name": format!("v{n}")})),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK);
    }
    let pool = app.env.pool("users").await.expect("pool");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(pending, 4, "all four events wait in the outbox");
    pool.close().await;

    // Kafka is back: everything goes out, in order for the user's key.
    let env = app.stop().await;
    let mut app = TestApp::start(env, |config| config.kafka.brokers = brokers).await;
    let consumer = app
        .env
        .consume(UserEvent::TOPIC.name())
        .await
        .expect("consumer");
    let mut seen = Vec::new();
    let mut ids = std::collections::HashSet::new();
    while seen.len() < 4 {
        let received = next_event(&consumer).await;
        let meta = received.event.meta.expect("meta");
        assert_eq!(received.key, user_id);
        // At-least-once delivery: consumers dedup by event id.
        if !ids.insert(meta.event_id) {
            continue;
        }
        seen.push(match received.event.payload.expect("payload") {
            user_event::Payload::UserRegistered(_) => "registered".to_owned(),
            user_event::Payload::UserProfileUpdated(update) => update.display_name,
        });
    }
    assert_eq!(seen, ["registered", "v1", "v2", "v3"]);
    let pool = app.env.pool("users").await.expect("pool");
    messenger_testkit::eventually(Duration::from_secs(10), || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await
    .expect("outbox drained");
    pool.close().await;
    drop(consumer);
    app.cleanup().await;
}
