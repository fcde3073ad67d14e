//! The whole notifier, event to push: `NotificationCreated` records
//! produced to the broker, the notifier (consumer, decision, Web Push
//! sender, outbox) on one thread against the real Postgres and broker, and
//! a push endpoint on loopback that notes when each push arrives. Grace
//! delay 0: the latency is the notifier's own, without the read-grace wait.
//!
//! Two phases, each against a same-run baseline, a plain HTTP POST of an
//! encrypted push's size to the same endpoint with the same concurrency:
//!
//! - **paced**: `--rate` notifications/s for `--seconds`, each to its own
//!   user and device: event → push-request latency (p50, p99, max);
//! - **burst**: `--burst` notifications at once: how many the notifier
//!   thread handles per CPU-second ("per core").
//!
//!     cargo bench -p messenger-notifier --bench pipeline -- [--rate 200] [--seconds 20] [--burst 3000]

// Runtime SQL is fine here: the bench seeds subscriptions directly.
#![allow(clippy::disallowed_methods)]

mod common;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine as _;
use futures::StreamExt as _;
use messenger_platform::config::Secret;
use messenger_platform::egress::{Egress, EgressPolicy};
use messenger_platform::{CancellationToken, kafka};
use messenger_proto::messages::v1::{
    MessagesEvent, Notification, NotificationCreated, NotificationKind, messages_event::Payload,
};
use messenger_testkit::TestEnv;
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Args {
    rate: u64,
    seconds: u64,
    burst: usize,
}

fn args() -> Args {
    Args {
        rate: common::flag("--rate", 200),
        seconds: common::flag("--seconds", 20),
        burst: common::flag("--burst", 3000) as usize,
    }
}

/// When each device's push arrived, by device number.
type Arrivals = Arc<Mutex<Vec<Option<Instant>>>>;

async fn arrived(State(arrivals): State<Arrivals>, Path(device): Path<usize>) -> StatusCode {
    if let Ok(mut arrivals) = arrivals.lock()
        && let Some(slot) = arrivals.get_mut(device)
    {
        slot.get_or_insert_with(Instant::now);
    }
    StatusCode::CREATED
}

/// The push endpoint, on a thread of its own.
fn start_endpoint(arrivals: Arrivals) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = Router::new()
                .route("/push/{device}", post(arrived))
                .with_state(arrivals);
            axum::serve(listener, app).await.expect("serve");
        });
    });
    port
}

fn vapid_key() -> String {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("key");
    base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
}

/// The notifier on a current-thread runtime of its own thread; returns
/// that thread's /proc stat path, and the token that stops it.
fn start_notifier(config: messenger_platform::Config) -> (String, CancellationToken) {
    let stop = CancellationToken::new();
    let token = stop.clone();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let tid = std::fs::read_link("/proc/thread-self")
            .map(|path| format!("{}/stat", path.display()))
            .unwrap_or_default();
        let _ = tid_tx.send(format!("/proc/{tid}").replace("/proc//proc", "/proc"));
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("listener");
            if let Err(err) = messenger_notifier::serve(config, listener, token).await {
                eprintln!("notifier: {err:#}");
            }
        });
    });
    let stat = tid_rx.recv().expect("the notifier thread's id");
    (stat, stop)
}

fn record(user: Uuid, device: usize) -> (String, Vec<u8>) {
    let channel = Uuid::now_v7();
    let event = MessagesEvent {
        meta: None,
        actor_id: Uuid::now_v7().to_string(),
        payload: Some(Payload::NotificationCreated(NotificationCreated {
            notification: Some(Notification {
                id: Uuid::now_v7().to_string(),
                user_id: user.to_string(),
                kind: NotificationKind::Mention as i32,
                message_id: Uuid::now_v7().to_string(),
                channel_id: channel.to_string(),
                group_id: Uuid::now_v7().to_string(),
                actor_id: Uuid::now_v7().to_string(),
                excerpt: format!("@you are we still on for the release review at four? ({device})"),
                created_at: Some(messenger_platform::wire::timestamp(
                    time::OffsetDateTime::now_utc(),
                )),
                read_at: None,
            }),
            seq: 1,
        })),
    };
    (channel.to_string(), event.encode_to_vec())
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn report(name: &str, count: usize, elapsed: Duration, cpu: Duration, latencies: &mut [Duration]) {
    latencies.sort();
    let per_core = count as f64 / cpu.as_secs_f64().max(1e-9);
    println!(
        "{name:<30} {count:>6} in {:>6.2} s = {:>6.0}/s   {:>7.1} µs CPU each = {:>6.0}/s per core ({:>7.0}/min)   p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / count.max(1) as f64,
        per_core,
        per_core * 60.0,
        quantile(latencies, 0.50).as_secs_f64() * 1e3,
        quantile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

struct Load<'a> {
    producer: &'a FutureProducer,
    topic: &'a str,
    users: &'a [Uuid],
    arrivals: &'a Arrivals,
    notifier_stat: &'a str,
}

/// Produces notifications for devices `range` at `rate` per second (0: all
/// at once), waits for every push, and reports.
async fn notifier_phase(load: &Load<'_>, name: &str, range: std::ops::Range<usize>, rate: u64) {
    let count = range.len();
    let cpu_before = common::thread_cpu(load.notifier_stat);
    let started = Instant::now();
    let mut sent_at = Vec::with_capacity(count);
    let mut deliveries = futures::stream::FuturesUnordered::new();
    for (n, device) in range.clone().enumerate() {
        if rate > 0 {
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let (key, payload) = record(load.users[device], device);
        sent_at.push(Instant::now());
        let topic = load.topic.to_owned();
        let producer = load.producer.clone();
        deliveries.push(async move {
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map(|_| ())
                .map_err(|(err, _)| err)
        });
        while let Some(Some(done)) = futures::FutureExt::now_or_never(deliveries.next()) {
            done.expect("produced");
        }
    }
    while let Some(done) = deliveries.next().await {
        done.expect("produced");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let arrivals = loop {
        let snapshot: Vec<Option<Instant>> = load
            .arrivals
            .lock()
            .map(|arrivals| arrivals[range.clone()].to_vec())
            .unwrap_or_default();
        let done = snapshot.iter().filter(|at| at.is_some()).count();
        if done == count || Instant::now() > deadline {
            if done < count {
                eprintln!("{name}: only {done} of {count} pushes arrived within 120 s");
            }
            break snapshot;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let last = arrivals.iter().flatten().max().copied().unwrap_or(started);
    let cpu = common::thread_cpu(load.notifier_stat).saturating_sub(cpu_before);
    let mut latencies: Vec<Duration> = arrivals
        .iter()
        .zip(&sent_at)
        .filter_map(|(arrived, sent)| arrived.map(|at| at.saturating_duration_since(*sent)))
        .collect();
    report(name, latencies.len(), last - started, cpu, &mut latencies);
}

/// The baseline: plain POSTs of an encrypted push's size, 32 in flight
/// (the notifier's `send_concurrency`), on this thread.
async fn baseline(name: &str, egress: &Egress, port: u16, count: usize, rate: u64) {
    let body = vec![b'x'; 420];
    let cpu_before = common::thread_cpu("/proc/thread-self/stat");
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(count);
    let mut running = futures::stream::FuturesUnordered::new();
    let mut next = 0;
    while next < count || !running.is_empty() {
        while next < count && running.len() < 32 {
            if rate > 0 {
                let due = started + Duration::from_secs_f64(next as f64 / rate as f64);
                if Instant::now() < due {
                    break;
                }
            }
            let request = egress
                .client()
                .post(format!("http://127.0.0.1:{port}/push/{}", usize::MAX))
                .body(body.clone())
                .build()
                .expect("request");
            let egress = egress.clone();
            running.push(async move {
                let at = Instant::now();
                let ok = egress.execute(request).await.is_ok_and(|r| r.status == 201);
                (ok, at.elapsed())
            });
            next += 1;
        }
        tokio::select! {
            Some((ok, latency)) = running.next(), if !running.is_empty() => {
                assert!(ok, "a baseline request failed");
                latencies.push(latency);
            }
            _ = tokio::time::sleep(Duration::from_millis(1)), if rate > 0 => {}
        }
    }
    let cpu = common::thread_cpu("/proc/thread-self/stat").saturating_sub(cpu_before);
    report(name, count, started.elapsed(), cpu, &mut latencies);
}

fn main() {
    let args = args();
    let paced = (args.rate * args.seconds) as usize;
    let devices = paced + args.burst;
    let arrivals: Arrivals = Arc::new(Mutex::new(vec![None; devices + 1]));
    let port = start_endpoint(arrivals.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut test = TestEnv::new().await.expect("test environment");
        let allow: serde_yaml::Value = serde_yaml::from_str("[127.0.0.1/32]").expect("yaml");
        for (key, value) in [
            ("notifier.vapid_key", serde_yaml::Value::from(vapid_key())),
            ("notifier.grace_ms", 0.into()),
            ("notifier.egress.allow_plain_http", true.into()),
            ("notifier.egress.allow_networks", allow),
        ] {
            test.config.set(key, value).expect("known setting");
        }
        test.config.database.max_connections = 10;
        test.config.auth.jwt_keys = Secret::new(messenger_testkit::TEST_JWT_KEYS);
        let config = test.config.clone();
        let (notifier_stat, stop) = start_notifier(config.clone());
        let pool = test.pool("notifier").await.expect("pool");
        let started = Instant::now();
        while sqlx::query("SELECT 1 FROM subscriptions LIMIT 1")
            .fetch_optional(&pool)
            .await
            .is_err()
        {
            assert!(started.elapsed() < Duration::from_secs(60), "no schema");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("seeding {devices} users with one device each");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let browser = ring::agreement::EphemeralPrivateKey::generate(
            &ring::agreement::ECDH_P256,
            &SystemRandom::new(),
        )
        .expect("key");
        let p256dh = b64.encode(browser.compute_public_key().expect("public").as_ref());
        let auth = b64.encode([7u8; 16]);
        let users: Vec<Uuid> = (0..devices).map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "INSERT INTO subscriptions (id, user_id, endpoint, p256dh, auth)
             SELECT gen_random_uuid(), u, format('http://127.0.0.1:%s/push/%s', $2::int, n - 1), $3, $4
             FROM unnest($1::uuid[]) WITH ORDINALITY AS t(u, n)",
        )
        .bind(&users)
        .bind(i32::from(port))
        .bind(&p256dh)
        .bind(&auth)
        .execute(&pool)
        .await
        .expect("subscriptions");

        let topic = config.kafka.topic(MessagesEvent::TOPIC.name());
        kafka::ensure_topics(&config.kafka, std::slice::from_ref(&topic))
            .await
            .expect("topic");
        let producer = kafka::producer(&config.kafka, "notifier-bench").expect("producer");
        let load = Load {
            producer: &producer,
            topic: &topic,
            users: &users,
            arrivals: &arrivals,
            notifier_stat: &notifier_stat,
        };
        // Warm up: the consumer joins its group, connections open.
        let warm = 20.min(paced);
        notifier_phase(&load, "warm-up", 0..warm, 0).await;
        let egress = Egress::new(EgressPolicy {
            allow_networks: vec!["127.0.0.1/32".parse().expect("cidr")],
            allow_plain_http: true,
            ..EgressPolicy::default()
        })
        .expect("egress");
        println!(
            "paced: {}/s for {} s; burst: {}; notifier on one thread; grace 0",
            args.rate, args.seconds, args.burst
        );
        baseline("baseline POST, paced", &egress, port, paced - warm, args.rate).await;
        notifier_phase(&load, "notifier, paced", warm..paced, args.rate).await;
        baseline("baseline POST, burst", &egress, port, args.burst, 0).await;
        notifier_phase(&load, "notifier, burst", paced..devices, 0).await;
        stop.cancel();
        pool.close().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        test.cleanup().await.expect("cleanup");
    });
}
