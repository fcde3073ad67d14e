//! One WebSocket connection: authentication, rooms, in-order exactly-once
//! delivery per room (with gap filling from the room logs), resume,
//! typing, heartbeats and token expiry.

use crate::realtime::Realtime;
use crate::realtime::frames::{self, ClientFrame, close};
use crate::realtime::hub::Signal;
use crate::realtime::presence;
use crate::realtime::rooms::Room;
use crate::realtime::store::{OverCap, SocketLease};
use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use messenger_platform::auth::TokenError;
use messenger_platform::identity::Rejected;

use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How long a connection opened without a token may take to send `auth`.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that takes longer means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing handshake may take: writing our Close frame, then
/// waiting for the client's (RFC 6455 §5.5.1 and §7.1.1).
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most queued signals written with one flush.
const BATCH: usize = 64;
/// Typing notices expire on clients after this long.
const TYPING_EXPIRES_MS: u64 = 5000;

mod rooms;

/// The socket's sending half: the WebSocket's in production, a channel in
/// unit tests.
pub trait Outgoing: Sink<Message> + Unpin + Send {}
impl<T: Sink<Message> + Unpin + Send> Outgoing for T {}

/// The socket's receiving half.
pub trait Incoming: Stream<Item = Result<Message, axum::Error>> + Unpin + Send {}
impl<T: Stream<Item = Result<Message, axum::Error>> + Unpin + Send> Incoming for T {}

/// Why the connection ends (a close code and reason for the client).
struct Closing(u16, &'static str);

/// How a connection's loop ended.
enum Ending {
    /// We close, with this code and reason.
    Server(Closing),
    /// The client sent its Close: the socket queued the echo, which must
    /// still be written.
    ClientClosed,
    /// The connection is gone (reset, or the stream ended without a Close).
    Lost,
}

struct Joined {
    last_seq: u64,
    group: Option<Uuid>,
    recent: RecentEvents,
}

/// How many of a room's latest events a socket remembers.
const RECENT_EVENTS: usize = 128;

/// The events a socket sent last in one room. Redis drops a repeated event
/// by its id, but if Redis lost its data, a replica still catching up
/// publishes the events it reads again under new numbers: the socket sends
/// each event once anyway.
///
/// Kept as 64-bit fingerprints (SipHash with this process's random key), not
/// the ids: checking a frame scans 128 integers instead of comparing 128
/// strings, which was 5.5 % of the gateway's CPU at 20,000 deliveries/s
/// (docs/benchmarks.md). A collision within one room's last 128 events
/// (odds about 2^-50) would drop that one frame; the ids come from the
/// services, and the key is unknown outside the process.
#[derive(Default)]
struct RecentEvents(VecDeque<u64>);

impl RecentEvents {
    /// Remembers `event`; false when it was sent already. Frames without an
    /// event id always go out.
    fn first_time(&mut self, event: &str) -> bool {
        if event.is_empty() {
            return true;
        }
        let fingerprint = fingerprint(event);
        if self.0.contains(&fingerprint) {
            return false;
        }
        if self.0.len() == RECENT_EVENTS {
            self.0.pop_front();
        }
        self.0.push_back(fingerprint);
        true
    }
}

fn fingerprint(event: &str) -> u64 {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(std::hash::RandomState::new).hash_one(event)
}

struct Connection<W> {
    id: u64,
    user: Uuid,
    /// The session of the token the socket last authenticated with.
    session: Uuid,
    /// That token, forwarded on the calls made for this socket.
    token: String,
    /// The client's address, as the rate limiter resolves it.
    address: String,
    /// Admitted under the socket caps: only then did it come online.
    admitted: bool,
    expires_at: i64,
    realtime: Arc<Realtime>,
    sink: W,
    /// Notified by the hub when this socket's queue overflowed.
    overflow: Arc<tokio::sync::Notify>,
    /// While true, frames are buffered and flushed together.
    batching: bool,
    rooms: HashMap<Room, Joined>,
    audience: Vec<Uuid>,
    /// Frames this client may still send (rate limiting on).
    budget: Option<crate::ratelimit::FrameBudget>,
    /// Already told it is sending too fast: one notice per burst.
    throttled: bool,
}

/// Runs one connection to its end over the two halves of a socket.
pub async fn serve<W: Outgoing, R: Incoming>(
    mut sink: W,
    mut stream: R,
    realtime: Arc<Realtime>,
    token: Option<String>,
    address: String,
) {
    let token = match token {
        Some(token) => Some(token),
        None => Box::pin(first_auth_frame(&mut stream)).await,
    };
    let Some(token) = token else {
        let closing = Closing(close::UNAUTHENTICATED, "send an access token");
        return Box::pin(say_goodbye(&mut sink, &mut stream, closing)).await;
    };
    // One-time steps are boxed, so the connection's future stays small
    // while it waits (see `run`).
    let (principal, expires_at) = match Box::pin(realtime.tokens.verify(&token)).await {
        Ok(verified) => verified,
        Err(Rejected::Token(TokenError::Expired)) => {
            let closing = Closing(close::TOKEN_EXPIRED, "the access token has expired");
            return Box::pin(say_goodbye(&mut sink, &mut stream, closing)).await;
        }
        Err(_) => {
            let closing = Closing(close::UNAUTHENTICATED, "invalid access token");
            return Box::pin(say_goodbye(&mut sink, &mut stream, closing)).await;
        }
    };
    let budget = realtime
        .frames_per_second
        .map(crate::ratelimit::FrameBudget::new);
    let id = realtime.next_socket.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) =
        mpsc::channel(realtime.settings.send_queue_frames.max(1) + crate::realtime::fanout::BATCH);
    let overflow = Arc::new(tokio::sync::Notify::new());
    // Registered under its session before the deny-list is read: a
    // revocation published in between then still reaches this socket.
    realtime
        .hub
        .add_socket(id, principal.session_id, tx, overflow.clone());
    if Box::pin(realtime.tokens.deny_list().is_revoked(principal.session_id)).await {
        Box::pin(realtime.hub.remove_socket(id)).await;
        let closing = Closing(
            close::SESSION_REVOKED,
            "the session has ended; sign in again",
        );
        return Box::pin(say_goodbye(&mut sink, &mut stream, closing)).await;
    }
    let mut connection = Connection {
        id,
        user: principal.user_id,
        session: principal.session_id,
        token,
        address,
        admitted: false,
        expires_at,
        realtime: realtime.clone(),
        sink,
        overflow,
        batching: false,
        rooms: HashMap::new(),
        audience: Vec::new(),
        budget,
        throttled: false,
    };
    let ending = connection.run(&mut stream, rx).await;
    Box::pin(realtime.hub.remove_socket(id)).await;
    Box::pin(connection.went_away()).await;
    match ending {
        Ending::Server(closing) => {
            Box::pin(say_goodbye(&mut connection.sink, &mut stream, closing)).await
        }
        Ending::ClientClosed => Box::pin(answer_close(&mut connection.sink)).await,
        Ending::Lost => {}
    }
}

async fn first_auth_frame(stream: &mut impl Incoming) -> Option<String> {
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

/// Closes from our side: sends the Close frame with its code, then waits
/// (bounded) for the client's Close, so both ends see a clean close. The
/// connection is dropped afterwards either way.
async fn say_goodbye(
    sink: &mut impl Outgoing,
    stream: &mut impl Incoming,
    Closing(code, reason): Closing,
) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let handshake = async {
        if sink.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        // Frames the client sent before it saw ours are skipped.
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, handshake).await;
}

/// The client closed: write the Close echo the socket queued when it read
/// the client's frame, before the connection is dropped.
async fn answer_close(sink: &mut impl Outgoing) {
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, sink.flush()).await;
}

/// Waits for a write, unless the hub reports an overflow first.
async fn finish<E>(
    overflow: &tokio::sync::Notify,
    write: impl std::future::Future<Output = Result<Result<(), E>, tokio::time::error::Elapsed>>,
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

/// A socket's name in Redis, unique across replicas.
fn presence_key(realtime: &Realtime, socket: u64) -> String {
    format!("{}:{socket}", realtime.instance)
}

impl<W: Outgoing> Connection<W> {
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

    /// Takes one frame from the budget; a frame within it ends a burst.
    fn within_budget(&mut self) -> bool {
        let within = self.budget.as_mut().is_none_or(|budget| budget.take());
        if within {
            self.throttled = false;
        }
        within
    }

    async fn run(&mut self, stream: &mut impl Incoming, mut rx: mpsc::Receiver<Signal>) -> Ending {
        // Rare or one-time steps are boxed: the future of every idle
        // socket is as large as its largest await point.
        if let Err(closing) = Box::pin(self.start()).await {
            return Ending::Server(closing);
        }
        let settings = &self.realtime.settings;
        let period = Duration::from_millis(settings.heartbeat_interval_ms.max(100));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // After a stall (a busy host), the next beat comes a full period
        // later: ticks that fired back to back would count as unanswered
        // before the client could answer the first.
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                    Some(Ok(Message::Text(text))) => {
                        if self.within_budget() {
                            Box::pin(self.on_client_frame(&text, &mut answered_beats)).await
                        } else if !std::mem::replace(&mut self.throttled, true) {
                            Box::pin(self.send(&frames::error("rate_limited", "too many frames; slow down"))).await
                        } else {
                            Ok(())
                        }
                    }
                    Some(Ok(Message::Binary(_))) => Box::pin(self.send(&frames::error("invalid_frame", "frames are JSON text"))).await,
                    Some(Ok(Message::Close(_))) => return Ending::ClientClosed,
                    None | Some(Err(_)) => return Ending::Lost,
                    Some(Ok(_)) => Ok(()), // pings are answered by the socket itself
                },
                signal = rx.recv() => match signal {
                    Some(signal) => self.on_signals(signal, &mut rx).await,
                    None => return Ending::Lost,
                },
                _ = heartbeat.tick() => {
                    if sent_beats > answered_beats + 1 {
                        Err(Closing(close::HEARTBEAT_TIMEOUT, "two heartbeats went unanswered"))
                    } else {
                        sent_beats += 1;
                        Box::pin(self.heartbeat(sent_beats)).await
                    }
                }
            };
            if let Err(closing) = outcome {
                return Ending::Server(closing);
            }
        }
    }

    /// Subscribes the user's own room and direct conversations, comes
    /// online, and says hello.
    async fn start(&mut self) -> Result<(), Closing> {
        self.lease().await?;
        self.admitted = true;
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
        self.keep_presence().await;
        presence::changed(&self.realtime, self.user).await;
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

    /// Takes or renews this socket's place under the per-user and
    /// per-address caps (shared by every replica through Redis). Without
    /// Redis the socket is admitted, as the rate limiter fails open.
    async fn lease(&self) -> Result<(), Closing> {
        let key = presence_key(&self.realtime, self.id);
        let lease = SocketLease {
            user: self.user,
            address: &self.address,
            member: &key,
        };
        let settings = &self.realtime.settings;
        let caps = (
            settings.max_sockets_per_user,
            settings.max_sockets_per_address,
        );
        let ttl = Duration::from_millis(settings.presence_ttl_ms);
        match self.realtime.store.lease_socket(&lease, caps, ttl).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(OverCap::User)) => Err(Closing(
                close::TOO_MANY_SOCKETS,
                "too many open sockets for this user",
            )),
            Ok(Err(OverCap::Address)) => Err(Closing(
                close::TOO_MANY_SOCKETS,
                "too many open sockets from this address",
            )),
            Err(err) => {
                tracing::debug!(%err, "socket caps unavailable");
                Ok(())
            }
        }
    }

    async fn went_away(&mut self) {
        if !self.admitted {
            return;
        }
        let key = presence_key(&self.realtime, self.id);
        let lease = SocketLease {
            user: self.user,
            address: &self.address,
            member: &key,
        };
        if let Err(err) = self.realtime.store.release_socket(&lease).await {
            tracing::debug!(%err, "cannot release socket lease");
        }
        match self
            .realtime
            .store
            .connection_closed(self.user, &presence_key(&self.realtime, self.id))
            .await
        {
            Ok(true) => presence::announce(&self.realtime, &self.audience, self.user, false).await,
            Ok(false) => {}
            Err(err) => tracing::debug!(%err, "presence unavailable"),
        }
        presence::changed(&self.realtime, self.user).await;
    }

    /// Renews this connection's presence lease; true (and the user's
    /// groups told) when that brought the user online: their first
    /// connection, or one back after the sweep took them offline.
    async fn keep_presence(&self) -> bool {
        let ttl = Duration::from_millis(self.realtime.settings.presence_ttl_ms);
        match self
            .realtime
            .store
            .connection_alive(self.user, &presence_key(&self.realtime, self.id), ttl)
            .await
        {
            Ok(true) => {
                presence::announce(&self.realtime, &self.audience, self.user, true).await;
                true
            }
            Ok(false) => false,
            Err(err) => {
                tracing::debug!(%err, "presence unavailable");
                false
            }
        }
    }

    /// The client says whether this connection is in use; the user is
    /// away once every connection of theirs says so.
    async fn set_presence(&mut self, away: bool) -> Result<(), Closing> {
        let ttl = Duration::from_millis(self.realtime.settings.presence_ttl_ms);
        let key = presence_key(&self.realtime, self.id);
        match self
            .realtime
            .store
            .mark_away(self.user, &key, away, ttl)
            .await
        {
            Ok(()) => presence::changed(&self.realtime, self.user).await,
            Err(err) => tracing::debug!(%err, "presence unavailable"),
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
        self.lease().await?;
        if self.keep_presence().await {
            // Back after a sweep took the user offline (a stalled socket).
            presence::changed(&self.realtime, self.user).await;
        }
        let beat = frames::control("heartbeat", json!({"n": n, "rooms": self.positions()}));
        self.send(&beat).await
    }
}

#[cfg(test)]
mod tests;
