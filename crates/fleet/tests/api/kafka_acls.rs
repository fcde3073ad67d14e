//! The brokers' ACLs (deploy/kafka/acls.tsv for compose, k8s/base/
//! kafka-users.yaml for Strimzi) say exactly what the code does: each
//! service writes the topics its outbox publishes and nothing else, reads
//! only what its consumers subscribe to, in its own consumer group; the
//! consuming team's user writes nothing. Offline: the local broker has no
//! authorizer, so this is where a new topic or consumer without its ACL
//! (or an ACL left over) is caught.

use messenger_proto::events::Topic;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// principal -> {(resource, pattern, name, sorted operations)}
type Acls = BTreeMap<String, BTreeSet<(String, String, String, Vec<String>)>>;

fn add(acls: &mut Acls, who: &str, resource: &str, pattern: &str, name: &str, ops: &[&str]) {
    let mut ops: Vec<String> = ops.iter().map(|op| (*op).to_owned()).collect();
    ops.sort();
    acls.entry(who.to_owned()).or_default().insert((
        resource.to_owned(),
        pattern.to_owned(),
        name.to_owned(),
        ops,
    ));
}

/// What the code needs, service by service.
fn expected() -> Acls {
    let mut acls = Acls::new();
    let writers: [(&str, &[Topic]); 6] = [
        ("users", messenger_users::KAFKA_WRITES),
        ("groups", messenger_groups::KAFKA_WRITES),
        ("messages", messenger_messages::KAFKA_WRITES),
        ("media", messenger_media::KAFKA_WRITES),
        ("notifier", messenger_notifier::KAFKA_WRITES),
        ("gateway", messenger_gateway::realtime::KAFKA_WRITES),
    ];
    for (service, topics) in writers {
        for topic in topics {
            let reads = service == "media" && messenger_media::KAFKA_READS.contains(topic);
            let ops: &[&str] = if reads {
                &["Write", "Describe", "Read"]
            } else {
                &["Write", "Describe"]
            };
            add(
                &mut acls,
                &format!("messenger-{service}"),
                "topic",
                "literal",
                topic.name(),
                ops,
            );
        }
    }
    let consumers: [(&str, &[Topic], &[Topic], &str); 2] = [
        (
            "media",
            messenger_media::KAFKA_READS,
            messenger_media::KAFKA_WRITES,
            messenger_media::KAFKA_CONSUMER_GROUP,
        ),
        (
            "notifier",
            messenger_notifier::KAFKA_READS,
            messenger_notifier::KAFKA_WRITES,
            messenger_notifier::KAFKA_CONSUMER_GROUP,
        ),
    ];
    for (service, reads, writes, group) in consumers {
        let principal = format!("messenger-{service}");
        for topic in reads.iter().filter(|topic| !writes.contains(topic)) {
            add(
                &mut acls,
                &principal,
                "topic",
                "literal",
                topic.name(),
                &["Read", "Describe"],
            );
        }
        add(&mut acls, &principal, "group", "literal", group, &["Read"]);
    }
    for topic in messenger_gateway::realtime::KAFKA_READS {
        add(
            &mut acls,
            "messenger-gateway",
            "topic",
            "literal",
            topic.name(),
            &["Read", "Describe"],
        );
    }
    let defaults = messenger_platform::Config::defaults().expect("template");
    let realtime = defaults
        .section::<messenger_gateway::settings::WebSocketSettings>()
        .expect("websocket settings");
    add(
        &mut acls,
        "messenger-gateway",
        "group",
        "literal",
        &realtime.consumer_group,
        &["Read"],
    );
    for topic in Topic::ALL {
        add(
            &mut acls,
            "events-reader",
            "topic",
            "literal",
            topic.name(),
            &["Read", "Describe"],
        );
    }
    add(
        &mut acls,
        "events-reader",
        "group",
        "prefix",
        "events-reader",
        &["Read"],
    );
    acls
}

fn from_table() -> Acls {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/kafka/acls.tsv")).expect("acls.tsv");
    let mut acls = Acls::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [who, resource, pattern, name, ops] = fields[..] else {
            panic!("acls.tsv: five columns expected: {line}");
        };
        let ops: Vec<&str> = ops.split(',').collect();
        add(&mut acls, who, resource, pattern, name, &ops);
    }
    acls
}

fn from_kafka_users() -> Acls {
    let text =
        std::fs::read_to_string(format!("{ROOT}/k8s/base/kafka-users.yaml")).expect("kafka-users");
    let mut acls = Acls::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let user = serde_yaml::Value::deserialize(document).expect("yaml");
        assert_eq!(user["kind"].as_str(), Some("KafkaUser"));
        let who = user["metadata"]["name"].as_str().expect("name");
        let rules = user["spec"]["authorization"]["acls"]
            .as_sequence()
            .expect("acls");
        for rule in rules {
            let resource = &rule["resource"];
            let ops: Vec<&str> = rule["operations"]
                .as_sequence()
                .expect("operations")
                .iter()
                .filter_map(|op| op.as_str())
                .collect();
            add(
                &mut acls,
                who,
                resource["type"].as_str().expect("type"),
                resource["patternType"].as_str().unwrap_or("literal"),
                resource["name"].as_str().expect("resource name"),
                &ops,
            );
        }
    }
    acls
}

#[test]
fn the_compose_acls_are_what_the_code_needs() {
    assert_eq!(from_table(), expected(), "deploy/kafka/acls.tsv");
}

#[test]
fn the_strimzi_users_are_what_the_code_needs() {
    assert_eq!(from_kafka_users(), expected(), "k8s/base/kafka-users.yaml");
}

#[test]
fn no_one_but_a_topics_owner_writes_it() {
    for (who, rules) in expected() {
        for (resource, _, name, ops) in rules {
            if resource == "topic" && ops.iter().any(|op| op == "Write") {
                let owner = Topic::from_name(&name).map(|topic| match topic {
                    Topic::Users => "messenger-users",
                    Topic::Groups => "messenger-groups",
                    Topic::Messages => "messenger-messages",
                    Topic::Media => "messenger-media",
                    Topic::Presence => "messenger-gateway",
                    Topic::Notifier => "messenger-notifier",
                });
                assert_eq!(owner, Some(who.as_str()), "{who} may write {name}");
            }
        }
    }
}
