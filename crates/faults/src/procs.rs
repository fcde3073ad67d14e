//! Child processes the suite starts, breaks and restarts: each one a real
//! server binary with its output in a log file of the run directory.

use anyhow::Context;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start one server, so it can be started again after a fault.
#[derive(Clone)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub dir: PathBuf,
    /// Run as this system user (Postgres refuses to run as root).
    pub run_as: Option<String>,
    /// The TCP port that answers once it is up.
    pub port: u16,
    /// Where the server writes its real pid when `run_as` wraps it.
    pub pid_file: Option<PathBuf>,
}

pub struct Proc {
    pub spec: Spec,
    child: Option<Child>,
    log: PathBuf,
}

/// A free loopback port (bound and released: a small race other programs
/// rarely win).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

impl Proc {
    pub fn start(spec: Spec, logs: &Path) -> anyhow::Result<Proc> {
        let log = logs.join(format!("{}.log", spec.name));
        let mut proc = Proc {
            spec,
            child: None,
            log,
        };
        proc.spawn()?;
        Ok(proc)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let mut command = match &self.spec.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&self.spec.program);
                command
            }
            None => Command::new(&self.spec.program),
        };
        command
            .args(&self.spec.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.spec.env)
            .current_dir(&self.spec.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.spec.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until its port answers; fails early if it exits.
    pub async fn ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if listening(self.spec.port) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!(
                    "{} exited with {status} before listening; see {}",
                    self.spec.name,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "{} did not open port {} within {within:?}; see {}",
            self.spec.name,
            self.spec.port,
            self.log.display()
        )
    }

    /// Sends `signal` (a `kill` signal name) and waits for the exit.
    pub async fn signal(&mut self, signal: &str) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            let pid = target_pid(&self.spec, &child);
            // Through kill(1): the workspace forbids the `unsafe` a direct
            // libc call would need.
            let status = Command::new("kill")
                .args([format!("-{signal}"), pid])
                .status()?;
            anyhow::ensure!(status.success(), "kill -{signal} {} failed", self.spec.name);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "{} is still running", self.spec.name);
        self.spawn()
    }
}

/// The server's own pid: the child's, or the one it wrote to its pid file
/// when a wrapper started it.
fn target_pid(spec: &Spec, child: &Child) -> String {
    spec.pid_file
        .as_ref()
        .and_then(|file| std::fs::read_to_string(file).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| child.id().to_string())
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &target_pid(&self.spec, &child)])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
