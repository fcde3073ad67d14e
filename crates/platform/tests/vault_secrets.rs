//! Startup secrets from a real Vault API (the OpenBao dev server `./dev`
//! starts): token and AppRole login, and clear failures that leak nothing.

mod vault_support;

use messenger_platform::config::{Secret, VaultAuthMethod};
use messenger_platform::vault::apply_secrets;
use serde_json::json;
use vault_support::*;

#[tokio::test]
async fn secrets_from_vault_override_config() {
    let addr = shared_addr();
    let path = unique("test");
    write_secret(
        &addr,
        &path,
        json!({
            "db_password": "from-vault",
            "jwt_keys": "v1:abcdefghijklmnopqrstuvwxyz012345",
            "jwt_active_kid": "v1",
        }),
    )
    .await;
    let mut config = config_for(&addr, &path);
    config.database.password = Secret::new("from-env");
    apply_secrets(&mut config).await.expect("secrets applied");
    assert_eq!(config.database.password.expose(), "from-vault");
    assert_eq!(config.auth.jwt_active_kid, "v1");
    let keys = config.auth.signing_keys().expect("valid keys");
    assert_eq!(keys[0].kid, "v1");
}

#[tokio::test]
async fn approle_login_reads_only_what_its_policy_allows() {
    let addr = shared_addr();
    let path = unique("test");
    write_secret(&addr, &path, json!({ "redis_password": "r3dis" })).await;
    let (mount, role_id, secret_id) = approle(&addr, &path, "1m", "5m").await;
    let mut config = config_for(&addr, &path);
    config.vault.auth_method = VaultAuthMethod::Approle;
    config.vault.token = Secret::new("");
    config.vault.approle_mount = mount;
    config.vault.role_id = role_id;
    config.vault.secret_id = Secret::new(secret_id.clone());
    let mut allowed = config.clone();
    apply_secrets(&mut allowed).await.expect("applied");
    assert_eq!(allowed.redis.password.expose(), "r3dis");

    // Another path is outside the role's policy.
    let mut other = config.clone();
    other.vault.secret_path = "messenger".to_owned();
    let err = apply_secrets(&mut other)
        .await
        .expect_err("denied")
        .to_string();
    assert!(
        err.contains("cannot read Vault secret secret/messenger"),
        "{err}"
    );
    assert!(err.contains("403"), "{err}");

    // A wrong secret id fails the login, and the message does not echo it.
    let mut wrong = config.clone();
    let wrong_id = uuid::Uuid::new_v4().to_string();
    wrong.vault.secret_id = Secret::new(wrong_id.clone());
    let err = apply_secrets(&mut wrong)
        .await
        .expect_err("login refused")
        .to_string();
    assert!(err.contains("Vault AppRole login failed"), "{err}");
    assert!(
        !err.contains(&wrong_id) && !err.contains(&secret_id),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_secrets_from_vault_are_rejected_naming_the_key() {
    let addr = shared_addr();
    let path = unique("test");
    write_secret(&addr, &path, json!({ "jwt_keys": "v1:too-short" })).await;
    let mut config = config_for(&addr, &path);
    let err = apply_secrets(&mut config).await.expect_err("rejected");
    assert!(err.to_string().contains("auth.jwt_keys"), "{err}");
    assert!(!err.to_string().contains("too-short"), "{err}");
}

#[tokio::test]
async fn missing_secret_bad_credentials_and_no_vault_fail_clearly() {
    let addr = shared_addr();
    let mut missing = config_for(&addr, &unique("absent"));
    let err = apply_secrets(&mut missing).await.expect_err("absent");
    assert!(
        err.to_string().contains("cannot read Vault secret"),
        "{err}"
    );

    let mut bad_token = config_for(&addr, "messenger");
    bad_token.vault.token = Secret::new("not-a-token");
    let err = apply_secrets(&mut bad_token).await.expect_err("denied");
    assert!(
        err.to_string().contains("Vault token login failed"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-a-token"), "{err}");

    let mut no_token = config_for(&addr, "messenger");
    no_token.vault.token = Secret::new("");
    let err = apply_secrets(&mut no_token).await.expect_err("no token");
    assert!(err.to_string().contains("vault.token"), "{err}");

    let mut no_role = config_for(&addr, "messenger");
    no_role.vault.auth_method = VaultAuthMethod::Kubernetes;
    let err = apply_secrets(&mut no_role).await.expect_err("no role");
    assert!(err.to_string().contains("VAULT_K8S_ROLE"), "{err}");

    let mut no_service_account = no_role.clone();
    no_service_account.vault.kubernetes_role = "messenger-users".to_owned();
    no_service_account.vault.kubernetes_token_path = "/nonexistent/token".to_owned();
    let err = apply_secrets(&mut no_service_account)
        .await
        .expect_err("no token file");
    assert!(
        err.to_string()
            .contains("cannot read the service account token at /nonexistent/token"),
        "{err}"
    );

    // Nothing listens on port 9 (discard): the service must not start.
    let mut unreachable = config_for("http://127.0.0.1:9", "messenger");
    let err = apply_secrets(&mut unreachable)
        .await
        .expect_err("unreachable");
    assert!(
        err.to_string()
            .contains("Vault at http://127.0.0.1:9 is unreachable"),
        "{err}"
    );
}
