//! One WebSocket connection: authentication, rooms, in-order exactly-once
//! delivery per room (with gap filling from the room logs), resume,
//! typing, heartbeats and token expiry.

use crate::realtime::Realtime;
use crate::realtime::frames::{self, ClientFrame, close};
use crate::realtime::hub::Signal;
use crate::realtime::presence;
use crate::realtime::rooms::Room;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use messenger_platform::auth::TokenError;
use messenger_proto::groups::v1 as pb;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How long a connection opened without a token may take to send `auth`.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that takes longer means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A close frame a client does not read in this time is not waited for.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most queued signals written with one flush.
const BATCH: usize = 64;
/// Typing notices expire on clients after this long.
const TYPING_EXPIRES_MS: u64 = 5000;

type Sink = SplitSink<WebSocket, Message>;

/// Why the connection ends (a close code and reason for the client).
struct Closing(u16, &'static str);

struct Joined {
    last_seq: u64,
    group: Option<Uuid>,
}

struct Connection {
    id: u64,
    user: Uuid,
    expires_at: i64,
    realtime: Arc<Realtime>,
    app: AppState,
    sink: Sink,
    /// Notified by the hub when this socket's queue overflowed.
    overflow: Arc<tokio::sync::Notify>,
    /// While true, frames are buffered and flushed together.
    batching: bool,
    rooms: HashMap<Room, Joined>,
    audience: Vec<Uuid>,
}

pub async fn serve(
    socket: WebSocket,
    realtime: Arc<Realtime>,
    app: AppState,
    token: Option<String>,
) {
    let (mut sink, mut stream) = socket.split();
    let token = match token {
        Some(token) => Some(token),
        None => first_auth_frame(&mut stream).await,
    };
    let Some(token) = token else {
        let _ = say_goodbye(
            &mut sink,
            Closing(close::UNAUTHENTICATED, "send an access token"),
        )
        .await;
        return;
    };
    let (principal, expires_at) = match app.tokens().verify_until(&token) {
        Ok(verified) => verified,
        Err(TokenError::Expired) => {
            let _ = say_goodbye(
                &mut sink,
                Closing(close::TOKEN_EXPIRED, "the access token has expired"),
            )
            .await;
            return;
        }
        Err(_) => {
            let _ = say_goodbye(
                &mut sink,
                Closing(close::UNAUTHENTICATED, "invalid access token"),
            )
            .await;
            return;
        }
    };
    let id = realtime.next_socket.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(realtime.settings.send_queue_frames.max(1));
    let overflow = Arc::new(tokio::sync::Notify::new());
    realtime.hub.add_socket(id, tx, overflow.clone());
    let mut connection = Connection {
        id,
        user: principal.user_id,
        expires_at,
        realtime: realtime.clone(),
        app,
        sink,
        overflow,
        batching: false,
        rooms: HashMap::new(),
        audience: Vec::new(),
    };
    let closing = connection.run(stream, rx).await;
    realtime.hub.remove_socket(id).await;
    connection.went_away().await;
    if let Some(closing) = closing {
        let _ = say_goodbye(&mut connection.sink, closing).await;
    }
}

async fn first_auth_frame(stream: &mut SplitStream<WebSocket>) -> Option<String> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, stream.next())
        .await
        .ok()??
        .ok()?;
    match first {
        Message::Text(text) => match ClientFrame::parse(&text) {
            Ok(ClientFrame::Auth { token }) => Some(token),
            _ => None,
        },
        _ => None,
    }
}

async fn say_goodbye(sink: &mut Sink, Closing(code, reason): Closing) -> Result<(), axum::Error> {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    tokio::time::timeout(GOODBYE_TIMEOUT, sink.send(Message::Close(Some(frame))))
        .await
        .unwrap_or(Ok(()))
}

/// Waits for a write, unless the hub reports an overflow first.
async fn finish(
    overflow: &tokio::sync::Notify,
    write: impl std::future::Future<
        Output = Result<Result<(), axum::Error>, tokio::time::error::Elapsed>,
    >,
) -> Result<(), Closing> {
    tokio::select! {
        written = write => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Closing(close::GOING_AWAY, "connection lost")),
            Err(_) => Err(Closing(close::SLOW_CONSUMER, "the client stopped reading")),
        },
        _ = overflow.notified() => {
            Err(Closing(close::SLOW_CONSUMER, "too many frames waiting"))
        }
    }
}

/// When a token expiring at `expires_at` (Unix seconds) runs out.
fn deadline(expires_at: i64) -> tokio::time::Instant {
    let left = expires_at - time::OffsetDateTime::now_utc().unix_timestamp();
    tokio::time::Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0))
}

fn presence_key(socket: u64) -> String {
    format!("{}:{socket}", std::process::id())
}

impl Connection {
    /// Writes one frame, or only queues it in the socket's buffer while a
    /// batch of signals is handled (flushed once at the end). A client that
    /// does not read blocks the write; if its queue overflows meanwhile, or
    /// the write takes too long, the connection ends as too slow.
    async fn send(&mut self, text: &str) -> Result<(), Closing> {
        let message = Message::Text(text.into());
        let overflow = self.overflow.clone();
        if self.batching {
            // No timer per buffered frame: the flush that ends the batch
            // carries the timeout.
            let write = async { Ok(self.sink.feed(message).await) };
            return finish(&overflow, write).await;
        }
        let write = tokio::time::timeout(WRITE_TIMEOUT, self.sink.send(message));
        finish(&overflow, write).await
    }

    async fn flush(&mut self) -> Result<(), Closing> {
        let overflow = self.overflow.clone();
        let write = tokio::time::timeout(WRITE_TIMEOUT, self.sink.flush());
        finish(&overflow, write).await
    }

    /// Handles a signal and whatever else is already queued (up to a
    /// batch), with one flush: one write for many frames under load.
    async fn on_signals(
        &mut self,
        first: Signal,
        rx: &mut mpsc::Receiver<Signal>,
    ) -> Result<(), Closing> {
        self.batching = true;
        let mut outcome = self.on_signal(first).await;
        let mut handled = 1;
        while outcome.is_ok() && handled < BATCH {
            let Ok(next) = rx.try_recv() else { break };
            outcome = self.on_signal(next).await;
            handled += 1;
        }
        self.batching = false;
        outcome?;
        self.flush().await
    }

    async fn run(
        &mut self,
        mut stream: SplitStream<WebSocket>,
        mut rx: mpsc::Receiver<Signal>,
    ) -> Option<Closing> {
        match self.start().await {
            Ok(()) => {}
            Err(closing) => return Some(closing),
        }
        let settings = &self.realtime.settings;
        let period = Duration::from_millis(settings.heartbeat_interval_ms.max(100));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let (mut sent_beats, mut answered_beats) = (0u64, 0u64);
        // Created once: re-creating timers and cancellation waiters on
        // every frame would cost more than delivering it.
        let cancelled = self.realtime.shutdown.clone().cancelled_owned();
        tokio::pin!(cancelled);
        let mut expires_at = self.expires_at;
        let expiry = tokio::time::sleep_until(deadline(expires_at));
        tokio::pin!(expiry);
        loop {
            if self.expires_at != expires_at {
                expires_at = self.expires_at;
                expiry.as_mut().reset(deadline(expires_at));
            }
            let overflow = self.overflow.clone();
            let outcome = tokio::select! {
                _ = overflow.notified() => Err(Closing(close::SLOW_CONSUMER, "too many frames waiting")),
                _ = &mut cancelled => Err(Closing(close::GOING_AWAY, "the gateway is restarting")),
                _ = &mut expiry => {
                    Err(Closing(close::TOKEN_EXPIRED, "the access token expired; refresh it and reconnect"))
                }
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => self.on_client_frame(&text, &mut answered_beats).await,
                    Some(Ok(Message::Binary(_))) => self.send(&frames::error("invalid_frame", "frames are JSON text")).await,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => Ok(()), // pings are answered by the socket itself
                },
                signal = rx.recv() => match signal {
                    Some(signal) => self.on_signals(signal, &mut rx).await,
                    None => return None,
                },
                _ = heartbeat.tick() => {
                    if sent_beats > answered_beats + 1 {
                        Err(Closing(close::HEARTBEAT_TIMEOUT, "two heartbeats went unanswered"))
                    } else {
                        sent_beats += 1;
                        self.heartbeat(sent_beats).await
                    }
                }
            };
            if let Err(closing) = outcome {
                return Some(closing);
            }
        }
    }

    /// Subscribes the user's own room and direct conversations, comes
    /// online, and says hello.
    async fn start(&mut self) -> Result<(), Closing> {
        let user_room = Room::User(self.user);
        self.subscribe(user_room, None).await;
        let readable = self.readable().await;
        let mut groups: Vec<Uuid> = readable.iter().map(|c| c.0).collect();
        groups.sort();
        groups.dedup();
        self.audience = groups;
        for (group, channel, direct) in &readable {
            if *direct {
                self.subscribe(Room::Conversation(*group), Some(*group))
                    .await;
                self.subscribe(Room::Conversation(*channel), Some(*group))
                    .await;
            }
        }
        let ttl = Duration::from_millis(self.realtime.settings.presence_ttl_ms);
        match self
            .realtime
            .store
            .connection_alive(self.user, &presence_key(self.id), ttl)
            .await
        {
            Ok(true) => presence::announce(&self.realtime, &self.audience, self.user, true).await,
            Ok(false) => {}
            Err(err) => tracing::debug!(%err, "presence unavailable"),
        }
        let hello = frames::control(
            "connected",
            json!({
                "user_id": self.user,
                "connection_id": self.id,
                "heartbeat_interval_ms": self.realtime.settings.heartbeat_interval_ms,
                "rooms": self.positions(),
            }),
        );
        self.send(&hello).await
    }

    async fn went_away(&mut self) {
        match self
            .realtime
            .store
            .connection_closed(self.user, &presence_key(self.id))
            .await
        {
            Ok(true) => presence::announce(&self.realtime, &self.audience, self.user, false).await,
            Ok(false) => {}
            Err(err) => tracing::debug!(%err, "presence unavailable"),
        }
    }

    /// (group, channel, is direct) for every conversation the user may read.
    async fn readable(&self) -> Vec<(Uuid, Uuid, bool)> {
        let answer = self
            .app
            .groups()
            .list_readable_conversations(pb::ListReadableConversationsRequest {
                user_id: self.user.to_string(),
                conversation_ids: Vec::new(),
            })
            .await;
        match answer {
            Ok(answer) => answer
                .into_inner()
                .conversations
                .iter()
                .filter_map(|c| {
                    Some((
                        Uuid::parse_str(&c.group_id).ok()?,
                        Uuid::parse_str(&c.channel_id).ok()?,
                        c.kind == pb::GroupKind::Direct as i32,
                    ))
                })
                .collect(),
            Err(status) => {
                tracing::warn!(%status, "cannot list readable conversations");
                Vec::new()
            }
        }
    }

    fn positions(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .rooms
            .iter()
            .map(|(room, joined)| (room.id().to_string(), Value::from(joined.last_seq)))
            .collect();
        Value::Object(map)
    }

    /// Routes the room here, then reads its position: frames numbered
    /// after that position arrive live.
    async fn subscribe(&mut self, room: Room, group: Option<Uuid>) -> u64 {
        if let Some(joined) = self.rooms.get(&room) {
            return joined.last_seq;
        }
        self.realtime.hub.join(self.id, room, group).await;
        let seq = self.realtime.store.current_seq(room).await.unwrap_or(0);
        self.rooms.insert(
            room,
            Joined {
                last_seq: seq,
                group,
            },
        );
        seq
    }

    async fn unsubscribe(&mut self, room: Room) {
        if self.rooms.remove(&room).is_some() {
            self.realtime.hub.leave(self.id, room).await;
        }
    }

    /// May the user read `conversation` (a group or channel id)? Returns
    /// the group and, for a channel, the channel.
    async fn authorize(&self, conversation: Uuid) -> Result<Option<(Uuid, Option<Uuid>)>, Closing> {
        let answer = self
            .app
            .groups()
            .authorize(pb::AuthorizeRequest {
                user_id: self.user.to_string(),
                conversation_id: conversation.to_string(),
                action: pb::Action::ReadMessages.into(),
                target_user_id: String::new(),
            })
            .await;
        match answer {
            Ok(answer) => {
                let answer = answer.into_inner();
                if !answer.allowed {
                    return Ok(None);
                }
                let Ok(group) = Uuid::parse_str(&answer.group_id) else {
                    return Ok(None);
                };
                Ok(Some((group, Uuid::parse_str(&answer.channel_id).ok())))
            }
            Err(status) => {
                tracing::warn!(%status, "authorization unavailable");
                Ok(None)
            }
        }
    }

    async fn on_client_frame(
        &mut self,
        text: &str,
        answered_beats: &mut u64,
    ) -> Result<(), Closing> {
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(reason) => return self.send(&frames::error("invalid_frame", &reason)).await,
        };
        match frame {
            ClientFrame::Auth { token } => match self.app.tokens().verify_until(&token) {
                Ok((principal, expires_at)) if principal.user_id == self.user => {
                    self.expires_at = expires_at;
                    self.send(&frames::control(
                        "auth_ok",
                        json!({"expires_at": expires_at}),
                    ))
                    .await
                }
                Ok(_) => {
                    self.send(&frames::error(
                        "invalid_token",
                        "the token is another user's",
                    ))
                    .await
                }
                Err(err) => {
                    self.send(&frames::error("invalid_token", &err.to_string()))
                        .await
                }
            },
            ClientFrame::JoinRoom { room_id } => self.join(room_id).await,
            ClientFrame::LeaveRoom { room_id } => {
                let leaving: Vec<Room> = self
                    .rooms
                    .iter()
                    .filter(|(room, joined)| room.id() == room_id || joined.group == Some(room_id))
                    .map(|(room, _)| *room)
                    .filter(|room| *room != Room::User(self.user))
                    .collect();
                for room in leaving {
                    self.unsubscribe(room).await;
                }
                self.send(&frames::control(
                    "room_left",
                    json!({"room_id": room_id, "reason": "left"}),
                ))
                .await
            }
            ClientFrame::Typing { room_id } => self.typing(room_id).await,
            ClientFrame::Ping { data } => self.send(&frames::control("pong", data)).await,
            ClientFrame::Pong { n } => {
                *answered_beats = (*answered_beats).max(n);
                Ok(())
            }
            ClientFrame::Resume { rooms } => {
                for (room_id, last_seq) in rooms {
                    self.resume(room_id, last_seq).await?;
                }
                Ok(())
            }
        }
    }

    /// Joins a group (its own room and every channel the user may read in
    /// it) or one channel.
    async fn join(&mut self, room_id: Uuid) -> Result<(), Closing> {
        let Some((group, channel)) = self.authorize(room_id).await? else {
            return self
                .send(&frames::error(
                    "not_found",
                    &format!("no room {room_id} you may join"),
                ))
                .await;
        };
        let mut positions = serde_json::Map::new();
        match channel {
            Some(channel) => {
                let seq = self
                    .subscribe(Room::Conversation(channel), Some(group))
                    .await;
                positions.insert(channel.to_string(), seq.into());
            }
            None => {
                let seq = self.subscribe(Room::Conversation(group), Some(group)).await;
                positions.insert(group.to_string(), seq.into());
                for (in_group, channel, _) in self.readable().await {
                    if in_group == group {
                        let seq = self
                            .subscribe(Room::Conversation(channel), Some(group))
                            .await;
                        positions.insert(channel.to_string(), seq.into());
                    }
                }
            }
        }
        self.send(&frames::control(
            "room_joined",
            json!({"room_id": room_id, "rooms": positions}),
        ))
        .await
    }

    /// Replays what the client missed in a room since `last_seq`.
    async fn resume(&mut self, room_id: Uuid, last_seq: u64) -> Result<(), Closing> {
        let room = if room_id == self.user {
            Room::User(self.user)
        } else {
            let Some((group, _)) = self.authorize(room_id).await? else {
                return self
                    .send(&frames::error(
                        "not_found",
                        &format!("no room {room_id} you may resume"),
                    ))
                    .await;
            };
            let room = Room::Conversation(room_id);
            self.subscribe(room, Some(group)).await;
            room
        };
        if let Some(joined) = self.rooms.get_mut(&room) {
            joined.last_seq = last_seq;
        }
        let (recovered, replayed) = self.catch_up(room, None).await?;
        self.send(&frames::control(
            "resumed",
            json!({"room_id": room_id, "recovered": recovered, "replayed": replayed}),
        ))
        .await
    }

    /// Sends the logged frames after the room's position (up to `upto`).
    /// Returns whether nothing was lost, and how many frames were sent.
    async fn catch_up(&mut self, room: Room, upto: Option<u64>) -> Result<(bool, usize), Closing> {
        let Some(last) = self.rooms.get(&room).map(|joined| joined.last_seq) else {
            return Ok((true, 0));
        };
        if upto.is_some_and(|upto| upto <= last) {
            return Ok((true, 0));
        }
        let entries = match self.realtime.store.replay(room, last + 1, upto).await {
            Ok(entries) => entries,
            Err(err) => {
                tracing::debug!(%err, "cannot read a room log");
                return Ok((false, 0));
            }
        };
        let current = match upto {
            Some(upto) => upto,
            None => self.realtime.store.current_seq(room).await.unwrap_or(last),
        };
        let complete = current <= last || entries.first().map(|(seq, _)| *seq) == Some(last + 1);
        if !complete {
            // Older than the log keeps: the client refetches over REST.
            self.send(&frames::control(
                "resync_required",
                json!({"room_id": room.id(), "from_seq": last, "to_seq": current}),
            ))
            .await?;
        }
        let mut sent = 0;
        for (seq, frame) in entries {
            let Some(joined) = self.rooms.get_mut(&room) else {
                break;
            };
            if seq <= joined.last_seq {
                continue;
            }
            joined.last_seq = seq;
            self.send(&frame).await?;
            sent += 1;
        }
        if let Some(joined) = self.rooms.get_mut(&room) {
            joined.last_seq = joined.last_seq.max(current);
        }
        Ok((complete, sent))
    }

    async fn on_signal(&mut self, signal: Signal) -> Result<(), Closing> {
        match signal {
            Signal::Frame { room, seq, frame } => {
                let Some(last) = self.rooms.get(&room).map(|joined| joined.last_seq) else {
                    return Ok(()); // left meanwhile
                };
                if seq == 0 {
                    return self.send(&frame).await;
                }
                if seq <= last {
                    return Ok(()); // already delivered (replay or duplicate)
                }
                if seq > last + 1 {
                    self.catch_up(room, Some(seq - 1)).await?;
                }
                if let Some(joined) = self.rooms.get_mut(&room) {
                    joined.last_seq = seq;
                }
                self.send(&frame).await?;
                if room == Room::User(self.user) {
                    self.on_own_event(&frame).await?;
                }
                Ok(())
            }
            Signal::CatchUp => {
                let rooms: Vec<Room> = self.rooms.keys().copied().collect();
                for room in rooms {
                    self.catch_up(room, None).await?;
                }
                Ok(())
            }
            Signal::Revalidate(group) => self.revalidate(group).await,
        }
    }

    /// Frames in the user's own room that change what they may read.
    async fn on_own_event(&mut self, frame: &str) -> Result<(), Closing> {
        let Ok(frame) = serde_json::from_str::<Value>(frame) else {
            return Ok(());
        };
        let group = |field: &str| {
            frame["data"][field]
                .as_str()
                .and_then(|raw| Uuid::parse_str(raw).ok())
        };
        match frame["type"].as_str() {
            Some("member_removed" | "member_left" | "group_deleted" | "channel_member_removed") => {
                if let Some(group) = group("group_id") {
                    self.revalidate(group).await?;
                }
            }
            Some("dm_opened") => {
                let group = frame["data"]["group"]["id"]
                    .as_str()
                    .and_then(|raw| Uuid::parse_str(raw).ok());
                let channel = frame["data"]["channel"]["id"]
                    .as_str()
                    .and_then(|raw| Uuid::parse_str(raw).ok());
                if let (Some(group), Some(channel)) = (group, channel) {
                    self.subscribe(Room::Conversation(group), Some(group)).await;
                    self.subscribe(Room::Conversation(channel), Some(group))
                        .await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Drops the rooms of `group` the user may no longer read.
    async fn revalidate(&mut self, group: Uuid) -> Result<(), Closing> {
        let rooms: Vec<Room> = self
            .rooms
            .iter()
            .filter(|(_, joined)| joined.group == Some(group))
            .map(|(room, _)| *room)
            .collect();
        for room in rooms {
            if self.authorize(room.id()).await?.is_none() {
                self.unsubscribe(room).await;
                self.send(&frames::control(
                    "room_left",
                    json!({"room_id": room.id(), "reason": "access_revoked"}),
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn typing(&mut self, room_id: Uuid) -> Result<(), Closing> {
        let room = Room::Conversation(room_id);
        if !self.rooms.contains_key(&room) {
            return self
                .send(&frames::error(
                    "not_joined",
                    "join the room before typing in it",
                ))
                .await;
        }
        let throttle = Duration::from_millis(self.realtime.settings.typing_throttle_ms);
        match self
            .realtime
            .store
            .typing_allowed(room, self.user, throttle)
            .await
        {
            Ok(true) => {
                let frame = frames::ephemeral(
                    "user_typing",
                    &room_id.to_string(),
                    json!({"user_id": self.user, "channel_id": room_id, "expires_in_ms": TYPING_EXPIRES_MS}),
                );
                if let Err(err) = self.realtime.store.publish_ephemeral(room, &frame).await {
                    tracing::debug!(%err, "cannot publish typing");
                }
            }
            Ok(false) => {} // throttled
            Err(err) => tracing::debug!(%err, "typing unavailable"),
        }
        Ok(())
    }

    /// A heartbeat carries the position of every room, so a client can
    /// tell a quiet room from a broken delivery path.
    async fn heartbeat(&mut self, n: u64) -> Result<(), Closing> {
        let ttl = Duration::from_millis(self.realtime.settings.presence_ttl_ms);
        if let Err(err) = self
            .realtime
            .store
            .connection_alive(self.user, &presence_key(self.id), ttl)
            .await
        {
            tracing::debug!(%err, "presence unavailable");
        }
        let beat = frames::control("heartbeat", json!({"n": n, "rooms": self.positions()}));
        self.send(&beat).await
    }
}
