//! WebSocket load tool: memory per idle connection, and send-to-deliver
//! latency and deliveries/s through the whole fleet, against raw Redis
//! pub/sub to the same number of subscribers measured in the same run.
//!
//!     ./dev infra && cargo bench -p messenger-fleet --bench ws_load -- \
//!         [--idle 10000] [--rooms 10] [--receivers 100] [--rate 1000] \\
//!         [--e2e-rate 50] [--seconds 10]
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
use messenger_testkit::TestEnv;
use support::{Fleet, post, register, text, wait_ready};

mod support;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
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
}

fn args() -> Args {
    let mut parsed = Args {
        idle: 10_000,
        rooms: 10,
        receivers: 100,
        rate: 1000.0,
        e2e_rate: 50.0,
        seconds: 10,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let env = TestEnv::new().await?;
    // The fleet migrates its own schemas on start.
    let fleet = Fleet::start(&env)?;
    let http = reqwest::Client::new();
    wait_ready(&http, &fleet.base).await?;
    let started = Instant::now();

    // Users: one owner, `receivers` members of one public group with
    // `rooms` channels.
    eprintln!("registering {} users", args.receivers + 1);
    let owner = register(&http, &fleet.base, "load_owner").await?;
    let group = post(
        &http,
        &fleet.base,
        &owner,
        "/api/v1/groups",
        json!({"name": "Load", "visibility": "public"}),
    )
    .await?;
    let group_id = text(&group["id"])?;
    let mut channels = vec![text(&group["default_channel_id"])?];
    for i in 1..args.rooms {
        let channel = post(
            &http,
            &fleet.base,
            &owner,
            &format!("/api/v1/groups/{group_id}/channels"),
            json!({"name": format!("room-{i}")}),
        )
        .await?;
        channels.push(text(&channel["id"])?);
    }
    let mut members = Vec::new();
    for i in 0..args.receivers {
        let token = register(&http, &fleet.base, &format!("load_member_{i}")).await?;
        post(
            &http,
            &fleet.base,
            &token,
            &format!("/api/v1/groups/{group_id}/members"),
            json!({}),
        )
        .await?;
        members.push(token);
    }

    // Phase 1: idle sockets.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = fleet.rss()?;
    eprintln!("opening {} idle sockets", args.idle);
    let mut idle = Vec::with_capacity(args.idle);
    let opened = Instant::now();
    for chunk in 0..args.idle.div_ceil(200) {
        let batch = (chunk * 200..((chunk + 1) * 200).min(args.idle))
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
    let per_socket = after.saturating_sub(before) as f64 / args.idle.max(1) as f64;
    // Keep reading so the idle sockets answer heartbeats, then close them.
    for socket in &mut idle {
        let _ = socket.close(None).await;
    }
    drop(idle);

    // Phase 2: delivery, end to end (REST → outbox → Kafka → fan-out →
    // Redis → sockets), then the gateway's fan-out stage alone (frames
    // published into Redis exactly as the fan-out does, at the full rate).
    eprintln!(
        "delivery end to end: {} rooms x {} receivers, {} messages/s for {} s",
        args.rooms, args.receivers, args.e2e_rate, args.seconds
    );
    let e2e = deliver(
        &fleet,
        &http,
        &members,
        &channels,
        &args,
        Source::Rest(args.e2e_rate),
    )
    .await?;
    eprintln!(
        "delivery from Redis: {} rooms x {} receivers, {} messages/s for {} s",
        args.rooms, args.receivers, args.rate, args.seconds
    );
    let store = messenger_gateway::realtime::store::Store::new(
        redis::Client::open(env.config.redis.url())?,
        1000,
        &env.config.kafka.topic_prefix,
    );
    let stage = deliver(
        &fleet,
        &http,
        &members,
        &channels,
        &args,
        Source::Redis(args.rate, &store),
    )
    .await?;

    // Phase 3: raw Redis pub/sub baseline.
    eprintln!(
        "baseline: raw Redis pub/sub to {} subscribers",
        args.rooms * args.receivers
    );
    let raw = redis_baseline(
        &env.config.redis.url(),
        args.rooms,
        args.receivers,
        (args.rate * args.seconds as f64) as usize,
    )
    .await?;

    let total_sent = (args.rate * args.seconds as f64) as usize;
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| idle sockets | {} (fleet RSS {:.1} MiB → {:.1} MiB) |",
        args.idle,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    println!(
        "| memory per idle socket | {:.1} KiB |",
        per_socket / 1024.0
    );
    for (label, result) in [
        ("end to end via REST and Kafka", &e2e),
        ("fan-out stage from Redis", &stage),
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
    eprintln!("total {:.0?}", started.elapsed());
    drop(fleet);
    env.cleanup().await?;
    Ok(())
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
    Redis(f64, &'a messenger_gateway::realtime::store::Store),
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
    members: &[String],
    channels: &[String],
    args: &Args,
    source: Source<'_>,
) -> anyhow::Result<Delivered> {
    let epoch = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let (latency_tx, mut latency_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u32>>();
    let stop = messenger_platform::CancellationToken::new();
    let mut readers = Vec::new();
    for channel in channels {
        for token in members {
            let mut socket = open(&fleet.base, token).await?;
            socket
                .send(Message::Text(
                    json!({"type": "join_room", "data": {"room_id": channel}})
                        .to_string()
                        .into(),
                ))
                .await?;
            let (delivered, latency_tx, stop) =
                (delivered.clone(), latency_tx.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
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
                        let n = serde_json::from_str::<Value>(&text)
                            .ok()
                            .map(|f| f["data"]["n"].clone());
                        let pong = json!({"type": "pong", "data": {"n": n}}).to_string();
                        let _ = socket.send(Message::Text(pong.into())).await;
                        continue;
                    }
                    if let Some(sent_us) = sent_at(&text) {
                        let now_us = epoch.elapsed().as_micros() as u64;
                        latencies.push(now_us.saturating_sub(sent_us) as u32);
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = latency_tx.send(latencies);
            }));
        }
    }
    drop(latency_tx);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rate = match source {
        Source::Rest(rate) | Source::Redis(rate, _) => rate,
    };
    let interval = Duration::from_secs_f64(1.0 / rate);
    let sending = Instant::now();
    let total = (rate * args.seconds as f64) as usize;
    let mut failed = 0;
    let mut sends = Vec::new();
    for i in 0..total {
        tokio::time::sleep_until((sending + interval.mul_f64(i as f64)).into()).await;
        let channel = channels[i % channels.len()].clone();
        let content = format!("t={} load message", epoch.elapsed().as_micros());
        match &source {
            Source::Rest(_) => {
                let (http, base) = (http.clone(), fleet.base.clone());
                let token = members[i % members.len()].clone();
                sends.push(tokio::spawn(async move {
                    http.post(format!("{base}/api/v1/channels/{channel}/messages"))
                        .bearer_auth(token)
                        .json(&json!({"content": content}))
                        .send()
                        .await
                        .and_then(|r| r.error_for_status())
                        .is_ok()
                }));
            }
            Source::Redis(_, store) => {
                let room = messenger_gateway::realtime::rooms::Room::Conversation(channel.parse()?);
                let data =
                    json!({"id": uuid::Uuid::now_v7(), "channel_id": channel, "content": content});
                let (head, tail) = messenger_gateway::realtime::frames::sequenced_parts(
                    "new_message",
                    &channel,
                    &data,
                );
                let frame = messenger_gateway::realtime::store::Outgoing { room, head, tail };
                if store
                    .publish(&uuid::Uuid::now_v7().to_string(), &[frame])
                    .await
                    .is_err()
                {
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
    let send_elapsed = sending.elapsed();
    let expected = (total - failed) as u64 * args.receivers as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = sending.elapsed();
    stop.cancel();
    let mut latencies_us = Vec::new();
    while let Some(batch) = latency_rx.recv().await {
        latencies_us.extend(batch);
    }
    for reader in readers {
        let _ = reader.await;
    }
    latencies_us.sort_unstable();
    Ok(Delivered {
        sent: total,
        failed,
        offered: rate,
        send_rate: total as f64 / send_elapsed.as_secs_f64(),
        expected,
        delivered: latencies_us.len(),
        per_second: latencies_us.len() as f64 / elapsed.as_secs_f64(),
        latencies_us,
    })
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
