//! Sections of the configuration that one service owns. The loader keeps
//! them as loaded (template defaults, file, environment); each owner
//! declares its type beside its code and reads it with
//! [`Config::section`], which checks it (unknown keys, types, ranges) with
//! errors that name the key and its variable. The template, the variable
//! table and the coverage test stay here, so every setting is documented
//! and deployable whoever reads it.

use super::{Config, ConfigError};
use serde::de::DeserializeOwned;
use serde_yaml::Value;

/// The top-level keys of service-owned sections. Any other top-level key
/// must be a shared section of [`Config`]: a typo fails at load.
pub const SERVICE_SECTIONS: &[&str] =
    &["media", "websocket", "rate_limit", "passwords", "notifier"];

/// A service's settings section (or the part of one it reads).
pub trait Section: DeserializeOwned {
    /// Its top-level key, one of [`SERVICE_SECTIONS`].
    const KEY: &'static str;

    /// Checks beyond types (ranges, relations); errors name the key.
    fn check(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

impl Config {
    /// Reads and checks the section `T` owns.
    pub fn section<T: Section>(&self) -> Result<T, ConfigError> {
        let raw = self
            .sections
            .get(T::KEY)
            .cloned()
            .ok_or_else(|| ConfigError::invalid(T::KEY, "the section is missing"))?;
        let section: T = serde_path_to_error::deserialize(raw).map_err(|err| {
            let key = format!("{}.{}", T::KEY, err.path());
            ConfigError::invalid(key.trim_end_matches('.'), err.into_inner().to_string())
        })?;
        section.check()?;
        Ok(section)
    }

    /// One setting of a service-owned section, as loaded, by its dotted
    /// key (`websocket.heartbeat_interval_ms`).
    pub fn setting(&self, key: &str) -> Option<&Value> {
        let (section, rest) = key.split_once('.').unwrap_or((key, ""));
        let mut node = self.sections.get(section)?;
        for part in rest.split('.').filter(|part| !part.is_empty()) {
            node = node.get(part)?;
        }
        Some(node)
    }

    /// Changes one setting of a service-owned section (tests and tools
    /// adjust a fleet this way). The key must exist: a misspelt one would
    /// otherwise change nothing, silently.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> Result<(), ConfigError> {
        let (section, rest) = key.split_once('.').unwrap_or((key, ""));
        let mut node = self
            .sections
            .get_mut(section)
            .ok_or_else(|| ConfigError::invalid(key, "no such section"))?;
        for part in rest.split('.').filter(|part| !part.is_empty()) {
            node = node
                .get_mut(part)
                .ok_or_else(|| ConfigError::invalid(key, "no such setting"))?;
        }
        *node = value.into();
        Ok(())
    }
}

/// Moves the service-owned sections out of the loaded tree.
pub(super) fn take_sections(value: &mut Value) -> serde_yaml::Mapping {
    let mut sections = serde_yaml::Mapping::new();
    if let Value::Mapping(root) = value {
        for key in SERVICE_SECTIONS {
            if let Some(section) = root.remove(*key) {
                sections.insert(Value::from(*key), section);
            }
        }
    }
    sections
}
