//! JWT keys rotated in Vault reach a running gateway: new tokens carry the
//! new kid, tokens signed before keep working until their key is retired.

use crate::helpers::{TestApp, token};
use messenger_platform::config::{Secret, VaultAuthMethod};
use messenger_testkit::{TEST_JWT_KEYS, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const NEXT_KEY: &str = "next:fedcba9876543210fedcba9876543210";

fn vault_addr() -> String {
    std::env::var("VAULT_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".to_owned())
}

async fn write_keys(path: &str, keys: &str, active: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/secret/data/{path}", vault_addr()))
        .header("X-Vault-Token", "root")
        .json(&json!({ "data": { "jwt_keys": keys, "jwt_active_kid": active } }))
        .send()
        .await
        .expect("Vault reachable (./dev infra)");
    assert!(response.status().is_success(), "{}", response.status());
}

fn kid(access_token: &str) -> String {
    jsonwebtoken::decode_header(access_token)
        .expect("jwt")
        .kid
        .unwrap_or_default()
}

async fn login(app: &TestApp) -> String {
    let response = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "rotator", "password": "correct horse"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    token(&response.body)
}

#[tokio::test]
async fn jwt_keys_rotated_in_vault_apply_without_a_restart() {
    let path = format!("fleet-{}", uuid::Uuid::new_v4().simple());
    write_keys(&path, TEST_JWT_KEYS, "test").await;
    let app = TestApp::spawn_with(|config| {
        config.vault.addr = vault_addr();
        config.vault.auth_method = VaultAuthMethod::Token;
        config.vault.token = Secret::new("root");
        config.vault.secret_path = path.clone();
        config.vault.refresh_seconds = 1;
    })
    .await;
    let old = token(&app.register("rotator").await);
    assert_eq!(kid(&old), "test");

    write_keys(&path, &format!("{NEXT_KEY},{TEST_JWT_KEYS}"), "next").await;
    let new = eventually(Duration::from_secs(15), || async {
        let fresh = login(&app).await;
        (kid(&fresh) == "next").then_some(fresh)
    })
    .await
    .expect("the gateway never signed with the rotated key");
    for access in [&old, &new] {
        let me = app.get("/api/v1/users/me", Some(access)).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    }

    // Retiring the old key ends the tokens it signed, nothing else.
    write_keys(&path, NEXT_KEY, "next").await;
    eventually(Duration::from_secs(15), || async {
        let me = app.get("/api/v1/users/me", Some(&old)).await;
        (me.status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await
    .expect("a token of the retired key is still accepted");
    let me: Value = app.get("/api/v1/users/me", Some(&new)).await.body;
    assert_eq!(me["username"], "rotator");
    app.cleanup().await;
}
