//! `--targets`: how fast the whole path runs against what its stages can
//! do alone, every number measured in the same run on the same machine:
//!
//! 1. send-only peak: 16 closed-loop clients posting through REST (no
//!    receiving sockets);
//! 2. fan-out-only peak: frames published into Redis by the fan-out's own
//!    code as fast as `--receivers` sockets per room take them (at most 50
//!    messages in flight);
//! 3. end to end through REST and the broker, for `--sustain` seconds at
//!    half the lower of the two peaks, with `--receivers` and then 10
//!    receivers per room; each with the fleet's per-stage timings;
//! 4. baselines, the fleet stopped: pgbench running the transaction a send
//!    commits, and raw Redis pub/sub to as many subscribers.

use crate::cpu::CpuSample;
use crate::delivery::{Delivered, Source, Users, deliver, redis_baseline};
use crate::support::sends::{Senders, pgbench, run_closed_loop};
use crate::{Args, Fleet};
use messenger_gateway::realtime::store::Store;
use messenger_testkit::TestEnv;
use std::sync::Arc;
use std::time::Duration;

/// Closed-loop REST clients of the send-only peak (as `--bench send`).
const SENDERS: usize = 16;
/// Messages in flight of the fan-out-only peak.
const WINDOW: usize = 50;
/// The second sustained run's receivers per room.
const FEW_RECEIVERS: usize = 10;

/// The targets, as ratios.
const END_TO_END_SHARE: f64 = 0.5;
const END_TO_END_P99_MS: f64 = 100.0;
const SEND_SHARE_OF_PGBENCH: f64 = 1.0;
const FAN_OUT_SHARE_OF_REDIS: f64 = 0.75;
const FAN_OUT_P99_MS: f64 = 25.0;

struct Sustained {
    receivers: usize,
    delivered: Delivered,
}

pub async fn run(
    fleet: Fleet,
    env: &TestEnv,
    http: &reqwest::Client,
    users: &Users,
    store: &Store,
    args: &Args,
) -> anyhow::Result<()> {
    let send_peak = send_only_peak(&fleet, http, users, args.seconds).await?;
    eprintln!(
        "fan-out-only peak: {} rooms x {} receivers for {} s",
        args.rooms, args.receivers, args.seconds
    );
    let source = Source::RedisWindow(WINDOW, store);
    let fan_out = deliver(&fleet.base, http, users, args.seconds, source).await?;
    fan_out.report_cpu();
    let lower = send_peak.min(fan_out.messages_per_second());
    let rate = (lower * END_TO_END_SHARE).floor().max(1.0);
    let mut sustained = Vec::new();
    for receivers in [args.receivers, FEW_RECEIVERS] {
        eprintln!(
            "end to end: {rate:.0} messages/s x {} rooms x {receivers} receivers for {} s",
            args.rooms, args.sustain
        );
        let before = http.get(&fleet.metrics).send().await?.text().await?;
        let delivered = deliver(
            &fleet.base,
            http,
            &users.first(receivers),
            args.sustain,
            Source::Rest(rate),
        )
        .await?;
        let after = http.get(&fleet.metrics).send().await?.text().await?;
        delivered.report_cpu();
        crate::support::stages::report(&before, &after);
        sustained.push(Sustained {
            receivers,
            delivered,
        });
    }
    // The baselines get the machine to themselves.
    drop(fleet);
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!(
        "baseline: pgbench, {SENDERS} clients for {} s",
        args.seconds
    );
    let pgbench_rate = pgbench(&env.config, SENDERS, args.seconds)?;
    eprintln!("baseline: raw Redis pub/sub");
    let raw_redis = redis_baseline(
        &env.config.redis.url(),
        args.rooms,
        args.receivers,
        fan_out.sent.max(1000),
    )
    .await?;
    report(&Measured {
        send_peak,
        pgbench_rate,
        fan_out,
        raw_redis,
        rate,
        sustained,
    });
    Ok(())
}

/// Messages/s that `SENDERS` closed-loop clients get through REST.
async fn send_only_peak(
    fleet: &Fleet,
    http: &reqwest::Client,
    users: &Users,
    seconds: u64,
) -> anyhow::Result<f64> {
    let senders = Senders {
        members: Arc::new(users.members.iter().take(SENDERS).cloned().collect()),
        channels: Arc::new(users.channels.clone()),
    };
    eprintln!("send-only peak: warming up");
    run_closed_loop(http, &fleet.base, &senders, Duration::from_secs(2)).await?;
    eprintln!("send-only peak: {SENDERS} closed-loop clients for {seconds} s");
    let cpu = CpuSample::take();
    let (sent, elapsed, _) =
        run_closed_loop(http, &fleet.base, &senders, Duration::from_secs(seconds)).await?;
    cpu.report(&CpuSample::take(), sent, elapsed.as_secs_f64());
    // Let the relay and the fan-out drain what the flood left.
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(sent as f64 / elapsed.as_secs_f64())
}

struct Measured {
    send_peak: f64,
    pgbench_rate: f64,
    fan_out: Delivered,
    raw_redis: f64,
    /// The sustained runs' rate: half the lower peak.
    rate: f64,
    sustained: Vec<Sustained>,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn report(m: &Measured) {
    let send_share = m.send_peak / m.pgbench_rate;
    let fan_out_share = m.fan_out.per_second / m.raw_redis;
    let fan_out_p99 = m.fan_out.percentile_ms(0.99).unwrap_or(f64::INFINITY);
    println!("| measurement | value | target | |");
    println!("|---|---|---|---|");
    println!(
        "| send-only peak, {SENDERS} closed-loop REST clients | {:.0}/s | | |",
        m.send_peak
    );
    println!(
        "| baseline: pgbench, the same transaction | {:.0}/s | | |",
        m.pgbench_rate
    );
    println!(
        "| sends / pgbench | {:.2} × | ≥ {SEND_SHARE_OF_PGBENCH:.1} × | {} |",
        send_share,
        verdict(send_share >= SEND_SHARE_OF_PGBENCH)
    );
    println!(
        "| fan-out-only peak, {} receivers per room | {:.0} messages/s = {:.0} deliveries/s, {} lost, p50 / p99 {} / {} | | |",
        m.fan_out.receivers,
        m.fan_out.messages_per_second(),
        m.fan_out.per_second,
        m.fan_out.lost(),
        m.fan_out.percentile(0.5),
        m.fan_out.percentile(0.99),
    );
    println!(
        "| baseline: raw Redis pub/sub | {:.0} deliveries/s | | |",
        m.raw_redis
    );
    println!(
        "| fan-out / raw Redis | {:.0} % | ≥ {:.0} % | {} |",
        100.0 * fan_out_share,
        100.0 * FAN_OUT_SHARE_OF_REDIS,
        verdict(fan_out_share >= FAN_OUT_SHARE_OF_REDIS)
    );
    println!(
        "| fan-out p99 at its peak | {fan_out_p99:.1} ms | ≤ {FAN_OUT_P99_MS:.0} ms | {} |",
        verdict(fan_out_p99 <= FAN_OUT_P99_MS)
    );
    let lower = m.send_peak.min(m.fan_out.messages_per_second());
    for run in &m.sustained {
        let d = &run.delivered;
        let p99 = d.percentile_ms(0.99).unwrap_or(f64::INFINITY);
        let kept_up = d.send_rate >= 0.98 * m.rate && d.failed == 0;
        println!(
            "| end to end, {} receivers per room: {:.0} sent/s ({:.0} % of the lower peak {lower:.0}/s), {} failed, {} of {} delivered | p50 / p95 / p99 {} / {} / {} | ≥ {:.0} %, 0 lost, p99 ≤ {END_TO_END_P99_MS:.0} ms | {} |",
            run.receivers,
            d.send_rate,
            100.0 * d.send_rate / lower,
            d.failed,
            d.delivered,
            d.expected,
            d.percentile(0.5),
            d.percentile(0.95),
            d.percentile(0.99),
            100.0 * END_TO_END_SHARE,
            verdict(kept_up && d.lost() == 0 && p99 <= END_TO_END_P99_MS)
        );
    }
}
