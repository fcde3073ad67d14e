//! The shipped Redis users (deploy/redis/acl.sh) on the real Redis: each
//! service's user does its own work and is refused (`NOPERM`) the rest. Above
//! all, only the users service may write the deny-list of ended sessions:
//! the gateway and media users can read it but neither add nor remove an
//! entry. The users are loaded under names of this test's own (ACL SETUSER)
//! and deleted afterwards; keys and sessions are namespaced per test.

use messenger_platform::sessions::DenyList;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SERVICES: [&str; 6] = [
    "users", "groups", "messages", "media", "notifier", "gateway",
];

/// `acl.sh`'s output for the given passwords.
fn acl_lines(passwords: &HashMap<&str, String>) -> String {
    let mut command = Command::new("sh");
    command.arg(format!("{ROOT}/deploy/redis/acl.sh"));
    for (service, password) in passwords {
        command.env(
            format!("{}_REDIS_PASSWORD", service.to_uppercase()),
            password,
        );
    }
    let output = command.output().expect("sh deploy/redis/acl.sh");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The shipped users, renamed `<prefix>-<service>`, on the shared Redis;
/// removed on drop.
struct TestUsers {
    admin: redis::Client,
    prefix: String,
    passwords: HashMap<&'static str, String>,
}

impl TestUsers {
    async fn load() -> Self {
        let prefix = format!("acltest-{}", uuid::Uuid::new_v4().simple());
        let passwords: HashMap<&str, String> = SERVICES
            .iter()
            .map(|service| (*service, format!("pw-{service}-{prefix}")))
            .collect();
        let admin = redis::Client::open("redis://127.0.0.1:6379/").expect("client");
        let mut connection = admin
            .get_multiplexed_async_connection()
            .await
            .expect("the shared Redis (./dev infra)");
        for line in acl_lines(&passwords).lines() {
            let mut words = line.split_whitespace();
            assert_eq!(words.next(), Some("user"), "{line}");
            let name = words.next().expect("user name");
            let Some(service) = name.strip_prefix("messenger-") else {
                assert_eq!(name, "default", "{line}");
                assert_eq!(
                    words.collect::<Vec<_>>(),
                    [
                        "on",
                        "nopass",
                        "resetkeys",
                        "resetchannels",
                        "-@all",
                        "+ping"
                    ],
                    "the default user may only PING"
                );
                continue;
            };
            let mut setuser = redis::cmd("ACL");
            setuser.arg("SETUSER").arg(format!("{prefix}-{service}"));
            for rule in words {
                setuser.arg(rule);
            }
            let () = setuser
                .query_async(&mut connection)
                .await
                .expect("ACL SETUSER");
        }
        TestUsers {
            admin,
            prefix,
            passwords,
        }
    }

    fn url(&self, service: &str) -> String {
        format!(
            "redis://{}-{service}:{}@127.0.0.1:6379/",
            self.prefix, self.passwords[service]
        )
    }

    async fn connect(&self, service: &str) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url(service))
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("signed in as the service's user")
    }

    fn deny_list(&self, service: &str, namespace: &str) -> DenyList {
        DenyList::new(
            redis::Client::open(self.url(service)).expect("client"),
            60,
            namespace,
        )
    }
}

impl Drop for TestUsers {
    fn drop(&mut self) {
        if let Ok(mut connection) = self.admin.get_connection() {
            let mut deluser = redis::cmd("ACL");
            deluser.arg("DELUSER");
            for service in SERVICES {
                deluser.arg(format!("{}-{service}", self.prefix));
            }
            let _: redis::RedisResult<i64> = deluser.query(&mut connection);
        }
    }
}

fn refused<T: std::fmt::Debug>(result: redis::RedisResult<T>, what: &str) {
    match result {
        Err(err) if err.to_string().contains("NOPERM") => {}
        other => panic!("{what}: expected NOPERM, got {other:?}"),
    }
}

#[tokio::test]
async fn only_the_users_service_writes_the_deny_list() {
    let users = TestUsers::load().await;
    let namespace = format!("{}:", users.prefix);
    let session = uuid::Uuid::now_v7();
    let key = format!("deny:sid:{namespace}{session}");

    let writer = users.deny_list("users", &namespace);
    writer
        .revoke(session)
        .await
        .expect("the users service deny-lists");
    for reader in ["gateway", "groups", "messages", "media", "notifier"] {
        let list = users.deny_list(reader, &namespace);
        assert!(list.is_revoked(session).await, "{reader} reads the list");
        refused(
            list.revoke(uuid::Uuid::now_v7()).await,
            "a reader adds an entry",
        );
        let mut connection = users.connect(reader).await;
        refused(
            connection.del::<_, i64>(&key).await,
            "a reader lifts a revocation",
        );
        refused(
            connection.set_ex::<_, _, ()>(&key, "0", 1).await,
            "a reader overwrites an entry",
        );
    }
    let mut admin = users
        .admin
        .get_multiplexed_async_connection()
        .await
        .expect("admin");
    let _: i64 = admin.del(&key).await.expect("clean up");
}

#[tokio::test]
async fn each_service_reaches_its_own_keys_and_channels_only() {
    let users = TestUsers::load().await;
    let tag = users.prefix.clone();
    let mut gateway = users.connect("gateway").await;
    let () = gateway
        .set_ex(format!("rt:seq:{tag}"), 1, 5)
        .await
        .expect("realtime keys");
    let () = gateway
        .set_ex(format!("rl:{tag}"), 1, 5)
        .await
        .expect("rate-limit keys");
    let _: i64 = gateway
        .publish(format!("rt:room:{tag}"), "frame")
        .await
        .expect("room channels");
    refused(
        gateway
            .set_ex::<_, _, ()>(format!("groups:gen:{tag}"), 1, 5)
            .await,
        "the gateway writes the groups service's cache",
    );

    let mut groups = users.connect("groups").await;
    let () = groups
        .set_ex(format!("groups:gen:{tag}"), 1, 5)
        .await
        .expect("its authorization cache");
    let _: i64 = groups
        .publish("groups:changed", tag.as_str())
        .await
        .expect("its change announcements");
    refused(
        groups
            .get::<_, Option<String>>(format!("rt:seq:{tag}"))
            .await,
        "the groups service reads realtime state",
    );
    refused(
        groups
            .publish::<_, _, i64>(format!("rt:room:{tag}"), "x")
            .await,
        "the groups service publishes to a room",
    );

    let mut media = users.connect("media").await;
    refused(
        media
            .get::<_, Option<String>>(format!("rt:seq:{tag}"))
            .await,
        "media reads realtime state",
    );
    refused(
        media.set_ex::<_, _, ()>(format!("media:{tag}"), 1, 5).await,
        "media writes anything",
    );
    refused(
        redis::cmd("KEYS")
            .arg("*")
            .query_async::<Vec<String>>(&mut media)
            .await,
        "media lists keys",
    );
    refused(
        redis::cmd("FLUSHALL").query_async::<()>(&mut media).await,
        "media flushes Redis",
    );
    refused(
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("*")
            .query_async::<Vec<String>>(&mut gateway)
            .await,
        "the gateway reads the server's configuration",
    );
    let mut admin = users
        .admin
        .get_multiplexed_async_connection()
        .await
        .expect("admin");
    let _: i64 = admin
        .del(&[
            format!("rt:seq:{tag}"),
            format!("rl:{tag}"),
            format!("groups:gen:{tag}"),
        ])
        .await
        .expect("clean up");
}

#[test]
fn the_dev_acl_file_is_the_scripts_output() {
    let passwords: HashMap<&str, String> = SERVICES
        .iter()
        .map(|service| (*service, format!("dev-{service}-redis-password")))
        .collect();
    let shipped = std::fs::read_to_string(format!("{ROOT}/deploy/redis/users.dev.acl"))
        .expect("users.dev.acl");
    assert_eq!(
        shipped,
        acl_lines(&passwords),
        "regenerate deploy/redis/users.dev.acl with deploy/redis/acl.sh"
    );
}

#[tokio::test]
async fn every_service_follows_the_revocations_and_the_gateway_its_channels() {
    use futures::StreamExt;
    let users = TestUsers::load().await;
    for service in SERVICES {
        let client = redis::Client::open(users.url(service)).expect("client");
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .expect("a subscriber connection");
        pubsub
            .subscribe(messenger_platform::sessions::SESSIONS_REVOKED)
            .await
            .expect("every service follows the revocations");
        if service == "gateway" {
            let tag = &users.prefix;
            pubsub
                .subscribe(&[format!("rt:room:{tag}"), "groups:changed".to_owned()])
                .await
                .expect("the gateway's rooms and group changes");
            let mut publisher = users.connect("gateway").await;
            let _: i64 = publisher
                .publish(format!("rt:room:{tag}"), "frame")
                .await
                .expect("publish");
            let message = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                pubsub.on_message().next(),
            )
            .await
            .expect("delivered within 5 s")
            .expect("a message");
            assert_eq!(message.get_channel_name(), format!("rt:room:{tag}"));
        }
    }
}
