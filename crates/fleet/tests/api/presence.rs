//! Presence on Kafka: what a user's sockets add up to across replicas
//! (online, away, offline), published on `presence.events.v1` once it has
//! held for the debounce, read back with a plain librdkafka consumer.

use crate::groups::user;
use crate::helpers::TestApp;
use crate::ws::{Next, Ws};
use messenger_proto::presence::v1::{
    PresenceChanged, PresenceEvent, PresenceStatus, presence_event::Payload,
};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Headers;
use serde_json::json;
use std::time::Duration;

const DEBOUNCE_MS: u64 = 300;

/// The next presence record, checked for its envelope; `None` if none
/// arrives within `wait`.
async fn next_change(consumer: &StreamConsumer, wait: Duration) -> Option<PresenceChanged> {
    let message = loop {
        match tokio::time::timeout(wait, consumer.recv()).await {
            Err(_) => return None,
            Ok(Ok(message)) => break message,
            // A just-created topic can be briefly unknown to the group.
            Ok(Err(err)) => eprintln!("transient consumer error: {err}"),
        }
    };
    let event = PresenceEvent::decode(message.payload().expect("payload")).expect("protobuf");
    let meta = event.meta.expect("meta");
    let Some(Payload::PresenceChanged(changed)) = event.payload else {
        panic!("not a PresenceChanged");
    };
    assert_eq!(meta.event_type, PresenceChanged::EVENT_TYPE);
    assert_eq!(meta.aggregate_id, changed.user_id);
    assert_eq!(message.key(), Some(changed.user_id.as_bytes()));
    let headers = message.headers().expect("headers");
    let event_type = headers
        .iter()
        .find(|header| header.key == "event_type")
        .and_then(|header| header.value);
    assert_eq!(event_type, Some(PresenceChanged::EVENT_TYPE.as_bytes()));
    Some(changed)
}

async fn expect_change(consumer: &StreamConsumer, status: PresenceStatus) -> PresenceChanged {
    let changed = next_change(consumer, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no {status:?} record within 20 s"));
    assert_eq!(changed.status(), status, "{changed:?}");
    changed
}

/// The fleet with a short debounce.
async fn fleet() -> TestApp {
    TestApp::spawn_with(|config| {
        config
            .set("websocket.presence_debounce_ms", DEBOUNCE_MS)
            .expect("known setting")
    })
    .await
}

#[tokio::test]
async fn presence_changes_reach_kafka_once_they_hold() {
    let mut app = fleet().await;
    let consumer = app
        .env
        .consume(PresenceEvent::TOPIC.name())
        .await
        .expect("consumer");
    let ann = user(&app, "presence_ann").await;
    let quiet = Duration::from_millis(DEBOUNCE_MS * 4);

    // The first socket: online.
    let (mut phone, _) = Ws::open(&app.base, &ann.token).await;
    let online = expect_change(&consumer, PresenceStatus::Online).await;
    assert_eq!(online.user_id, ann.id);

    // Away only once every socket says so.
    let (mut laptop, _) = Ws::open(&app.base, &ann.token).await;
    phone.send("presence", json!({"status": "away"})).await;
    assert_eq!(
        next_change(&consumer, quiet).await,
        None,
        "the laptop is in use"
    );
    laptop.send("presence", json!({"status": "away"})).await;
    let away = expect_change(&consumer, PresenceStatus::Away).await;
    assert!(away.sequence > online.sequence);

    // Back, and a flap shorter than the debounce publishes nothing.
    laptop.send("presence", json!({"status": "online"})).await;
    let back = expect_change(&consumer, PresenceStatus::Online).await;
    assert!(back.sequence > away.sequence);
    laptop.send("presence", json!({"status": "away"})).await;
    laptop.send("presence", json!({"status": "online"})).await;
    assert_eq!(
        next_change(&consumer, quiet).await,
        None,
        "a flap was published"
    );

    // A bad status is refused and changes nothing.
    laptop.send("presence", json!({"status": "busy"})).await;
    assert_eq!(
        laptop.expect("error").await["data"]["code"],
        "invalid_frame"
    );

    // A reconnect within the debounce publishes nothing; leaving does.
    phone.close().await;
    laptop.close().await;
    let (again, _) = Ws::open(&app.base, &ann.token).await;
    assert_eq!(
        next_change(&consumer, quiet).await,
        None,
        "a reconnect was published"
    );
    again.close().await;
    let offline = expect_change(&consumer, PresenceStatus::Offline).await;
    assert!(offline.sequence > back.sequence);
    app.cleanup().await;
}

/// Two gateway replicas, a socket on each: every change is published once,
/// whichever replica noticed it.
#[tokio::test]
async fn replicas_publish_each_change_once() {
    let mut app = fleet().await;
    let (other, stop_other) = app.second_gateway().await;
    let consumer = app
        .env
        .consume(PresenceEvent::TOPIC.name())
        .await
        .expect("consumer");
    let cat = user(&app, "presence_cat").await;
    let quiet = Duration::from_millis(DEBOUNCE_MS * 4);

    let (mut phone, _) = Ws::open(&app.base, &cat.token).await;
    let (mut laptop, _) = Ws::open(&other, &cat.token).await;
    let online = expect_change(&consumer, PresenceStatus::Online).await;
    assert_eq!(next_change(&consumer, quiet).await, None, "published twice");

    phone.send("presence", json!({"status": "away"})).await;
    laptop.send("presence", json!({"status": "away"})).await;
    let away = expect_change(&consumer, PresenceStatus::Away).await;
    assert!(away.sequence > online.sequence);
    assert_eq!(next_change(&consumer, quiet).await, None, "published twice");

    // The second replica stops: its socket closes, the user stays away on
    // the first; then the last socket closes.
    stop_other.cancel();
    loop {
        match laptop.next(Duration::from_secs(10)).await {
            Next::Frame(_) => {}
            Next::Closed(_) => break,
            Next::Failed(err) => panic!("the stopping replica dropped the socket: {err}"),
            Next::TimedOut => panic!("the stopped replica kept the socket open"),
        }
    }
    assert_eq!(next_change(&consumer, quiet).await, None, "still away");
    phone.close().await;
    let offline = expect_change(&consumer, PresenceStatus::Offline).await;
    assert!(offline.sequence > away.sequence);
    assert_eq!(next_change(&consumer, quiet).await, None, "published twice");
    app.cleanup().await;
}

/// The Redis side of settling, step by step: a replica that takes a user
/// holds them until it finishes; one that dies (never finishes) or whose
/// change the broker refused (never records) leaves the user due again,
/// and the change is then proposed again, with a higher sequence.
#[tokio::test]
async fn a_change_is_recorded_only_once_the_broker_has_it() {
    use messenger_gateway::realtime::store::Store;
    let env = messenger_testkit::TestEnv::new()
        .await
        .expect("environment");
    let client = redis::Client::open(env.config.redis.url()).expect("redis url");
    // A namespace of its own: no other fleet takes these users.
    let store = Store::new(client, 100, &env.config.kafka.topic_prefix);
    let user = uuid::Uuid::now_v7();
    let ttl = Duration::from_secs(60);
    store
        .connection_alive(user, "test-connection", ttl)
        .await
        .expect("alive");

    store.presence_pending(user, 0).await.expect("pending");
    assert_eq!(store.presence_due(10).await.expect("due"), vec![user]);
    assert!(
        store.presence_due(10).await.expect("due").is_empty(),
        "leased"
    );
    let first = store.propose_presence(user).await.expect("propose");
    assert!(format!("{first:?}").contains("Online"), "{first:?}");
    // The broker refused: nothing recorded, the lease ends, due again.
    store
        .finish_presence(user, Duration::ZERO)
        .await
        .expect("finish");
    assert_eq!(store.presence_due(10).await.expect("due"), vec![user]);
    let second = store.propose_presence(user).await.expect("propose");
    let (first, second) = (first.expect("a change"), second.expect("a change"));
    assert!(second.sequence > first.sequence);
    // Acknowledged this time: recorded, nothing more to propose, done.
    store.record_presence(user, &second).await.expect("record");
    assert!(
        store
            .propose_presence(user)
            .await
            .expect("propose")
            .is_none()
    );
    store
        .finish_presence(user, Duration::ZERO)
        .await
        .expect("finish");
    assert!(store.presence_due(10).await.expect("due").is_empty());
    // An older record never overwrites a newer one.
    store.record_presence(user, &first).await.expect("record");
    assert!(
        store
            .propose_presence(user)
            .await
            .expect("propose")
            .is_none()
    );

    store
        .connection_closed(user, "test-connection")
        .await
        .expect("closed");
    store.presence_pending(user, 0).await.expect("pending");
    assert_eq!(store.presence_due(10).await.expect("due"), vec![user]);
    let gone = store.propose_presence(user).await.expect("propose");
    assert!(format!("{gone:?}").contains("Offline"), "{gone:?}");
    env.cleanup().await.expect("cleanup");
}
