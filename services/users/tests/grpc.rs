//! The users service over real gRPC, against a fresh database.

use messenger_platform::CancellationToken;
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

async fn start_with(adjust: impl FnOnce(&mut messenger_platform::Config)) -> Service {
    let mut env = TestEnv::new().await.expect("env");
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
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_lazy();
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

    let no_session = client
        .create_session(pb::CreateSessionRequest {
            user_id: uuid::Uuid::new_v4().to_string(),
            user_agent: String::new(),
        })
        .await
        .expect_err("no such user");
    assert_eq!(no_session.code(), Code::NotFound);

    let bad_login = client
        .verify_password(pb::VerifyPasswordRequest {
            login: "frank".into(),
            password: "wrong one".into(),
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
    for expected in ["_sqlx_migrations", "outbox", "refresh_tokens", "users"] {
        assert!(
            tables.iter().any(|(_, name)| name == expected),
            "missing {expected}"
        );
    }

    let reverted = messenger_platform::db::migrate_down(&pool, &messenger_users::MIGRATOR, None)
        .await
        .expect("down");
    assert_eq!(reverted, [2, 1]);
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
