//! Environment variable overrides. The table is the single list of variable
//! names; `config.template.yaml` documents the same names next to each key.

use super::ConfigError;
use serde_yaml::Value;

#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// Kept verbatim (passwords, hosts): "0123" must stay a string.
    Text,
    /// Parsed as a YAML scalar: numbers and booleans.
    Scalar,
    /// Comma-separated items (each kept verbatim), a YAML list; empty is
    /// the empty list.
    List,
}

pub(super) const OVERRIDES: &[(&str, &str, Kind)] = &[
    ("SERVER_HOST", "server.host", Kind::Text),
    ("SERVER_PORT", "server.port", Kind::Scalar),
    (
        "SERVER_INTERNAL_LISTEN",
        "server.internal_listen",
        Kind::Text,
    ),
    (
        "HTTP_BODY_LIMIT_BYTES",
        "server.body_limit_bytes",
        Kind::Scalar,
    ),
    (
        "HTTP_REQUEST_TIMEOUT_MS",
        "server.request_timeout_ms",
        Kind::Scalar,
    ),
    (
        "CORS_ALLOWED_ORIGINS",
        "server.cors_allowed_origins",
        Kind::Text,
    ),
    (
        "WEBSOCKET_ENABLED",
        "features.websocket_enabled",
        Kind::Scalar,
    ),
    ("KAFKA_ENABLED", "features.kafka_enabled", Kind::Scalar),
    ("MEDIA_STORAGE_URL", "media.storage_url", Kind::Text),
    (
        "MEDIA_MAX_IMAGE_BYTES",
        "media.max_image_bytes",
        Kind::Scalar,
    ),
    ("MEDIA_MAX_FILE_BYTES", "media.max_file_bytes", Kind::Scalar),
    (
        "MEDIA_USER_QUOTA_BYTES",
        "media.user_quota_bytes",
        Kind::Scalar,
    ),
    (
        "MEDIA_UNATTACHED_UPLOAD_TTL_SECONDS",
        "media.unattached_upload_ttl_seconds",
        Kind::Scalar,
    ),
    (
        "MEDIA_MAX_IMAGE_PIXELS",
        "media.max_image_pixels",
        Kind::Scalar,
    ),
    ("NOTIFIER_VAPID_KEY", "notifier.vapid_key", Kind::Text),
    (
        "NOTIFIER_VAPID_SUBJECT",
        "notifier.vapid_subject",
        Kind::Text,
    ),
    ("NOTIFIER_GRACE_MS", "notifier.grace_ms", Kind::Scalar),
    (
        "NOTIFIER_PUSH_TTL_SECONDS",
        "notifier.push_ttl_seconds",
        Kind::Scalar,
    ),
    (
        "NOTIFIER_MAX_ATTEMPTS",
        "notifier.max_attempts",
        Kind::Scalar,
    ),
    (
        "NOTIFIER_MAX_SUBSCRIPTIONS_PER_USER",
        "notifier.max_subscriptions_per_user",
        Kind::Scalar,
    ),
    (
        "NOTIFIER_SEND_CONCURRENCY",
        "notifier.send_concurrency",
        Kind::Scalar,
    ),
    (
        "NOTIFIER_DELIVERY_RETENTION_HOURS",
        "notifier.delivery_retention_hours",
        Kind::Scalar,
    ),
    (
        "NOTIFIER_EGRESS_ALLOW_NETWORKS",
        "notifier.egress.allow_networks",
        Kind::List,
    ),
    (
        "NOTIFIER_EGRESS_ALLOW_PLAIN_HTTP",
        "notifier.egress.allow_plain_http",
        Kind::Scalar,
    ),
    (
        "NOTIFIER_EGRESS_TIMEOUT_MS",
        "notifier.egress.timeout_ms",
        Kind::Scalar,
    ),
    (
        "WS_HEARTBEAT_INTERVAL_MS",
        "websocket.heartbeat_interval_ms",
        Kind::Scalar,
    ),
    (
        "WS_SEND_QUEUE_FRAMES",
        "websocket.send_queue_frames",
        Kind::Scalar,
    ),
    ("WS_ROOM_HISTORY", "websocket.room_history", Kind::Scalar),
    (
        "WS_TYPING_THROTTLE_MS",
        "websocket.typing_throttle_ms",
        Kind::Scalar,
    ),
    (
        "WS_PRESENCE_TTL_MS",
        "websocket.presence_ttl_ms",
        Kind::Scalar,
    ),
    (
        "WS_PRESENCE_DEBOUNCE_MS",
        "websocket.presence_debounce_ms",
        Kind::Scalar,
    ),
    ("WS_CONSUMER_GROUP", "websocket.consumer_group", Kind::Text),
    (
        "WS_MAX_SOCKETS_PER_USER",
        "websocket.max_sockets_per_user",
        Kind::Scalar,
    ),
    (
        "WS_MAX_SOCKETS_PER_ADDRESS",
        "websocket.max_sockets_per_address",
        Kind::Scalar,
    ),
    (
        "WS_MAX_ROOMS_PER_SOCKET",
        "websocket.max_rooms_per_socket",
        Kind::Scalar,
    ),
    (
        "FILE_UPLOAD_ENABLED",
        "features.file_upload_enabled",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_ENABLED",
        "features.rate_limit_enabled",
        Kind::Scalar,
    ),
    ("DEBUG_ENABLED", "features.debug_enabled", Kind::Scalar),
    (
        "RATE_LIMIT_AUTH_PER_MINUTE",
        "rate_limit.auth_per_minute",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE",
        "rate_limit.login_per_account_per_minute",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_SEND_PER_MINUTE",
        "rate_limit.send_per_minute",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_UPLOAD_PER_MINUTE",
        "rate_limit.upload_per_minute",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_SEARCH_PER_MINUTE",
        "rate_limit.search_per_minute",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_DEFAULT_PER_MINUTE",
        "rate_limit.default_per_minute",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_WS_FRAMES_PER_SECOND",
        "rate_limit.ws_frames_per_second",
        Kind::Scalar,
    ),
    (
        "RATE_LIMIT_CLIENT_IP_HEADER",
        "rate_limit.client_ip_header",
        Kind::Text,
    ),
    (
        "RATE_LIMIT_TRUSTED_PROXIES",
        "rate_limit.trusted_proxies",
        Kind::Text,
    ),
    ("DB_HOST", "database.host", Kind::Text),
    ("DB_PORT", "database.port", Kind::Scalar),
    ("DB_USER", "database.user", Kind::Text),
    ("DB_PASSWORD", "database.password", Kind::Text),
    ("DB_NAME", "database.name", Kind::Text),
    (
        "DB_MAX_CONNECTIONS",
        "database.max_connections",
        Kind::Scalar,
    ),
    ("DB_RUN_MIGRATIONS", "database.run_migrations", Kind::Scalar),
    ("USERS_DATABASE_URL", "database.urls.users", Kind::Text),
    ("GROUPS_DATABASE_URL", "database.urls.groups", Kind::Text),
    (
        "MESSAGES_DATABASE_URL",
        "database.urls.messages",
        Kind::Text,
    ),
    ("MEDIA_DATABASE_URL", "database.urls.media", Kind::Text),
    (
        "NOTIFIER_DATABASE_URL",
        "database.urls.notifier",
        Kind::Text,
    ),
    ("REDIS_HOST", "redis.host", Kind::Text),
    ("REDIS_PORT", "redis.port", Kind::Scalar),
    ("REDIS_USERNAME", "redis.username", Kind::Text),
    ("REDIS_PASSWORD", "redis.password", Kind::Text),
    ("KAFKA_BROKERS", "kafka.brokers", Kind::Text),
    ("KAFKA_TOPIC_PREFIX", "kafka.topic_prefix", Kind::Text),
    (
        "KAFKA_TOPIC_PARTITIONS",
        "kafka.topic_partitions",
        Kind::Scalar,
    ),
    (
        "KAFKA_REPLICATION_FACTOR",
        "kafka.replication_factor",
        Kind::Scalar,
    ),
    (
        "KAFKA_MESSAGE_TIMEOUT_MS",
        "kafka.message_timeout_ms",
        Kind::Scalar,
    ),
    (
        "KAFKA_FETCH_WAIT_MAX_MS",
        "kafka.fetch_wait_max_ms",
        Kind::Scalar,
    ),
    ("KAFKA_COMPRESSION", "kafka.compression", Kind::Text),
    (
        "KAFKA_IDEMPOTENT_PRODUCER",
        "kafka.idempotent_producer",
        Kind::Scalar,
    ),
    (
        "KAFKA_PRODUCER_REBUILD_AFTER_SECONDS",
        "kafka.producer_rebuild_after_seconds",
        Kind::Scalar,
    ),
    (
        "KAFKA_SECURITY_PROTOCOL",
        "kafka.security_protocol",
        Kind::Text,
    ),
    ("KAFKA_SASL_MECHANISM", "kafka.sasl_mechanism", Kind::Text),
    ("KAFKA_SASL_USERNAME", "kafka.sasl_username", Kind::Text),
    ("KAFKA_SASL_PASSWORD", "kafka.sasl_password", Kind::Text),
    ("KAFKA_SSL_CA_LOCATION", "kafka.ssl_ca_location", Kind::Text),
    ("USERS_GRPC_LISTEN", "grpc.users.listen", Kind::Text),
    ("USERS_GRPC_URL", "grpc.users.url", Kind::Text),
    (
        "USERS_METRICS_LISTEN",
        "grpc.users.metrics_listen",
        Kind::Text,
    ),
    ("GROUPS_GRPC_LISTEN", "grpc.groups.listen", Kind::Text),
    ("GROUPS_GRPC_URL", "grpc.groups.url", Kind::Text),
    (
        "GROUPS_METRICS_LISTEN",
        "grpc.groups.metrics_listen",
        Kind::Text,
    ),
    ("MESSAGES_GRPC_LISTEN", "grpc.messages.listen", Kind::Text),
    ("MESSAGES_GRPC_URL", "grpc.messages.url", Kind::Text),
    (
        "MESSAGES_METRICS_LISTEN",
        "grpc.messages.metrics_listen",
        Kind::Text,
    ),
    ("MEDIA_GRPC_LISTEN", "grpc.media.listen", Kind::Text),
    ("MEDIA_GRPC_URL", "grpc.media.url", Kind::Text),
    (
        "MEDIA_METRICS_LISTEN",
        "grpc.media.metrics_listen",
        Kind::Text,
    ),
    ("NOTIFIER_GRPC_LISTEN", "grpc.notifier.listen", Kind::Text),
    ("NOTIFIER_GRPC_URL", "grpc.notifier.url", Kind::Text),
    (
        "NOTIFIER_METRICS_LISTEN",
        "grpc.notifier.metrics_listen",
        Kind::Text,
    ),
    ("GRPC_TIMEOUT_MS", "grpc.timeout_ms", Kind::Scalar),
    ("GRPC_USER_TOKENS", "grpc.user_tokens", Kind::Scalar),
    ("GRPC_MTLS_ENABLED", "grpc.mtls.enabled", Kind::Scalar),
    ("GRPC_MTLS_PKI_MOUNT", "grpc.mtls.pki_mount", Kind::Text),
    ("GRPC_MTLS_DOMAIN", "grpc.mtls.domain", Kind::Text),
    (
        "GRPC_MTLS_CERT_TTL_SECONDS",
        "grpc.mtls.cert_ttl_seconds",
        Kind::Scalar,
    ),
    ("JWT_KEYS", "auth.jwt_keys", Kind::Text),
    ("JWT_ACTIVE_KID", "auth.jwt_active_kid", Kind::Text),
    ("JWT_ISSUER", "auth.jwt_issuer", Kind::Text),
    (
        "JWT_ACCESS_TTL_SECONDS",
        "auth.access_ttl_seconds",
        Kind::Scalar,
    ),
    (
        "JWT_REFRESH_TTL_SECONDS",
        "auth.refresh_ttl_seconds",
        Kind::Scalar,
    ),
    (
        "PASSWORD_HASH_MEMORY_KIB",
        "passwords.memory_kib",
        Kind::Scalar,
    ),
    (
        "PASSWORD_HASH_ITERATIONS",
        "passwords.iterations",
        Kind::Scalar,
    ),
    ("VAULT_ADDR", "vault.addr", Kind::Text),
    ("VAULT_AUTH_METHOD", "vault.auth_method", Kind::Text),
    ("VAULT_TOKEN", "vault.token", Kind::Text),
    ("VAULT_ROLE_ID", "vault.role_id", Kind::Text),
    ("VAULT_SECRET_ID", "vault.secret_id", Kind::Text),
    ("VAULT_APPROLE_MOUNT", "vault.approle_mount", Kind::Text),
    ("VAULT_K8S_ROLE", "vault.kubernetes_role", Kind::Text),
    ("VAULT_K8S_MOUNT", "vault.kubernetes_mount", Kind::Text),
    (
        "VAULT_K8S_TOKEN_PATH",
        "vault.kubernetes_token_path",
        Kind::Text,
    ),
    ("VAULT_KV_MOUNT", "vault.kv_mount", Kind::Text),
    ("VAULT_SECRET_PATH", "vault.secret_path", Kind::Text),
    (
        "VAULT_REFRESH_SECONDS",
        "vault.refresh_seconds",
        Kind::Scalar,
    ),
    ("RUST_LOG", "telemetry.log_level", Kind::Text),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "telemetry.otlp_endpoint",
        Kind::Text,
    ),
];

pub(super) fn env_name_for(key: &str) -> Option<&'static str> {
    OVERRIDES
        .iter()
        .find(|(_, path, _)| *path == key)
        .map(|(name, _, _)| *name)
}

pub(super) fn apply(
    value: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in vars {
        let Some((_, path, kind)) = OVERRIDES.iter().find(|(env, _, _)| *env == name) else {
            continue;
        };
        let scalar = match kind {
            Kind::Text => Value::String(raw),
            Kind::List => Value::Sequence(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Value::String(item.to_owned()))
                    .collect(),
            ),
            Kind::Scalar => serde_yaml::from_str::<Value>(&raw)
                .ok()
                .filter(|parsed| !matches!(parsed, Value::Mapping(_) | Value::Sequence(_)))
                .ok_or_else(|| ConfigError::invalid(path, format!("cannot parse {raw:?}")))?,
        };
        set_path(value, path, scalar);
    }
    Ok(())
}

fn set_path(root: &mut Value, path: &str, leaf: Value) {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !matches!(node, Value::Mapping(_)) {
            *node = Value::Mapping(Default::default());
        }
        let Value::Mapping(map) = node else {
            return;
        };
        let key = Value::String(part.to_owned());
        if parts.peek().is_none() {
            map.insert(key, leaf);
            return;
        }
        node = map.entry(key).or_insert(Value::Null);
    }
}
