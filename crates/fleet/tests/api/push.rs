//! Web Push end to end: the whole fleet, a device registered over REST,
//! messages sent over REST, and a push service on loopback that checks
//! and decrypts every push (RFC 8030/8291/8292) with Mozilla's `http_ece`.
//! Outcomes are read back from `notifier.events.v1` with librdkafka.

use crate::groups::{User, user};
use crate::helpers::TestApp;
use crate::ws::Ws;
use base64::Engine as _;
use messenger_proto::notifier::v1::{NotifierEvent, notifier_event::Payload};
use messenger_testkit::eventually;
use messenger_testkit::push_service::PushService;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use reqwest::{Method, StatusCode};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use std::time::Duration;

/// A fresh VAPID key pair as the notifier takes it: PKCS#8, base64.
pub fn vapid_key() -> String {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .expect("a key");
    base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
}

/// The fleet with Web Push on, the grace delay given, and the loopback
/// push service allowed (as an operator allows a relay on their network).
pub fn enable_push(config: &mut messenger_platform::Config, grace_ms: u64) {
    let allow: serde_yaml::Value = serde_yaml::from_str("[127.0.0.1/32]").expect("yaml");
    for (key, value) in [
        ("notifier.vapid_key", serde_yaml::Value::from(vapid_key())),
        ("notifier.grace_ms", grace_ms.into()),
        ("notifier.egress.allow_plain_http", true.into()),
        ("notifier.egress.allow_networks", allow),
        ("notifier.egress.timeout_ms", 2000.into()),
        ("websocket.presence_debounce_ms", 200.into()),
    ] {
        config.set(key, value).expect("known setting");
    }
}

pub async fn subscribe(app: &TestApp, who: &User, service: &PushService, path: &str) -> Value {
    let registered = app
        .call(
            Method::POST,
            "/api/v1/push/subscriptions",
            &who.token,
            Some(json!({
                "endpoint": service.endpoint(path),
                "expirationTime": null,
                "keys": {"p256dh": service.p256dh, "auth": service.auth},
                "device_name": "test phone",
            })),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    registered.body
}

/// Opens the direct conversation of `from` and `to`; its channel id.
pub async fn direct(app: &TestApp, from: &User, to: &User) -> String {
    let opened = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &from.token,
            Some(json!({"user_id": to.id})),
        )
        .await;
    assert!(opened.status.is_success(), "{}", opened.body);
    opened.body["channel"]["id"]
        .as_str()
        .expect("channel id")
        .to_owned()
}

pub async fn say(app: &TestApp, from: &User, channel: &str, text: &str) -> Value {
    let sent = app
        .call(
            Method::POST,
            &format!("/api/v1/channels/{channel}/messages"),
            &from.token,
            Some(json!({"content": text})),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    sent.body
}

/// The next outcome about `user` on `notifier.events.v1`.
pub async fn next_outcome(consumer: &StreamConsumer, user: &User) -> Payload {
    loop {
        let message = match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Err(_) => panic!("no notifier outcome within 30 s"),
            Ok(Ok(message)) => message,
            Ok(Err(err)) => {
                eprintln!("transient consumer error: {err}");
                continue;
            }
        };
        let event = NotifierEvent::decode(message.payload().expect("payload")).expect("protobuf");
        let meta = event.meta.expect("meta");
        assert_eq!(message.key(), Some(meta.aggregate_id.as_bytes()));
        if meta.aggregate_id != user.id {
            continue;
        }
        let payload = event.payload.expect("payload");
        assert_eq!(meta.event_type, payload.event_type());
        return payload;
    }
}

async fn skipped_for(consumer: &StreamConsumer, user: &User) -> String {
    match next_outcome(consumer, user).await {
        Payload::PushSkipped(skipped) => skipped.reason,
        other => panic!("expected a skip, got {other:?}"),
    }
}

/// Pushes the service received on `path`, decrypted.
async fn pushes(service: &PushService, path: &str) -> Vec<Value> {
    service
        .received()
        .await
        .into_iter()
        .filter(|push| push["path"] == path)
        .collect()
}

async fn wait_for_pushes(service: &PushService, path: &str, count: usize) -> Vec<Value> {
    eventually(Duration::from_secs(30), || async {
        let got = pushes(service, path).await;
        (got.len() >= count).then_some(got)
    })
    .await
    .unwrap_or_else(|_| panic!("{count} pushes to {path} did not arrive"))
}

#[tokio::test]
async fn a_direct_message_reaches_an_offline_device() {
    let service = PushService::start();
    let mut app = TestApp::spawn_with(|config| enable_push(config, 300)).await;
    let outcomes = app
        .env
        .consume(NotifierEvent::TOPIC.name())
        .await
        .expect("consumer");
    let ann = user(&app, "push_ann").await;
    let bob = user(&app, "push_bob").await;
    let key = app
        .call(Method::GET, "/api/v1/push/vapid-key", &bob.token, None)
        .await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);
    let device = subscribe(&app, &bob, &service, "/push/bob-phone").await;
    let listed = app
        .call(Method::GET, "/api/v1/push/subscriptions", &bob.token, None)
        .await;
    assert_eq!(listed.body["subscriptions"][0]["id"], device["id"]);
    assert_eq!(listed.body["subscriptions"][0]["device_name"], "test phone");

    let channel = direct(&app, &ann, &bob).await;
    let message = say(&app, &ann, &channel, "lunch at noon?").await;
    let received = wait_for_pushes(&service, "/push/bob-phone", 1).await;
    let push = &received[0];
    assert!(push.get("error").is_none(), "{push}");
    assert_eq!(push["vapid_key"], key.body["public_key"]);
    assert_eq!(push["urgency"], "high");
    let shown: Value =
        serde_json::from_str(push["plaintext"].as_str().expect("text")).expect("JSON payload");
    assert_eq!(shown["title"], "User push_ann");
    assert_eq!(shown["body"], "lunch at noon?");
    assert_eq!(shown["message_id"], message["id"]);
    assert_eq!(shown["tag"], push["topic"], "the tag is the collapse topic");
    assert_eq!(shown["url"], format!("/channels/{channel}"));
    match next_outcome(&outcomes, &bob).await {
        Payload::PushDelivered(delivered) => {
            assert_eq!(
                delivered.subscription_id,
                device["id"].as_str().expect("id")
            );
            assert_eq!(delivered.message_id, message["id"].as_str().expect("id"));
            assert_eq!(delivered.attempts, 1);
        }
        other => panic!("expected a delivery, got {other:?}"),
    }
    let listed = app
        .call(Method::GET, "/api/v1/push/subscriptions", &bob.token, None)
        .await;
    assert!(listed.body["subscriptions"][0]["last_delivered_at"].is_string());

    // A second message in the conversation replaces the first notification
    // (same topic) and counts both.
    say(&app, &ann, &channel, "or one?").await;
    let received = wait_for_pushes(&service, "/push/bob-phone", 2).await;
    let second: Value =
        serde_json::from_str(received[1]["plaintext"].as_str().expect("text")).expect("JSON");
    assert_eq!(received[1]["topic"], received[0]["topic"]);
    assert_eq!(second["count"], 2, "{second}");
    assert_eq!(second["body"], "or one? (+1 more)");

    // The device removed: nothing more is sent to it.
    let removed = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/push/subscriptions/{}",
                device["id"].as_str().expect("id")
            ),
            &bob.token,
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let _ = next_outcome(&outcomes, &bob).await; // the second delivery
    say(&app, &ann, &channel, "hello?").await;
    assert_eq!(skipped_for(&outcomes, &bob).await, "no_device");
    assert_eq!(pushes(&service, "/push/bob-phone").await.len(), 2);
    app.cleanup().await;
}

/// Settings × do-not-disturb × presence × read state: each case sends one
/// direct message and reads the notifier's decision.
#[tokio::test]
async fn settings_presence_and_reads_decide_what_is_pushed() {
    let service = PushService::start();
    let mut app = TestApp::spawn_with(|config| enable_push(config, 1500)).await;
    let outcomes = app
        .env
        .consume(NotifierEvent::TOPIC.name())
        .await
        .expect("consumer");
    let ann = user(&app, "matrix_ann").await;
    let bob = user(&app, "matrix_bob").await;
    subscribe(&app, &bob, &service, "/push/bob").await;
    let channel = direct(&app, &ann, &bob).await;
    let settings = |body: Value| {
        let app = &app;
        let bob = &bob;
        async move {
            let changed = app
                .call(
                    Method::PATCH,
                    "/api/v1/users/me/notification-settings",
                    &bob.token,
                    Some(body),
                )
                .await;
            assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
            changed.body
        }
    };

    // Read on another device within the grace delay: no push.
    let message = say(&app, &ann, &channel, "read me").await;
    let read = app
        .call(
            Method::POST,
            &format!("/api/v1/channels/{channel}/read"),
            &bob.token,
            Some(json!({"message_id": message["id"]})),
        )
        .await;
    assert!(read.status.is_success(), "{}", read.body);
    assert_eq!(skipped_for(&outcomes, &bob).await, "read");

    // Level "nothing".
    settings(json!({"level": "nothing"})).await;
    say(&app, &ann, &channel, "level").await;
    assert_eq!(skipped_for(&outcomes, &bob).await, "level");
    // ...but this conversation's own level wins.
    let own = app
        .call(
            Method::PATCH,
            &format!("/api/v1/channels/{channel}/notification-settings"),
            &bob.token,
            Some(json!({"level": "mentions"})),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["level"], "mentions");
    say(&app, &ann, &channel, "direct messages count as mentions").await;
    assert!(matches!(
        next_outcome(&outcomes, &bob).await,
        Payload::PushDelivered(_)
    ));
    let back = app
        .call(
            Method::PATCH,
            &format!("/api/v1/channels/{channel}/notification-settings"),
            &bob.token,
            Some(json!({"level": null})),
        )
        .await;
    assert_eq!(back.body["level"], Value::Null);
    settings(json!({"level": "all"})).await;

    // Muted for an hour.
    let hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let until = hour
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    settings(json!({"muted_until": until})).await;
    say(&app, &ann, &channel, "muted").await;
    assert_eq!(skipped_for(&outcomes, &bob).await, "muted");
    settings(json!({"muted_until": null})).await;

    // Do-not-disturb hours around now, in a zone 5:30 ahead of UTC.
    let local = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+5:30));
    let (start, end) = (
        local - time::Duration::hours(1),
        local + time::Duration::hours(1),
    );
    let hhmm = |at: time::OffsetDateTime| format!("{:02}:{:02}", at.hour(), at.minute());
    let dnd = settings(json!({"quiet_hours": {
        "start": hhmm(start), "end": hhmm(end), "time_zone": "Asia/Kolkata"}}))
    .await;
    assert_eq!(dnd["quiet_hours"]["time_zone"], "Asia/Kolkata");
    say(&app, &ann, &channel, "at night").await;
    assert_eq!(skipped_for(&outcomes, &bob).await, "quiet_hours");
    settings(json!({"quiet_hours": null})).await;

    // Online on a socket: the app shows it, no push. Away: pushed.
    let (mut socket, _) = Ws::open(&app.base, &bob.token).await;
    let notifier = app.env.pool("notifier").await.expect("pool");
    let status = |want: &'static str| {
        let notifier = notifier.clone();
        let user = uuid::Uuid::parse_str(&bob.id).expect("uuid");
        async move {
            eventually(Duration::from_secs(20), || async {
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM presence WHERE user_id = $1")
                        .bind(user)
                        .fetch_optional(&notifier)
                        .await
                        .ok()
                        .flatten();
                (status.as_deref() == Some(want)).then_some(())
            })
            .await
            .unwrap_or_else(|_| panic!("the notifier never saw {want}"));
        }
    };
    status("online").await;
    say(&app, &ann, &channel, "you are here").await;
    assert_eq!(skipped_for(&outcomes, &bob).await, "active");
    socket.send("presence", json!({"status": "away"})).await;
    status("away").await;
    say(&app, &ann, &channel, "you stepped away").await;
    assert!(matches!(
        next_outcome(&outcomes, &bob).await,
        Payload::PushDelivered(_)
    ));
    socket.close().await;
    notifier.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn expired_subscriptions_are_deleted_and_bad_input_refused() {
    let service = PushService::start();
    let mut app = TestApp::spawn_with(|config| enable_push(config, 0)).await;
    let outcomes = app
        .env
        .consume(NotifierEvent::TOPIC.name())
        .await
        .expect("consumer");
    let ann = user(&app, "gone_ann").await;
    let bob = user(&app, "gone_bob").await;
    let gone = subscribe(&app, &bob, &service, "/gone").await;
    let channel = direct(&app, &ann, &bob).await;
    say(&app, &ann, &channel, "anyone?").await;
    match next_outcome(&outcomes, &bob).await {
        Payload::SubscriptionExpired(expired) => {
            assert_eq!(expired.subscription_id, gone["id"].as_str().expect("id"));
        }
        other => panic!("expected an expiry, got {other:?}"),
    }
    let listed = app
        .call(Method::GET, "/api/v1/push/subscriptions", &bob.token, None)
        .await;
    assert_eq!(listed.body["subscriptions"], json!([]));

    let register = |body: Value| {
        let app = &app;
        let token = bob.token.clone();
        async move {
            app.call(
                Method::POST,
                "/api/v1/push/subscriptions",
                &token,
                Some(body),
            )
            .await
        }
    };
    let keys = json!({"p256dh": service.p256dh, "auth": service.auth});
    for (endpoint, keys, field) in [
        // Private and metadata addresses are refused at the guard's
        // decision: nothing is ever sent there.
        ("https://10.1.2.3/push/x", keys.clone(), "endpoint"),
        ("https://169.254.169.254/latest", keys.clone(), "endpoint"),
        ("ftp://push.example.com/x", keys.clone(), "endpoint"),
        ("not a url", keys.clone(), "endpoint"),
        (
            "https://push.example.com/x",
            json!({"p256dh": "AAAA", "auth": service.auth}),
            "keys",
        ),
        (
            "https://push.example.com/x",
            json!({"p256dh": service.p256dh, "auth": "c2hvcnQ"}),
            "keys",
        ),
    ] {
        let refused = register(json!({"endpoint": endpoint, "keys": keys})).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{endpoint}: {}",
            refused.body
        );
        assert_eq!(
            refused.body["error"]["details"]["field"], field,
            "{endpoint}: {}",
            refused.body
        );
    }
    let missing = register(json!({"endpoint": "https://push.example.com/x"})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    for (body, field) in [
        (json!({"level": "loud"}), "level"),
        (json!({"privacy": "secret"}), "privacy"),
        (json!({"muted_until": "tomorrow"}), "muted_until"),
        (
            json!({"quiet_hours": {"start": "25:00", "end": "07:00", "time_zone": "UTC"}}),
            "quiet_hours.start",
        ),
        (
            json!({"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Mars/Base"}}),
            "quiet_hours.time_zone",
        ),
    ] {
        let refused = app
            .call(
                Method::PATCH,
                "/api/v1/users/me/notification-settings",
                &bob.token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.body
        );
        assert_eq!(
            refused.body["error"]["details"]["field"], field,
            "{}",
            refused.body
        );
    }

    // Another's subscription, and a channel one cannot read: 404.
    let anns = subscribe(&app, &ann, &service, "/push/ann").await;
    let stolen = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/push/subscriptions/{}",
                anns["id"].as_str().expect("id")
            ),
            &bob.token,
            None,
        )
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.body);
    let carl = user(&app, "gone_carl").await;
    let theirs = app
        .call(
            Method::GET,
            &format!("/api/v1/channels/{channel}/notification-settings"),
            &carl.token,
            None,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
    app.cleanup().await;
}
