//! Shared by the load tools: the fleet as a child process or inside this
//! one, and a few REST helpers.

// Each load tool compiles this module on its own and uses part of it.
#![allow(dead_code)]

pub mod sends;
pub mod stages;

use messenger_platform::{CancellationToken, Config};
use messenger_testkit::{TEST_JWT_KEYS, TestEnv};
use serde_json::{Value, json};
use std::time::Duration;

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The fleet as a child process, killed on drop.
pub struct Fleet {
    pub child: std::process::Child,
    pub base: String,
    /// The whole process's Prometheus metrics.
    pub metrics: String,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fleet {
    pub fn start(env: &TestEnv) -> anyhow::Result<Fleet> {
        Fleet::start_with(env, &[])
    }

    /// Started with `extra` environment settings on top.
    pub fn start_with(env: &TestEnv, extra: &[(&str, String)]) -> anyhow::Result<Fleet> {
        let internal = free_port()?;
        let port = free_port()?;
        let config = &env.config;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_messenger"));
        command
            .env("SERVER_HOST", "127.0.0.1")
            .env("SERVER_PORT", port.to_string())
            .env("DB_HOST", &config.database.host)
            .env("DB_PORT", config.database.port.to_string())
            .env("DB_USER", &config.database.user)
            .env("DB_PASSWORD", config.database.password.expose())
            .env("DB_NAME", &config.database.name)
            .env("REDIS_HOST", &config.redis.host)
            .env("REDIS_PORT", config.redis.port.to_string())
            .env("KAFKA_BROKERS", &config.kafka.brokers)
            .env("KAFKA_TOPIC_PREFIX", &config.kafka.topic_prefix)
            .env("KAFKA_TOPIC_PARTITIONS", "1")
            .env("JWT_KEYS", TEST_JWT_KEYS)
            .env("JWT_ACTIVE_KID", "test")
            .env("PASSWORD_HASH_MEMORY_KIB", "8192")
            .env("PASSWORD_HASH_ITERATIONS", "1")
            // As the tests run it: over mTLS with certificates from OpenBao
            // when it is there (the test kit's secret holds the test keys).
            .env("VAULT_ADDR", &config.vault.addr)
            .env("VAULT_TOKEN", config.vault.token.expose())
            .env("VAULT_SECRET_PATH", &config.vault.secret_path)
            .env("GRPC_MTLS_ENABLED", config.grpc.mtls.enabled.to_string())
            .env("SERVER_INTERNAL_LISTEN", format!("127.0.0.1:{internal}"))
            // The environment's temporary directory: the binary's default is
            // relative to the working directory, i.e. inside the crate.
            .env("MEDIA_STORAGE_URL", media_storage_url(config))
            .env("RUST_LOG", "warn")
            .envs(messenger_platform::config::local_broker_settings())
            .envs(messenger_platform::config::load_tool_allowances())
            .envs(extra.iter().map(|(name, value)| (*name, value.as_str())))
            .stdout(std::process::Stdio::null());
        for service in ["USERS", "GROUPS", "MESSAGES", "MEDIA"] {
            let grpc = free_port()?;
            command
                .env(
                    format!("{service}_GRPC_LISTEN"),
                    format!("127.0.0.1:{grpc}"),
                )
                .env(
                    format!("{service}_GRPC_URL"),
                    format!("http://127.0.0.1:{grpc}"),
                );
        }
        Ok(Fleet {
            child: command.spawn()?,
            base: format!("http://127.0.0.1:{port}"),
            metrics: format!("http://127.0.0.1:{internal}/metrics"),
        })
    }

    /// Resident memory of the fleet process, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        messenger_testkit::resident_memory(self.child.id())
            .ok_or_else(|| anyhow::anyhow!("no VmRSS for the fleet process"))
    }
}

/// The fleet inside this process on ephemeral ports, for tools that need no
/// /proc view of it; `stop` shuts it down and returns its outcome.
pub struct InProcessFleet {
    /// The settings it runs with, its listeners' addresses filled in.
    pub config: Config,
    pub base: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessFleet {
    pub async fn start(config: &Config) -> anyhow::Result<InProcessFleet> {
        let mut config = config.clone();
        let listeners = messenger_fleet::Listeners::ephemeral(&mut config).await?;
        let base = format!("http://127.0.0.1:{}", config.server.port);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(messenger_fleet::run(
            config.clone(),
            listeners,
            shutdown.clone(),
        ));
        Ok(InProcessFleet {
            config,
            base,
            shutdown,
            task,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

pub async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    wait_ready_within(http, base, 600).await
}

/// Polls readiness every 100 ms, giving up after `attempts`.
pub async fn wait_ready_within(
    http: &reqwest::Client,
    base: &str,
    attempts: u32,
) -> anyhow::Result<()> {
    for _ in 0..attempts {
        let response = http.get(format!("{base}/api/v1/ready")).send().await;
        if response.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("fleet not ready")
}

/// Registers `username` and returns its access token.
pub async fn register(
    http: &reqwest::Client,
    base: &str,
    username: &str,
) -> anyhow::Result<String> {
    let response = register_response(http, base, username).await?;
    text(&response["access_token"])
}

/// Registers `username` and returns the whole answer.
pub async fn register_response(
    http: &reqwest::Client,
    base: &str,
    username: &str,
) -> anyhow::Result<Value> {
    Ok(http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "display_name": username,
            "password": "benchmark password",
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Creates a public group named `name` with `count` channels in all (its
/// default channel first, then `{prefix}1`, `{prefix}2`, …); returns the
/// group's id and the channels' ids.
pub async fn create_group(
    http: &reqwest::Client,
    base: &str,
    owner: &str,
    name: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<(String, Vec<String>)> {
    let group = post(
        http,
        base,
        owner,
        "/api/v1/groups",
        json!({"name": name, "visibility": "public"}),
    )
    .await?;
    let group_id = text(&group["id"])?;
    let mut channels = vec![text(&group["default_channel_id"])?];
    for i in 1..count {
        let channel = post(
            http,
            base,
            owner,
            &format!("/api/v1/groups/{group_id}/channels"),
            json!({"name": format!("{prefix}{i}")}),
        )
        .await?;
        channels.push(text(&channel["id"])?);
    }
    Ok((group_id, channels))
}

/// Registers `count` users named `{prefix}0`, `{prefix}1`, … and has each
/// join the group, one after another; returns their tokens.
pub async fn join_members(
    http: &reqwest::Client,
    base: &str,
    group_id: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut members = Vec::new();
    for i in 0..count {
        let token = register(http, base, &format!("{prefix}{i}")).await?;
        post(
            http,
            base,
            &token,
            &format!("/api/v1/groups/{group_id}/members"),
            json!({}),
        )
        .await?;
        members.push(token);
    }
    Ok(members)
}

pub fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("expected a string, got {value}"))
}

pub async fn post(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    Ok(http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Where the fleet under test keeps media (the test environment's folder).
fn media_storage_url(config: &Config) -> String {
    config
        .setting("media.storage_url")
        .and_then(|url| url.as_str())
        .unwrap_or_default()
        .to_owned()
}
