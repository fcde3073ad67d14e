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
use messenger_proto::messages::v1::{MessageCreated, MessagesEvent};
use messenger_testkit::TestEnv;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{InProcessFleet, create_group, join_members, register, wait_ready};

mod support;

const CLIENTS: usize = 16;
const CHANNELS: usize = 16;

/// Who sends, and where: the members' tokens and the group's channels,
/// shared with every sending task.
struct Senders {
    members: Arc<Vec<String>>,
    channels: Arc<Vec<String>>,
}

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
    let raw_rate = pgbench(&env.config, seconds)?;
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

/// Each member sends, waits for the answer, sends again, until `phase`
/// ends. Returns the number of sends, the time taken and each latency.
async fn run_closed_loop(
    http: &reqwest::Client,
    base: &str,
    senders: &Senders,
    phase: Duration,
) -> anyhow::Result<(usize, Duration, Vec<Duration>)> {
    let started = Instant::now();
    let deadline = started + phase;
    let mut clients = Vec::new();
    for client in 0..senders.members.len() {
        let (http, base, members, channels) = (
            http.clone(),
            base.to_owned(),
            senders.members.clone(),
            senders.channels.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = client;
            while Instant::now() < deadline {
                let channel = &channels[i % channels.len()];
                let sent_at = Instant::now();
                send(&http, &base, &members[client], channel, i).await?;
                latencies.push(sent_at.elapsed());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await??);
    }
    Ok((latencies.len(), started.elapsed(), latencies))
}

/// Sends at a fixed rate whatever the answers take.
async fn run_paced(
    http: &reqwest::Client,
    base: &str,
    senders: &Senders,
    rate: f64,
    phase: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let mut sends = Vec::new();
    let mut i = 0usize;
    loop {
        let due = started + interval.mul_f64(i as f64);
        if due >= started + phase {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let (http, base, members, channels) = (
            http.clone(),
            base.to_owned(),
            senders.members.clone(),
            senders.channels.clone(),
        );
        sends.push(tokio::spawn(async move {
            let member = &members[i % members.len()];
            send(&http, &base, member, &channels[i % channels.len()], i).await?;
            anyhow::Ok(due.elapsed())
        }));
        i += 1;
    }
    let mut latencies = Vec::with_capacity(sends.len());
    for send in sends {
        latencies.push(send.await??);
    }
    Ok(latencies)
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    channel: &str,
    i: usize,
) -> anyhow::Result<()> {
    http.post(format!("{base}/api/v1/channels/{channel}/messages"))
        .bearer_auth(token)
        .json(&json!({"content": format!("benchmark message number {i}, about sixty characters long")}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// The transaction a send commits, as pgbench script; returns its rate.
fn pgbench(config: &Config, seconds: u64) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join(format!("send-bench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        format!(
            r#"\set ch random(10, 25)
\set author random(10, 25)
BEGIN;
INSERT INTO channel_state (channel_id, group_id, last_seq)
  VALUES (('00000000-0000-0000-0000-0000000000' || :ch)::uuid, '00000000-0000-0000-0000-0000000000ff', 1)
  ON CONFLICT (channel_id) DO UPDATE SET last_seq = channel_state.last_seq + 1, updated_at = now()
  RETURNING last_seq \gset
INSERT INTO messages (id, channel_id, group_id, seq, author_id, kind, content, mention_ids, created_at)
  VALUES (gen_random_uuid(), ('00000000-0000-0000-0000-0000000000' || :ch)::uuid,
          '00000000-0000-0000-0000-0000000000ff', :last_seq,
          ('00000000-0000-0000-0000-0000000001' || :author)::uuid, 'text',
          'benchmark message number 12345, about sixty characters long', '{{}}', now());
INSERT INTO message_reads (channel_id, user_id, last_read_seq, last_message_id)
  VALUES (('00000000-0000-0000-0000-0000000000' || :ch)::uuid,
          ('00000000-0000-0000-0000-0000000001' || :author)::uuid, :last_seq, gen_random_uuid())
  ON CONFLICT (channel_id, user_id) DO UPDATE
    SET last_read_seq = EXCLUDED.last_read_seq, last_message_id = EXCLUDED.last_message_id, updated_at = now()
    WHERE message_reads.last_read_seq < EXCLUDED.last_read_seq;
INSERT INTO outbox (event_id, topic, partition_key, event_type, payload)
  VALUES (gen_random_uuid(), '{topic}', 'key', '{event_type}',
          decode(repeat('ab', 300), 'hex'));
COMMIT;
"#,
            topic = MessagesEvent::TOPIC,
            event_type = MessageCreated::EVENT_TYPE,
        ),
    )?;
    let db = &config.database;
    let output = std::process::Command::new("pgbench")
        .env("PGOPTIONS", "-c search_path=messages,public")
        .env("PGPASSWORD", db.password.expose())
        .args(["-h", &db.host, "-p", &db.port.to_string(), "-U", &db.user])
        .args(["-n", "-c", &CLIENTS.to_string(), "-j", "2"])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(&db.name)
        .output()?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|tps| tps.parse().ok())
        })
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output: {stdout}"))
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
