//! Every setting the code reads must be documented and deployable: named in
//! the template, and set in the compose file and the Kubernetes ConfigMap
//! (secrets excepted: those come from Vault). A new key that misses one of
//! them fails here, not in an operator's cluster.

use super::env::OVERRIDES;
use serde_yaml::Value;
use std::collections::BTreeSet;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn is_secret(name: &str) -> bool {
    matches!(
        name,
        "DB_PASSWORD"
            | "REDIS_PASSWORD"
            | "JWT_KEYS"
            | "VAULT_TOKEN"
            | "VAULT_SECRET_ID"
            | "KAFKA_SASL_PASSWORD"
            | "NOTIFIER_VAPID_KEY"
    ) || name.ends_with("_DATABASE_URL")
}

fn read_yaml(relative: &str) -> (String, Value) {
    let path = format!("{ROOT}/{relative}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let value = serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"));
    (text, value)
}

fn keys_of(mapping: &Value, what: &str) -> BTreeSet<String> {
    mapping
        .as_mapping()
        .unwrap_or_else(|| panic!("{what} is not a mapping"))
        .keys()
        .filter_map(|key| key.as_str().map(str::to_owned))
        .collect()
}

fn known() -> BTreeSet<String> {
    OVERRIDES
        .iter()
        .map(|(name, _, _)| (*name).to_owned())
        .collect()
}

fn deployable() -> BTreeSet<String> {
    known()
        .into_iter()
        .filter(|name| !is_secret(name))
        .collect()
}

#[test]
fn template_documents_every_setting() {
    let (text, template) = read_yaml("config/config.template.yaml");
    for (name, path, _) in OVERRIDES {
        let mut node = &template;
        for part in path.split('.') {
            node = node
                .get(part)
                .unwrap_or_else(|| panic!("{path} (env {name}) is missing from the template"));
        }
        assert!(
            text.contains(&format!("env: {name}")) || text.contains(&format!("/ {name}")),
            "the template does not name the variable {name} for {path}"
        );
    }
}

#[test]
fn compose_sets_every_setting_and_no_secret() {
    let (_, compose) = read_yaml("docker-compose.yml");
    let set = keys_of(&compose["x-messenger-env"], "x-messenger-env");
    check("docker-compose.yml x-messenger-env", &set);
}

#[test]
fn kubernetes_config_map_sets_every_setting_and_no_secret() {
    let (_, config_map) = read_yaml("k8s/base/config.yaml");
    assert_eq!(config_map["kind"].as_str(), Some("ConfigMap"));
    let set = keys_of(&config_map["data"], "ConfigMap data");
    check("k8s/base/config.yaml", &set);
}

fn check(file: &str, set: &BTreeSet<String>) {
    let missing: Vec<_> = deployable().difference(set).cloned().collect();
    assert!(missing.is_empty(), "{file} does not set {missing:?}");
    let unknown: Vec<_> = set.difference(&known()).cloned().collect();
    assert!(
        unknown.is_empty(),
        "{file} sets variables no code reads: {unknown:?}"
    );
    let secrets: Vec<_> = set.iter().filter(|name| is_secret(name)).collect();
    assert!(
        secrets.is_empty(),
        "{file} holds secrets {secrets:?}: they belong in Vault"
    );
}
