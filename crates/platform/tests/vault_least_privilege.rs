//! A service's Vault identity reaches its own secret and its own
//! certificate, nothing else (docs/security.md): logged in with the media
//! service's shipped policy (deploy/vault/policies/messenger-media.hcl) and
//! the PKI policy deploy/vault/fleet-pki.sh installed, it cannot read the
//! users service's secret, which holds the token signing keys, nor issue
//! another service's certificate. Against the shared OpenBao (./dev infra).

mod vault_support;

use messenger_platform::config::{Secret, VaultAuthMethod};
use messenger_platform::vault::{Session, VaultError};
use serde_json::json;
use vault_support::{approle_with, config_for, shared_addr, unique, write_secret};

#[tokio::test]
async fn the_media_identity_reads_its_own_secret_and_certificate_only() {
    let addr = shared_addr();
    // The shipped policy, pointed at this test's own copy of the paths.
    let prefix = unique("least-privilege");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/vault/policies/messenger-media.hcl"
    ))
    .expect("policy file");
    assert!(shipped.contains("secret/data/messenger/media"), "{shipped}");
    let rules = shipped.replace("secret/data/messenger/", &format!("secret/data/{prefix}/"));
    write_secret(
        &addr,
        &format!("{prefix}/media"),
        json!({ "db_password": "media-only" }),
    )
    .await;
    write_secret(
        &addr,
        &format!("{prefix}/users"),
        json!({ "jwt_keys": "k:0123456789abcdef0123456789abcdef", "jwt_active_kid": "k" }),
    )
    .await;
    let (mount, role_id, secret_id) =
        approle_with(&addr, &rules, &["messenger-pki-media"], "5m", "10m").await;

    let mut config = config_for(&addr, &format!("{prefix}/media"));
    config.vault.auth_method = VaultAuthMethod::Approle;
    config.vault.token = Secret::new("");
    config.vault.approle_mount = mount;
    config.vault.role_id = role_id;
    config.vault.secret_id = Secret::new(secret_id);
    let media = Session::login(&config.vault).await.expect("media logs in");
    let own = media.read_secrets().await.expect("its own secret");
    assert_eq!(
        own.get("db_password").map(String::as_str),
        Some("media-only")
    );

    let mut users = config.vault.clone();
    users.secret_path = format!("{prefix}/users");
    let other = Session::login(&users).await.expect("login");
    let refused = other.read_secrets().await;
    assert!(
        matches!(&refused, Err(VaultError::Read { reason, .. }) if reason.contains("403") || reason.contains("permission denied")),
        "the media identity read the signing keys: {refused:?}"
    );

    let pki = &config.grpc.mtls;
    let name = |service: &str| format!("{service}.{}", pki.domain);
    media
        .issue_certificate(&pki.pki_mount, "media", &name("media"), 60)
        .await
        .expect("its own certificate");
    for (role, common_name) in [("gateway", name("gateway")), ("media", name("gateway"))] {
        let refused = media
            .issue_certificate(&pki.pki_mount, role, &common_name, 60)
            .await;
        assert!(
            matches!(refused, Err(VaultError::Issue { .. })),
            "the media identity issued {common_name} with role {role}"
        );
    }
}
