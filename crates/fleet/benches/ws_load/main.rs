//! WebSocket load tool: memory per idle connection, and send-to-deliver
//! latency and deliveries/s through the whole fleet, against raw Redis
//! pub/sub to the same number of subscribers measured in the same run.
//!
//!     ./dev infra && cargo bench -p messenger-fleet --bench ws_load -- \
//!         [--idle 10000] [--rooms 10] [--receivers 100] [--rate 1000] \\
//!         [--e2e-rate 50] [--seconds 10] [--e2e-only]
//!     ... -- --targets [--rooms 10] [--receivers 100] [--seconds 10] [--sustain 60]
//!     ... -- --soak-minutes 30 --idle 10000 --e2e-rate R
//!
//! The fleet runs as its own process (the `messenger` binary) so its
//! resident memory can be read from /proc. Phases:
//! 1. idle: open `--idle` authenticated sockets, wait until each got
//!    `connected`, and compare the fleet's RSS before and after;
//! 2. delivery: `--rooms` channels with `--receivers` sockets each; every
//!    receiver timestamps each `new_message` (the send time travels in the
//!    content). First end to end: `--e2e-rate` messages/s posted through
//!    REST (open loop) for `--seconds`, through the outbox, the broker and
//!    the fan-out. Then the gateway's fan-out stage alone: `--rate`
//!    frames/s published into Redis by the fan-out's own code (numbered,
//!    logged, published), relayed by the gateway to every receiver;
//! 3. baseline: the same number of raw Redis subscribers on as many
//!    channels, a publisher as fast as Redis takes it.
//!
//! `--targets` and `--soak-minutes` run other phases instead: see the
//! `targets` and `soak` modules.

use delivery::{Delivered, Source, Users, deliver, open};
use messenger_gateway::realtime::store::Store;
use messenger_testkit::TestEnv;
use std::time::{Duration, Instant};
use support::{Fleet, create_group, join_members, register, wait_ready};

mod cpu;
mod delivery;
mod soak;
#[path = "../support/mod.rs"]
mod support;
mod targets;

#[derive(Clone)]
struct Args {
    idle: usize,
    rooms: usize,
    receivers: usize,
    /// Messages/s published into Redis for the fan-out stage.
    rate: f64,
    /// Messages/s sent through REST for the end-to-end run.
    e2e_rate: f64,
    seconds: u64,
    /// Only the end-to-end phase (for comparing brokers or settings).
    e2e_only: bool,
    /// The targets run: same-run peaks and baselines, then sustained end
    /// to end at half the lower peak (see `targets`).
    targets: bool,
    /// Seconds each sustained end-to-end run of `--targets` lasts.
    sustain: u64,
    /// Minutes of the soak (see `soak`); 0 for none.
    soak_minutes: u64,
}

fn raw_flag(name: &str) -> bool {
    std::env::args().any(|arg| arg == name)
}

fn args() -> Args {
    let mut parsed = Args {
        idle: 10_000,
        rooms: 10,
        receivers: 100,
        rate: 1000.0,
        e2e_rate: 50.0,
        seconds: 10,
        e2e_only: raw_flag("--e2e-only"),
        targets: raw_flag("--targets"),
        sustain: 60,
        soak_minutes: 0,
    };
    let raw: Vec<String> = std::env::args().collect();
    for pair in raw.windows(2) {
        let value = &pair[1];
        match pair[0].as_str() {
            "--idle" => parsed.idle = value.parse().unwrap_or(parsed.idle),
            "--rooms" => parsed.rooms = value.parse().unwrap_or(parsed.rooms),
            "--receivers" => parsed.receivers = value.parse().unwrap_or(parsed.receivers),
            "--rate" => parsed.rate = value.parse().unwrap_or(parsed.rate),
            "--e2e-rate" => parsed.e2e_rate = value.parse().unwrap_or(parsed.e2e_rate),
            "--seconds" => parsed.seconds = value.parse().unwrap_or(parsed.seconds),
            "--sustain" => parsed.sustain = value.parse().unwrap_or(parsed.sustain),
            "--soak-minutes" => parsed.soak_minutes = value.parse().unwrap_or(parsed.soak_minutes),
            _ => {}
        }
    }
    parsed
}

/// The fleet's resident memory around opening the idle sockets.
struct IdleMemory {
    before: u64,
    after: u64,
    per_socket: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let env = TestEnv::new().await?;
    // The fleet migrates its own schemas on start.
    let fleet = Fleet::start_with(&env, &soak::settings(&args))?;
    let http = reqwest::Client::new();
    wait_ready(&http, &fleet.base).await?;
    let started = Instant::now();
    let users = seed(&http, &fleet.base, &args).await?;
    let store = Store::new(
        redis::Client::open(env.config.redis.url())?,
        1000,
        &env.config.kafka.topic_prefix,
    );
    if args.targets {
        targets::run(fleet, &env, &http, &users, &store, &args).await?;
        env.cleanup().await?;
        return Ok(());
    }
    if args.soak_minutes > 0 {
        soak::run(&fleet, &http, &users, &args).await?;
        drop(fleet);
        env.cleanup().await?;
        return Ok(());
    }
    if args.e2e_only {
        let e2e = measure_end_to_end(&fleet, &http, &users, &args).await?;
        report_end_to_end(&e2e);
        drop(fleet);
        env.cleanup().await?;
        return Ok(());
    }
    let idle = measure_idle(&fleet, &users.members, args.idle).await?;
    let e2e = measure_end_to_end(&fleet, &http, &users, &args).await?;
    let stage = measure_fan_out(&fleet, &http, &users, &args, &store).await?;
    let raw = measure_baseline(&env, &args).await?;
    report(&args, &idle, &e2e, &stage, raw);
    eprintln!("total {:.0?}", started.elapsed());
    drop(fleet);
    env.cleanup().await?;
    Ok(())
}

/// One owner, `receivers` members of one public group with `rooms`
/// channels.
async fn seed(http: &reqwest::Client, base: &str, args: &Args) -> anyhow::Result<Users> {
    eprintln!("registering {} users", args.receivers + 1);
    let owner = register(http, base, "load_owner").await?;
    let (group_id, channels) =
        create_group(http, base, &owner, "Load", "room-", args.rooms).await?;
    let members = join_members(http, base, &group_id, "load_member_", args.receivers).await?;
    Ok(Users { channels, members })
}

/// Phase 1: the fleet's memory before and after `count` idle sockets are
/// open, opened 200 at a time.
async fn measure_idle(
    fleet: &Fleet,
    members: &[String],
    count: usize,
) -> anyhow::Result<IdleMemory> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = fleet.rss()?;
    eprintln!("opening {count} idle sockets");
    let mut idle = Vec::with_capacity(count);
    let opened = Instant::now();
    for chunk in 0..count.div_ceil(200) {
        let batch = (chunk * 200..((chunk + 1) * 200).min(count))
            .map(|i| open(&fleet.base, &members[i % members.len()]));
        for socket in futures::future::join_all(batch).await {
            idle.push(socket?);
        }
        if (chunk + 1) % 10 == 0 {
            eprintln!("  {} open ({:.0?})", idle.len(), opened.elapsed());
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = fleet.rss()?;
    let per_socket = after.saturating_sub(before) as f64 / count.max(1) as f64;
    // Keep reading so the idle sockets answer heartbeats, then close them.
    for socket in &mut idle {
        let _ = socket.close(None).await;
    }
    drop(idle);
    Ok(IdleMemory {
        before,
        after,
        per_socket,
    })
}

/// Phase 2a: REST → outbox → Kafka → fan-out → Redis → sockets.
async fn measure_end_to_end(
    fleet: &Fleet,
    http: &reqwest::Client,
    users: &Users,
    args: &Args,
) -> anyhow::Result<Delivered> {
    eprintln!(
        "delivery end to end: {} rooms x {} receivers, {} messages/s for {} s",
        args.rooms, args.receivers, args.e2e_rate, args.seconds
    );
    let before = http.get(&fleet.metrics).send().await?.text().await?;
    let delivered = deliver(
        &fleet.base,
        http,
        users,
        args.seconds,
        Source::Rest(args.e2e_rate),
    )
    .await?;
    let after = http.get(&fleet.metrics).send().await?.text().await?;
    delivered.report_cpu();
    support::stages::report(&before, &after);
    Ok(delivered)
}

/// Phase 2b: the gateway's fan-out stage alone, frames published into
/// Redis exactly as the fan-out does, at the full rate.
async fn measure_fan_out(
    fleet: &Fleet,
    http: &reqwest::Client,
    users: &Users,
    args: &Args,
    store: &Store,
) -> anyhow::Result<Delivered> {
    eprintln!(
        "delivery from Redis: {} rooms x {} receivers, {} messages/s for {} s",
        args.rooms, args.receivers, args.rate, args.seconds
    );
    let source = Source::Redis(args.rate, store);
    deliver(&fleet.base, http, users, args.seconds, source).await
}

/// Phase 3: raw Redis pub/sub to as many subscribers as phase 2 had.
async fn measure_baseline(env: &TestEnv, args: &Args) -> anyhow::Result<f64> {
    eprintln!(
        "baseline: raw Redis pub/sub to {} subscribers",
        args.rooms * args.receivers
    );
    delivery::redis_baseline(
        &env.config.redis.url(),
        args.rooms,
        args.receivers,
        (args.rate * args.seconds as f64) as usize,
    )
    .await
}

fn report_end_to_end(e2e: &Delivered) {
    println!(
        "end to end: {} sent at {:.0}/s (offered {:.0}/s), {} failed; {} of {} delivered, {:.0}/s; \
         send -> deliver p50 / p95 / p99 {} / {} / {}",
        e2e.sent,
        e2e.send_rate,
        e2e.offered,
        e2e.failed,
        e2e.delivered,
        e2e.expected,
        e2e.per_second,
        e2e.percentile(0.5),
        e2e.percentile(0.95),
        e2e.percentile(0.99)
    );
}

fn report(args: &Args, idle: &IdleMemory, e2e: &Delivered, stage: &Delivered, raw: f64) {
    let total_sent = (args.rate * args.seconds as f64) as usize;
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| idle sockets | {} (fleet RSS {:.1} MiB → {:.1} MiB) |",
        args.idle,
        idle.before as f64 / 1048576.0,
        idle.after as f64 / 1048576.0
    );
    println!(
        "| memory per idle socket | {:.1} KiB |",
        idle.per_socket / 1024.0
    );
    for (label, result) in [
        ("end to end via REST and Kafka", e2e),
        ("fan-out stage from Redis", stage),
    ] {
        println!(
            "| {label}: messages | {} sent at {:.0}/s offered {:.0}/s, {} failed |",
            result.sent, result.send_rate, result.offered, result.failed
        );
        println!(
            "| {label}: deliveries | {} of {} expected, {:.0}/s |",
            result.delivered, result.expected, result.per_second
        );
        println!(
            "| {label}: send → deliver p50 / p95 / p99 | {} / {} / {} |",
            result.percentile(0.5),
            result.percentile(0.95),
            result.percentile(0.99)
        );
    }
    println!("| baseline: raw Redis pub/sub deliveries/s ({total_sent} messages) | {raw:.0}/s |");
    println!(
        "| fan-out stage deliveries/s as a share of raw Redis pub/sub | {:.0} % |",
        100.0 * stage.per_second / raw
    );
}
