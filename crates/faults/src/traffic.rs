//! The load: senders that post numbered messages and retry each one with
//! its idempotency key until it is acknowledged, and WebSocket receivers
//! that reconnect to whichever gateway answers and resume where they were.

use crate::ledger::{Ack, Delivery, Ledger};
use crate::world::{Api, Receiver, Sender};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A send is abandoned (and reported unacknowledged) after this long.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

pub async fn send_loop(
    ledger: Arc<Ledger>,
    api: Api,
    gateways: [String; 2],
    sender: Sender,
    pace: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let channel = &sender.channels[n % sender.channels.len()];
        let key = format!("{}-{n:06}", sender.account.name);
        let index = ledger.begin_send(key.clone(), channel.clone());
        let started = Instant::now();
        for attempt in 0u32.. {
            ledger.with_send(index, |send| send.attempts = attempt + 1);
            // Retries alternate replicas, as a client behind a balancer would.
            let base = &gateways[(n + attempt as usize) % 2];
            let request = api
                .http
                .post(format!("{base}/api/v1/channels/{channel}/messages"))
                .bearer_auth(&sender.account.token)
                .header("Idempotency-Key", &key)
                .json(&json!({"content": key}))
                .timeout(Duration::from_secs(8))
                .send()
                .await;
            let outcome = match request {
                Ok(response) => {
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    (status, body)
                }
                Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
            };
            match outcome {
                (status, body) if status.is_success() => {
                    let message_id = body["id"].as_str().unwrap_or_default().to_owned();
                    ledger.with_send(index, |send| send.acked = Some(Ack { message_id }));
                    break;
                }
                (status, body)
                    if status.is_client_error()
                        && status != StatusCode::REQUEST_TIMEOUT
                        && status != StatusCode::TOO_MANY_REQUESTS =>
                {
                    ledger.with_send(index, |send| {
                        send.refused = Some(format!("{status} {body}"))
                    });
                    break;
                }
                _ if started.elapsed() > GIVE_UP_AFTER => break,
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        tokio::time::sleep(pace).await;
    }
}

/// Per-connection state a receiver keeps across reconnects.
#[derive(Default)]
struct Position {
    /// The last `seq` seen per room (group and channel rooms).
    rooms: HashMap<String, u64>,
    /// The last message seen per channel, for refetching after a resync.
    last_message: HashMap<String, (String, u64)>,
    joined: bool,
}

pub async fn receive_loop(
    ledger: Arc<Ledger>,
    api: Api,
    gateways: [String; 2],
    index: usize,
    receiver: Receiver,
    stop: Arc<AtomicBool>,
) {
    let mut position = Position::default();
    let mut gateway = receiver.gateway;
    while !stop.load(Ordering::Relaxed) {
        let url = format!(
            "{}/ws?token={}",
            gateways[gateway].replacen("http", "ws", 1),
            receiver.account.token
        );
        let connected = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url),
        )
        .await;
        let Ok(Ok((socket, _))) = connected else {
            // That replica is down: try the other one.
            gateway = 1 - gateway;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        ledger.with_receiver(index, |stats| stats.connects += 1);
        let session = Session {
            ledger: &ledger,
            api: &api,
            base: &gateways[gateway],
            index,
            receiver: &receiver,
            stop: &stop,
        };
        session.run(socket, &mut position).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Session<'a> {
    ledger: &'a Ledger,
    api: &'a Api,
    base: &'a str,
    index: usize,
    receiver: &'a Receiver,
    stop: &'a AtomicBool,
}

impl Session<'_> {
    /// Reads one connection until it drops or the run stops.
    async fn run(&self, mut socket: Socket, position: &mut Position) {
        let mut greeted = false;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                let _ = socket.close(None).await;
                return;
            }
            let next = tokio::time::timeout(Duration::from_millis(250), socket.next()).await;
            let message = match next {
                Err(_) => continue,
                Ok(Some(Ok(message))) => message,
                Ok(_) => return,
            };
            let Message::Text(text) = message else {
                if matches!(message, Message::Close(_)) {
                    return;
                }
                continue;
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let reply = match frame["type"].as_str().unwrap_or_default() {
                "connected" if !greeted => {
                    greeted = true;
                    self.greet(position)
                }
                "heartbeat" => vec![json!({"type": "pong", "data": {"n": frame["data"]["n"]}})],
                "room_joined" => {
                    self.joined(&frame, position);
                    Vec::new()
                }
                "resync_required" => {
                    self.resync(&frame, position).await;
                    Vec::new()
                }
                "error" => {
                    self.ledger
                        .with_receiver(self.index, |stats| stats.error_frames += 1);
                    Vec::new()
                }
                _ => {
                    self.sequenced(&frame, position);
                    Vec::new()
                }
            };
            for frame in reply {
                if socket
                    .send(Message::Text(frame.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }

    /// First connection: join the rooms. Later ones: resume from the last
    /// position of every room.
    fn greet(&self, position: &mut Position) -> Vec<Value> {
        if self.receiver.outsider || !position.joined {
            position.joined = true;
            return self
                .receiver
                .groups
                .iter()
                .map(|room| json!({"type": "join_room", "data": {"room_id": room}}))
                .collect();
        }
        vec![json!({"type": "resume", "data": {"rooms": position.rooms}})]
    }

    fn joined(&self, frame: &Value, position: &mut Position) {
        if let Some(rooms) = frame["data"]["rooms"].as_object() {
            for (room, seq) in rooms {
                position
                    .rooms
                    .entry(room.clone())
                    .or_insert(seq.as_u64().unwrap_or(0));
            }
        }
    }

    fn sequenced(&self, frame: &Value, position: &mut Position) {
        let (Some(room), Some(seq)) = (frame["room_id"].as_str(), frame["seq"].as_u64()) else {
            return;
        };
        if seq == 0 {
            return; // typing and presence are not numbered
        }
        let last = position.rooms.entry(room.to_owned()).or_insert(0);
        if seq <= *last {
            self.ledger
                .with_receiver(self.index, |stats| stats.seq_regressions += 1);
        }
        *last = seq;
        if frame["type"] == "new_message" {
            self.record(room, &frame["data"], position, false);
        }
    }

    fn record(&self, room: &str, message: &Value, position: &mut Position, refetched: bool) {
        let message_id = message["id"].as_str().unwrap_or_default().to_owned();
        let message_seq = message["seq"].as_u64().unwrap_or(0);
        position
            .last_message
            .insert(room.to_owned(), (message_id.clone(), message_seq));
        self.ledger.deliver(Delivery {
            receiver: self.index,
            room: room.to_owned(),
            message_id,
            message_seq,
            at: Instant::now(),
            refetched,
        });
    }

    /// The gap is older than the room log: fetch what was missed over REST,
    /// as the protocol asks clients to.
    async fn resync(&self, frame: &Value, position: &mut Position) {
        self.ledger
            .with_receiver(self.index, |stats| stats.resyncs += 1);
        if std::env::var_os("FAULTS_TRACE").is_some() {
            eprintln!("{} on {}: {frame}", self.receiver.account.name, self.base);
        }
        let Some(room) = frame["data"]["room_id"].as_str() else {
            return;
        };
        if !self.receiver.channels.iter().any(|channel| channel == room) {
            return;
        }
        loop {
            let after = position
                .last_message
                .get(room)
                .map(|(id, _)| format!("&after={id}"))
                .unwrap_or_default();
            let url = format!(
                "{}/api/v1/channels/{room}/messages?limit=100{after}",
                self.base
            );
            let Ok((StatusCode::OK, page)) = self
                .api
                .call(Method::GET, url, Some(&self.receiver.account.token), None)
                .await
            else {
                return;
            };
            let messages = page["messages"].as_array().cloned().unwrap_or_default();
            for message in &messages {
                self.record(room, message, position, true);
            }
            if messages.is_empty() || page["has_newer"] != true {
                return;
            }
        }
    }
}
