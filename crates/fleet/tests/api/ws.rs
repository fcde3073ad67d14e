//! A small WebSocket client for the realtime tests.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Answer server heartbeats (a well-behaved client).
    pub answer_heartbeats: bool,
}

/// How a read ended.
#[derive(Debug)]
pub enum Next {
    Frame(Value),
    /// A Close frame (with its code), or the end of the stream.
    Closed(Option<u16>),
    /// The connection failed: a reset, or TCP closed without a closing
    /// handshake. Kept apart from `Closed` so tests see unclean closes.
    Failed(String),
    TimedOut,
}

impl Ws {
    /// Connects to `base` (an http:// URL) with a token in the query.
    pub async fn connect(base: &str, token: &str) -> Ws {
        Self::connect_url(&format!(
            "{}/ws?token={token}",
            base.replacen("http", "ws", 1)
        ))
        .await
    }

    pub async fn connect_url(url: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket");
        Ws {
            stream,
            answer_heartbeats: true,
        }
    }

    /// Connects and waits for `connected`.
    pub async fn open(base: &str, token: &str) -> (Ws, Value) {
        let mut ws = Self::connect(base, token).await;
        let hello = ws.expect("connected").await;
        (ws, hello)
    }

    pub async fn send(&mut self, kind: &str, data: Value) {
        self.send_text(json!({"type": kind, "data": data}).to_string())
            .await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send frame");
    }

    /// The next frame from the server (heartbeats answered, not returned).
    pub async fn next(&mut self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return Next::TimedOut,
                Ok(None) => return Next::Closed(None),
                Ok(Some(Err(err))) => return Next::Failed(err.to_string()),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                    if frame["type"] == "heartbeat" {
                        if self.answer_heartbeats {
                            let n = frame["data"]["n"].clone();
                            self.send("pong", json!({"n": n})).await;
                        }
                        continue;
                    }
                    return Next::Frame(frame);
                }
                Message::Close(frame) => return Next::Closed(frame.map(|f| u16::from(f.code))),
                _ => continue,
            }
        }
    }

    /// Reads until a frame of `kind` arrives (others are skipped).
    pub async fn expect(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Next::Frame(frame) if frame["type"] == kind => return frame,
                Next::Frame(_) => continue,
                other => panic!("waiting for {kind}: {other:?}"),
            }
        }
    }

    /// The next frame of `kind` within `wait` (others skipped), if any.
    pub async fn next_of(&mut self, kind: &str, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Next::Frame(frame) if frame["type"] == kind => return Some(frame),
                Next::Frame(_) => continue,
                Next::TimedOut | Next::Closed(_) | Next::Failed(_) => return None,
            }
        }
    }

    /// The next `n` frames of `kind`.
    pub async fn collect(&mut self, kind: &str, n: usize) -> Vec<Value> {
        let mut frames = Vec::with_capacity(n);
        while frames.len() < n {
            frames.push(self.expect(kind).await);
        }
        frames
    }

    /// Asserts no frame of `kind` arrives within `wait`.
    pub async fn silent(&mut self, kind: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Next::Frame(frame) if frame["type"] == kind => {
                    panic!("unexpected {kind}: {frame}")
                }
                Next::Frame(_) => continue,
                Next::TimedOut | Next::Closed(_) | Next::Failed(_) => return,
            }
        }
    }

    /// Reads until the server closes; returns its close code.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Next::Frame(_) => continue,
                Next::Closed(code) => return code,
                Next::Failed(err) => panic!("the connection failed instead of closing: {err}"),
                Next::TimedOut => panic!("the server did not close the socket"),
            }
        }
    }

    /// Closes from the client side with `code` and returns the code of the
    /// server's answering Close; the stream must then end cleanly.
    pub async fn close_with(mut self, code: u16) -> u16 {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let frame = CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        };
        self.stream
            .send(Message::Close(Some(frame)))
            .await
            .expect("send close");
        let mut answer = None;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.next()).await {
                Err(_) => panic!("no end of the closing handshake (answer {answer:?})"),
                Ok(None) => break,
                Ok(Some(Err(err))) => panic!("closing ended in an error: {err}"),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    answer = Some(frame.map_or(1005, |f| u16::from(f.code)));
                }
                Ok(Some(Ok(_))) => {} // sent before the server saw our Close
            }
        }
        answer.expect("the server answered our Close with its own")
    }

    /// Reads until the server's Close (other frames skipped) and returns
    /// its code; the stream must then end cleanly (`None`), not in an error.
    pub async fn closed_by_server(&mut self, wait: Duration) -> u16 {
        let code = match self.close_code(wait).await {
            Some(code) => code,
            None => panic!("the stream ended without a Close frame"),
        };
        match tokio::time::timeout(Duration::from_secs(5), self.stream.next()).await {
            Ok(None) => code,
            other => panic!("after Close {code}: {other:?} instead of a clean end"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
