//! Secrets from Vault (or OpenBao): when `vault.addr` is set, the KV v2
//! secret at `<kv_mount>/<secret_path>` overrides the secret config keys.
//! At startup an unreachable or refusing Vault stops the service with a clear
//! message; afterwards a refresher keeps the token alive and applies rotated
//! JWT keys, running on the last good secrets whenever Vault is away.

mod refresh;
mod session;

pub use refresh::{refresh_secrets, watch_token_keys};
pub use session::{IssuedCertificate, Session, VaultError};

use crate::config::{Config, Secret};
use std::collections::HashMap;

/// Secret keys read from Vault and the config keys they fill.
pub const SECRET_KEYS: &[&str] = &[
    "db_password",
    "redis_username",
    "redis_password",
    "kafka_username",
    "kafka_password",
    "jwt_keys",
    "jwt_active_kid",
    "users_database_url",
    "groups_database_url",
    "messages_database_url",
    "media_database_url",
    "notifier_database_url",
    "vapid_key",
];

/// Reads the secrets once and applies them to `config` (a no-op without
/// `vault.addr`). Returns the session so a long-running service can refresh.
pub async fn apply_secrets(config: &mut Config) -> anyhow::Result<Option<Session>> {
    if config.vault.addr.trim().is_empty() {
        return Ok(None);
    }
    let session = Session::login(&config.vault).await?;
    let secrets = session.read_secrets().await?;
    let applied = apply(config, secrets);
    tracing::info!(keys = ?applied, "secrets loaded from Vault");
    config.validate()?;
    Ok(Some(session))
}

/// Copies the known keys into `config`; returns the names applied (never
/// their values, which is all that may be logged).
pub fn apply(config: &mut Config, secrets: HashMap<String, String>) -> Vec<String> {
    let mut applied = Vec::new();
    for (key, value) in secrets {
        let target = match key.as_str() {
            "db_password" => &mut config.database.password,
            "redis_password" => &mut config.redis.password,
            "kafka_password" => &mut config.kafka.sasl_password,
            "jwt_keys" => &mut config.auth.jwt_keys,
            "users_database_url" => &mut config.database.urls.users,
            "groups_database_url" => &mut config.database.urls.groups,
            "messages_database_url" => &mut config.database.urls.messages,
            "media_database_url" => &mut config.database.urls.media,
            "notifier_database_url" => &mut config.database.urls.notifier,
            // The notifier's own section (it alone is given this key).
            "vapid_key" => {
                if config.set("notifier.vapid_key", value).is_ok() {
                    applied.push(key);
                }
                continue;
            }
            "redis_username" => {
                config.redis.username = value;
                applied.push(key);
                continue;
            }
            "kafka_username" => {
                config.kafka.sasl_username = value;
                applied.push(key);
                continue;
            }
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
    applied.sort();
    applied
}
