//! Test support. Each [`TestEnv`] gets its own Postgres database and its own
//! Kafka topic prefix, so tests run in parallel against the real servers and
//! leave nothing behind. Server addresses come from the same environment
//! variables as production (`DB_HOST`, `KAFKA_BROKERS`, …).

use messenger_platform::Config;
use messenger_platform::config::Secret;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sqlx::{Connection, Executor, PgConnection};
use std::time::Duration;
use uuid::Uuid;

pub mod images;
pub mod push_service;

pub const TEST_JWT_KEYS: &str = "test:0123456789abcdef0123456789abcdef";

pub struct TestEnv {
    pub config: Config,
    database: String,
}

impl TestEnv {
    /// A configuration pointing at a new, empty database and a unique topic
    /// prefix, with cheap password hashing (tests hash many passwords).
    pub async fn new() -> anyhow::Result<Self> {
        let vars = messenger_platform::config::local_broker_settings()
            .into_iter()
            .chain(messenger_platform::config::load_tool_allowances())
            .chain(std::env::vars());
        let mut config = Config::load(None, vars)?;
        let id = Uuid::new_v4().simple().to_string();
        let database = format!("test_{id}");
        let mut admin = admin_connection(&config).await?;
        admin
            .execute(format!("CREATE DATABASE \"{database}\"").as_str())
            .await?;
        admin.close().await?;

        config.database.name = database.clone();
        config.database.max_connections = 5;
        config.kafka.topic_prefix = format!("t{}.", &id[..12]);
        config.kafka.topic_partitions = 1;
        config.kafka.message_timeout_ms = 5000;
        config.auth.jwt_keys = Secret::new(TEST_JWT_KEYS);
        config.auth.jwt_active_kid = "test".to_owned();
        config
            .set("passwords.memory_kib", 8 * 1024)
            .expect("known setting");
        config
            .set("passwords.iterations", 1)
            .expect("known setting");
        if config.vault.addr.trim().is_empty() {
            // No OpenBao to issue certificates: internal calls in plaintext.
            config.grpc.mtls.enabled = false;
        } else {
            // The services run as shipped, over mutual TLS with certificates
            // from OpenBao's PKI engine; the gateway follows the test keys
            // in a secret of the tests' own instead of the dev fleet's.
            config.vault.secret_path = TEST_SECRET_PATH.to_owned();
            write_test_secret(&config).await?;
        }
        let media_dir = std::env::temp_dir().join(format!("messenger-media-{id}"));
        config
            .set(
                "media.storage_url",
                format!("file://{}", media_dir.display()),
            )
            .expect("known setting");
        Ok(TestEnv { config, database })
    }

    /// Creates the (prefixed) topic and returns a consumer reading it from
    /// the beginning in a group of its own.
    pub async fn consume(&mut self, logical_topic: &str) -> anyhow::Result<StreamConsumer> {
        let topic = self.config.kafka.topic(logical_topic);
        messenger_platform::kafka::ensure_topics(&self.config.kafka, std::slice::from_ref(&topic))
            .await?;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.config.kafka.brokers)
            .set("group.id", format!("test-{}", Uuid::new_v4().simple()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            // tansu answers a fetch only when its wait expires, so the
            // default 500 ms wait would be the latency of every record.
            .set("fetch.wait.max.ms", "10")
            .create()?;
        consumer.subscribe(&[&topic])?;
        Ok(consumer)
    }

    /// Drops the database. Call at the end of a test; a test that panics
    /// leaves a `test_*` database that `./dev test` sweeps next time.
    ///
    /// Topics are left in place (their prefix is unique): deleting them on
    /// tansu is what hurt. A delete of an unknown topic takes a minute, a
    /// produce request still in flight to a deleted topic panics tansu's
    /// storage, and librdkafka crashes when a topic it fetches disappears.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        if let Some(dir) = self.media_dir() {
            let _ = std::fs::remove_dir_all(dir);
        }
        let mut admin = admin_connection(&self.config).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database).as_str())
            .await?;
        admin.close().await?;
        Ok(())
    }

    /// This environment's own media storage directory.
    pub fn media_dir(&self) -> Option<std::path::PathBuf> {
        self.config
            .setting("media.storage_url")?
            .as_str()?
            .strip_prefix("file://")
            .map(std::path::PathBuf::from)
    }

    /// A pool on the test database scoped to one service schema, for
    /// asserting on stored state.
    pub async fn pool(&self, schema: &str) -> anyhow::Result<sqlx::PgPool> {
        messenger_platform::db::connect(&self.config, schema).await
    }
}

/// How a test calls the services' gRPC directly, as `caller` would: with a
/// certificate issued for it by the fleet's CA when the fleet runs mTLS.
pub async fn transport_as(
    config: &Config,
    caller: messenger_platform::callers::Caller,
) -> anyhow::Result<messenger_platform::mtls::Transport> {
    use messenger_platform::mtls::{Transport, identity_name};
    let mtls = &config.grpc.mtls;
    if !mtls.enabled {
        return Ok(Transport::plaintext());
    }
    let session = messenger_platform::vault::Session::login(&config.vault).await?;
    let issued = session
        .issue_certificate(
            &mtls.pki_mount,
            caller.name(),
            &identity_name(caller, &mtls.domain),
            600,
        )
        .await?;
    Transport::client(&mtls.domain, &issued.ca_chain_pem, Some(&issued))
}

/// The KV secret the gateways of tests read their JWT keys from.
pub const TEST_SECRET_PATH: &str = "messenger-tests";

async fn write_test_secret(config: &Config) -> anyhow::Result<()> {
    use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
    let client = VaultClient::new(
        VaultClientSettingsBuilder::default()
            .address(config.vault.addr.trim())
            .token(config.vault.token.expose())
            .build()?,
    )?;
    let secret =
        std::collections::HashMap::from([("jwt_keys", TEST_JWT_KEYS), ("jwt_active_kid", "test")]);
    vaultrs::kv2::set(&client, &config.vault.kv_mount, TEST_SECRET_PATH, &secret)
        .await
        .map_err(|err| anyhow::anyhow!("cannot write the tests' secret to Vault: {err}"))?;
    Ok(())
}

async fn admin_connection(config: &Config) -> anyhow::Result<PgConnection> {
    let options = messenger_platform::db::connect_options(config, "users")?.database("postgres");
    let connect = PgConnection::connect_with(&options);
    Ok(tokio::time::timeout(Duration::from_secs(10), connect).await??)
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resident memory of process `pid` in bytes (from /proc), for load tools
/// that watch a service's memory.
pub fn resident_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}
