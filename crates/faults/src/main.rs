//! `messenger-faults`: runs the fleet as separate processes on a private
//! Postgres, Redis and Kafka-protocol broker, sends a numbered stream of
//! messages through both gateway replicas while WebSocket receivers and a
//! Kafka consumer listen, breaks one dependency after another, and checks
//! the ledger: nothing lost, duplicated, reordered or leaked.

mod kafka;
mod ledger;
mod link;
mod procs;
mod report;
mod stack;
mod traffic;
mod world;

use clap::Parser;
use ledger::Ledger;
use messenger_proto::messages::v1::MessagesEvent;
use report::{Phase, Stored};
use reqwest::{Method, StatusCode};
use stack::{Part, Stack};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use world::{Api, World};

#[derive(Parser)]
#[command(about = "Fault injection with a delivery ledger")]
struct Cli {
    /// Every fault in turn, the broker away for 60 s. Without it: the short
    /// CI set (broker away 20 s, a gateway and the messages service killed).
    #[arg(long)]
    full: bool,
    /// Faults to run instead, comma-separated: broker, broker-cut, redis,
    /// redis-wipe, postgres, gateway, users, groups, messages, media.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Seconds the broker stays stopped.
    #[arg(long)]
    broker_outage: Option<u64>,
    /// Pause between two sends of one sender, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pace_ms: u64,
    /// Also write the result table (Markdown) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Keep the run directory (data and logs) even when everything passed.
    #[arg(long)]
    keep: bool,
}

struct Fault {
    label: String,
    /// The process to stop, or None to cut the link to the broker.
    part: Option<Part>,
    signal: &'static str,
    outage: Duration,
    /// The stopped part comes back with its data directory emptied.
    wipe: bool,
}

fn fault(name: &str, broker_outage: Duration) -> anyhow::Result<Fault> {
    let (part, signal, outage, label) = match name {
        "broker-cut" => {
            return Ok(Fault {
                label: "broker unreachable (link cut)".to_owned(),
                part: None,
                signal: "",
                outage: broker_outage,
                wipe: false,
            });
        }
        "broker" => (Part::Broker, "KILL", broker_outage, "broker kill -9"),
        "redis" => (Part::Redis, "KILL", secs(10), "Redis kill -9"),
        "redis-wipe" => (Part::Redis, "KILL", secs(10), "Redis kill -9, data lost"),
        "postgres" => (Part::Postgres, "QUIT", secs(10), "Postgres crash stop"),
        "gateway" => (Part::GatewayB, "KILL", secs(5), "gateway replica kill -9"),
        "users" => (Part::Users, "KILL", secs(1), "users kill -9"),
        "groups" => (Part::Groups, "KILL", secs(1), "groups kill -9"),
        "messages" => (Part::Messages, "KILL", secs(1), "messages kill -9"),
        "media" => (Part::Media, "KILL", secs(1), "media kill -9"),
        other => anyhow::bail!("unknown fault {other}"),
    };
    Ok(Fault {
        label: label.to_owned(),
        part: Some(part),
        signal,
        outage,
        wipe: name.ends_with("-wipe"),
    })
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let broker_outage = secs(cli.broker_outage.unwrap_or(if cli.full { 60 } else { 20 }));
    let names: Vec<String> = if !cli.faults.is_empty() {
        cli.faults.clone()
    } else if cli.full {
        [
            "broker",
            "broker-cut",
            "redis",
            "redis-wipe",
            "postgres",
            "gateway",
            "users",
            "groups",
            "messages",
            "media",
        ]
        .map(str::to_owned)
        .to_vec()
    } else {
        ["broker", "gateway", "messages"]
            .map(str::to_owned)
            .to_vec()
    };
    let faults = names
        .iter()
        .map(|name| fault(name, broker_outage))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let dir = std::env::temp_dir().join(format!("messenger-faults-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    println!("==> starting a private stack in {}", dir.display());
    let mut stack = Stack::start(&dir).await?;
    let outcome = exercise(&cli, &mut stack, faults).await;
    let passed = matches!(outcome, Ok(true));
    let logs = stack.logs.clone();
    stack.shutdown().await;
    if passed && !cli.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("logs and data kept in {}", logs.display());
    }
    outcome
}

async fn exercise(cli: &Cli, stack: &mut Stack, faults: Vec<Fault>) -> anyhow::Result<bool> {
    let api = Api::new()?;
    let gateways = stack.gateways.clone();
    println!("==> creating users, groups and channels");
    let world = Arc::new(world::build(&api, &gateways[0]).await?);
    let mut traffic = Traffic::listen(stack, &api, &world).await?;

    println!(
        "==> {} senders, {} receivers on two gateways, {} faults",
        world.senders.len(),
        world.receivers.len(),
        faults.len()
    );
    let mut phases = vec![Phase {
        label: "none (baseline)".to_owned(),
        outage: Duration::ZERO,
        start: Instant::now(),
        restart_at: None,
        recovery: None,
    }];
    traffic.start_senders(&api, &gateways, &world, Duration::from_millis(cli.pace_ms));
    tokio::time::sleep(secs(5)).await;
    for fault in faults {
        phases.push(inject(stack, fault, &world, &traffic.ledger).await?);
    }
    let ledger = traffic.drain(&world).await?;

    println!("==> reading back what the server stored");
    let stored = stored(&api, &gateways[0], &world).await?;
    let verdict = report::judge(&world, &ledger.lock(), &stored, &phases);
    println!("\n{}", verdict.table);
    if let Some(path) = &cli.report {
        std::fs::write(path, &verdict.table)?;
    }
    println!(
        "{}",
        if verdict.passed {
            "PASSED: nothing lost, duplicated, reordered or leaked"
        } else {
            "FAILED"
        }
    );
    Ok(verdict.passed)
}

/// The tasks that write the ledger: senders, WebSocket receivers and the
/// Kafka reader. Readers stop after senders, so that every acknowledged
/// message has the chance to arrive.
struct Traffic {
    ledger: Arc<Ledger>,
    senders: Vec<JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
    stop_senders: Arc<AtomicBool>,
    stop_readers: Arc<AtomicBool>,
}

impl Traffic {
    /// Starts the receivers and the Kafka reader and waits until every
    /// receiver has joined its rooms.
    async fn listen(stack: &Stack, api: &Api, world: &World) -> anyhow::Result<Traffic> {
        let topic = format!("{}{}", stack::TOPIC_PREFIX, MessagesEvent::TOPIC);
        kafka::ensure_topic(&stack.brokers, &topic, 2).await?;
        let consumer = kafka::consumer(&stack.brokers, &topic)?;

        let ledger = Arc::new(Ledger::new(world.receivers.len()));
        let stop_senders = Arc::new(AtomicBool::new(false));
        let stop_readers = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for (index, receiver) in world.receivers.iter().enumerate() {
            readers.push(tokio::spawn(traffic::receive_loop(
                ledger.clone(),
                api.clone(),
                stack.gateways.clone(),
                index,
                receiver.clone(),
                stop_readers.clone(),
            )));
        }
        readers.push(tokio::spawn(kafka::read_loop(
            ledger.clone(),
            consumer,
            stop_readers.clone(),
        )));
        wait_for("receivers to connect", secs(30), || {
            ledger
                .lock()
                .receivers
                .iter()
                .all(|stats| stats.connects > 0)
        })
        .await?;
        // Joins are answered within milliseconds; sends start after them.
        tokio::time::sleep(secs(1)).await;
        Ok(Traffic {
            ledger,
            senders: Vec::new(),
            readers,
            stop_senders,
            stop_readers,
        })
    }

    fn start_senders(&mut self, api: &Api, gateways: &[String; 2], world: &World, pace: Duration) {
        for sender in &world.senders {
            self.senders.push(tokio::spawn(traffic::send_loop(
                self.ledger.clone(),
                api.clone(),
                gateways.clone(),
                world::Sender {
                    account: sender.account.clone(),
                    channels: sender.channels.clone(),
                },
                pace,
                self.stop_senders.clone(),
            )));
        }
    }

    /// Stops the senders, waits (a while) for every acknowledged message to
    /// arrive, stops the readers and hands back the ledger.
    async fn drain(self, world: &World) -> anyhow::Result<Arc<Ledger>> {
        println!("==> stopping the senders; waiting for every acknowledged message to arrive");
        self.stop_senders.store(true, Ordering::Relaxed);
        for sender in self.senders {
            sender.await?;
        }
        let _ = wait_for("the last deliveries", secs(60), || {
            report::pending(world, &self.ledger.lock()) == 0
        })
        .await;
        self.stop_readers.store(true, Ordering::Relaxed);
        for reader in self.readers {
            reader.await?;
        }
        Ok(self.ledger)
    }
}

/// Breaks one part for the fault's outage, brings it back and measures how
/// long end-to-end delivery took to recover.
async fn inject(
    stack: &mut Stack,
    fault: Fault,
    world: &World,
    ledger: &Ledger,
) -> anyhow::Result<Phase> {
    let start = Instant::now();
    tokio::time::sleep(secs(3)).await;
    match fault.part {
        Some(part) => {
            println!("==> {}: stopping {part} (SIG{})", fault.label, fault.signal);
            stack.stop(part, fault.signal).await?;
            if fault.wipe {
                stack.wipe(part)?;
            }
        }
        None => {
            println!(
                "==> {}: cutting every connection to the broker",
                fault.label
            );
            stack.link.cut();
        }
    }
    sleep_with_progress(fault.outage).await;
    match fault.part {
        Some(part) => stack.restart(part).await?,
        None => stack.link.restore(),
    }
    let restart_at = Instant::now();
    println!("    back; waiting for end-to-end delivery");
    let recovery = recovered(world, ledger, restart_at, secs(90)).await;
    match recovery {
        Some(took) => println!("    recovered in {:.1} s", took.as_secs_f64()),
        None => println!("    NOT recovered within 90 s"),
    }
    let phase = Phase {
        label: fault.label,
        outage: fault.outage,
        start,
        restart_at: Some(restart_at),
        recovery,
    };
    tokio::time::sleep(secs(3)).await;
    Ok(phase)
}

async fn sleep_with_progress(outage: Duration) {
    let until = Instant::now() + outage;
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        if left >= secs(10) {
            println!("    down, {} s to go", left.as_secs());
        }
        tokio::time::sleep(left.min(secs(10))).await;
    }
}

async fn wait_for(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// How long after `since` a message sent then first reached all its
/// readers.
async fn recovered(
    world: &World,
    ledger: &Ledger,
    since: Instant,
    within: Duration,
) -> Option<Duration> {
    let deadline = since + within;
    while Instant::now() < deadline {
        if let Some(done) = report::first_complete_after(world, &ledger.lock(), since) {
            return Some(done.saturating_duration_since(since));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Every channel's whole history, newest page first, through the API.
async fn stored(api: &Api, base: &str, world: &World) -> anyhow::Result<Vec<Stored>> {
    let mut stored = Vec::new();
    for (channel, reader) in &world.channels {
        let mut before = String::new();
        loop {
            let url = format!("{base}/api/v1/channels/{channel}/messages?limit=100{before}");
            let (status, page) = api
                .call(Method::GET, url, Some(&reader.token), None)
                .await?;
            anyhow::ensure!(
                status == StatusCode::OK,
                "history of {channel}: {status} {page}"
            );
            let messages = page["messages"].as_array().cloned().unwrap_or_default();
            for message in &messages {
                stored.push(Stored {
                    channel: channel.clone(),
                    id: message["id"].as_str().unwrap_or_default().to_owned(),
                    content: message["content"].as_str().unwrap_or_default().to_owned(),
                });
            }
            match messages.first() {
                Some(oldest) if page["has_older"] == true => {
                    before = format!("&before={}", oldest["id"].as_str().unwrap_or_default());
                }
                _ => break,
            }
        }
    }
    Ok(stored)
}
