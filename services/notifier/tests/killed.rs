//! A notifier killed (SIGKILL) in the middle of a batch of pushes shows no
//! second notification after it restarts: the pushes it had sent but not
//! recorded are sent again when their lease runs out, under the same
//! collapse topic and with the same message, so each device still shows
//! one notification per conversation; and a replay of the events it had
//! already decided sends nothing.
//!
//! The real binary runs as a child process against the real Postgres,
//! broker and OpenBao; the test plays the messages service by producing
//! `NotificationCreated` records, and the device through the push service
//! on loopback.

// Runtime SQL is fine here: the test reads the notifier's rows directly.
#![allow(clippy::disallowed_methods)]

use base64::Engine as _;
use messenger_platform::kafka;
use messenger_proto::messages::v1::{
    MessagesEvent, Notification, NotificationCreated, NotificationKind, messages_event::Payload,
};
use messenger_testkit::push_service::PushService;
use messenger_testkit::{TEST_JWT_KEYS, TestEnv, eventually};
use prost::Message as _;
use rdkafka::producer::FutureRecord;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command};
use std::time::Duration;
use uuid::Uuid;

/// The notifier binary as a child process, killed when dropped.
struct Notifier(Child);

impl Notifier {
    fn start(env: &[(String, String)]) -> Notifier {
        let child = Command::new(env!("CARGO_BIN_EXE_messenger-notifier"))
            .envs(
                env.iter()
                    .map(|(key, value)| (key.as_str(), value.as_str())),
            )
            .spawn()
            .expect("the notifier starts");
        Notifier(child)
    }

    /// SIGKILL: no shutdown, no last commit.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vapid_key() -> String {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .expect("a key");
    base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
}

/// What the child needs to run as this test's notifier: the settings the
/// test environment was made from, and its own database, topics and keys.
fn child_env(test: &TestEnv) -> Vec<(String, String)> {
    let config = &test.config;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut env: Vec<(String, String)> = messenger_platform::config::local_broker_settings();
    env.extend([
        ("DB_NAME".to_owned(), config.database.name.clone()),
        ("DB_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        (
            "KAFKA_TOPIC_PREFIX".to_owned(),
            config.kafka.topic_prefix.clone(),
        ),
        ("KAFKA_TOPIC_PARTITIONS".to_owned(), "1".to_owned()),
        (
            "VAULT_SECRET_PATH".to_owned(),
            config.vault.secret_path.clone(),
        ),
        (
            "GRPC_MTLS_ENABLED".to_owned(),
            config.grpc.mtls.enabled.to_string(),
        ),
        ("JWT_KEYS".to_owned(), TEST_JWT_KEYS.to_owned()),
        ("JWT_ACTIVE_KID".to_owned(), "test".to_owned()),
        (
            "NOTIFIER_GRPC_LISTEN".to_owned(),
            format!("127.0.0.1:{port}"),
        ),
        ("NOTIFIER_VAPID_KEY".to_owned(), vapid_key()),
        ("NOTIFIER_GRACE_MS".to_owned(), "0".to_owned()),
        (
            "NOTIFIER_EGRESS_ALLOW_PLAIN_HTTP".to_owned(),
            "true".to_owned(),
        ),
        (
            "NOTIFIER_EGRESS_ALLOW_NETWORKS".to_owned(),
            "127.0.0.1/32".to_owned(),
        ),
        // Longer than the slow device takes (4 s); the lease is twice this
        // plus 5 s: 17 s.
        ("NOTIFIER_EGRESS_TIMEOUT_MS".to_owned(), "6000".to_owned()),
        ("LOG_LEVEL".to_owned(), "warn".to_owned()),
    ]);
    env
}

fn notification(user: Uuid, channel: Uuid, seq: u64) -> (String, Vec<u8>) {
    let id = Uuid::now_v7();
    let event = MessagesEvent {
        meta: None,
        actor_id: Uuid::now_v7().to_string(),
        payload: Some(Payload::NotificationCreated(NotificationCreated {
            notification: Some(Notification {
                id: id.to_string(),
                user_id: user.to_string(),
                kind: NotificationKind::DirectMessage as i32,
                message_id: Uuid::now_v7().to_string(),
                channel_id: channel.to_string(),
                group_id: Uuid::now_v7().to_string(),
                actor_id: Uuid::now_v7().to_string(),
                excerpt: format!("message {seq}"),
                created_at: Some(messenger_platform::wire::timestamp(
                    time::OffsetDateTime::now_utc(),
                )),
                read_at: None,
            }),
            seq,
        })),
    };
    (channel.to_string(), event.encode_to_vec())
}

async fn produce(test: &TestEnv, records: &[(String, Vec<u8>)]) {
    let topic = test.config.kafka.topic(MessagesEvent::TOPIC.name());
    kafka::ensure_topics(&test.config.kafka, std::slice::from_ref(&topic))
        .await
        .expect("topic");
    let producer = kafka::producer(&test.config.kafka, "killed-test").expect("producer");
    // All at once, so they come due together and are in flight together.
    let sends = records.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to(&topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
    });
    for sent in futures::future::join_all(sends).await {
        sent.map_err(|(err, _)| err).expect("produced");
    }
}

/// (topic, message id) of every push to `path`.
async fn pushes(service: &PushService, path: &str) -> Vec<(String, String)> {
    service
        .received()
        .await
        .into_iter()
        .filter(|push| push["path"] == path)
        .map(|push| {
            assert!(push.get("error").is_none(), "{push}");
            let shown: Value = serde_json::from_str(push["plaintext"].as_str().expect("text"))
                .expect("JSON payload");
            (
                push["topic"].as_str().expect("topic").to_owned(),
                shown["message_id"].as_str().expect("message id").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_notifier_killed_mid_batch_shows_no_second_notification() {
    let service = PushService::start();
    let test = TestEnv::new().await.expect("test environment");
    let env = child_env(&test);
    let first = Notifier::start(&env);
    let pool = test.pool("notifier").await.expect("pool");
    eventually(Duration::from_secs(60), || async {
        sqlx::query("SELECT 1 FROM subscriptions LIMIT 1")
            .fetch_optional(&pool)
            .await
            .ok()
            .map(|_| ())
    })
    .await
    .expect("the notifier migrated its schema");

    // One device, answered slowly: the kill lands while pushes are in
    // flight (recorded by the push service, not yet by the notifier).
    let user = Uuid::now_v7();
    let path = "/slow/device";
    sqlx::query(
        "INSERT INTO subscriptions (id, user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(service.endpoint(path))
    .bind(&service.p256dh)
    .bind(&service.auth)
    .execute(&pool)
    .await
    .expect("subscription");
    let conversations: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let records: Vec<_> = conversations
        .iter()
        .map(|channel| notification(user, *channel, 1))
        .collect();
    produce(&test, &records).await;
    eventually(Duration::from_secs(60), || async {
        (pushes(&service, path).await.len() >= 3).then_some(())
    })
    .await
    .expect("three pushes in flight");
    // The push service holds each answer 4 s: all three are unanswered.
    first.kill();
    let unrecorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'sending'")
            .fetch_one(&pool)
            .await
            .expect("count");
    let states: Vec<(String, i32, Option<String>)> =
        sqlx::query_as("SELECT state, attempts, last_error FROM deliveries")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert_eq!(
        unrecorded, 3,
        "the kill came before the outcomes were recorded: {states:?}"
    );

    // Restarted, it sends them again once their lease is over.
    let second = Notifier::start(&env);
    eventually(Duration::from_secs(60), || async {
        let delivered: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                .fetch_one(&pool)
                .await
                .ok()?;
        (delivered == 3).then_some(())
    })
    .await
    .expect("the pushes were delivered after the restart");
    let sent = pushes(&service, path).await;
    let mut by_topic: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (topic, message) in &sent {
        by_topic
            .entry(topic.clone())
            .or_default()
            .insert(message.clone());
    }
    assert_eq!(
        by_topic.len(),
        3,
        "one notification per conversation: {sent:?}"
    );
    assert!(
        by_topic.values().all(|messages| messages.len() == 1),
        "a resent push carries the same message under the same topic: {sent:?}"
    );
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM deliveries")
        .fetch_all(&pool)
        .await
        .expect("attempts");
    assert_eq!(attempts, vec![2, 2, 2]);

    // The events replayed (a consumer starting over): nothing new is sent.
    produce(&test, &records).await;
    let after_replay = sent.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pushes(&service, path).await.len(), after_replay);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM pending WHERE decided_at IS NULL")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(queued, 0);
    second.kill();
    pool.close().await;
    test.cleanup().await.expect("cleanup");
}
