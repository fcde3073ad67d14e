//! A running service follows Vault: rotated JWT keys apply without a
//! restart, short-lived tokens are renewed or replaced, and an outage keeps
//! the last good keys until Vault is back.

mod vault_support;

use messenger_platform::CancellationToken;
use messenger_platform::auth::{KeyRing, Principal, TokenSigner};
use messenger_platform::config::{Secret, VaultAuthMethod};
use messenger_platform::vault::{Session, apply_secrets, watch_token_keys};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use vault_support::*;

const KEY_A: &str = "a:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "b:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn principal() -> Principal {
    Principal {
        user_id: Uuid::new_v4(),
        session_id: Uuid::new_v4(),
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

/// Writes key set {b, a} with b active and waits until `ring` signs with b.
async fn rotate_to_b(addr: &str, path: &str, ring: &KeyRing<TokenSigner>, failure: &str) {
    write_secret(
        addr,
        path,
        json!({ "jwt_keys": format!("{KEY_B},{KEY_A}"), "jwt_active_kid": "b" }),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || ring.current().active_kid()
            == "b")
        .await,
        "{failure}"
    );
}

/// Starts the refresher for `config` (secrets already applied) and returns
/// the key ring it keeps up to date.
async fn follow(
    config: &messenger_platform::Config,
    shutdown: &CancellationToken,
) -> Arc<KeyRing<TokenSigner>> {
    let ring = Arc::new(KeyRing::new(
        TokenSigner::from_config(&config.auth).expect("keys"),
    ));
    let session = Session::login(&config.vault).await.expect("login");
    tokio::spawn(watch_token_keys(
        config.clone(),
        session,
        Arc::clone(&ring),
        shutdown.clone(),
    ));
    ring
}

#[tokio::test]
async fn rotated_keys_apply_without_restart_and_old_tokens_stay_valid() {
    let addr = shared_addr();
    let path = unique("rotate");
    write_secret(
        &addr,
        &path,
        json!({ "jwt_keys": KEY_A, "jwt_active_kid": "a" }),
    )
    .await;
    let mut config = config_for(&addr, &path);
    config.vault.refresh_seconds = 1;
    apply_secrets(&mut config).await.expect("secrets");
    let shutdown = CancellationToken::new();
    let ring = follow(&config, &shutdown).await;
    let before = ring.current().issue(principal()).expect("issue").token;
    assert_eq!(kid_of(&before), "a");

    rotate_to_b(&addr, &path, &ring, "the new key was not picked up").await;
    let after = ring.current().issue(principal()).expect("issue").token;
    assert_eq!(kid_of(&after), "b");
    ring.current()
        .verifier()
        .verify(&before)
        .expect("old token still verifies");
    ring.current()
        .verifier()
        .verify(&after)
        .expect("new token verifies");

    // An invalid rotation (active kid not in the set) is refused: the
    // working keys stay.
    write_secret(
        &addr,
        &path,
        json!({ "jwt_keys": KEY_A, "jwt_active_kid": "zzz" }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(ring.current().active_kid(), "b");

    // Retiring key a: its tokens stop verifying, b's keep working.
    write_secret(
        &addr,
        &path,
        json!({ "jwt_keys": KEY_B, "jwt_active_kid": "b" }),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || ring
            .current()
            .verifier()
            .verify(&before)
            .is_err())
        .await,
        "the retired key still verifies"
    );
    ring.current()
        .verifier()
        .verify(&after)
        .expect("b still verifies");
    shutdown.cancel();
}

#[tokio::test]
async fn short_lived_approle_tokens_are_renewed_and_replaced() {
    let addr = shared_addr();
    let path = unique("renew");
    write_secret(
        &addr,
        &path,
        json!({ "jwt_keys": KEY_A, "jwt_active_kid": "a" }),
    )
    .await;
    // Tokens live 2 s and can never be extended past 4 s: the refresher
    // must renew, then log in again, or its reads start failing.
    let (mount, role_id, secret_id) = approle(&addr, &path, "2s", "4s").await;
    let mut config = config_for(&addr, &path);
    config.vault.auth_method = VaultAuthMethod::Approle;
    config.vault.token = Secret::new("");
    config.vault.approle_mount = mount;
    config.vault.role_id = role_id;
    config.vault.secret_id = Secret::new(secret_id);
    config.vault.refresh_seconds = 1;
    apply_secrets(&mut config).await.expect("secrets");
    let shutdown = CancellationToken::new();
    let ring = follow(&config, &shutdown).await;

    tokio::time::sleep(Duration::from_secs(7)).await;
    rotate_to_b(
        &addr,
        &path,
        &ring,
        "after 7 s of 2 s tokens the refresher no longer reads Vault",
    )
    .await;
    shutdown.cancel();
}

#[tokio::test]
async fn an_outage_keeps_the_last_keys_and_recovers() {
    let mut vault = PrivateVault::start().await;
    let path = unique("outage");
    write_secret(
        &vault.addr,
        &path,
        json!({ "jwt_keys": KEY_A, "jwt_active_kid": "a" }),
    )
    .await;
    let mut config = config_for(&vault.addr, &path);
    config.vault.refresh_seconds = 1;
    apply_secrets(&mut config).await.expect("secrets");
    let shutdown = CancellationToken::new();
    let ring = follow(&config, &shutdown).await;
    let token = ring.current().issue(principal()).expect("issue").token;

    vault.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ring.current().active_kid(), "a");
    ring.current()
        .verifier()
        .verify(&token)
        .expect("keys kept during the outage");

    // Dev mode starts empty: the operator writes the (rotated) secret again.
    vault.restart().await;
    rotate_to_b(
        &vault.addr,
        &path,
        &ring,
        "the refresher did not recover after Vault came back",
    )
    .await;
    ring.current()
        .verifier()
        .verify(&token)
        .expect("old token still verifies");
    shutdown.cancel();
}
