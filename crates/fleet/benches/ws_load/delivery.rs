//! Receiving sockets and the senders that feed them: through REST, or
//! straight into Redis with the fan-out's own code.

use crate::cpu::CpuSample;
use futures::{SinkExt, StreamExt};
use messenger_gateway::realtime::store::Store;
use messenger_platform::CancellationToken;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket and waits for `connected`.
pub async fn open(base: &str, token: &str) -> anyhow::Result<Socket> {
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
#[derive(Clone)]
pub struct Users {
    pub channels: Vec<String>,
    pub members: Vec<String>,
}

impl Users {
    /// The same channels with only the first `receivers` members.
    pub fn first(&self, receivers: usize) -> Users {
        Users {
            channels: self.channels.clone(),
            members: self.members.iter().take(receivers).cloned().collect(),
        }
    }
}

/// Where a delivery phase's messages come from.
pub enum Source<'a> {
    /// Posted through REST at this many messages/s (open loop).
    Rest(f64),
    /// Published into Redis by the fan-out's code at this many messages/s.
    Redis(f64, &'a Store),
    /// Published into Redis as fast as the receivers take them: at most
    /// this many messages not yet delivered to every receiver.
    RedisWindow(usize, &'a Store),
}

impl Source<'_> {
    /// Messages/s offered; 0 for "as fast as it goes".
    fn rate(&self) -> f64 {
        match self {
            Source::Rest(rate) | Source::Redis(rate, _) => *rate,
            Source::RedisWindow(..) => 0.0,
        }
    }
}

/// What one delivery phase measured.
pub struct Delivered {
    pub sent: usize,
    pub failed: usize,
    pub offered: f64,
    pub send_rate: f64,
    pub receivers: usize,
    pub expected: u64,
    pub delivered: usize,
    /// Deliveries/s, from the first send to the last delivery.
    pub per_second: f64,
    pub latencies_us: Vec<u32>,
    /// CPU by process from the first send to the end of the wait for
    /// deliveries, and how long that was.
    pub cpu: (CpuSample, CpuSample, Duration),
}

impl Delivered {
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        let samples = &self.latencies_us;
        samples
            .get(((samples.len().max(1) - 1) as f64 * q).round() as usize)
            .map(|us| *us as f64 / 1000.0)
    }

    pub fn percentile(&self, q: f64) -> String {
        self.percentile_ms(q)
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_else(|| "-".into())
    }

    /// Messages delivered to every receiver, per second.
    pub fn messages_per_second(&self) -> f64 {
        self.per_second / self.receivers.max(1) as f64
    }

    /// Prints the CPU each process spent per message sent.
    pub fn report_cpu(&self) {
        let (before, after, took) = &self.cpu;
        before.report(after, self.sent, took.as_secs_f64());
    }

    /// Deliveries that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered as u64)
    }
}

/// Opens a socket per member in every channel, sends from `source` for
/// `seconds`, and collects every receiver's latencies.
pub async fn deliver(
    base: &str,
    http: &reqwest::Client,
    users: &Users,
    seconds: u64,
    source: Source<'_>,
) -> anyhow::Result<Delivered> {
    // Send times are carried as µs since this instant: one clock for both
    // ends.
    let epoch = Instant::now();
    let receivers = Receivers::open(base, users, epoch).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sending = Sending {
        base,
        http,
        users,
        seconds,
        epoch,
        delivered: &receivers.delivered,
    };
    let cpu_before = CpuSample::take();
    let sent = sending.run(&source).await?;
    let expected = (sent.total - sent.failed) as u64 * users.members.len() as u64;
    let last_delivery = receivers.wait_for(expected).await;
    let elapsed = last_delivery.saturating_duration_since(sent.started);
    let cpu = (cpu_before, CpuSample::take(), sent.started.elapsed());
    let latencies_us = receivers.finish().await;
    Ok(Delivered {
        sent: sent.total,
        failed: sent.failed,
        offered: source.rate(),
        send_rate: sent.total as f64 / sent.elapsed.as_secs_f64(),
        receivers: users.members.len(),
        expected,
        delivered: latencies_us.len(),
        per_second: latencies_us.len() as f64 / elapsed.as_secs_f64().max(1e-3),
        latencies_us,
        cpu,
    })
}

/// Every receiving socket of a delivery phase, each read by its own task
/// until stopped.
pub struct Receivers {
    pub delivered: Arc<AtomicU64>,
    /// Latencies (µs) not yet taken.
    latencies: Arc<Mutex<Vec<u32>>>,
    stop: CancellationToken,
    readers: Vec<JoinHandle<()>>,
}

impl Receivers {
    /// Opens a socket for every member in every channel, joined to it.
    pub async fn open(base: &str, users: &Users, epoch: Instant) -> anyhow::Result<Receivers> {
        let delivered = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let mut readers = Vec::new();
        for channel in &users.channels {
            for token in &users.members {
                let socket = join(base, token, channel).await?;
                let reading = Reading {
                    epoch,
                    delivered: delivered.clone(),
                    latencies: latencies.clone(),
                    stop: stop.clone(),
                };
                readers.push(tokio::spawn(reading.run(socket)));
            }
        }
        Ok(Receivers {
            delivered,
            latencies,
            stop,
            readers,
        })
    }

    /// Waits until `expected` deliveries arrived, or none arrived for ten
    /// seconds; returns when the last one arrived.
    pub async fn wait_for(&self, expected: u64) -> Instant {
        let mut seen = self.delivered.load(Ordering::Relaxed);
        let mut last = Instant::now();
        while seen < expected && last.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.delivered.load(Ordering::Relaxed);
            if now > seen {
                (seen, last) = (now, Instant::now());
            }
        }
        last
    }

    /// The latencies that arrived since the last call, sorted.
    pub fn take(&self) -> Vec<u32> {
        let mut taken = match self.latencies.lock() {
            Ok(mut latencies) => std::mem::take(&mut *latencies),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        taken.sort_unstable();
        taken
    }

    /// Stops the readers and returns the latencies not yet taken, sorted.
    pub async fn finish(mut self) -> Vec<u32> {
        self.stop.cancel();
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.await;
        }
        self.take()
    }
}

/// One receiving socket's reader.
struct Reading {
    epoch: Instant,
    delivered: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<u32>>>,
    stop: CancellationToken,
}

impl Reading {
    /// Reads until the socket ends or `stop`: answers heartbeats, as a
    /// client must, and records each `new_message`'s latency.
    async fn run(self, mut socket: Socket) {
        loop {
            let next = tokio::select! {
                _ = self.stop.cancelled() => break,
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
                let now_us = self.epoch.elapsed().as_micros() as u64;
                let latency = now_us.saturating_sub(sent_us) as u32;
                if let Ok(mut latencies) = self.latencies.lock() {
                    latencies.push(latency);
                }
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
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

/// The answer to a heartbeat frame, echoing its number.
pub fn pong(heartbeat: &str) -> Message {
    let n = serde_json::from_str::<Value>(heartbeat)
        .ok()
        .map(|f| f["data"]["n"].clone());
    let pong = json!({"type": "pong", "data": {"n": n}}).to_string();
    Message::Text(pong.into())
}

/// How a phase's sending went.
pub struct Sent {
    pub total: usize,
    pub failed: usize,
    pub started: Instant,
    /// Until the last send was answered.
    pub elapsed: Duration,
}

/// The sending side of one phase.
pub struct Sending<'a> {
    pub base: &'a str,
    pub http: &'a reqwest::Client,
    pub users: &'a Users,
    pub seconds: u64,
    pub epoch: Instant,
    /// Deliveries so far, for the windowed source.
    pub delivered: &'a AtomicU64,
}

impl Sending<'_> {
    /// Sends over the channels in turn, each message carrying its send
    /// time: on a fixed schedule (open loop) for the rated sources.
    pub async fn run(&self, source: &Source<'_>) -> anyhow::Result<Sent> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.seconds);
        let interval = Duration::from_secs_f64(1.0 / source.rate().max(1e-3));
        let receivers = self.users.members.len() as u64;
        let (mut total, mut failed) = (0usize, 0usize);
        let mut sends = Vec::new();
        'sending: loop {
            match source {
                Source::Rest(_) | Source::Redis(..) => {
                    let due = started + interval.mul_f64(total as f64);
                    if due >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                Source::RedisWindow(window, _) => {
                    if Instant::now() >= deadline {
                        break;
                    }
                    // Gives up when deliveries stop (sockets closed as too
                    // slow): the shortfall shows as lost.
                    let allowed = total.saturating_sub(*window) as u64 * receivers;
                    let waiting = Instant::now();
                    while self.delivered.load(Ordering::Relaxed) < allowed {
                        if waiting.elapsed() > Duration::from_secs(10) {
                            break 'sending;
                        }
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                }
            }
            let channel = self.users.channels[total % self.users.channels.len()].clone();
            let content = format!("t={} load message", self.epoch.elapsed().as_micros());
            match source {
                Source::Rest(_) => {
                    let token = self.users.members[total % self.users.members.len()].clone();
                    sends.push(post_message(self.http, self.base, token, channel, content));
                }
                Source::Redis(_, store) | Source::RedisWindow(_, store) => {
                    if !publish(store, &channel, &content).await? {
                        failed += 1;
                    }
                }
            }
            total += 1;
        }
        for send in sends {
            if !send.await.unwrap_or(false) {
                failed += 1;
            }
        }
        Ok(Sent {
            total,
            failed,
            started,
            elapsed: started.elapsed(),
        })
    }
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

/// Publishes per round trip of the raw Redis baseline.
const PIPELINE: usize = 64;

/// Deliveries/s of plain Redis pub/sub: `rooms` channels with `receivers`
/// subscriber connections each, `messages` published as fast as possible.
pub async fn redis_baseline(
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
    // Pipelined, so that Redis, not the publisher's round trips, is the
    // limit.
    for first in (0..messages).step_by(PIPELINE) {
        let mut pipe = redis::pipe();
        for i in first..(first + PIPELINE).min(messages) {
            pipe.cmd("PUBLISH")
                .arg(format!("{prefix}:{}", i % rooms))
                .arg(&payload)
                .ignore();
        }
        let () = pipe.query_async(&mut publisher).await?;
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
