//! One Postgres role per service (deploy/postgres/service-roles.sql): the
//! fleet runs with each service connected as its own role, and a service's
//! role can touch its own schema only. What a compromised media service
//! (which decodes untrusted images) could do with its connection is tried
//! here: read password hashes, read messages, plant objects elsewhere.

use crate::helpers::TestApp;
use messenger_platform::config::Secret;
use messenger_testkit::TestEnv;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const SERVICES: [&str; 5] = ["users", "groups", "messages", "media", "notifier"];

/// Runs the shipped script on the test database with roles named
/// `<prefix><service>`; returns each service's URL.
fn create_roles(env: &TestEnv, prefix: &str) -> Vec<(String, String)> {
    let db = &env.config.database;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/postgres/service-roles.sql"
    );
    let passwords: Vec<(String, String)> = SERVICES
        .iter()
        .map(|service| ((*service).to_owned(), Uuid::new_v4().simple().to_string()))
        .collect();
    let mut psql = std::process::Command::new("psql");
    psql.args([
        "-h",
        &db.host,
        "-p",
        &db.port.to_string(),
        "-U",
        &db.user,
        "-d",
        &db.name,
    ])
    .args(["-q", "-v", &format!("prefix={prefix}")])
    .env("PGPASSWORD", db.password.expose());
    for (service, password) in &passwords {
        psql.args(["-v", &format!("{service}_password={password}")]);
    }
    let output = psql.args(["-f", script]).output().expect("psql runs");
    assert!(
        output.status.success(),
        "service-roles.sql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    passwords
        .into_iter()
        .map(|(service, password)| {
            let url = format!(
                "postgres://{prefix}{service}:{password}@{}:{}/{}",
                db.host, db.port, db.name
            );
            (service, url)
        })
        .collect()
}

async fn drop_roles(config: &messenger_platform::Config, prefix: &str) {
    let options = messenger_platform::db::connect_options(config, "users")
        .expect("options")
        .database("postgres");
    let mut admin = PgConnection::connect_with(&options).await.expect("admin");
    for service in SERVICES {
        let _ = admin
            .execute(format!("DROP ROLE IF EXISTS \"{prefix}{service}\"").as_str())
            .await;
    }
}

/// The SQLSTATE a statement failed with, if it failed.
async fn refusal(connection: &mut PgConnection, statement: &str) -> Option<String> {
    match connection.execute(statement).await {
        Ok(_) => None,
        Err(sqlx::Error::Database(err)) => err.code().map(|code| code.into_owned()),
        Err(err) => panic!("{statement}: {err}"),
    }
}

#[tokio::test]
async fn each_service_role_touches_its_own_schema_only() {
    let mut env = TestEnv::new().await.expect("test environment");
    let admin_config = env.config.clone();
    let prefix = format!("r{}_", &Uuid::new_v4().simple().to_string()[..10]);
    let urls = create_roles(&env, &prefix);
    for (service, url) in &urls {
        let target = match service.as_str() {
            "users" => &mut env.config.database.urls.users,
            "groups" => &mut env.config.database.urls.groups,
            "messages" => &mut env.config.database.urls.messages,
            "media" => &mut env.config.database.urls.media,
            _ => &mut env.config.database.urls.notifier,
        };
        *target = Secret::new(url.clone());
    }

    // The whole fleet on its five roles: migrations, then traffic through
    // every schema.
    let app = TestApp::start(env, |_| {}).await;
    let owner = crate::groups::user(&app, "roles_owner").await;
    let (_, channel) = crate::messages::group_with_channel(&app, &owner, "roles").await;
    let upload = crate::media::upload(
        &app,
        &owner,
        "notes.pdf",
        "application/pdf",
        crate::media::pdf("hello"),
    )
    .await;
    assert!(upload.status.is_success(), "{:?}", upload.body);
    crate::messages::send(&app, &owner, &channel, "stored by the messages role").await;

    let media_url = &urls
        .iter()
        .find(|(service, _)| service == "media")
        .expect("media")
        .1;
    let mut media = PgConnection::connect(media_url)
        .await
        .expect("media role connects");
    // Its own schema, as the service uses it.
    media
        .execute("SELECT count(*) FROM media.media")
        .await
        .expect("the media role reads its own table");
    // Everything else: insufficient_privilege (42501).
    for statement in [
        "SELECT password_hash FROM users.users",
        "SELECT count(*) FROM users.refresh_tokens",
        "SELECT count(*) FROM groups.group_members",
        "SELECT content FROM messages.messages",
        "SELECT endpoint FROM notifier.subscriptions",
        "UPDATE users.users SET display_name = 'pwned'",
        "CREATE TABLE users.planted (x int)",
        "CREATE TABLE public.planted (x int)",
        "CREATE SCHEMA planted",
        "CREATE ROLE planted",
    ] {
        assert_eq!(
            refusal(&mut media, statement).await.as_deref(),
            Some("42501"),
            "the media role ran: {statement}"
        );
    }
    media.close().await.expect("close");
    let mut env = app.stop().await;
    // Dropping the database takes the superuser the test began with.
    env.config.database.urls = admin_config.database.urls.clone();
    env.cleanup().await.expect("cleanup");
    drop_roles(&admin_config, &prefix).await;
}
