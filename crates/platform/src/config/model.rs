//! Typed configuration. Field names are the YAML keys.

use super::ConfigError;
use serde::Deserialize;
use std::fmt;

/// A secret value: never printed by `Debug`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub features: Features,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub kafka: KafkaConfig,
    pub grpc: GrpcConfig,
    pub auth: AuthConfig,
    pub vault: VaultConfig,
    pub telemetry: TelemetryConfig,
    /// The sections each service owns (`media`, `websocket`, `rate_limit`,
    /// `passwords`), kept as loaded: the owner reads its own with
    /// [`Config::section`], so changing one rebuilds only its crate.
    #[serde(skip)]
    pub(crate) sections: serde_yaml::Mapping,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Operators' listener (metrics, detailed readiness); empty: none.
    pub internal_listen: String,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub cors_allowed_origins: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    pub websocket_enabled: bool,
    pub kafka_enabled: bool,
    pub file_upload_enabled: bool,
    pub rate_limit_enabled: bool,
    pub debug_enabled: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub name: String,
    pub max_connections: u32,
    pub run_migrations: bool,
    pub urls: DatabaseUrls,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseUrls {
    pub users: Secret,
    pub groups: Secret,
    pub messages: Secret,
    pub media: Secret,
    pub notifier: Secret,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    /// This service's Redis ACL user; empty: the `default` user.
    pub username: String,
    pub password: Secret,
}

impl RedisConfig {
    pub fn url(&self) -> String {
        if self.password.is_empty() && self.username.is_empty() {
            return format!("redis://{}:{}/", self.host, self.port);
        }
        format!(
            "redis://{}:{}@{}:{}/",
            userinfo_encoded(&self.username),
            userinfo_encoded(self.password.expose()),
            self.host,
            self.port
        )
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters, so a password
/// with `@`, `:` or `/` stays one URL part.
fn userinfo_encoded(raw: &str) -> String {
    let mut encoded = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    pub topic_prefix: String,
    pub topic_partitions: i32,
    pub replication_factor: i32,
    pub message_timeout_ms: u64,
    /// How long the broker may hold a live consumer's fetch while it has no
    /// new records (librdkafka's `fetch.wait.max.ms`).
    pub fetch_wait_max_ms: u64,
    /// The producers' `compression.type`: one of [`KAFKA_COMPRESSIONS`].
    pub compression: String,
    pub idempotent_producer: bool,
    pub producer_rebuild_after_seconds: u64,
    /// How clients reach the brokers: `plaintext`, `ssl`, `sasl_plaintext`
    /// or `sasl_ssl` (librdkafka's `security.protocol`).
    pub security_protocol: String,
    /// `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`, with a `sasl_*` protocol.
    pub sasl_mechanism: String,
    /// This service's Kafka user; Vault key `kafka_username` wins.
    pub sasl_username: String,
    /// Vault key `kafka_password`.
    pub sasl_password: Secret,
    /// PEM file of the CA that signed the brokers' certificates (`ssl`,
    /// `sasl_ssl`); empty: the system's trust store.
    pub ssl_ca_location: String,
}

/// The codecs `kafka.compression` accepts (the ones librdkafka is built
/// with here; zstd is not).
pub const KAFKA_COMPRESSIONS: [&str; 4] = ["none", "lz4", "snappy", "gzip"];

/// The protocols `kafka.security_protocol` accepts.
pub const KAFKA_SECURITY_PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
/// The SASL mechanisms `kafka.sasl_mechanism` accepts (no GSSAPI: the
/// build has no Kerberos).
pub const KAFKA_SASL_MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

impl KafkaConfig {
    /// The full topic name for a logical topic such as `users.events.v1`.
    pub fn topic(&self, logical: &str) -> String {
        format!("{}{}", self.topic_prefix, logical)
    }

    /// The logical name of a topic as received (the prefix removed);
    /// `None` for a topic outside this deployment's prefix.
    pub fn unprefixed<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(self.topic_prefix.as_str())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    pub users: GrpcEndpoint,
    pub groups: GrpcEndpoint,
    pub messages: GrpcEndpoint,
    pub media: GrpcEndpoint,
    pub notifier: GrpcEndpoint,
    pub timeout_ms: u64,
    /// Verify the forwarded user token on user-scoped calls.
    pub user_tokens: bool,
    pub mtls: MtlsConfig,
}

/// Mutual TLS between the services: each gets its certificate from Vault's
/// PKI secrets engine (role `<service>` of `pki_mount`, name
/// `<service>.<domain>`) and renews it before it expires.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsConfig {
    pub enabled: bool,
    pub pki_mount: String,
    pub domain: String,
    pub cert_ttl_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcEndpoint {
    pub listen: String,
    pub url: String,
    /// HTTP address serving this service's Prometheus `/metrics` when it
    /// runs as its own process; empty disables it.
    pub metrics_listen: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_keys: Secret,
    pub jwt_active_kid: String,
    pub jwt_issuer: String,
    pub access_ttl_seconds: u64,
    pub refresh_ttl_seconds: u64,
}

/// One HMAC key of the rotatable key set.
#[derive(Clone, Debug)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Secret,
}

pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Signing secrets that deployment files of this repository once wrote into
/// Vault (the compose stack's development key). Anyone can forge tokens with
/// them, so they are refused unless `features.debug_enabled` says this is no
/// real deployment. (The test kits' keys never leave their test processes.)
pub const PUBLISHED_JWT_SECRETS: &[&str] = &["dev-only-jwt-signing-key-0123456789abcdef"];

impl AuthConfig {
    /// Parses `jwt_keys`; an error names the key. Only the services that
    /// issue or verify tokens call this, so the others start without keys.
    pub fn signing_keys(&self) -> Result<Vec<SigningKey>, ConfigError> {
        let raw = self.jwt_keys.expose().trim();
        if raw.is_empty() {
            return Err(ConfigError::invalid(
                "auth.jwt_keys",
                "is required: at least one \"kid:secret\" pair (or Vault key jwt_keys)",
            ));
        }
        let mut keys: Vec<SigningKey> = Vec::new();
        for pair in raw.split(',') {
            let (kid, secret) = pair.trim().split_once(':').ok_or_else(|| {
                ConfigError::invalid("auth.jwt_keys", "each entry must look like \"kid:secret\"")
            })?;
            if kid.is_empty() || keys.iter().any(|key| key.kid == kid) {
                return Err(ConfigError::invalid(
                    "auth.jwt_keys",
                    format!("kid {kid:?} is empty or repeated"),
                ));
            }
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError::invalid(
                    "auth.jwt_keys",
                    format!("secret of kid {kid:?} is shorter than {MIN_JWT_SECRET_BYTES} bytes"),
                ));
            }
            keys.push(SigningKey {
                kid: kid.to_owned(),
                secret: Secret::new(secret),
            });
        }
        let active = if self.jwt_active_kid.is_empty() {
            keys.first().map(|key| key.kid.clone()).unwrap_or_default()
        } else {
            self.jwt_active_kid.clone()
        };
        if !keys.iter().any(|key| key.kid == active) {
            return Err(ConfigError::invalid(
                "auth.jwt_active_kid",
                format!("{active:?} is not one of the kids in auth.jwt_keys"),
            ));
        }
        // The active key goes first: it is the one that signs.
        keys.sort_by_key(|key| key.kid != active);
        Ok(keys)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    pub addr: String,
    pub auth_method: VaultAuthMethod,
    pub token: Secret,
    pub role_id: String,
    pub secret_id: Secret,
    pub approle_mount: String,
    pub kubernetes_role: String,
    pub kubernetes_mount: String,
    pub kubernetes_token_path: String,
    pub kv_mount: String,
    pub secret_path: String,
    pub refresh_seconds: u64,
}

/// How a service proves its identity to Vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuthMethod {
    /// A token given in configuration (development, or injected by an agent).
    Token,
    /// AppRole: role id plus secret id (VMs, docker compose in production).
    Approle,
    /// The pod's service account token (Kubernetes auth method).
    Kubernetes,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_level: String,
    pub otlp_endpoint: String,
}

/// Slowest upload the fleet waits for, in bytes per second: the largest
/// allowed file must get through at this rate.
const MIN_UPLOAD_RATE: u64 = 64 * 1024;

/// Longest an upload of up to `largest` bytes may take in all (at
/// [`MIN_UPLOAD_RATE`], plus the usual request time): the gateway and the
/// media service must both allow it, or slow clients fail halfway.
pub fn upload_timeout(server: &ServerConfig, largest: u64) -> std::time::Duration {
    let request = std::time::Duration::from_millis(server.request_timeout_ms);
    request.saturating_add(std::time::Duration::from_secs(largest / MIN_UPLOAD_RATE))
}

impl Config {
    /// Refuses a published signing secret outside debug mode.
    pub fn refuse_development_keys(&self) -> Result<(), ConfigError> {
        if self.features.debug_enabled {
            return Ok(());
        }
        for key in self.auth.signing_keys()? {
            if PUBLISHED_JWT_SECRETS.contains(&key.secret.expose()) {
                return Err(ConfigError::invalid(
                    "auth.jwt_keys",
                    format!(
                        "the secret of kid {:?} is a published development key: anyone could \
                         forge tokens with it (allowed only with DEBUG_ENABLED=true)",
                        key.kid
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.check_positive()?;
        self.check_kafka()?;
        self.check_grpc_endpoints()?;
        if !self.auth.jwt_keys.is_empty() {
            self.auth.signing_keys()?;
            self.refuse_development_keys()?;
        }
        if !self.grpc.user_tokens && !self.features.debug_enabled {
            return Err(ConfigError::invalid(
                "grpc.user_tokens",
                "false lets any service act as any user; it is allowed only with \
                 DEBUG_ENABLED=true (to measure the check's cost)",
            ));
        }
        Ok(())
    }

    /// Counts and durations that must not be zero.
    fn check_positive(&self) -> Result<(), ConfigError> {
        let positive = ConfigError::require_positive;
        positive("server.port", self.server.port.into())?;
        positive(
            "server.body_limit_bytes",
            self.server.body_limit_bytes as u64,
        )?;
        positive("server.request_timeout_ms", self.server.request_timeout_ms)?;
        positive("database.port", self.database.port.into())?;
        positive(
            "database.max_connections",
            self.database.max_connections.into(),
        )?;
        positive("redis.port", self.redis.port.into())?;
        positive("grpc.timeout_ms", self.grpc.timeout_ms)?;
        positive(
            "grpc.mtls.cert_ttl_seconds",
            self.grpc.mtls.cert_ttl_seconds,
        )?;
        positive("vault.refresh_seconds", self.vault.refresh_seconds)?;
        positive("auth.access_ttl_seconds", self.auth.access_ttl_seconds)?;
        positive("auth.refresh_ttl_seconds", self.auth.refresh_ttl_seconds)?;
        positive("kafka.message_timeout_ms", self.kafka.message_timeout_ms)?;
        positive("kafka.fetch_wait_max_ms", self.kafka.fetch_wait_max_ms)?;
        positive(
            "kafka.producer_rebuild_after_seconds",
            self.kafka.producer_rebuild_after_seconds,
        )?;
        Ok(())
    }

    fn check_kafka(&self) -> Result<(), ConfigError> {
        if self.kafka.topic_partitions < 1 {
            return Err(ConfigError::invalid(
                "kafka.topic_partitions",
                "must be at least 1",
            ));
        }
        if self.kafka.replication_factor < 1 {
            return Err(ConfigError::invalid(
                "kafka.replication_factor",
                "must be at least 1",
            ));
        }
        if !KAFKA_COMPRESSIONS.contains(&self.kafka.compression.as_str()) {
            return Err(ConfigError::invalid(
                "kafka.compression",
                format!("must be one of {KAFKA_COMPRESSIONS:?}"),
            ));
        }
        if self.features.kafka_enabled && self.kafka.brokers.trim().is_empty() {
            return Err(ConfigError::invalid(
                "kafka.brokers",
                "is required while features.kafka_enabled is true",
            ));
        }
        self.check_kafka_security()
    }

    fn check_kafka_security(&self) -> Result<(), ConfigError> {
        let kafka = &self.kafka;
        if !KAFKA_SECURITY_PROTOCOLS.contains(&kafka.security_protocol.as_str()) {
            return Err(ConfigError::invalid(
                "kafka.security_protocol",
                format!("must be one of {KAFKA_SECURITY_PROTOCOLS:?}"),
            ));
        }
        if !kafka.security_protocol.starts_with("sasl_") {
            return Ok(());
        }
        if !KAFKA_SASL_MECHANISMS.contains(&kafka.sasl_mechanism.as_str()) {
            return Err(ConfigError::invalid(
                "kafka.sasl_mechanism",
                format!("must be one of {KAFKA_SASL_MECHANISMS:?}"),
            ));
        }
        // The credentials usually come from Vault, after this check: the
        // Kafka clients refuse to start without them (kafka::base).
        if kafka.sasl_mechanism == "PLAIN"
            && kafka.security_protocol == "sasl_plaintext"
            && !self.features.debug_enabled
        {
            return Err(ConfigError::invalid(
                "kafka.sasl_mechanism",
                "PLAIN over sasl_plaintext sends the password in clear text; use SCRAM or \
                 sasl_ssl (allowed only with DEBUG_ENABLED=true)",
            ));
        }
        Ok(())
    }

    fn check_grpc_endpoints(&self) -> Result<(), ConfigError> {
        for (key, endpoint) in [
            ("grpc.users", &self.grpc.users),
            ("grpc.groups", &self.grpc.groups),
            ("grpc.messages", &self.grpc.messages),
            ("grpc.media", &self.grpc.media),
            ("grpc.notifier", &self.grpc.notifier),
        ] {
            if endpoint.listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::invalid(
                    &format!("{key}.listen"),
                    format!("{:?} is not a host:port socket address", endpoint.listen),
                ));
            }
            if !endpoint.metrics_listen.is_empty()
                && endpoint
                    .metrics_listen
                    .parse::<std::net::SocketAddr>()
                    .is_err()
            {
                return Err(ConfigError::invalid(
                    &format!("{key}.metrics_listen"),
                    format!(
                        "{:?} is not a host:port socket address",
                        endpoint.metrics_listen
                    ),
                ));
            }
            if !(endpoint.url.starts_with("http://") || endpoint.url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    &format!("{key}.url"),
                    "must start with http:// or https://",
                ));
            }
        }
        Ok(())
    }
}
