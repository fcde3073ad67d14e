//! The users service's settings: password hashing (its own section) and
//! the sign-in guess limit it reads from the rate-limit section. Defaults
//! and variable names are in `config/config.template.yaml`.

use messenger_platform::config::{ConfigError, Section};
use serde::Deserialize;

/// Argon2id cost of password hashes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Section for PasswordSettings {
    const KEY: &'static str = "passwords";

    fn check(&self) -> Result<(), ConfigError> {
        if self.memory_kib < 8 * 1024 || self.iterations == 0 {
            return Err(ConfigError::invalid(
                "passwords.memory_kib",
                "argon2id needs at least 8192 KiB and 1 iteration",
            ));
        }
        Ok(())
    }
}

/// The part of the gateway's rate-limit section this service enforces:
/// wrong passwords per account, whichever address they come from.
#[derive(Clone, Debug, Deserialize)]
pub struct SignInLimit {
    pub login_per_account_per_minute: u32,
}

impl Section for SignInLimit {
    const KEY: &'static str = "rate_limit";

    fn check(&self) -> Result<(), ConfigError> {
        ConfigError::require_positive(
            "rate_limit.login_per_account_per_minute",
            self.login_per_account_per_minute.into(),
        )
    }
}
