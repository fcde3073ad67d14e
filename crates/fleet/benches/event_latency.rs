//! Register → event-on-Kafka latency, against a raw produce → consume
//! baseline measured in the same run on the same broker.
//!
//!     ./dev infra && cargo bench -p messenger-fleet --bench event_latency [-- N]
//!
//! Starts the whole fleet on ephemeral ports with a fresh database and topic
//! prefix (production password-hashing cost), registers N users (default
//! 200) one after another, and for each measures the HTTP response time and
//! the time from sending the request until its `UserRegistered` record is
//! consumed. The baseline produces N records with the same producer settings
//! the outbox relay uses and times each until it is consumed.

use messenger_platform::Config;
use messenger_proto::users::v1::UserEvent;
use messenger_testkit::TestEnv;
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};
use support::{InProcessFleet, wait_ready_within};
use tokio::sync::mpsc;

mod support;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(200);
    let mut env = TestEnv::new().await?;
    use_production_costs(&mut env.config)?;
    let fleet = InProcessFleet::start(&env.config).await?;
    let http = reqwest::Client::new();
    wait_ready_within(&http, &fleet.base, 300).await?;

    let (mut arrivals, listener) = spawn_listener(env.consume(UserEvent::TOPIC.name()).await?);
    let (mut baseline_arrivals, baseline_listener) =
        spawn_listener(env.consume("bench.baseline").await?);

    // Warm-up: the consumer joins its group and the relay creates its
    // producer connection before anything is timed.
    register(&http, &fleet.base, "warmup_user").await?;
    wait_for(&mut arrivals, None).await?;

    let (mut http_times, mut event_times) =
        measure_registrations(&http, &fleet.base, &mut arrivals, n).await?;

    eprintln!("baseline: producing {n} records directly");
    let producer = messenger_platform::kafka::producer(&env.config.kafka, "bench")?;
    let topic = env.config.kafka.topic("bench.baseline");
    let mut baseline = measure_baseline(&producer, &topic, &mut baseline_arrivals, n).await?;

    println!("| measurement (n = {n}) | p50 | p95 | p99 | max |");
    println!("|---|---|---|---|---|");
    row("POST /auth/register response", &mut http_times);
    row("register sent → UserRegistered consumed", &mut event_times);
    row("baseline: produce → consume (same broker)", &mut baseline);

    drop(producer);
    fleet.stop().await?;
    listener.abort();
    baseline_listener.abort();
    let _ = listener.await;
    let _ = baseline_listener.await;
    env.cleanup().await?;
    Ok(())
}

/// Production password-hashing cost and Kafka delivery timeout: the latency
/// measured is the one users would see.
fn use_production_costs(config: &mut Config) -> anyhow::Result<()> {
    let defaults = Config::defaults()?;
    for key in ["passwords.memory_kib", "passwords.iterations"] {
        let cost = defaults.setting(key).cloned().expect("a default");
        config.set(key, cost)?;
    }
    config.kafka.message_timeout_ms = defaults.kafka.message_timeout_ms;
    Ok(())
}

/// Registers `n` users one after another; returns each one's HTTP response
/// time and its time until the `UserRegistered` record was consumed.
async fn measure_registrations(
    http: &reqwest::Client,
    base: &str,
    arrivals: &mut mpsc::UnboundedReceiver<String>,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    eprintln!("registering {n} users");
    let mut http_times = Vec::with_capacity(n);
    let mut event_times = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let user_id = register(http, base, &format!("bench_user_{i}")).await?;
        http_times.push(started.elapsed());
        wait_for(arrivals, Some(&user_id)).await?;
        event_times.push(started.elapsed());
        if (i + 1) % 50 == 0 {
            eprintln!("  {}/{n}", i + 1);
        }
    }
    Ok((http_times, event_times))
}

/// Produces `n + 1` records, one at a time, each timed until consumed.
async fn measure_baseline(
    producer: &FutureProducer,
    topic: &str,
    arrivals: &mut mpsc::UnboundedReceiver<String>,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut baseline = Vec::with_capacity(n);
    for i in 0..n + 1 {
        let key = format!("k{i}");
        let started = Instant::now();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&[0u8; 64]),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)?;
        wait_for(arrivals, Some(&key)).await?;
        if i > 0 {
            baseline.push(started.elapsed()); // the first one warms up
        }
    }
    Ok(baseline)
}

/// Registers `username` and returns the new user's id.
async fn register(http: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<String> {
    let response = support::register_response(http, base, username).await?;
    response["user"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no user id in {response}"))
}

/// Forwards the key of every consumed record.
fn spawn_listener(
    consumer: StreamConsumer,
) -> (mpsc::UnboundedReceiver<String>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(message) => {
                    let key = message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned());
                    if tx.send(key.unwrap_or_default()).is_err() {
                        break;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    (rx, task)
}

async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<String>,
    key: Option<&str>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let received = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no record within 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("consumer stopped"))?;
        if key.is_none_or(|key| key == received) {
            return Ok(());
        }
    }
}

fn row(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let pick = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples
            .get(index)
            .map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_default()
    };
    println!(
        "| {name} | {} | {} | {} | {} |",
        pick(0.5),
        pick(0.95),
        pick(0.99),
        pick(1.0)
    );
}
