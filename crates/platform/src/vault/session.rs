//! One authenticated conversation with Vault: login by the configured
//! method, renewal before the token expires, and a fresh login when renewal
//! is refused (the token reached its max TTL or was revoked).

use crate::config::{Secret, VaultAuthMethod, VaultConfig};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

/// What went wrong talking to Vault. Messages name the address, mount and
/// path involved, never a token, secret id or secret value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("Vault at {addr} is unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("Vault {method} login failed: {reason}")]
    Login {
        method: &'static str,
        reason: String,
    },
    #[error("cannot read Vault secret {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot issue a certificate at Vault path {path}: {reason}")]
    Issue { path: String, reason: String },
    #[error("invalid Vault settings: {0}")]
    Settings(String),
}

/// A certificate with its private key, as the PKI secrets engine issued it.
pub struct IssuedCertificate {
    pub certificate_pem: String,
    /// The issuing CA first, up to the root.
    pub ca_chain_pem: Vec<String>,
    pub private_key_pem: Secret,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A logged-in client and what is known about its token's lifetime.
pub struct Session {
    client: VaultClient,
    vault: VaultConfig,
    token_ttl: Option<Duration>,
    token_renewable: bool,
    token_obtained: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the token: only say where and how.
        f.debug_struct("Session")
            .field("addr", &self.vault.addr)
            .field("auth_method", &self.vault.auth_method)
            .field("token_ttl", &self.token_ttl)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Logs in with the configured method.
    pub async fn login(vault: &VaultConfig) -> Result<Session, VaultError> {
        let addr = vault.addr.trim().to_owned();
        let settings = VaultClientSettingsBuilder::default()
            .address(&addr)
            .token(vault.token.expose())
            .timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|err| VaultError::Settings(format!("vault.addr {addr:?}: {err}")))?;
        let client = VaultClient::new(settings)
            .map_err(|err| VaultError::Settings(format!("vault.addr {addr:?}: {err}")))?;
        let mut session = Session {
            client,
            vault: vault.clone(),
            token_ttl: None,
            token_renewable: false,
            token_obtained: Instant::now(),
        };
        session.authenticate().await?;
        Ok(session)
    }

    /// The KV v2 secret as a flat map.
    pub async fn read_secrets(&self) -> Result<HashMap<String, String>, VaultError> {
        vaultrs::kv2::read(&self.client, &self.vault.kv_mount, &self.vault.secret_path)
            .await
            .map_err(|err| match self.unreachable(&err) {
                Some(unreachable) => unreachable,
                None => VaultError::Read {
                    path: format!("{}/{}", self.vault.kv_mount, self.vault.secret_path),
                    reason: describe(&err),
                },
            })
    }

    /// Issues a certificate from the PKI secrets engine at `mount` with
    /// `role`, for `common_name`, valid `ttl_seconds` (the role may cap it).
    pub async fn issue_certificate(
        &self,
        mount: &str,
        role: &str,
        common_name: &str,
        ttl_seconds: u64,
    ) -> Result<IssuedCertificate, VaultError> {
        let mut request = vaultrs::api::pki::requests::GenerateCertificateRequest::builder();
        request
            .common_name(common_name)
            .ttl(format!("{ttl_seconds}s"))
            .format("pem")
            .private_key_format("pkcs8");
        let issued = vaultrs::pki::cert::generate(&self.client, mount, role, Some(&mut request))
            .await
            .map_err(|err| match self.unreachable(&err) {
                Some(unreachable) => unreachable,
                None => VaultError::Issue {
                    path: format!("{mount}/issue/{role}"),
                    reason: describe(&err),
                },
            })?;
        let chain = match issued.ca_chain {
            Some(chain) if !chain.is_empty() => chain,
            _ => vec![issued.issuing_ca],
        };
        Ok(IssuedCertificate {
            certificate_pem: issued.certificate,
            ca_chain_pem: chain,
            private_key_pem: Secret::new(issued.private_key),
            expires_at: issued.expiration.unwrap_or_default(),
        })
    }

    /// Renews the token once two thirds of its lifetime have passed, and logs
    /// in again when renewal is refused. Tokens without a TTL (root tokens)
    /// and static tokens that cannot be renewed are left alone.
    pub async fn keep_alive(&mut self) -> Result<(), VaultError> {
        let Some(ttl) = self.token_ttl else {
            return Ok(());
        };
        if self.token_obtained.elapsed() < ttl * 2 / 3 {
            return Ok(());
        }
        if self.token_renewable {
            match vaultrs::token::renew_self(&self.client, None).await {
                Ok(auth) => {
                    self.remember_lease(auth.lease_duration, auth.renewable);
                    tracing::debug!(ttl_s = auth.lease_duration, "Vault token renewed");
                    return Ok(());
                }
                Err(err) => {
                    if let Some(unreachable) = self.unreachable(&err) {
                        return Err(unreachable);
                    }
                    tracing::info!(reason = %describe(&err), "Vault token renewal refused; logging in again");
                }
            }
        }
        if self.vault.auth_method == VaultAuthMethod::Token {
            // Nothing to log in with: the operator must supply a new token.
            return Err(VaultError::Login {
                method: "token",
                reason: "the configured token expires and cannot be renewed".to_owned(),
            });
        }
        self.authenticate().await
    }

    async fn authenticate(&mut self) -> Result<(), VaultError> {
        let vault = &self.vault;
        let method = method_name(vault.auth_method);
        let login_error = |reason: String| VaultError::Login { method, reason };
        let auth = match vault.auth_method {
            VaultAuthMethod::Token => {
                if vault.token.is_empty() {
                    return Err(VaultError::Settings(
                        "vault.token is required with auth_method token (VAULT_TOKEN)".to_owned(),
                    ));
                }
                let lookup = vaultrs::token::lookup_self(&self.client)
                    .await
                    .map_err(|err| {
                        self.unreachable(&err)
                            .unwrap_or_else(|| login_error(describe(&err)))
                    })?;
                self.remember_lease(lookup.ttl, lookup.renewable);
                return Ok(());
            }
            VaultAuthMethod::Approle => {
                if vault.role_id.is_empty() || vault.secret_id.is_empty() {
                    return Err(VaultError::Settings(
                        "vault.role_id and vault.secret_id are required with auth_method approle (VAULT_ROLE_ID, VAULT_SECRET_ID)".to_owned(),
                    ));
                }
                vaultrs::auth::approle::login(
                    &self.client,
                    &vault.approle_mount,
                    &vault.role_id,
                    vault.secret_id.expose(),
                )
                .await
            }
            VaultAuthMethod::Kubernetes => {
                if vault.kubernetes_role.is_empty() {
                    return Err(VaultError::Settings(
                        "vault.kubernetes_role is required with auth_method kubernetes (VAULT_K8S_ROLE)".to_owned(),
                    ));
                }
                let jwt = tokio::fs::read_to_string(&vault.kubernetes_token_path)
                    .await
                    .map_err(|err| {
                        login_error(format!(
                            "cannot read the service account token at {}: {err}",
                            vault.kubernetes_token_path
                        ))
                    })?;
                vaultrs::auth::kubernetes::login(
                    &self.client,
                    &vault.kubernetes_mount,
                    &vault.kubernetes_role,
                    jwt.trim(),
                )
                .await
            }
        };
        let auth = auth.map_err(|err| {
            self.unreachable(&err)
                .unwrap_or_else(|| login_error(describe(&err)))
        })?;
        self.client.set_token(&auth.client_token);
        self.remember_lease(auth.lease_duration, auth.renewable);
        tracing::info!(method, ttl_s = auth.lease_duration, "logged in to Vault");
        Ok(())
    }

    fn remember_lease(&mut self, ttl_seconds: u64, renewable: bool) {
        self.token_ttl = (ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds));
        self.token_renewable = renewable;
        self.token_obtained = Instant::now();
    }

    fn unreachable(&self, err: &ClientError) -> Option<VaultError> {
        matches!(err, ClientError::RestClientError { .. }).then(|| VaultError::Unreachable {
            addr: self.vault.addr.trim().to_owned(),
            reason: describe(err),
        })
    }
}

fn method_name(method: VaultAuthMethod) -> &'static str {
    match method {
        VaultAuthMethod::Token => "token",
        VaultAuthMethod::Approle => "AppRole",
        VaultAuthMethod::Kubernetes => "Kubernetes",
    }
}

/// The error with its causes; Vault's own messages ("permission denied")
/// are kept, request bodies (which may carry credentials) never are.
fn describe(err: &ClientError) -> String {
    match err {
        ClientError::APIError { code, errors } if errors.is_empty() => format!("status {code}"),
        ClientError::APIError { code, errors } => format!("status {code}: {}", errors.join("; ")),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
