//! The users service over real gRPC, against a fresh database.

// Runtime SQL is fine here: tests assert on stored rows directly (clippy.toml).
#![allow(clippy::disallowed_methods)]

use messenger_platform::CancellationToken;
use messenger_platform::callers::Caller;
use messenger_platform::grpc::lazy_channel;
use messenger_proto::users::v1 as pb;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use messenger_testkit::TestEnv;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

struct Service {
    addr: std::net::SocketAddr,
    client: UsersServiceClient<Channel>,
    env: TestEnv,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Service {
    start_with(|config| config.features.kafka_enabled = false).await
}

/// A channel to the service at `addr` as the gateway reaches it.
async fn gateway_channel(
    config: &messenger_platform::Config,
    addr: std::net::SocketAddr,
) -> Channel {
    let transport = messenger_testkit::transport_as(config, Caller::Gateway)
        .await
        .expect("a gateway certificate");
    lazy_channel(
        &transport,
        Caller::Users,
        &format!("http://{addr}"),
        std::time::Duration::from_secs(5),
    )
    .expect("url")
}

async fn start_with(adjust: impl FnOnce(&mut messenger_platform::Config)) -> Service {
    let mut env = TestEnv::new().await.expect("env");
    // These tests are about the users service's own rules, called the way
    // no caller in the fleet can (without a user's token): the token check
    // at the door is tested across the fleet (tests/api/user_tokens.rs).
    env.config.features.debug_enabled = true;
    env.config.grpc.user_tokens = false;
    adjust(&mut env.config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(messenger_users::serve(
        env.config.clone(),
        listener,
        shutdown.clone(),
    ));
    let channel = gateway_channel(&env.config, addr).await;
    let client = UsersServiceClient::new(channel);
    let service = Service {
        addr,
        client,
        env,
        shutdown,
        task,
    };
    messenger_testkit::eventually(std::time::Duration::from_secs(20), || {
        let mut client = service.client.clone();
        async move {
            let probe = client.get_users(pb::GetUsersRequest { ids: vec![] }).await;
            probe.ok().map(drop)
        }
    })
    .await
    .expect("service up");
    service
}

impl Service {
    async fn stop(self) {
        self.shutdown.cancel();
        let result = self.task.await.expect("join");
        assert!(result.is_ok(), "{result:?}");
        self.env.cleanup().await.expect("cleanup");
    }

    async fn register(&self, username: &str) -> Result<pb::User, tonic::Status> {
        self.client
            .clone()
            .register(pb::RegisterRequest {
                username: username.to_owned(),
                email: format!("{username}@example.com"),
                display_name: username.to_owned(),
                password: "long enough".to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

fn field_of(status: &tonic::Status) -> String {
    status
        .get_details_bad_request()
        .and_then(|details| details.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

#[tokio::test]
async fn errors_map_to_grpc_codes_with_field_details() {
    let service = start().await;
    let invalid = service.register("x").await.expect_err("too short");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(field_of(&invalid), "username");

    service.register("frank").await.expect("registered");
    let duplicate = service.register("Frank").await.expect_err("taken");
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert_eq!(field_of(&duplicate), "username");

    let mut client = service.client.clone();
    let missing = client
        .get_user(pb::GetUserRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = client
        .get_user(pb::GetUserRequest { id: "nope".into() })
        .await
        .expect_err("bad id");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(field_of(&malformed), "id");

    let bad_login = client
        .sign_in(pb::SignInRequest {
            login: "frank".into(),
            password: "wrong one".into(),
            user_agent: String::new(),
        })
        .await
        .expect_err("wrong password");
    assert_eq!(bad_login.code(), Code::Unauthenticated);
    service.stop().await;
}

#[tokio::test]
async fn batch_lookup_keeps_order_and_skips_unknown_ids() {
    let service = start().await;
    let a = service.register("alpha").await.expect("a");
    let b = service.register("bravo").await.expect("b");
    let mut client = service.client.clone();
    let found = client
        .get_users(pb::GetUsersRequest {
            ids: vec![b.id.clone(), uuid::Uuid::new_v4().to_string(), a.id.clone()],
        })
        .await
        .expect("batch")
        .into_inner();
    let ids: Vec<_> = found.users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids, [b.id.clone(), a.id.clone()]);

    let too_many = client
        .get_users(pb::GetUsersRequest {
            ids: vec![a.id.clone(); 501],
        })
        .await
        .expect_err("limit");
    assert_eq!(too_many.code(), Code::InvalidArgument);
    service.stop().await;
}

#[tokio::test]
async fn migrations_are_reversible_and_stay_in_their_schema() {
    let service = start().await;
    service.register("keeper").await.expect("registered");
    let pool = service.env.pool("users").await.expect("pool");
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    assert!(
        tables.iter().all(|(schema, _)| schema == "users"),
        "{tables:?}"
    );
    for expected in [
        "_sqlx_migrations",
        "outbox",
        "refresh_tokens",
        "sign_in_attempts",
        "sign_in_attempts_by_login",
        "users",
    ] {
        assert!(
            tables.iter().any(|(_, name)| name == expected),
            "missing {expected}"
        );
    }

    let reverted = messenger_platform::db::migrate_down(&pool, &messenger_users::MIGRATOR, None)
        .await
        .expect("down");
    assert_eq!(reverted, [4, 3, 2, 1]);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'users' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(left, 0);
    messenger_platform::db::migrate_up(&pool, &messenger_users::MIGRATOR)
        .await
        .expect("up again");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .expect("users");
    assert_eq!(users, 0);
    pool.close().await;
    service.stop().await;
}

#[tokio::test]
async fn a_separately_run_service_serves_its_metrics() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let service =
        start_with(|config| config.grpc.users.metrics_listen = format!("127.0.0.1:{port}")).await;
    service.register("measured").await.expect("registered");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = messenger_testkit::eventually(std::time::Duration::from_secs(10), || {
        let url = url.clone();
        async move {
            let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
            body.contains("outbox_published_total{service=\"users\"}")
                .then_some(body)
        }
    })
    .await
    .expect("outbox metrics exposed");
    assert!(text.contains("outbox_pending"), "{text}");
    service.stop().await;
}

/// Runs `messenger-users healthcheck` against `listen` on a blocking thread
/// (the service under test shares this test's runtime).
async fn healthcheck(listen: String) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_messenger-users"))
            .arg("healthcheck")
            .env("USERS_GRPC_LISTEN", listen)
            .env_remove("VAULT_ADDR")
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join")
}

#[tokio::test]
async fn healthcheck_subcommand_tells_serving_from_down() {
    let service = start().await;
    // A bind address, as containers configure it, probes loopback.
    let listen = format!("0.0.0.0:{}", service.addr.port());
    let up = healthcheck(listen.clone()).await;
    assert!(up.status.success(), "{up:?}");
    assert!(String::from_utf8_lossy(&up.stdout).contains("users: serving"));
    service.stop().await;

    let down = healthcheck(listen).await;
    assert!(!down.status.success());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

/// The attack that CreateSession allowed: anything that reaches the port
/// asks for a session of any user id. The method is gone, and a session
/// comes only with the account's password.
#[tokio::test]
async fn no_call_mints_a_session_without_the_password() {
    let service = start().await;
    let victim = service.register("victim").await.expect("registered");

    #[derive(Clone, PartialEq, prost::Message)]
    struct CreateSessionRequest {
        #[prost(string, tag = "1")]
        user_id: String,
        #[prost(string, tag = "2")]
        user_agent: String,
    }
    let channel = gateway_channel(&service.env.config, service.addr).await;
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.expect("ready");
    let minted: Result<tonic::Response<pb::Session>, tonic::Status> = raw
        .unary(
            tonic::Request::new(CreateSessionRequest {
                user_id: victim.id.clone(),
                user_agent: "attacker".into(),
            }),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/messenger.users.v1.UsersService/CreateSession",
            ),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    assert_eq!(
        minted.expect_err("no such method").code(),
        Code::Unimplemented
    );

    let mut client = service.client.clone();
    let signed_in = client
        .sign_in(pb::SignInRequest {
            login: "VICTIM".into(),
            password: "long enough".into(),
            user_agent: "test".into(),
        })
        .await
        .expect("the owner signs in")
        .into_inner();
    let session = signed_in.session.expect("session");
    assert_eq!(session.user_id, victim.id);
    assert!(!session.refresh_token.is_empty());
    service.stop().await;
}
