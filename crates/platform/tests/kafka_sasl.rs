//! Services sign in to the brokers as their own Kafka user (SASL/SCRAM):
//! against a real broker that requires authentication (a tansu of this
//! test's own, on a free loopback port, with its own store), the clients
//! `messenger_platform::kafka` builds create topics, produce and consume
//! with the right password, and get nothing done with a wrong one or none.
//! The ACLs (who may write which topic) are not enforced by tansu; they are
//! checked offline against the code (crates/fleet/tests/kafka_acls.rs).

use messenger_platform::config::{Config, Secret};
use messenger_platform::kafka;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A tansu broker that requires SASL, stopped (and its store removed) on drop.
struct Broker {
    child: Child,
    address: String,
    dir: std::path::PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn spawn_tansu(dir: &std::path::Path, address: &str, authentication: bool) -> Child {
    let url = format!("tcp://{address}");
    let mut command = Command::new("tansu");
    command
        .current_dir(dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .arg("broker");
    if authentication {
        command.arg("--authentication");
    }
    command
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu is installed by `./dev infra`")
}

async fn wait_for(address: &str) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tansu did not listen on {address} within 10 s");
}

/// A broker whose store holds `users` (SCRAM-SHA-512), then restarted to
/// require sign-in: tansu with authentication on refuses every request
/// before it, user creation included, so the users are made first, the way
/// an operator bootstraps it.
async fn start_broker(users: &[(&str, &str)]) -> Broker {
    let address = format!("127.0.0.1:{}", free_port());
    let dir = std::env::temp_dir().join(format!("kafka-sasl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("broker dir");
    let mut open = spawn_tansu(&dir, &address, false);
    wait_for(&address).await;
    for (name, password) in users {
        let status = Command::new("tansu")
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://{address}"))
            .args([name, password])
            .stdout(Stdio::null())
            .status()
            .expect("tansu user create");
        assert!(status.success(), "tansu user create {name}: {status}");
    }
    let _ = open.kill();
    let _ = open.wait();
    let child = spawn_tansu(&dir, &address, true);
    let broker = Broker {
        child,
        address,
        dir,
    };
    wait_for(&broker.address).await;
    broker
}

fn config(broker: &Broker, protocol: &str, user: &str, password: &str) -> Config {
    let mut config = Config::defaults().expect("template");
    config.kafka.brokers = broker.address.clone();
    config.kafka.security_protocol = protocol.to_owned();
    config.kafka.sasl_username = user.to_owned();
    config.kafka.sasl_password = Secret::new(password);
    config.kafka.message_timeout_ms = 3_000;
    config.kafka.idempotent_producer = false;
    config
}

async fn produce(config: &Config, topic: &str) -> Result<(), String> {
    let producer = kafka::producer(&config.kafka, "kafka-sasl-test").map_err(|e| e.to_string())?;
    producer
        .send(
            FutureRecord::to(topic).key("k").payload("signed in"),
            Duration::from_secs(3),
        )
        .await
        .map(|_| ())
        .map_err(|(err, _)| err.to_string())
}

#[tokio::test]
async fn a_service_signed_in_as_its_kafka_user_produces_and_consumes() {
    let broker = start_broker(&[("messages", "right-password")]).await;
    let signed_in = config(&broker, "sasl_plaintext", "messages", "right-password");
    let topic = format!("sasl-{}", uuid::Uuid::new_v4());

    kafka::ensure_topics(&signed_in.kafka, std::slice::from_ref(&topic))
        .await
        .expect("an authenticated admin client creates the topic");
    produce(&signed_in, &topic)
        .await
        .expect("an authenticated producer delivers");

    let consumer = kafka::consumer(
        &signed_in.kafka,
        "sasl-test",
        "kafka-sasl-test",
        kafka::Urgency::Live,
    )
    .expect("consumer");
    consumer.subscribe(&[topic.as_str()]).expect("subscribe");
    let record = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
        .await
        .expect("the record arrives within 20 s")
        .expect("an authenticated consumer reads");
    assert_eq!(record.payload(), Some(b"signed in".as_slice()));
}

#[tokio::test]
async fn a_wrong_password_or_no_sign_in_gets_nothing_done() {
    let broker = start_broker(&[("messages", "right-password")]).await;
    let topic = format!("sasl-{}", uuid::Uuid::new_v4());
    let signed_in = config(&broker, "sasl_plaintext", "messages", "right-password");
    kafka::ensure_topics(&signed_in.kafka, std::slice::from_ref(&topic))
        .await
        .expect("topic");

    let wrong = config(&broker, "sasl_plaintext", "messages", "wrong-password");
    let refused = produce(&wrong, &topic).await.expect_err("refused");
    assert!(
        refused.contains("uthentication") || refused.contains("timed out"),
        "a wrong password fails the delivery: {refused}"
    );
    let unknown = config(&broker, "sasl_plaintext", "intruder", "right-password");
    produce(&unknown, &topic)
        .await
        .expect_err("an unknown user is refused");
    let anonymous = config(&broker, "plaintext", "", "");
    produce(&anonymous, &topic)
        .await
        .expect_err("a client that does not sign in is refused");
    assert!(
        kafka::ensure_topics(&wrong.kafka, &[format!("{topic}-other")])
            .await
            .is_err(),
        "nor can it create topics"
    );
    let missing = config(&broker, "sasl_plaintext", "messages", "");
    let Err(err) = kafka::producer(&missing.kafka, "kafka-sasl-test") else {
        panic!("a client without its password must not start");
    };
    assert!(err.to_string().contains("kafka_password"), "{err}");
}
