//! SearchUsers latency over a large user table, against a primary-key
//! GetUser baseline measured in the same run through the same gRPC path.
//!
//!     ./dev infra && cargo bench -p messenger-users --bench search [-- USERS]
//!
//! Seeds USERS accounts (default 1,000,000) straight into a fresh database's
//! `users` table (registering through the API would measure argon2, not
//! search), runs ANALYZE, then times each query 30 times with limit 20.

// Runtime SQL is fine here: seeds rows straight into the table (clippy.toml).
#![allow(clippy::disallowed_methods)]

use messenger_platform::CancellationToken;
use messenger_proto::users::v1 as pb;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use messenger_testkit::TestEnv;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const FIRST: &[&str] = &[
    "anna",
    "boris",
    "clara",
    "dmitri",
    "elena",
    "fedor",
    "galina",
    "igor",
    "jonathan",
    "katya",
    "lev",
    "maria",
    "nikolai",
    "olga",
    "pavel",
    "raisa",
    "sergei",
    "tatiana",
    "ulyana",
    "viktor",
    "anastasia",
    "yulia",
    "zakhar",
    "alexei",
    "bogdan",
];
const LAST: &[&str] = &[
    "ivanov",
    "petrova",
    "smirnov",
    "kuznetsova",
    "popov",
    "vasilieva",
    "sokolov",
    "mikhailova",
    "novikov",
    "fedorova",
    "morozov",
    "volkova",
    "alekseev",
    "lebedeva",
    "semenov",
    "egorova",
    "pavlov",
    "kozlova",
    "stepanov",
    "nikolaeva",
];

type Client = UsersServiceClient<Channel>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users: i64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(1_000_000);
    let mut env = TestEnv::new().await?;
    env.config.features.kafka_enabled = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(messenger_users::serve(
        env.config.clone(),
        listener,
        shutdown.clone(),
    ));
    let mut client =
        UsersServiceClient::new(Channel::from_shared(format!("http://{addr}"))?.connect_lazy());
    while client
        .get_users(pb::GetUsersRequest { ids: vec![] })
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pool = env.pool("users").await?;
    seed(&pool, users).await?;
    let some_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users LIMIT 1")
        .fetch_one(&pool)
        .await?;

    println!("| request ({users} users, limit 20, 30 runs) | matches on page | p50 | p95 | max |");
    println!("|---|---|---|---|---|");
    baseline(&mut client, some_id).await?;
    searches(&mut client).await?;
    shutdown.cancel();
    service.await??;
    pool.close().await;
    env.cleanup().await?;
    Ok(())
}

/// Inserts `users` generated accounts in batches, then refreshes the
/// planner's statistics.
async fn seed(pool: &sqlx::PgPool, users: i64) -> anyhow::Result<()> {
    let first = FIRST.join(",");
    let last = LAST.join(",");
    let started = Instant::now();
    let batch = 100_000;
    let mut done = 0;
    while done < users {
        let upto = (done + batch).min(users);
        sqlx::query(
            "INSERT INTO users (id, username, email, display_name, password_hash) \
             SELECT gen_random_uuid(), f || '_' || l || i, 'u' || i || '@example.com', \
                    initcap(f) || ' ' || initcap(l), 'not-a-hash' \
             FROM generate_series($1::bigint, $2::bigint) AS i, \
                  LATERAL (SELECT (string_to_array($3, ','))[1 + (i % $5)] AS f, \
                                  (string_to_array($4, ','))[1 + ((i / $5) % $6)] AS l) AS names",
        )
        .bind(done + 1)
        .bind(upto)
        .bind(&first)
        .bind(&last)
        .bind(FIRST.len() as i64)
        .bind(LAST.len() as i64)
        .execute(pool)
        .await?;
        done = upto;
        eprintln!("  seeded {done}/{users} users ({:.0?})", started.elapsed());
    }
    sqlx::query("ANALYZE users").execute(pool).await?;
    Ok(())
}

async fn baseline(client: &mut Client, id: uuid::Uuid) -> anyhow::Result<()> {
    let mut baseline = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        client
            .get_user(pb::GetUserRequest { id: id.to_string() })
            .await?;
        baseline.push(t.elapsed());
    }
    row("baseline: GetUser by primary key", 1, &mut baseline);
    Ok(())
}

async fn searches(client: &mut Client) -> anyhow::Result<()> {
    for (label, query) in [
        ("prefix, common: \"anna_iv\"", "anna_iv"),
        ("prefix, display name: \"tatiana\"", "tatiana"),
        ("typo: \"anastasya_petrova\"", "anastasya_petrova"),
        ("typo in a word: \"kuznetsva\"", "kuznetsva"),
        ("no match: \"qqqxxz\"", "qqqxxz"),
    ] {
        let mut samples = Vec::new();
        let mut found = 0;
        for _ in 0..30 {
            let t = Instant::now();
            let page = client
                .search_users(pb::SearchUsersRequest {
                    query: query.into(),
                    limit: 20,
                    cursor: String::new(),
                    offset: 0,
                })
                .await?
                .into_inner();
            samples.push(t.elapsed());
            found = page.users.len();
        }
        row(label, found, &mut samples);
    }
    Ok(())
}

fn row(name: &str, found: usize, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | {found} | {} | {} | {} |",
        ms(p(0.5)),
        ms(p(0.95)),
        ms(p(1.0))
    );
}
