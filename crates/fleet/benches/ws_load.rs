//! WebSocket load tool: memory per idle connection, and send-to-deliver
//! latency and deliveries/s through the whole fleet, against raw Redis
//! pub/sub to the same number of subscribers measured in the same run.
//!
//!     ./dev infra && cargo bench -p messenger-fleet --bench ws_load -- \
//!         [--idle 10000] [--rooms 10] [--receivers 100] [--rate 1000] \\
//!         [--e2e-rate 50] [--seconds 10] [--e2e-only]
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

use futures::{SinkExt, StreamExt};
use messenger_gateway::realtime::store::Store;
use messenger_platform::CancellationToken;
use messenger_testkit::TestEnv;
use support::{Fleet, create_group, join_members, register, wait_ready};

mod support;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

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
            _ => {}
        }
    }
    parsed
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket and waits for `connected`.
async fn open(base: &str, token: &str) -> anyhow::Result<Socket> {
    let url = format!("{}/ws?token={token}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"connected\"") => return Ok(socket),
            Some(Ok(_)) => continue,
            other => anyhow::bail!("no connected frame: {other:?}"),
        }
    }
}

/// The load group's channels, and its members' tokens.
struct Users {
    channels: Vec<String>,
    members: Vec<String>,
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
    let fleet = Fleet::start(&env)?;
    let http = reqwest::Client::new();
    wait_ready(&http, &fleet.base).await?;
    let started = Instant::now();
    let users = seed(&http, &fleet.base, &args).await?;
    if args.e2e_only {
        let e2e = measure_end_to_end(&fleet, &http, &users, &args).await?;
        report_end_to_end(&e2e);
        drop(fleet);
        env.cleanup().await?;
        return Ok(());
    }
    let idle = measure_idle(&fleet, &users.members, args.idle).await?;
    let e2e = measure_end_to_end(&fleet, &http, &users, &args).await?;
    let store = Store::new(
        redis::Client::open(env.config.redis.url())?,
        1000,
        &env.config.kafka.topic_prefix,
    );
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
    let delivered = deliver(fleet, http, users, args, Source::Rest(args.e2e_rate)).await?;
    let after = http.get(&fleet.metrics).send().await?.text().await?;
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
    deliver(fleet, http, users, args, Source::Redis(args.rate, store)).await
}

/// Phase 3: raw Redis pub/sub to as many subscribers as phase 2 had.
async fn measure_baseline(env: &TestEnv, args: &Args) -> anyhow::Result<f64> {
    eprintln!(
        "baseline: raw Redis pub/sub to {} subscribers",
        args.rooms * args.receivers
    );
    redis_baseline(
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

/// The send time (µs since the epoch of this run) carried in a frame.
fn sent_at(frame: &str) -> Option<u64> {
    if !frame.contains("\"new_message\"") {
        return None;
    }
    let start = frame.find("t=")? + 2;
    let digits: String = frame[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

enum Source<'a> {
    Rest(f64),
    Redis(f64, &'a Store),
}

impl Source<'_> {
    /// Messages/s offered.
    fn rate(&self) -> f64 {
        match self {
            Source::Rest(rate) | Source::Redis(rate, _) => *rate,
        }
    }
}

struct Delivered {
    sent: usize,
    failed: usize,
    offered: f64,
    send_rate: f64,
    expected: u64,
    delivered: usize,
    per_second: f64,
    latencies_us: Vec<u32>,
}

impl Delivered {
    fn percentile(&self, q: f64) -> String {
        let samples = &self.latencies_us;
        samples
            .get(((samples.len().max(1) - 1) as f64 * q).round() as usize)
            .map(|us| format!("{:.1} ms", *us as f64 / 1000.0))
            .unwrap_or_else(|| "-".into())
    }
}

/// Opens `receivers` sockets per channel, sends at the source's rate for
/// `seconds`, and collects every receiver's latencies.
async fn deliver(
    fleet: &Fleet,
    http: &reqwest::Client,
    users: &Users,
    args: &Args,
    source: Source<'_>,
) -> anyhow::Result<Delivered> {
    // Send times are carried as µs since this instant: one clock for both
    // ends.
    let epoch = Instant::now();
    let receivers = Receivers::open(&fleet.base, users, epoch).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = send_all(&fleet.base, http, users, args, &source, epoch).await?;
    let expected = (sent.total - sent.failed) as u64 * args.receivers as u64;
    receivers.wait_for(expected).await;
    let elapsed = sent.started.elapsed();
    let latencies_us = receivers.finish().await;
    Ok(Delivered {
        sent: sent.total,
        failed: sent.failed,
        offered: source.rate(),
        send_rate: sent.total as f64 / sent.elapsed.as_secs_f64(),
        expected,
        delivered: latencies_us.len(),
        per_second: latencies_us.len() as f64 / elapsed.as_secs_f64(),
        latencies_us,
    })
}

/// Every receiving socket of a delivery phase, each read by its own task
/// until stopped.
struct Receivers {
    delivered: Arc<AtomicU64>,
    latencies: mpsc::UnboundedReceiver<Vec<u32>>,
    stop: CancellationToken,
    readers: Vec<JoinHandle<()>>,
}

impl Receivers {
    /// Opens a socket for every member in every channel, joined to it.
    async fn open(base: &str, users: &Users, epoch: Instant) -> anyhow::Result<Receivers> {
        let delivered = Arc::new(AtomicU64::new(0));
        let (latency_tx, latencies) = mpsc::unbounded_channel::<Vec<u32>>();
        let stop = CancellationToken::new();
        let mut readers = Vec::new();
        for channel in &users.channels {
            for token in &users.members {
                let socket = join(base, token, channel).await?;
                let (delivered, latency_tx, stop) =
                    (delivered.clone(), latency_tx.clone(), stop.clone());
                readers.push(tokio::spawn(async move {
                    let latencies = read_frames(socket, epoch, &delivered, &stop).await;
                    let _ = latency_tx.send(latencies);
                }));
            }
        }
        Ok(Receivers {
            delivered,
            latencies,
            stop,
            readers,
        })
    }

    /// Waits until `expected` deliveries arrived, a minute at most.
    async fn wait_for(&self, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the readers and returns every latency, sorted.
    async fn finish(mut self) -> Vec<u32> {
        self.stop.cancel();
        let mut latencies_us = Vec::new();
        while let Some(batch) = self.latencies.recv().await {
            latencies_us.extend(batch);
        }
        for reader in self.readers {
            let _ = reader.await;
        }
        latencies_us.sort_unstable();
        latencies_us
    }
}

/// Opens a socket and joins it to `channel`.
async fn join(base: &str, token: &str, channel: &str) -> anyhow::Result<Socket> {
    let mut socket = open(base, token).await?;
    socket
        .send(Message::Text(
            json!({"type": "join_room", "data": {"room_id": channel}})
                .to_string()
                .into(),
        ))
        .await?;
    Ok(socket)
}

/// Reads one socket until it ends or `stop`: answers heartbeats, as a
/// client must, and returns each `new_message`'s latency in µs.
async fn read_frames(
    mut socket: Socket,
    epoch: Instant,
    delivered: &AtomicU64,
    stop: &CancellationToken,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            next = socket.next() => next,
        };
        let Some(Ok(Message::Text(text))) = next else {
            break;
        };
        if text.contains("\"heartbeat\"") {
            let _ = socket.send(pong(&text)).await;
            continue;
        }
        if let Some(sent_us) = sent_at(&text) {
            let now_us = epoch.elapsed().as_micros() as u64;
            latencies.push(now_us.saturating_sub(sent_us) as u32);
            delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
    latencies
}

/// The answer to a heartbeat frame, echoing its number.
fn pong(heartbeat: &str) -> Message {
    let n = serde_json::from_str::<Value>(heartbeat)
        .ok()
        .map(|f| f["data"]["n"].clone());
    let pong = json!({"type": "pong", "data": {"n": n}}).to_string();
    Message::Text(pong.into())
}

/// How a phase's sending went.
struct Sent {
    total: usize,
    failed: usize,
    started: Instant,
    /// Until the last send was answered.
    elapsed: Duration,
}

/// Sends `rate × seconds` messages on a fixed schedule (open loop), over
/// the channels in turn, each carrying its send time.
async fn send_all(
    base: &str,
    http: &reqwest::Client,
    users: &Users,
    args: &Args,
    source: &Source<'_>,
    epoch: Instant,
) -> anyhow::Result<Sent> {
    let rate = source.rate();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let sending = Instant::now();
    let total = (rate * args.seconds as f64) as usize;
    let mut failed = 0;
    let mut sends = Vec::new();
    for i in 0..total {
        tokio::time::sleep_until((sending + interval.mul_f64(i as f64)).into()).await;
        let channel = users.channels[i % users.channels.len()].clone();
        let content = format!("t={} load message", epoch.elapsed().as_micros());
        match source {
            Source::Rest(_) => {
                let token = users.members[i % users.members.len()].clone();
                sends.push(post_message(http, base, token, channel, content));
            }
            Source::Redis(_, store) => {
                if !publish(store, &channel, &content).await? {
                    failed += 1;
                }
            }
        }
    }
    for send in sends {
        if !send.await.unwrap_or(false) {
            failed += 1;
        }
    }
    Ok(Sent {
        total,
        failed,
        started: sending,
        elapsed: sending.elapsed(),
    })
}

/// Posts a message in the background; the task answers whether it was
/// accepted.
fn post_message(
    http: &reqwest::Client,
    base: &str,
    token: String,
    channel: String,
    content: String,
) -> JoinHandle<bool> {
    let (http, base) = (http.clone(), base.to_owned());
    tokio::spawn(async move {
        http.post(format!("{base}/api/v1/channels/{channel}/messages"))
            .bearer_auth(token)
            .json(&json!({"content": content}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .is_ok()
    })
}

/// Publishes a `new_message` frame into Redis exactly as the fan-out does;
/// false if Redis refused it.
async fn publish(store: &Store, channel: &str, content: &str) -> anyhow::Result<bool> {
    let room = messenger_gateway::realtime::rooms::Room::Conversation(channel.parse()?);
    let data = json!({"id": uuid::Uuid::now_v7(), "channel_id": channel, "content": content});
    let (head, tail) =
        messenger_gateway::realtime::frames::sequenced_parts("new_message", channel, &data);
    let frame = messenger_gateway::realtime::store::Outgoing { room, head, tail };
    Ok(store
        .publish(&uuid::Uuid::now_v7().to_string(), &[frame])
        .await
        .is_ok())
}

/// Deliveries/s of plain Redis pub/sub: `rooms` channels with `receivers`
/// subscriber connections each, `messages` published as fast as possible.
async fn redis_baseline(
    url: &str,
    rooms: usize,
    receivers: usize,
    messages: usize,
) -> anyhow::Result<f64> {
    let client = redis::Client::open(url)?;
    let received = Arc::new(AtomicU64::new(0));
    let prefix = format!("bench:{}", uuid::Uuid::now_v7());
    let mut tasks = Vec::new();
    for room in 0..rooms {
        for _ in 0..receivers {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(format!("{prefix}:{room}")).await?;
            let received = received.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = pubsub.into_on_message();
                while stream.next().await.is_some() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let payload = "x".repeat(600);
    let expected = (messages * receivers) as u64;
    let started = Instant::now();
    for i in 0..messages {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{prefix}:{}", i % rooms))
            .arg(&payload)
            .query_async(&mut publisher)
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = received.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    for task in tasks {
        task.abort();
    }
    Ok(rate)
}
