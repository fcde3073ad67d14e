//! Secrets from a real Vault API (OpenBao dev server, started by `./dev`).

use messenger_platform::Config;
use messenger_platform::config::Secret;
use serde_json::json;

fn vault_addr() -> String {
    std::env::var("VAULT_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".to_owned())
}

fn vault_token() -> String {
    std::env::var("VAULT_TOKEN").unwrap_or_else(|_| "root".to_owned())
}

async fn write_secret(path: &str, data: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/secret/data/{path}", vault_addr()))
        .header("X-Vault-Token", vault_token())
        .json(&json!({ "data": data }))
        .send()
        .await
        .expect("Vault reachable (run ./dev infra)");
    assert!(
        response.status().is_success(),
        "write failed: {}",
        response.status()
    );
}

fn config_for(path: &str) -> Config {
    let mut config = Config::defaults().expect("defaults");
    config.vault.addr = vault_addr();
    config.vault.token = Secret::new(vault_token());
    config.vault.secret_path = path.to_owned();
    config
}

#[tokio::test]
async fn secrets_from_vault_override_config() {
    let path = format!("test-{}", uuid::Uuid::new_v4());
    write_secret(
        &path,
        json!({
            "db_password": "from-vault",
            "jwt_keys": "v1:abcdefghijklmnopqrstuvwxyz012345",
            "jwt_active_kid": "v1",
        }),
    )
    .await;
    let mut config = config_for(&path);
    config.database.password = Secret::new("from-env");
    messenger_platform::vault::apply_secrets(&mut config)
        .await
        .expect("secrets applied");
    assert_eq!(config.database.password.expose(), "from-vault");
    assert_eq!(config.auth.jwt_active_kid, "v1");
    let keys = config.auth.signing_keys().expect("valid keys");
    assert_eq!(keys[0].kid, "v1");
}

#[tokio::test]
async fn invalid_secrets_from_vault_are_rejected_naming_the_key() {
    let path = format!("test-{}", uuid::Uuid::new_v4());
    write_secret(&path, json!({ "jwt_keys": "v1:too-short" })).await;
    let mut config = config_for(&path);
    let err = messenger_platform::vault::apply_secrets(&mut config)
        .await
        .expect_err("rejected");
    assert!(err.to_string().contains("auth.jwt_keys"), "{err}");
}

#[tokio::test]
async fn missing_secret_or_bad_token_fail_clearly() {
    let mut missing = config_for(&format!("absent-{}", uuid::Uuid::new_v4()));
    let err = messenger_platform::vault::apply_secrets(&mut missing)
        .await
        .expect_err("absent");
    assert!(
        err.to_string().contains("cannot read Vault secret"),
        "{err}"
    );

    let mut bad_token = config_for("messenger");
    bad_token.vault.token = Secret::new("not-a-token");
    let err = messenger_platform::vault::apply_secrets(&mut bad_token)
        .await
        .expect_err("denied");
    assert!(
        err.to_string().contains("cannot read Vault secret"),
        "{err}"
    );

    let mut no_token = config_for("messenger");
    no_token.vault.token = Secret::new("");
    let err = messenger_platform::vault::apply_secrets(&mut no_token)
        .await
        .expect_err("no token");
    assert!(err.to_string().contains("vault.token"), "{err}");
}
