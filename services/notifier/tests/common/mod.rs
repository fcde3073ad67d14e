//! What the notifier's tests share: the real binary as a child process
//! (against the real Postgres, broker and OpenBao of a [`TestEnv`]), and
//! the messages service's events, produced by the test.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use base64::Engine as _;
use messenger_platform::kafka;
use messenger_proto::messages::v1::{
    MessagesEvent, Notification, NotificationCreated, NotificationKind, ReadPosition,
    ReadPositionMoved, messages_event::Payload,
};
use messenger_testkit::push_service::PushService;
use messenger_testkit::{TEST_JWT_KEYS, TestEnv, eventually};
use prost::Message as _;
use rdkafka::producer::FutureRecord;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::Value;
use std::process::{Child, Command};
use std::time::Duration;
use uuid::Uuid;

/// The notifier binary as a child process, killed when dropped.
pub struct Notifier(Child);

impl Notifier {
    pub fn start(env: &[(String, String)]) -> Notifier {
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
    pub fn kill(mut self) {
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

pub fn vapid_key() -> String {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .expect("a key");
    base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
}

/// What the child needs to run as this test's notifier: the settings the
/// test environment was made from, and its own database, topics and keys.
pub fn child_env(test: &TestEnv, grace_ms: u64) -> Vec<(String, String)> {
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
        ("NOTIFIER_GRACE_MS".to_owned(), grace_ms.to_string()),
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

/// One notification of the messages service, as it goes on Kafka.
pub struct Note {
    pub user: Uuid,
    pub channel: Uuid,
    pub seq: u64,
    pub kind: NotificationKind,
    pub message: Uuid,
}

impl Note {
    pub fn direct(user: Uuid, channel: Uuid, seq: u64) -> Note {
        Note {
            user,
            channel,
            seq,
            kind: NotificationKind::DirectMessage,
            message: Uuid::now_v7(),
        }
    }

    pub fn record(&self) -> (String, Vec<u8>) {
        let event = MessagesEvent {
            meta: None,
            actor_id: Uuid::now_v7().to_string(),
            payload: Some(Payload::NotificationCreated(NotificationCreated {
                notification: Some(Notification {
                    id: Uuid::now_v7().to_string(),
                    user_id: self.user.to_string(),
                    kind: self.kind as i32,
                    message_id: self.message.to_string(),
                    channel_id: self.channel.to_string(),
                    group_id: Uuid::now_v7().to_string(),
                    actor_id: Uuid::now_v7().to_string(),
                    excerpt: format!("message {}", self.seq),
                    created_at: Some(messenger_platform::wire::timestamp(
                        time::OffsetDateTime::now_utc(),
                    )),
                    read_at: None,
                }),
                seq: self.seq,
            })),
        };
        (self.channel.to_string(), event.encode_to_vec())
    }
}

/// The user read the channel up to `seq`.
pub fn read_moved(user: Uuid, channel: Uuid, seq: u64) -> (String, Vec<u8>) {
    let event = MessagesEvent {
        meta: None,
        actor_id: user.to_string(),
        payload: Some(Payload::ReadPositionMoved(ReadPositionMoved {
            group_id: Uuid::now_v7().to_string(),
            position: Some(ReadPosition {
                channel_id: channel.to_string(),
                user_id: user.to_string(),
                message_id: Uuid::now_v7().to_string(),
                seq,
                updated_at: None,
            }),
        })),
    };
    (channel.to_string(), event.encode_to_vec())
}

pub async fn produce(test: &TestEnv, records: &[(String, Vec<u8>)]) {
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

/// (topic, message id) of every push to `path`, each checked and
/// decrypted by the push service.
pub async fn pushes(service: &PushService, path: &str) -> Vec<(String, String)> {
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

/// Starts the notifier on `test` and waits until its schema exists; the
/// pool reads the notifier's rows.
pub async fn start(test: &TestEnv, env: &[(String, String)]) -> (Notifier, sqlx::PgPool) {
    let notifier = Notifier::start(env);
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
    (notifier, pool)
}

/// Registers a device of `user` at `path` of the push service.
pub async fn device(pool: &sqlx::PgPool, service: &PushService, user: Uuid, path: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO subscriptions (id, user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(user)
    .bind(service.endpoint(path))
    .bind(&service.p256dh)
    .bind(&service.auth)
    .execute(pool)
    .await
    .expect("subscription");
    id
}
