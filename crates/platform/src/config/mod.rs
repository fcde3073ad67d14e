//! Fleet configuration: the YAML template's defaults, an optional config
//! file, environment variables, then Vault secrets, in that order.
//!
//! Loading fails with a message naming the offending key (and its environment
//! variable) before any service binds a port.

#[cfg(test)]
mod coverage;
mod env;
mod model;
mod sections;

pub use model::*;
pub use sections::{SERVICE_SECTIONS, Section};

use serde_yaml::Value;
use std::path::Path;

/// The documented template doubles as the source of every default, so the
/// documentation and the behaviour cannot drift apart.
const TEMPLATE: &str = include_str!("../../../../config/config.template.yaml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {source}")]
    Syntax {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("config key `{key}`{env}: {message}")]
    Invalid {
        key: String,
        env: String,
        message: String,
    },
}

impl ConfigError {
    /// Refuses a zero count or duration at `key`.
    pub fn require_positive(key: &str, value: u64) -> Result<(), Self> {
        if value == 0 {
            return Err(ConfigError::invalid(key, "must be greater than 0"));
        }
        Ok(())
    }

    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        let env = env::env_name_for(key)
            .map(|name| format!(" (env {name})"))
            .unwrap_or_default();
        ConfigError::Invalid {
            key: key.to_owned(),
            env,
            message: message.into(),
        }
    }
}

impl Config {
    /// The template's defaults alone: what tests start from.
    pub fn defaults() -> Result<Self, ConfigError> {
        let value = parse_yaml(TEMPLATE, "<template>")?;
        Self::from_value(value)
    }

    /// Defaults, overlaid by `file` when given (or `config/config.yaml` when
    /// it exists), overlaid by the given environment variables.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut value = parse_yaml(TEMPLATE, "<template>")?;
        let default_file = Path::new("config/config.yaml");
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let overlay = parse_yaml(&text, &path.display().to_string())?;
            merge(&mut value, overlay);
        }
        env::apply(&mut value, vars)?;
        Self::from_value(value)
    }

    /// Loads from the process environment and `CONFIG_FILE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = std::env::var_os("CONFIG_FILE").map(std::path::PathBuf::from);
        Self::load(file.as_deref(), std::env::vars())
    }

    fn from_value(mut value: Value) -> Result<Self, ConfigError> {
        let sections = sections::take_sections(&mut value);
        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|err| {
            let key = err.path().to_string();
            ConfigError::invalid(&key, err.into_inner().to_string())
        })?;
        config.sections = sections;
        config.validate()?;
        Ok(config)
    }
}

/// Kafka client settings for the local broker `./dev` runs (tansu), as
/// environment pairs: `config/local-broker.env`, the one place the local
/// tools, the test kit and the fault suite take them from. Callers put the
/// real environment after these, so it still wins.
pub fn local_broker_settings() -> Vec<(String, String)> {
    const FILE: &str = include_str!("../../../../config/local-broker.env");
    FILE.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// Rate-limit allowances for tests, load tools, the fuzzer and the fault
/// suite, as environment pairs: they send far faster than a person, and
/// keep the limiter on (so its cost and headers are part of what they
/// measure) with room enough never to be refused.
pub const LOAD_TOOL_ALLOWANCES: &[(&str, &str)] = &[
    ("RATE_LIMIT_AUTH_PER_MINUTE", "1000000"),
    ("RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE", "1000000"),
    ("RATE_LIMIT_SEND_PER_MINUTE", "1000000"),
    ("RATE_LIMIT_UPLOAD_PER_MINUTE", "1000000"),
    ("RATE_LIMIT_SEARCH_PER_MINUTE", "1000000"),
    ("RATE_LIMIT_DEFAULT_PER_MINUTE", "1000000"),
    ("RATE_LIMIT_WS_FRAMES_PER_SECOND", "100000"),
    ("WS_MAX_SOCKETS_PER_USER", "1000000"),
    ("WS_MAX_SOCKETS_PER_ADDRESS", "1000000"),
];

/// [`LOAD_TOOL_ALLOWANCES`] as owned pairs.
pub fn load_tool_allowances() -> Vec<(String, String)> {
    LOAD_TOOL_ALLOWANCES
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn parse_yaml(text: &str, origin: &str) -> Result<Value, ConfigError> {
    serde_yaml::from_str(text).map_err(|source| ConfigError::Syntax {
        path: origin.to_owned(),
        source,
    })
}

/// Deep-merges `overlay` into `base`: mappings merge key by key, anything
/// else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn template_defaults_load() {
        let config = Config::defaults().expect("template is valid");
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.database.port, 5432);
        assert!(config.features.kafka_enabled);
    }

    #[test]
    fn environment_overrides_file_values() {
        let config = Config::load(
            None,
            vars(&[
                ("SERVER_PORT", "9090"),
                ("DB_HOST", "db.internal"),
                ("KAFKA_ENABLED", "false"),
                ("DB_PASSWORD", "12345"),
            ]),
        )
        .expect("valid overrides");
        assert_eq!(config.server.port, 9090);
        assert_eq!(config.database.host, "db.internal");
        assert!(!config.features.kafka_enabled);
        assert_eq!(config.database.password.expose(), "12345");
    }

    #[test]
    fn list_variables_are_comma_separated() {
        let networks = |raw: &str| {
            let config = Config::load(None, vars(&[("NOTIFIER_EGRESS_ALLOW_NETWORKS", raw)]))
                .expect("valid override");
            config
                .setting("notifier.egress.allow_networks")
                .cloned()
                .expect("the setting")
        };
        let two: serde_yaml::Value =
            serde_yaml::from_str("[10.1.2.0/24, 192.168.7.0/24]").expect("yaml");
        assert_eq!(networks("10.1.2.0/24, 192.168.7.0/24"), two);
        assert_eq!(networks(""), serde_yaml::Value::Sequence(Vec::new()));
    }

    #[test]
    fn invalid_value_names_key_and_env_var() {
        let err = Config::load(None, vars(&[("SERVER_PORT", "eighty")])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("server.port"), "{message}");
        assert!(message.contains("SERVER_PORT"), "{message}");
    }

    #[test]
    fn out_of_range_value_is_rejected() {
        let err = Config::load(None, vars(&[("SERVER_PORT", "0")])).unwrap_err();
        assert!(err.to_string().contains("server.port"), "{err}");
        let err = Config::load(None, vars(&[("DB_MAX_CONNECTIONS", "0")])).unwrap_err();
        assert!(
            err.to_string().contains("database.max_connections"),
            "{err}"
        );
    }

    #[test]
    fn redis_url_carries_the_user_and_an_encoded_password() {
        let config = Config::load(
            None,
            vars(&[
                ("REDIS_USERNAME", "messenger-media"),
                ("REDIS_PASSWORD", "p@ss:w/rd"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            config.redis.url(),
            "redis://messenger-media:p%40ss%3Aw%2Frd@127.0.0.1:6379/"
        );
        let url = redis::parse_redis_url(&config.redis.url()).expect("parses");
        assert_eq!(url.username(), "messenger-media");
        assert_eq!(url.password(), Some("p%40ss%3Aw%2Frd"));
    }

    #[test]
    fn kafka_sign_in_needs_known_settings() {
        let refused = |pairs: &[(&str, &str)], key: &str| {
            let err = Config::load(None, vars(pairs)).expect_err("refused");
            assert!(err.to_string().contains(key), "{err}");
        };
        refused(
            &[("KAFKA_SECURITY_PROTOCOL", "sasl")],
            "kafka.security_protocol",
        );
        let sasl = ("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext");
        let signed_in = [
            sasl,
            ("KAFKA_SASL_USERNAME", "users"),
            ("KAFKA_SASL_PASSWORD", "pw"),
        ];
        refused(
            &[signed_in.as_slice(), &[("KAFKA_SASL_MECHANISM", "GSSAPI")]].concat(),
            "kafka.sasl_mechanism",
        );
        refused(
            &[signed_in.as_slice(), &[("KAFKA_SASL_MECHANISM", "PLAIN")]].concat(),
            "clear text",
        );
        let config = Config::load(None, vars(&signed_in)).expect("SCRAM by default");
        assert_eq!(config.kafka.sasl_mechanism, "SCRAM-SHA-512");
        let plain_over_tls = [
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "PLAIN"),
            ("KAFKA_SASL_USERNAME", "users"),
            ("KAFKA_SASL_PASSWORD", "pw"),
        ];
        Config::load(None, vars(&plain_over_tls)).expect("PLAIN is fine over TLS");
    }

    #[test]
    fn bad_boolean_flag_is_rejected() {
        let err = Config::load(None, vars(&[("DEBUG_ENABLED", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("DEBUG_ENABLED"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_rejected() {
        let dir = std::env::temp_dir().join(format!("cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("config.yaml");
        std::fs::write(&path, "server:\n  prot: 1\n").expect("write");
        let err = Config::load(Some(&path), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("server"), "{err}");
        assert!(err.to_string().contains("prot"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn published_development_keys_need_debug_mode() {
        let keys = format!("dev:{}", crate::config::PUBLISHED_JWT_SECRETS[0]);
        let refused = Config::load(None, vars(&[("JWT_KEYS", &keys)])).unwrap_err();
        assert!(
            refused.to_string().contains("published development key"),
            "{refused}"
        );
        let debug = vars(&[("JWT_KEYS", &keys), ("DEBUG_ENABLED", "true")]);
        assert!(Config::load(None, debug).is_ok());
    }

    /// A view of one service setting, as a service declares its section.
    #[derive(serde::Deserialize)]
    struct Heartbeat {
        heartbeat_interval_ms: u64,
    }

    impl Section for Heartbeat {
        const KEY: &'static str = "websocket";
    }

    #[test]
    fn service_sections_are_read_and_checked_by_their_owner() {
        let config =
            Config::load(None, vars(&[("WS_HEARTBEAT_INTERVAL_MS", "1500")])).expect("load");
        assert_eq!(
            config
                .section::<Heartbeat>()
                .expect("section")
                .heartbeat_interval_ms,
            1500
        );
        // A bad value loads (other services do not read it) and fails its
        // owner, naming the key and the variable.
        let config =
            Config::load(None, vars(&[("WS_HEARTBEAT_INTERVAL_MS", "soon")])).expect("load");
        let err = config
            .section::<Heartbeat>()
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("websocket.heartbeat_interval_ms"), "{err}");
        assert!(err.contains("WS_HEARTBEAT_INTERVAL_MS"), "{err}");
    }

    #[test]
    fn service_settings_change_only_where_they_exist() {
        let mut config = Config::defaults().expect("defaults");
        config
            .set("websocket.heartbeat_interval_ms", 300)
            .expect("known key");
        assert_eq!(
            config
                .setting("websocket.heartbeat_interval_ms")
                .and_then(Value::as_u64),
            Some(300)
        );
        assert!(config.set("websocket.heartbeat_interval", 300).is_err());
        assert!(config.set("sockets.heartbeat_interval_ms", 300).is_err());
    }

    #[test]
    fn unknown_top_level_sections_are_rejected() {
        let dir = std::env::temp_dir().join(format!("cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("config.yaml");
        std::fs::write(&path, "medias:\n  max_file_bytes: 1\n").expect("write");
        let err = Config::load(Some(&path), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("medias"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn jwt_keys_are_checked_when_required() {
        let config = Config::load(None, vars(&[("JWT_KEYS", "k1:short")])).unwrap_err();
        assert!(config.to_string().contains("auth.jwt_keys"), "{config}");
        let missing = Config::defaults()
            .expect("defaults")
            .auth
            .signing_keys()
            .unwrap_err();
        assert!(missing.to_string().contains("JWT_KEYS"), "{missing}");
    }
}
