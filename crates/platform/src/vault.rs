//! Secrets from Vault (or OpenBao): when `vault.addr` is set, the KV v2
//! secret at `<kv_mount>/<secret_path>` overrides the secret config keys.

use crate::config::{Config, ConfigError, Secret};
use std::collections::HashMap;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

/// Secret keys read from Vault and the config keys they fill.
pub const SECRET_KEYS: &[&str] = &[
    "db_password",
    "redis_password",
    "jwt_keys",
    "jwt_active_kid",
    "users_database_url",
    "groups_database_url",
    "messages_database_url",
    "media_database_url",
];

pub async fn apply_secrets(config: &mut Config) -> anyhow::Result<()> {
    let vault = &config.vault;
    if vault.addr.trim().is_empty() {
        return Ok(());
    }
    let settings = VaultClientSettingsBuilder::default()
        .address(vault.addr.trim())
        .token(vault.token.expose())
        .build()
        .map_err(|err| ConfigError::invalid("vault.addr", err.to_string()))?;
    let mut client = VaultClient::new(settings)
        .map_err(|err| ConfigError::invalid("vault.addr", err.to_string()))?;
    if !vault.role_id.is_empty() {
        let auth = vaultrs::auth::approle::login(
            &client,
            "approle",
            &vault.role_id,
            vault.secret_id.expose(),
        )
        .await
        .map_err(|err| anyhow::anyhow!("Vault AppRole login failed: {err}"))?;
        vaultrs::client::Client::set_token(&mut client, &auth.client_token);
    } else if vault.token.is_empty() {
        return Err(ConfigError::invalid(
            "vault.token",
            "is required when vault.addr is set (or set vault.role_id for AppRole)",
        )
        .into());
    }
    let secrets: HashMap<String, String> =
        vaultrs::kv2::read(&client, &vault.kv_mount, &vault.secret_path)
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot read Vault secret {}/{}: {err}",
                    vault.kv_mount,
                    vault.secret_path
                )
            })?;
    let mut applied = Vec::new();
    for (key, value) in secrets {
        let target = match key.as_str() {
            "db_password" => &mut config.database.password,
            "redis_password" => &mut config.redis.password,
            "jwt_keys" => &mut config.auth.jwt_keys,
            "users_database_url" => &mut config.database.urls.users,
            "groups_database_url" => &mut config.database.urls.groups,
            "messages_database_url" => &mut config.database.urls.messages,
            "media_database_url" => &mut config.database.urls.media,
            "jwt_active_kid" => {
                config.auth.jwt_active_kid = value;
                applied.push(key);
                continue;
            }
            _ => continue,
        };
        *target = Secret::new(value);
        applied.push(key);
    }
    tracing::info!(keys = ?applied, "secrets loaded from Vault");
    config.validate()?;
    Ok(())
}
