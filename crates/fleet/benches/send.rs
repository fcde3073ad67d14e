//! Sustained message sends through the gateway, against the raw Postgres
//! rate of the same writes (pgbench) measured in the same run.
//!
//!     ./dev infra && cargo bench -p messenger-fleet --bench send [-- SECONDS]
//!
//! The whole fleet on ephemeral ports, one group with CHANNELS channels and
//! CLIENTS members. Then, SECONDS each (default 15):
//! 1. peak: CLIENTS closed-loop clients send as fast as they are answered,
//!    each to the channels in turn;
//! 2. paced: open-loop sends at half the peak rate; latency is measured from
//!    the moment each send was due, so a stall is not hidden by the sender
//!    waiting (no coordinated omission);
//! 3. baseline: the fleet is stopped and pgbench runs, with the same number
//!    of clients, the transaction a send commits (sequence upsert, message
//!    insert, read position upsert, outbox insert) on the same database.
//!
//! The path through the gateway adds what pgbench does not do: HTTP and JWT,
//! two gRPC hops, the authorization check, reading the stored message back,
//! and the outbox relay publishing every event to Kafka.

use messenger_platform::Config;
use messenger_testkit::TestEnv;
use std::sync::Arc;
use std::time::Duration;
use support::sends::{Senders, pgbench, run_closed_loop, run_paced};
use support::{InProcessFleet, create_group, join_members, register, wait_ready};

mod support;

const CLIENTS: usize = 16;
const CHANNELS: usize = 16;

/// What the two phases through the gateway measured.
struct Measured {
    sent: usize,
    peak_rate: f64,
    peak_latency: Vec<Duration>,
    paced_rate: f64,
    paced_latency: Vec<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(15);
    let mut env = TestEnv::new().await?;
    // The production pool size: the test default would cap the send rate.
    env.config.database.max_connections = Config::defaults()?.database.max_connections;
    let fleet = InProcessFleet::start(&env.config).await?;
    let http = reqwest::Client::new();
    wait_ready(&http, &fleet.base).await?;
    let senders = seed(&http, &fleet.base).await?;
    let measured = measure_gateway(&http, &fleet.base, &senders, seconds).await?;
    // pgbench gets the database to itself.
    fleet.stop().await?;
    eprintln!("baseline: pgbench, {CLIENTS} clients for {seconds} s");
    let raw_rate = pgbench(&env.config, CLIENTS, seconds)?;
    report(seconds, measured, raw_rate);
    env.cleanup().await?;
    Ok(())
}

/// One owner's group with CHANNELS channels, joined by CLIENTS members.
async fn seed(http: &reqwest::Client, base: &str) -> anyhow::Result<Senders> {
    eprintln!("setting up {CLIENTS} members and {CHANNELS} channels");
    let owner = register(http, base, "bench_owner").await?;
    let (group_id, channels) =
        create_group(http, base, &owner, "Send benchmark", "channel-", CHANNELS).await?;
    let members = join_members(http, base, &group_id, "bench_sender_", CLIENTS).await?;
    Ok(Senders {
        members: Arc::new(members),
        channels: Arc::new(channels),
    })
}

/// Warm-up, then the peak (closed loop) and paced (open loop) phases.
async fn measure_gateway(
    http: &reqwest::Client,
    base: &str,
    senders: &Senders,
    seconds: u64,
) -> anyhow::Result<Measured> {
    let phase = Duration::from_secs(seconds);
    eprintln!("warming up");
    run_closed_loop(http, base, senders, Duration::from_secs(2)).await?;

    eprintln!("peak: {CLIENTS} closed-loop clients for {seconds} s");
    let (sent, elapsed, peak_latency) = run_closed_loop(http, base, senders, phase).await?;
    let peak_rate = sent as f64 / elapsed.as_secs_f64();

    let paced_rate = peak_rate / 2.0;
    eprintln!("paced: {paced_rate:.0} sends/s for {seconds} s");
    let paced_latency = run_paced(http, base, senders, paced_rate, phase).await?;
    Ok(Measured {
        sent,
        peak_rate,
        peak_latency,
        paced_rate,
        paced_latency,
    })
}

fn report(seconds: u64, mut measured: Measured, raw_rate: f64) {
    println!(
        "| measurement ({CLIENTS} clients, {CHANNELS} channels, {seconds} s each) | rate | p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|");
    row(
        &format!("peak: closed loop ({} sends)", measured.sent),
        measured.peak_rate,
        &mut measured.peak_latency,
    );
    row(
        "paced at half the peak rate",
        measured.paced_rate,
        &mut measured.paced_latency,
    );
    println!("| baseline: pgbench, same transaction | {raw_rate:.0}/s | | | |");
    println!(
        "\nsends through the gateway / raw Postgres rate: {:.0}%",
        100.0 * measured.peak_rate / raw_rate
    );
}

fn row(name: &str, rate: f64, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let p = |q: f64| samples[((samples.len().max(1) - 1) as f64 * q).round() as usize];
    if samples.is_empty() {
        println!("| {name} | {rate:.0}/s | | | |");
        return;
    }
    println!(
        "| {name} | {rate:.0}/s | {} | {} | {} |",
        ms(p(0.5)),
        ms(p(0.99)),
        ms(p(1.0))
    );
}
