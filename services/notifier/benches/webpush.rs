//! Web Push sends per core: encryption (RFC 8291), a VAPID signature and
//! the POST, against a plain POST of the same size to the same endpoint
//! (the baseline, measured in the same run). The sender runs on one thread;
//! its CPU time is read from /proc, so "per core" is what one core does.
//!
//!     cargo bench -p messenger-notifier --bench webpush -- [--seconds 10] [--in-flight 32]

mod common;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use futures::StreamExt as _;
use messenger_notifier::webpush::{Push, Subscription, Urgency, Vapid, WebPush};
use messenger_platform::egress::{Egress, EgressPolicy};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::time::{Duration, Instant};

/// A notification as the notifier sends it: title, body, where to go.
const PAYLOAD: &str = r#"{"title":"Ann in #general","body":"Are we still on for the release review at four? I moved it to the big room.","url":"/channels/0191a2b3-0000-7000-8000-000000000001","tag":"c-AZGiswAAcACAAAAAAAAAAQ","count":3}"#;

struct Args {
    seconds: u64,
    in_flight: usize,
}

fn args() -> Args {
    Args {
        seconds: common::flag("--seconds", 10),
        in_flight: common::flag("--in-flight", 32) as usize,
    }
}

fn thread_cpu() -> Duration {
    common::thread_cpu("/proc/thread-self/stat")
}

/// A push service that takes everything: 201 for every POST.
fn start_sink() -> u16 {
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
            let app = Router::new().route("/push/{id}", post(|| async { StatusCode::CREATED }));
            axum::serve(listener, app).await.expect("serve");
        });
    });
    port
}

fn subscription(port: u16) -> Subscription {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rng = SystemRandom::new();
    let browser = ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::ECDH_P256, &rng)
        .expect("key");
    let public = browser.compute_public_key().expect("public");
    Subscription {
        endpoint: format!("http://127.0.0.1:{port}/push/device"),
        p256dh: b64.encode(public.as_ref()),
        auth: b64.encode([9u8; 16]),
    }
}

struct Phase {
    sent: usize,
    elapsed: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn report(&self, name: &str) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
        let per_core = self.sent as f64 / self.cpu.as_secs_f64().max(1e-9);
        println!(
            "{name:<44} {:>7.0}/s  {:>6.1} µs CPU each = {:>7.0}/s per core ({:>9.0}/min)  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.sent as f64 / self.elapsed.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / self.sent as f64,
            per_core,
            per_core * 60.0,
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Runs `one` with `in_flight` requests outstanding for `seconds`.
async fn phase<F, Fut>(args: &Args, one: F) -> Phase
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (started, cpu_before) = (Instant::now(), thread_cpu());
    let timed = |one: &F| {
        let request = one();
        async move {
            let at = Instant::now();
            let ok = request.await;
            (ok, at.elapsed())
        }
    };
    let mut running = futures::stream::FuturesUnordered::new();
    let mut latencies = Vec::new();
    for _ in 0..args.in_flight {
        running.push(timed(&one));
    }
    while let Some((ok, latency)) = running.next().await {
        assert!(ok, "a request failed");
        latencies.push(latency);
        if Instant::now() < deadline {
            running.push(timed(&one));
        }
    }
    Phase {
        sent: latencies.len(),
        elapsed: started.elapsed(),
        cpu: thread_cpu().saturating_sub(cpu_before),
        latencies,
    }
}

fn main() {
    let args = args();
    let port = start_sink();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let policy = EgressPolicy {
            allow_networks: vec!["127.0.0.1/32".parse().expect("cidr")],
            allow_plain_http: true,
            ..EgressPolicy::default()
        };
        let egress = Egress::new(policy).expect("egress");
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("key");
        let vapid = Vapid::from_pkcs8(pkcs8.as_ref(), "mailto:ops@example.com").expect("vapid");
        let sender = WebPush::new(egress.clone(), std::sync::Arc::new(vapid));
        let device = subscription(port);
        let push = Push {
            payload: PAYLOAD.as_bytes(),
            ttl: Duration::from_secs(3600),
            urgency: Urgency::High,
            topic: Some("c-AZGiswAAcACAAAAAAAAAAQ"),
        };
        // The same number of bytes as an encrypted push, sent plainly.
        let plain_body = vec![b'x'; PAYLOAD.len() + 103];
        println!(
            "payload {} bytes, {} in flight, {} s per phase, one sender thread",
            PAYLOAD.len(),
            args.in_flight,
            args.seconds
        );
        // Warm the connection pool.
        let _ = sender.send(&device, &push).await;

        let baseline = phase(&args, || {
            let request = egress
                .client()
                .post(&device.endpoint)
                .body(plain_body.clone())
                .build()
                .expect("request");
            let egress = egress.clone();
            async move { egress.execute(request).await.is_ok_and(|r| r.status == 201) }
        })
        .await;
        let pushes = phase(&args, || async {
            sender
                .send(&device, &push)
                .await
                .is_ok_and(|outcome| outcome == messenger_notifier::webpush::Outcome::Accepted)
        })
        .await;
        baseline.report("baseline: plain POST, same size, same client");
        pushes.report("Web Push: encrypt + VAPID + POST");
        println!(
            "Web Push / plain POST, per core: {:.2}",
            (pushes.sent as f64 / pushes.cpu.as_secs_f64())
                / (baseline.sent as f64 / baseline.cpu.as_secs_f64())
        );
    });
}
