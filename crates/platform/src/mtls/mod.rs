//! Service identity: every service holds an X.509 certificate for
//! `<service>.<domain>` issued by Vault's PKI secrets engine, proves it to
//! the services it calls and checks theirs, and swaps in a renewed one
//! before it expires without dropping a call. Servers ask every caller for
//! its certificate and let [`crate::callers`] decide per method.
//!
//! The TLS is ours rather than tonic's so that a renewal takes effect at
//! once: each new connection, in and out, reads the configuration current
//! at that moment; connections already open keep the one they started with.

mod client;
pub mod probe;
mod server;

pub(crate) use client::connect;
pub use server::Peer;
pub(crate) use server::incoming;

use crate::callers::Caller;
use crate::config::Config;
use crate::shutdown::CancellationToken;
use crate::vault::{IssuedCertificate, Session};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How this process speaks gRPC: mutual TLS as one identity, or plaintext
/// where mTLS is switched off (`grpc.mtls.enabled: false`).
#[derive(Clone)]
pub struct Transport {
    tls: Option<Arc<Tls>>,
}

impl Transport {
    /// Unauthenticated h2c, for fleets run without Vault.
    pub fn plaintext() -> Self {
        Transport { tls: None }
    }

    /// Logs in to Vault, issues this service's certificate and keeps
    /// renewing it until `shutdown`. With mTLS switched off, plaintext.
    pub async fn establish(
        config: &Config,
        me: Caller,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let mtls = &config.grpc.mtls;
        if !mtls.enabled {
            tracing::warn!(
                service = %me,
                "grpc.mtls.enabled is false: internal calls are neither encrypted nor authenticated"
            );
            return Ok(Self::plaintext());
        }
        if config.vault.addr.trim().is_empty() {
            anyhow::bail!(
                "grpc.mtls.enabled needs Vault to issue the {me} service's certificate: set \
                 vault.addr (VAULT_ADDR), or GRPC_MTLS_ENABLED=false to run without mTLS"
            );
        }
        let session = Session::login(&config.vault).await?;
        let issuer = Issuer {
            mount: mtls.pki_mount.clone(),
            me,
            domain: mtls.domain.clone(),
            ttl_seconds: mtls.cert_ttl_seconds,
        };
        let issued = issuer.issue(&session).await?;
        let tls = Arc::new(Tls::new(&mtls.domain, &issued)?);
        tracing::info!(
            service = %me,
            name = %issuer.common_name(),
            expires_at = issued.expires_at,
            "service certificate issued"
        );
        record_expiry(me, issued.expires_at);
        tokio::spawn(keep_renewed(
            me,
            session,
            issuer,
            Arc::clone(&tls),
            issued.expires_at,
            shutdown.clone(),
        ));
        Ok(Transport { tls: Some(tls) })
    }

    /// A client-side transport from parts, for tools and tests: trusts the
    /// CAs in `authorities_pem` and presents `certificate` (none: calls
    /// without a client certificate). It never renews and cannot serve.
    pub fn client(
        domain: &str,
        authorities_pem: &[String],
        certificate: Option<&IssuedCertificate>,
    ) -> anyhow::Result<Self> {
        let roots = Arc::new(roots(authorities_pem)?);
        let client = client_config(roots, certificate.map(parts).transpose()?)?;
        Ok(Transport {
            tls: Some(Arc::new(Tls {
                domain: domain.to_owned(),
                server: RwLock::new(None),
                client: RwLock::new(client),
            })),
        })
    }

    /// Whether calls are mutually authenticated.
    pub fn is_mutual(&self) -> bool {
        self.tls.is_some()
    }

    pub(crate) fn tls(&self) -> Option<&Arc<Tls>> {
        self.tls.as_ref()
    }
}

/// Where certificates come from and what they name.
struct Issuer {
    mount: String,
    me: Caller,
    domain: String,
    ttl_seconds: u64,
}

impl Issuer {
    fn common_name(&self) -> String {
        identity_name(self.me, &self.domain)
    }

    async fn issue(&self, session: &Session) -> anyhow::Result<IssuedCertificate> {
        Ok(session
            .issue_certificate(
                &self.mount,
                self.me.name(),
                &self.common_name(),
                self.ttl_seconds,
            )
            .await?)
    }
}

/// The DNS name a caller's certificate carries.
pub fn identity_name(caller: Caller, domain: &str) -> String {
    format!("{}.{domain}", caller.name())
}

/// The TLS configurations in force, replaced whole on renewal.
pub(crate) struct Tls {
    domain: String,
    /// `None` for a client-only transport.
    server: RwLock<Option<Arc<rustls::ServerConfig>>>,
    client: RwLock<Arc<rustls::ClientConfig>>,
}

impl Tls {
    fn new(domain: &str, issued: &IssuedCertificate) -> anyhow::Result<Self> {
        let (server, client) = configs(issued)?;
        Ok(Tls {
            domain: domain.to_owned(),
            server: RwLock::new(Some(server)),
            client: RwLock::new(client),
        })
    }

    fn install(&self, issued: &IssuedCertificate) -> anyhow::Result<()> {
        let (server, client) = configs(issued)?;
        // A poisoned lock still holds a whole configuration: the writes
        // below replace an Arc and cannot panic halfway.
        *self
            .server
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(server);
        *self
            .client
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client;
        Ok(())
    }

    pub(crate) fn server_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.server
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(
            &self
                .client
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub(crate) fn domain(&self) -> &str {
        &self.domain
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

type Presented = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Server and client configurations presenting `issued` and trusting the
/// CA chain that issued it.
fn configs(
    issued: &IssuedCertificate,
) -> anyhow::Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> {
    let roots = Arc::new(roots(&issued.ca_chain_pem)?);
    let (chain, key) = parts(issued)?;
    // Callers without a certificate complete the handshake so that the
    // health service (Admits::Anyone) answers probes and everything else
    // gets a gRPC UNAUTHENTICATED that says why, not a bare reset. A
    // certificate that is presented must chain to our CA and be valid.
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
            .allow_unauthenticated()
            .build()?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())?;
    server.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(server), client_config(roots, Some((chain, key)))?))
}

fn client_config(
    roots: Arc<rustls::RootCertStore>,
    presented: Option<Presented>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut client = match presented {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    client.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(client))
}

fn roots(authorities_pem: &[String]) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in authorities_pem {
        roots.add(
            CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|err| anyhow::anyhow!("the CA chain is not PEM: {err}"))?,
        )?;
    }
    Ok(roots)
}

/// The chain to present (leaf first, then the CAs) and its key.
fn parts(issued: &IssuedCertificate) -> anyhow::Result<Presented> {
    let leaf = CertificateDer::from_pem_slice(issued.certificate_pem.as_bytes())
        .map_err(|err| anyhow::anyhow!("the issued certificate is not PEM: {err}"))?;
    let mut chain = vec![leaf];
    for pem in &issued.ca_chain_pem {
        chain.push(
            CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|err| anyhow::anyhow!("the CA chain is not PEM: {err}"))?,
        );
    }
    let key = PrivateKeyDer::from_pem_slice(issued.private_key_pem.expose().as_bytes())
        .map_err(|err| anyhow::anyhow!("the issued private key is not PEM: {err}"))?;
    Ok((chain, key))
}

/// Renews after two thirds of each certificate's lifetime; on failure
/// retries every few seconds while the current one is still valid.
async fn keep_renewed(
    me: Caller,
    mut session: Session,
    issuer: Issuer,
    tls: Arc<Tls>,
    mut expires_at: u64,
    shutdown: CancellationToken,
) {
    loop {
        let left = seconds_until(expires_at);
        let wait = Duration::from_secs_f64((left * 2.0 / 3.0).max(1.0));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        loop {
            let renewed = async {
                session.keep_alive().await?;
                let issued = issuer.issue(&session).await?;
                tls.install(&issued)?;
                anyhow::Ok(issued.expires_at)
            };
            match renewed.await {
                Ok(next) => {
                    tracing::info!(service = %me, expires_at = next, "service certificate renewed");
                    metrics::counter!("mtls_renewals_total", "outcome" => "renewed").increment(1);
                    record_expiry(me, next);
                    expires_at = next;
                    break;
                }
                Err(err) => {
                    tracing::warn!(
                        service = %me,
                        error = format!("{err:#}"),
                        seconds_left = seconds_until(expires_at),
                        "cannot renew the service certificate; retrying"
                    );
                    metrics::counter!("mtls_renewals_total", "outcome" => "failed").increment(1);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        }
    }
}

fn seconds_until(unix_seconds: u64) -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    (unix_seconds as f64 - now).max(0.0)
}

fn record_expiry(me: Caller, expires_at: u64) {
    metrics::gauge!("mtls_certificate_expiry_timestamp_seconds", "service" => me.name())
        .set(expires_at as f64);
}
