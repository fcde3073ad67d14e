//! The running service's side of rotation: re-read the secret on a timer,
//! keep the token alive, and swap in new JWT keys without a restart.

use super::{Session, apply};
use crate::auth::{KeyRing, TokenSigner};
use crate::config::Config;
use crate::shutdown::CancellationToken;
use std::sync::Arc;
use std::time::Duration;

/// Re-reads the secret every `vault.refresh_seconds` and calls `on_change`
/// with the updated configuration whenever a secret value changed. Vault
/// being unreachable or refusing is logged and retried on the next tick; the
/// service keeps running on what it last read.
pub async fn refresh_secrets(
    mut config: Config,
    mut session: Session,
    mut on_change: impl FnMut(&Config) + Send,
    shutdown: CancellationToken,
) {
    let period = Duration::from_secs(config.vault.refresh_seconds.max(1));
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let read = async {
            session.keep_alive().await?;
            session.read_secrets().await
        };
        let secrets = match read.await {
            Ok(secrets) => secrets,
            Err(err) => {
                tracing::warn!(error = %err, "Vault refresh failed; keeping the secrets read last");
                metrics::counter!("vault_refresh_failures_total").increment(1);
                failing = true;
                continue;
            }
        };
        if failing {
            tracing::info!("Vault reachable again");
            failing = false;
        }
        let mut next = config.clone();
        apply(&mut next, secrets);
        if let Err(err) = next.validate() {
            tracing::warn!(error = %err, "secrets in Vault are invalid; keeping the previous ones");
            metrics::counter!("vault_refresh_failures_total").increment(1);
            continue;
        }
        if fingerprint(&next) != fingerprint(&config) {
            config = next;
            on_change(&config);
        }
    }
}

/// Keeps `keys` in step with the JWT keys in Vault (see [`refresh_secrets`]).
pub async fn watch_token_keys(
    config: Config,
    session: Session,
    keys: Arc<KeyRing<TokenSigner>>,
    shutdown: CancellationToken,
) {
    let on_change = move |config: &Config| match config
        .refuse_development_keys()
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(TokenSigner::from_config(&config.auth)?))
    {
        Ok(rotated) => {
            tracing::info!(active_kid = %config.auth.jwt_active_kid, "JWT keys rotated from Vault");
            keys.replace(rotated);
        }
        Err(err) => {
            tracing::warn!(error = %err, "rotated JWT keys are invalid; keeping the old ones")
        }
    };
    refresh_secrets(config, session, on_change, shutdown).await;
}

/// Every secret value, to notice a change without keeping copies around in
/// more places than the config itself.
fn fingerprint(config: &Config) -> Vec<&str> {
    vec![
        config.database.password.expose(),
        config.redis.password.expose(),
        config.auth.jwt_keys.expose(),
        &config.auth.jwt_active_kid,
        config.database.urls.users.expose(),
        config.database.urls.groups.expose(),
        config.database.urls.messages.expose(),
        config.database.urls.media.expose(),
        config.database.urls.notifier.expose(),
    ]
}
