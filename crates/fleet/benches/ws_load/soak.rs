//! `--soak-minutes N`: `--idle` sockets stay connected (answering
//! heartbeats) while messages are posted through REST at `--e2e-rate` to
//! `--rooms` × `--receivers` joined sockets, for N minutes. Every minute
//! prints that minute's sends, deliveries and latency percentiles, and the
//! resident memory of the fleet, the broker and Redis: both should stay
//! flat.

use crate::delivery::{Receivers, Sending, Socket, Source, Users, open, pong};
use crate::{Args, Fleet};
use futures::{SinkExt, StreamExt};
use messenger_platform::CancellationToken;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// The soak's sockets and senders keep the tokens they started with (this
/// tool does not refresh them as an app would): access tokens outlive the
/// soak, or every socket would close when they expire (15 minutes by
/// default). Nothing for the other modes.
pub fn settings(args: &Args) -> Vec<(&'static str, String)> {
    if args.soak_minutes == 0 {
        return Vec::new();
    }
    let seconds = (args.soak_minutes + 10) * 60;
    vec![("JWT_ACCESS_TTL_SECONDS", seconds.to_string())]
}

pub async fn run(
    fleet: &Fleet,
    http: &reqwest::Client,
    users: &Users,
    args: &Args,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let idle = keep_idle(fleet, users, args.idle, &stop).await?;
    let epoch = Instant::now();
    let receivers = Receivers::open(&fleet.base, users, epoch).await?;
    println!(
        "| minute | sent | failed | delivered | p50 | p99 | max | fleet RSS | broker RSS | Redis RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for minute in 1..=args.soak_minutes {
        let sending = Sending {
            base: &fleet.base,
            http,
            users,
            seconds: 60,
            epoch,
            delivered: &receivers.delivered,
        };
        let sent = sending.run(&Source::Rest(args.e2e_rate)).await?;
        let latencies = receivers.take();
        let at = |q: f64| {
            latencies
                .get(((latencies.len().max(1) - 1) as f64 * q).round() as usize)
                .map(|us| format!("{:.1} ms", *us as f64 / 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "| {minute} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            sent.total,
            sent.failed,
            latencies.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            mib(Some(fleet.child.id())),
            mib(pid_of("tansu")),
            mib(pid_of("redis-server")),
        );
    }
    stop.cancel();
    let _ = receivers.finish().await;
    for reader in idle {
        let _ = reader.await;
    }
    Ok(())
}

/// Opens `count` sockets, 200 at a time, each kept by a task that answers
/// heartbeats until `stop`.
async fn keep_idle(
    fleet: &Fleet,
    users: &Users,
    count: usize,
    stop: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    eprintln!("opening {count} idle sockets");
    let mut kept = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(200) {
        let batch = (chunk * 200..((chunk + 1) * 200).min(count))
            .map(|i| open(&fleet.base, &users.members[i % users.members.len()]));
        for socket in futures::future::join_all(batch).await {
            kept.push(tokio::spawn(answer_heartbeats(socket?, stop.clone())));
        }
    }
    Ok(kept)
}

async fn answer_heartbeats(mut socket: Socket, stop: CancellationToken) {
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            next = socket.next() => next,
        };
        match next {
            Some(Ok(Message::Text(text))) if text.contains("\"heartbeat\"") => {
                let _ = socket.send(pong(&text)).await;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let _ = socket.close(None).await;
}

/// The first process whose name is `name`.
fn pid_of(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == name).then_some(pid)
        })
}

fn mib(pid: Option<u32>) -> String {
    pid.and_then(messenger_testkit::resident_memory)
        .map(|bytes| format!("{:.1} MiB", bytes as f64 / 1_048_576.0))
        .unwrap_or_else(|| "-".into())
}
