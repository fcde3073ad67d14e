//! A private copy of everything the fleet runs on, on free loopback ports:
//! its own Postgres cluster, Redis (append-only, as production should run
//! it), Kafka-protocol broker, the four backends and two gateway replicas,
//! each a separate process the suite may stop or kill.

use crate::link::Link;
use crate::procs::{Proc, Spec, free_port};
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Part {
    Postgres,
    Redis,
    Broker,
    Users,
    Groups,
    Messages,
    Media,
    GatewayA,
    GatewayB,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Postgres => "postgres",
            Part::Redis => "redis",
            Part::Broker => "broker",
            Part::Users => "users",
            Part::Groups => "groups",
            Part::Messages => "messages",
            Part::Media => "media",
            Part::GatewayA => "gateway-a",
            Part::GatewayB => "gateway-b",
        })
    }
}

pub const TOPIC_PREFIX: &str = "faults.";

pub struct Stack {
    pub logs: PathBuf,
    procs: BTreeMap<Part, Proc>,
    pub gateways: [String; 2],
    /// The broker as clients reach it: through the cuttable link.
    pub brokers: String,
    pub link: Link,
}

/// Ports of every part, fixed for the run so restarts come back on them.
struct Ports {
    postgres: u16,
    redis: u16,
    /// The link clients use; the broker itself listens on `broker_own`.
    broker: u16,
    broker_own: u16,
    grpc: [u16; 4],
    gateways: [u16; 2],
}

impl Stack {
    pub async fn start(dir: &Path) -> anyhow::Result<Stack> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let link = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ports = Ports {
            postgres: free_port()?,
            redis: free_port()?,
            broker: link.local_addr()?.port(),
            broker_own: free_port()?,
            grpc: [free_port()?, free_port()?, free_port()?, free_port()?],
            gateways: [free_port()?, free_port()?],
        };
        let mut stack = Stack {
            logs,
            procs: BTreeMap::new(),
            gateways: ports
                .gateways
                .map(|port| format!("http://127.0.0.1:{port}")),
            brokers: format!("127.0.0.1:{}", ports.broker),
            link: Link::start(
                link,
                std::net::SocketAddr::from(([127, 0, 0, 1], ports.broker_own)),
            ),
        };
        let mut specs = vec![
            postgres(dir, ports.postgres)?,
            redis(dir, ports.redis)?,
            broker(dir, ports.broker_own, ports.broker)?,
        ];
        let services = services(dir, &ports)?;
        for (part, spec) in specs.drain(..).chain(services) {
            println!("  starting {part} on port {}", spec.port);
            let mut proc = Proc::start(spec, &stack.logs)?;
            proc.ready(Duration::from_secs(90)).await?;
            stack.procs.insert(part, proc);
        }
        Ok(stack)
    }

    fn proc(&mut self, part: Part) -> anyhow::Result<&mut Proc> {
        self.procs
            .get_mut(&part)
            .with_context(|| format!("{part} is not part of the stack"))
    }

    /// Stops `part` with `signal` (KILL, TERM, or QUIT for Postgres'
    /// immediate shutdown).
    pub async fn stop(&mut self, part: Part, signal: &str) -> anyhow::Result<()> {
        self.proc(part)?.signal(signal).await
    }

    /// Empties the data directory of a stopped `part`: it restarts as if
    /// its disk was lost.
    pub fn wipe(&mut self, part: Part) -> anyhow::Result<()> {
        let dir = self.proc(part)?.spec.dir.clone();
        std::fs::remove_dir_all(&dir)
            .and_then(|()| std::fs::create_dir_all(&dir))
            .with_context(|| format!("cannot empty {}", dir.display()))
    }

    /// Starts `part` again on the same port and storage.
    pub async fn restart(&mut self, part: Part) -> anyhow::Result<()> {
        let proc = self.proc(part)?;
        proc.restart()?;
        proc.ready(Duration::from_secs(90)).await
    }

    /// Stops everything, services first.
    pub async fn shutdown(mut self) {
        let parts: Vec<Part> = self.procs.keys().rev().copied().collect();
        for part in parts {
            if let Some(proc) = self.procs.get_mut(&part) {
                let signal = if part == Part::Postgres {
                    "INT"
                } else {
                    "TERM"
                };
                if let Err(err) = proc.signal(signal).await {
                    eprintln!("  stopping {part}: {err:#}");
                }
            }
        }
    }
}

fn spec(name: Part, program: PathBuf, dir: &Path, port: u16) -> Spec {
    Spec {
        name: name.to_string(),
        program,
        args: Vec::new(),
        env: BTreeMap::new(),
        dir: dir.to_owned(),
        run_as: None,
        port,
        pid_file: None,
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// The newest installed Postgres server binaries (Debian keeps them off
/// PATH), or `PG_BIN`.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install the postgresql package or set PG_BIN")?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no Postgres server under /usr/lib/postgresql")
}

fn postgres(dir: &Path, port: u16) -> anyhow::Result<(Part, Spec)> {
    let bin = postgres_bin()?;
    let data = dir.join("postgres");
    std::fs::create_dir_all(&data)?;
    let run_as = is_root().then(|| "postgres".to_owned());
    if let Some(user) = &run_as {
        let status = Command::new("chown")
            .args(["-R", user])
            .arg(&data)
            .status()?;
        anyhow::ensure!(status.success(), "cannot give {} to {user}", data.display());
    }
    println!("  initdb {}", data.display());
    let mut initdb = match &run_as {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(bin.join("initdb"));
            command
        }
        None => Command::new(bin.join("initdb")),
    };
    let out = initdb
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut spec = spec(Part::Postgres, bin.join("postgres"), dir, port);
    spec.args = [
        "-D",
        &data.display().to_string(),
        "-p",
        &port.to_string(),
        "-k",
        &data.display().to_string(),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=200",
    ]
    .map(str::to_owned)
    .to_vec();
    spec.pid_file = Some(data.join("postmaster.pid"));
    spec.run_as = run_as;
    Ok((Part::Postgres, spec))
}

fn redis(dir: &Path, port: u16) -> anyhow::Result<(Part, Spec)> {
    let data = dir.join("redis");
    std::fs::create_dir_all(&data)?;
    let mut spec = spec(Part::Redis, PathBuf::from("redis-server"), &data, port);
    // Every write reaches the append-only file before Redis answers: the
    // room logs and sequence counters survive a kill -9.
    spec.args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]
    .map(str::to_owned)
    .to_vec();
    Ok((Part::Redis, spec))
}

fn broker(dir: &Path, port: u16, advertised: u16) -> anyhow::Result<(Part, Spec)> {
    let data = dir.join("broker");
    std::fs::create_dir_all(&data)?;
    let mut spec = spec(Part::Broker, PathBuf::from("tansu"), &data, port);
    spec.args = vec![
        "broker".to_owned(),
        "--listener-url".to_owned(),
        format!("tcp://127.0.0.1:{port}"),
        "--advertised-listener-url".to_owned(),
        format!("tcp://127.0.0.1:{advertised}"),
        "--storage-engine".to_owned(),
        "sqlite://tansu.db".to_owned(),
    ];
    Ok((Part::Broker, spec))
}

/// The service binaries next to this one (cargo builds them into the same
/// target directory).
fn service_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("no directory for this executable")?
        .join(format!("messenger-{name}"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first",
        path.display()
    );
    Ok(path)
}

fn services(dir: &Path, ports: &Ports) -> anyhow::Result<Vec<(Part, Spec)>> {
    let mut env = BTreeMap::new();
    let mut set = |key: &str, value: String| env.insert(key.to_owned(), value);
    set("DB_HOST", "127.0.0.1".into());
    set("DB_PORT", ports.postgres.to_string());
    set("DB_USER", "postgres".into());
    set("DB_NAME", "postgres".into());
    set("DB_RUN_MIGRATIONS", "true".into());
    set("REDIS_HOST", "127.0.0.1".into());
    set("REDIS_PORT", ports.redis.to_string());
    set("KAFKA_BROKERS", format!("127.0.0.1:{}", ports.broker));
    set("KAFKA_TOPIC_PREFIX", TOPIC_PREFIX.into());
    set("KAFKA_TOPIC_PARTITIONS", "2".into());
    // The local broker's client settings, as ./dev and the tests use them.
    for (name, value) in messenger_platform::config::local_broker_settings() {
        set(&name, value);
    }
    set("JWT_KEYS", "faults:0123456789abcdef0123456789abcdef".into());
    set("JWT_ACTIVE_KID", "faults".into());
    set("JWT_ACCESS_TTL_SECONDS", "7200".into());
    set("PASSWORD_HASH_MEMORY_KIB", "8192".into());
    set("PASSWORD_HASH_ITERATIONS", "1".into());
    // The ledger sends faster than a person: the limiter stays on, as
    // shipped, with the load tools' allowances.
    for (name, value) in messenger_platform::config::LOAD_TOOL_ALLOWANCES {
        set(name, (*value).to_owned());
    }
    // As shipped, the services talk over mutual TLS with certificates from
    // the shared OpenBao (which also supplies the JWT keys); without one,
    // in plaintext.
    match (std::env::var("VAULT_ADDR"), std::env::var("VAULT_TOKEN")) {
        (Ok(addr), Ok(token)) if !addr.trim().is_empty() => {
            set("VAULT_ADDR", addr);
            set("VAULT_TOKEN", token);
        }
        _ => {
            eprintln!("faults: no VAULT_ADDR/VAULT_TOKEN, the services talk plaintext gRPC");
            set("GRPC_MTLS_ENABLED", "false".into());
        }
    }
    set("SERVER_HOST", "127.0.0.1".into());
    // Two gateways run side by side: no operators' listener on a fixed port.
    set("SERVER_INTERNAL_LISTEN", String::new());
    set(
        "MEDIA_STORAGE_URL",
        format!("file://{}", dir.join("media").display()),
    );
    set(
        "RUST_LOG",
        std::env::var("FAULTS_LOG").unwrap_or_else(|_| "info".into()),
    );
    for (name, port) in ["USERS", "GROUPS", "MESSAGES", "MEDIA"]
        .iter()
        .zip(ports.grpc)
    {
        set(&format!("{name}_GRPC_LISTEN"), format!("127.0.0.1:{port}"));
        set(
            &format!("{name}_GRPC_URL"),
            format!("http://127.0.0.1:{port}"),
        );
    }
    let mut specs = Vec::new();
    for ((part, name), port) in [
        (Part::Users, "users"),
        (Part::Groups, "groups"),
        (Part::Messages, "messages"),
        (Part::Media, "media"),
    ]
    .into_iter()
    .zip(ports.grpc)
    {
        let mut spec = spec(part, service_bin(name)?, dir, port);
        spec.env = env.clone();
        specs.push((part, spec));
    }
    for (part, port) in [Part::GatewayA, Part::GatewayB]
        .into_iter()
        .zip(ports.gateways)
    {
        let mut spec = spec(part, service_bin("gateway")?, dir, port);
        spec.env = env.clone();
        spec.env.insert("SERVER_PORT".into(), port.to_string());
        specs.push((part, spec));
    }
    Ok(specs)
}
