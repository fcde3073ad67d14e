//! Live delivery survives a broker restart in the shipped local
//! configuration (config/local-broker.env): the test runs a broker of its
//! own (tansu, as `./dev` does), kills it with SIGKILL while messages are
//! sent, starts it again on the same data and expects every message on the
//! listening socket exactly once, with no service restarted.

use crate::groups::{add_member, user};
use crate::helpers::TestApp;
use crate::messages::{group_with_channel, send};
use crate::realtime::join;
use crate::ws::Ws;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the listener may wait for the backlog once the broker is back
/// (the bound).
const DRAIN_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_killed_and_restarted_broker_delivers_every_message_once() {
    let mut broker = PrivateBroker::start().await;
    let brokers = broker.address();
    let app = TestApp::spawn_with(|config| {
        config.kafka.brokers = brokers;
        // Sends while the broker is away fail their produce after this
        // long, so the relay tries again soon after the broker is back.
        config.kafka.message_timeout_ms = 3000;
    })
    .await;
    let ann = user(&app, "brk_ann").await;
    let ben = user(&app, "brk_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Restart").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let (mut ws, _) = Ws::open(&app.base, &ben.token).await;
    join(&mut ws, &channel).await;
    send(&app, &ann, &channel, "before").await;
    assert_eq!(ws.expect("new_message").await["data"]["content"], "before");

    broker.kill();
    let mut expected = BTreeSet::new();
    for n in 0..10 {
        let text = format!("during {n}");
        send(&app, &ann, &channel, &text).await;
        expected.insert(text);
    }
    // Long enough for producers to notice the lost connection and retry.
    tokio::time::sleep(Duration::from_secs(4)).await;
    broker.restart().await;
    for n in 0..5 {
        let text = format!("after {n}");
        send(&app, &ann, &channel, &text).await;
        expected.insert(text);
    }

    let mut received = Vec::new();
    while received.len() < expected.len() {
        let Some(frame) = ws.next_of("new_message", DRAIN_WITHIN).await else {
            panic!(
                "after the restart the listener got {} of {}: {received:?}",
                received.len(),
                expected.len()
            );
        };
        received.push(
            frame["data"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let distinct: BTreeSet<String> = received.iter().cloned().collect();
    assert_eq!(distinct, expected, "every message, once");
    ws.silent("new_message", Duration::from_millis(500)).await;
    ws.close().await;
    app.cleanup().await;
}

/// A tansu broker of this test's own (SQLite storage in a temporary
/// directory), so it can be killed and restarted without touching the
/// shared one.
struct PrivateBroker {
    port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateBroker {
    async fn start() -> PrivateBroker {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        let port = probe.local_addr().expect("address").port();
        drop(probe);
        let dir = std::env::temp_dir().join(format!("broker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("broker directory");
        let mut broker = PrivateBroker {
            port,
            dir,
            child: None,
        };
        broker.restart().await;
        broker
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        self.child = Some(spawn_tansu(&self.dir, self.port));
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the private broker did not open port {}", self.port);
    }

    /// SIGKILL: no chance to flush or say goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_tansu(dir: &Path, port: u16) -> std::process::Child {
    let url = format!("tcp://127.0.0.1:{port}");
    std::process::Command::new("tansu")
        .current_dir(dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tansu on PATH (./dev infra installs it)")
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
