//! A Web Push service on loopback (`services/notifier/tests/push_service.py`)
//! that checks every push as RFC 8030, 8291 and 8292 say and decrypts it
//! with Mozilla's `http_ece`: an implementation that is not ours.
//!
//! The Python it runs comes from `.local/webpush-venv` (`./dev infra`
//! makes it) or `WEBPUSH_TEST_PYTHON`.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub struct PushService {
    child: Child,
    pub port: u16,
    /// The device's subscription keys, as a browser reports them.
    pub p256dh: String,
    pub auth: String,
}

impl PushService {
    /// Starts it; panics (the test cannot run) when Python or `http_ece`
    /// is missing.
    pub fn start() -> PushService {
        let python = std::env::var_os("WEBPUSH_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(ROOT).join(".local/webpush-venv/bin/python"));
        assert!(
            python.exists(),
            "{} is missing: run ./dev infra (it installs http-ece there)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(PathBuf::from(ROOT).join("services/notifier/tests/push_service.py"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("the push service starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("its first line");
        let hello: Value = serde_json::from_str(&line).expect("a JSON line");
        PushService {
            child,
            port: u16::try_from(hello["port"].as_u64().expect("port")).expect("a port"),
            p256dh: hello["p256dh"].as_str().expect("p256dh").to_owned(),
            auth: hello["auth"].as_str().expect("auth").to_owned(),
        }
    }

    /// The endpoint URL of `path` (`/push/<device>`, `/gone`, `/busy`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every push received so far, checked and decrypted.
    pub async fn received(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/received", self.port);
        reqwest::get(url)
            .await
            .expect("GET /received")
            .json()
            .await
            .expect("JSON")
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
