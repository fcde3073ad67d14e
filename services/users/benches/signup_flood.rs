//! Memory of the users service under a flood of sign-ups: CONCURRENT raw
//! gRPC SignUp calls at once, with the shipped argon2 cost (19 MiB per
//! hash), against the same process's memory idle and after one sign-up,
//! measured in the same run.
//!
//!     ./dev infra && cargo bench -p messenger-users --bench signup_flood [-- CONCURRENT]
//!
//! The service runs as its own process (the `messenger-users` binary) so its
//! resident memory can be sampled from /proc every 10 ms. Refused calls
//! (UNAVAILABLE: too many hashes waiting) are retried after their
//! RetryInfo delay, as a client would, until every account exists.

use messenger_proto::users::v1 as pb;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use messenger_testkit::TestEnv;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let concurrent: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(300);
    let env = TestEnv::new().await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = spawn_service(&env, port)?;
    let pid = child.id();
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))?.connect_lazy();
    let client = UsersServiceClient::new(channel);
    wait_up(&client).await?;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = messenger_testkit::resident_memory(pid).unwrap_or(0);
    let one = Instant::now();
    sign_up(&client, "flood_first").await?;
    let single = one.elapsed();
    let after_one = messenger_testkit::resident_memory(pid).unwrap_or(0);

    let flood = flood(&client, concurrent, pid, after_one).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = messenger_testkit::resident_memory(pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    env.cleanup().await?;

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!("users service RSS, shipped argon2 cost (19 MiB, 2 iterations):");
    println!("  baseline idle:               {:7.1} MiB", mib(idle));
    println!(
        "  baseline after one sign-up:  {:7.1} MiB ({} ms)",
        mib(after_one),
        single.as_millis()
    );
    println!(
        "  peak during {concurrent} concurrent:  {:7.1} MiB",
        mib(flood.peak)
    );
    println!("  2 s after the flood:         {:7.1} MiB", mib(after));
    println!(
        "  {concurrent} accounts in {:.1} s, {} refusals (503 + Retry-After) retried",
        flood.took.as_secs_f64(),
        flood.refusals
    );
    Ok(())
}

/// The users service as its own process, so that its memory is its own.
fn spawn_service(env: &TestEnv, port: u16) -> std::io::Result<std::process::Child> {
    let config = &env.config;
    std::process::Command::new(env!("CARGO_BIN_EXE_messenger-users"))
        .env("DB_HOST", &config.database.host)
        .env("DB_PORT", config.database.port.to_string())
        .env("DB_USER", &config.database.user)
        .env("DB_PASSWORD", config.database.password.expose())
        .env("DB_NAME", &config.database.name)
        .env("USERS_GRPC_LISTEN", format!("127.0.0.1:{port}"))
        .env("USERS_METRICS_LISTEN", "")
        .env("KAFKA_ENABLED", "false")
        .env("VAULT_ADDR", "")
        .env("RUST_LOG", "warn")
        // The shipped argon2 cost, whatever the caller's environment says.
        .env_remove("PASSWORD_HASH_MEMORY_KIB")
        .env_remove("PASSWORD_HASH_ITERATIONS")
        .stdout(std::process::Stdio::null())
        .spawn()
}

/// What the flood came to.
struct Flood {
    /// Most resident memory sampled while it ran (at least `floor`).
    peak: u64,
    /// Sign-ups refused as overload, each retried.
    refusals: u64,
    took: Duration,
}

/// Signs up `concurrent` accounts at once, retrying refusals, while
/// sampling the resident memory of `pid`.
async fn flood(
    client: &UsersServiceClient<Channel>,
    concurrent: usize,
    pid: u32,
    floor: u64,
) -> anyhow::Result<Flood> {
    let peak = Arc::new(AtomicU64::new(floor));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(now) = messenger_testkit::resident_memory(pid) {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    eprintln!("flooding {concurrent} concurrent sign-ups");
    let started = Instant::now();
    let calls = (0..concurrent).map(|n| {
        let client = client.clone();
        async move {
            let mut refused = 0u64;
            loop {
                match sign_up(&client, &format!("flood_{n}")).await {
                    Ok(()) => return Ok::<u64, anyhow::Error>(refused),
                    Err(status) if status.code() == tonic::Code::Unavailable => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(status) => anyhow::bail!("sign-up {n}: {status}"),
                }
            }
        }
    });
    let refusals: u64 = futures::future::try_join_all(calls).await?.iter().sum();
    let took = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    Ok(Flood {
        peak: peak.load(Ordering::Relaxed),
        refusals,
        took,
    })
}

async fn sign_up(client: &UsersServiceClient<Channel>, name: &str) -> Result<(), tonic::Status> {
    client
        .clone()
        .sign_up(pb::SignUpRequest {
            account: Some(pb::RegisterRequest {
                username: name.to_owned(),
                email: format!("{name}@example.com"),
                display_name: name.to_owned(),
                password: "correct horse battery".to_owned(),
            }),
            user_agent: "signup_flood".to_owned(),
        })
        .await
        .map(drop)
}

async fn wait_up(client: &UsersServiceClient<Channel>) -> anyhow::Result<()> {
    for _ in 0..300 {
        let probe = client
            .clone()
            .get_users(pb::GetUsersRequest { ids: vec![] })
            .await;
        if probe.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the users service did not come up")
}
