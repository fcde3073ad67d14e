//! Two replicas of the users service on one database: one outbox relay
//! leads at a time, and when the leader goes the other takes over without
//! losing or reordering events.

use messenger_platform::CancellationToken;
use messenger_platform::callers::Caller;
use messenger_platform::grpc::lazy_channel;
use messenger_proto::users::v1 as pb;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use messenger_proto::users::v1::{UserEvent, user_event};
use messenger_testkit::{TestEnv, eventually};
use prost::Message as _;
use rdkafka::Message;
use std::collections::HashSet;
use std::time::Duration;
use tonic::transport::Channel;

struct Replica {
    client: UsersServiceClient<Channel>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn replica(env: &TestEnv) -> Replica {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(messenger_users::serve(
        env.config.clone(),
        listener,
        shutdown.clone(),
    ));
    let transport = messenger_testkit::transport_as(&env.config, Caller::Gateway)
        .await
        .expect("a gateway certificate");
    let channel =
        lazy_channel(&transport, Caller::Users, &url, Duration::from_secs(5)).expect("url");
    let client = UsersServiceClient::new(channel);
    let probe = client.clone();
    eventually(Duration::from_secs(20), || {
        let mut probe = probe.clone();
        async move {
            probe
                .get_users(pb::GetUsersRequest { ids: vec![] })
                .await
                .ok()
                .map(drop)
        }
    })
    .await
    .expect("replica up");
    Replica {
        client,
        shutdown,
        task,
    }
}

impl Replica {
    async fn register(&self, username: &str) -> String {
        let request = pb::RegisterRequest {
            username: username.to_owned(),
            email: format!("{username}@example.com"),
            display_name: username.to_owned(),
            password: "long enough".to_owned(),
        };
        self.client
            .clone()
            .register(request)
            .await
            .expect("register")
            .into_inner()
            .id
    }

    async fn update(&self, id: &str, name: &str) {
        let request = pb::UpdateProfileRequest {
            id: id.to_owned(),
            display_name: Some(name.to_owned()),
            bio: None,
            avatar_media_id: None,
        };
        self.client
            .clone()
            .update_profile(request)
            .await
            .expect("update");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = self.task.await.expect("join");
        assert!(result.is_ok(), "{result:?}");
    }
}

#[tokio::test]
async fn replicas_share_one_relay_and_fail_over_in_order() {
    let mut env = TestEnv::new().await.expect("env");
    // The probe below reads users without a user's token (the check at the
    // door is tested across the fleet, tests/api/user_tokens.rs).
    env.config.features.debug_enabled = true;
    env.config.grpc.user_tokens = false;
    let consumer = env
        .consume(UserEvent::TOPIC.name())
        .await
        .expect("consumer");
    let a = replica(&env).await;
    let b = replica(&env).await;

    // Writes through both replicas, alternating, for one user.
    let id = a.register("shared").await;
    for n in 1..=4 {
        let through = if n % 2 == 0 { &a } else { &b };
        through.update(&id, &format!("v{n}")).await;
    }
    // The first replica goes away (whether or not it led); the other
    // publishes what remains and what comes next.
    a.stop().await;
    b.update(&id, "v5").await;

    let mut seen = Vec::new();
    let mut ids = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 6 {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .expect("all events within 30 s");
        let Ok(message) = message else { continue };
        let event = UserEvent::decode(message.payload().expect("payload")).expect("decode");
        let meta = event.meta.expect("meta");
        if !ids.insert(meta.event_id) {
            continue; // at-least-once: a takeover may resend
        }
        seen.push(match event.payload.expect("payload") {
            user_event::Payload::UserRegistered(_) => "registered".to_owned(),
            user_event::Payload::UserProfileUpdated(update) => update.display_name,
        });
    }
    assert_eq!(seen, ["registered", "v1", "v2", "v3", "v4", "v5"]);
    drop(consumer);
    b.stop().await;
    env.cleanup().await.expect("cleanup");
}
