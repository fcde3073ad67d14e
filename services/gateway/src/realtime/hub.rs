//! This replica's side of the Redis pub/sub fan-out: one subscriber
//! connection for every room any local socket has joined, routing each
//! published frame to those sockets' bounded queues.
//!
//! A socket whose queue is full is flagged and closes itself as too slow:
//! one slow client never delays the others or grows memory. When the
//! subscriber connection drops (Redis restart), every socket is told to
//! catch up from the room logs once it is back.

use crate::realtime::rooms::Room;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Redis channel on which the groups service announces that a group's
/// membership, roles or channels changed.
pub const GROUP_CHANGES: &str = "groups:changed";

/// What the hub tells a socket.
#[derive(Debug)]
pub enum Signal {
    /// A published frame, shared by every socket in its room. Behind one
    /// pointer so that a signal is small: each socket's queue allocates
    /// room for 32 signals up front, idle or not.
    Frame(Arc<Published>),
    /// Frames may have been missed: catch up from the logs.
    CatchUp,
    /// Who may read this group changed: check the rooms again.
    Revalidate(Uuid),
    /// The socket's session ended: close it.
    Revoked,
}

/// A frame as published to a room; `seq` 0 for frames that are not
/// numbered, `event` empty for frames that come from no event.
#[derive(Debug)]
pub struct Published {
    pub room: Room,
    pub seq: u64,
    pub event: Box<str>,
    pub frame: Box<str>,
}

struct Socket {
    tx: mpsc::Sender<Signal>,
    overflow: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Routes {
    sockets: HashMap<u64, Socket>,
    rooms: HashMap<String, HashSet<u64>>,
    groups: HashMap<Uuid, HashSet<u64>>,
    /// Sockets by the session their token belongs to.
    sessions: HashMap<Uuid, HashSet<u64>>,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    routes: Mutex<Routes>,
    sink: Mutex<Option<redis::aio::PubSubSink>>,
    /// Serializes subscription changes, so a join racing a leave of the
    /// same room cannot end unsubscribed with a member.
    changes: tokio::sync::Mutex<()>,
}

impl Hub {
    pub fn new(client: redis::Client) -> Self {
        Hub {
            inner: Arc::new(Inner {
                client,
                routes: Mutex::new(Routes::default()),
                sink: Mutex::new(None),
                changes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than losing all routing.
        self.inner
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sink(&self) -> Option<redis::aio::PubSubSink> {
        self.inner
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the subscriber connection is up (tests wait for it before
    /// publishing, since frames published earlier reach no one live).
    #[cfg(test)]
    pub fn subscribed(&self) -> bool {
        self.sink().is_some()
    }

    /// Registers a socket's queue; `overflow` is notified when the queue
    /// is full.
    pub fn add_socket(
        &self,
        id: u64,
        session: Uuid,
        tx: mpsc::Sender<Signal>,
        overflow: Arc<tokio::sync::Notify>,
    ) {
        let mut routes = self.routes();
        routes.sockets.insert(id, Socket { tx, overflow });
        routes.sessions.entry(session).or_default().insert(id);
        drop(routes);
        metrics::gauge!("ws_connections").increment(1.0);
    }

    /// Tells every socket to catch up from the room logs (and to check its
    /// session against the deny-list): what a reconnect of the subscriber
    /// may have made them miss.
    pub fn catch_up_everyone(&self) {
        let all: Vec<u64> = self.routes().sockets.keys().copied().collect();
        self.send(all, || Signal::CatchUp);
    }

    /// Files socket `id` under the session of the token it re-authenticated
    /// with, so revoking that session reaches it.
    pub fn move_session(&self, id: u64, from: Uuid, to: Uuid) {
        let mut routes = self.routes();
        if let Some(sockets) = routes.sessions.get_mut(&from) {
            sockets.remove(&id);
            if sockets.is_empty() {
                routes.sessions.remove(&from);
            }
        }
        routes.sessions.entry(to).or_default().insert(id);
    }

    pub async fn remove_socket(&self, id: u64) {
        let _changes = self.inner.changes.lock().await;
        let emptied = {
            let mut routes = self.routes();
            routes.sockets.remove(&id);
            routes.groups.retain(|_, sockets| {
                sockets.remove(&id);
                !sockets.is_empty()
            });
            routes.sessions.retain(|_, sockets| {
                sockets.remove(&id);
                !sockets.is_empty()
            });
            let mut emptied = Vec::new();
            routes.rooms.retain(|room, sockets| {
                sockets.remove(&id);
                if sockets.is_empty() {
                    emptied.push(room.clone());
                }
                !sockets.is_empty()
            });
            emptied
        };
        metrics::gauge!("ws_connections").decrement(1.0);
        self.unsubscribe(emptied).await;
    }

    /// Routes `room` (belonging to `group`) to socket `id`.
    pub async fn join(&self, id: u64, room: Room, group: Option<Uuid>) {
        let _changes = self.inner.changes.lock().await;
        let key = room.key();
        let first = {
            let mut routes = self.routes();
            if let Some(group) = group {
                routes.groups.entry(group).or_default().insert(id);
            }
            let sockets = routes.rooms.entry(key.clone()).or_default();
            let first = sockets.is_empty();
            sockets.insert(id);
            first
        };
        // On failure the reader notices the broken connection, reconnects
        // and subscribes every routed room again.
        if first
            && let Some(mut sink) = self.sink()
            && let Err(err) = sink.subscribe(room.pubsub_channel()).await
        {
            tracing::warn!(%err, room = %key, "subscribe failed");
        }
    }

    pub async fn leave(&self, id: u64, room: Room) {
        let _changes = self.inner.changes.lock().await;
        let key = room.key();
        let emptied = {
            let mut routes = self.routes();
            match routes.rooms.get_mut(&key) {
                Some(sockets) => {
                    sockets.remove(&id);
                    if sockets.is_empty() {
                        routes.rooms.remove(&key);
                        vec![key]
                    } else {
                        Vec::new()
                    }
                }
                None => Vec::new(),
            }
        };
        self.unsubscribe(emptied).await;
    }

    async fn unsubscribe(&self, rooms: Vec<String>) {
        if rooms.is_empty() {
            return;
        }
        if let Some(mut sink) = self.sink() {
            let channels: Vec<String> = rooms.iter().map(|key| format!("rt:room:{key}")).collect();
            if let Err(err) = sink.unsubscribe(channels).await {
                tracing::warn!(%err, "unsubscribe failed");
            }
        }
    }

    fn send(&self, to: impl IntoIterator<Item = u64>, make: impl Fn() -> Signal) {
        let routes = self.routes();
        for id in to {
            if let Some(socket) = routes.sockets.get(&id)
                && socket.tx.try_send(make()).is_err()
            {
                // Stored if the socket is not waiting right now.
                socket.overflow.notify_one();
            }
        }
    }

    fn deliver(&self, channel: &str, payload: &[u8]) {
        if channel == messenger_platform::sessions::SESSIONS_REVOKED {
            let session = std::str::from_utf8(payload)
                .ok()
                .and_then(|raw| Uuid::parse_str(raw).ok());
            let sockets: Vec<u64> = session
                .and_then(|session| self.routes().sessions.get(&session).cloned())
                .map(|sockets| sockets.into_iter().collect())
                .unwrap_or_default();
            self.send(sockets, || Signal::Revoked);
            return;
        }
        if channel == GROUP_CHANGES {
            let Some(group) = std::str::from_utf8(payload)
                .ok()
                .and_then(|raw| Uuid::parse_str(raw).ok())
            else {
                return;
            };
            let sockets: Vec<u64> = self
                .routes()
                .groups
                .get(&group)
                .map(|sockets| sockets.iter().copied().collect())
                .unwrap_or_default();
            self.send(sockets, || Signal::Revalidate(group));
            return;
        }
        let Some(key) = channel.strip_prefix("rt:room:") else {
            return;
        };
        let Some(room) = Room::parse_key(key) else {
            return;
        };
        let Some((seq, event, frame)) = std::str::from_utf8(payload).ok().and_then(parse_published)
        else {
            return;
        };
        let published = Arc::new(Published {
            room,
            seq,
            event: event.into(),
            frame: frame.into(),
        });
        let sockets: Vec<u64> = self
            .routes()
            .rooms
            .get(key)
            .map(|sockets| sockets.iter().copied().collect())
            .unwrap_or_default();
        metrics::counter!("ws_frames_routed_total").increment(sockets.len() as u64);
        self.send(sockets, || Signal::Frame(published.clone()));
    }

    /// Keeps the subscriber connection up until `shutdown`.
    pub async fn run(self, shutdown: messenger_platform::CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut connected_before = false;
        loop {
            let session = async {
                let pubsub = self.inner.client.get_async_pubsub().await?;
                let (mut sink, stream) = pubsub.split();
                let _changes = self.inner.changes.lock().await;
                let mut channels: Vec<String> = self
                    .routes()
                    .rooms
                    .keys()
                    .map(|key| format!("rt:room:{key}"))
                    .collect();
                channels.push(GROUP_CHANGES.to_owned());
                channels.push(messenger_platform::sessions::SESSIONS_REVOKED.to_owned());
                sink.subscribe(channels).await?;
                *self
                    .inner
                    .sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
                drop(_changes);
                redis::RedisResult::Ok(stream)
            };
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                stream = session => stream,
            };
            match stream {
                Ok(mut stream) => {
                    backoff = Duration::from_millis(100);
                    if connected_before {
                        tracing::info!("realtime subscriber reconnected to Redis");
                        self.catch_up_everyone();
                    }
                    connected_before = true;
                    loop {
                        let message = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            message = stream.next() => message,
                        };
                        let Some(message) = message else { break };
                        self.deliver(message.get_channel_name(), message.get_payload_bytes());
                    }
                    tracing::warn!("realtime subscriber lost its Redis connection");
                }
                Err(err) => tracing::warn!(%err, "realtime subscriber cannot reach Redis"),
            }
            *self
                .inner
                .sink
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Splits a room payload, `seq event-id \n frame` (or `seq \n frame` for
/// frames of no event), into its parts. During a rolling upgrade a replica
/// of the previous version, which expects a bare number on the first line,
/// drops these payloads instead of passing a malformed frame on; its
/// clients get those frames by `resume` once they reconnect to an upgraded
/// replica.
fn parse_published(payload: &str) -> Option<(u64, &str, &str)> {
    let (head, frame) = payload.split_once('\n')?;
    let (seq, event) = head.split_once(' ').unwrap_or((head, ""));
    Some((seq.parse().ok()?, event, frame))
}

#[cfg(test)]
mod tests {
    use super::parse_published;

    #[test]
    fn payloads_with_and_without_event_ids() {
        assert_eq!(
            parse_published("7 evt-1\n{\"a\":\"x\\ny\"}"),
            Some((7, "evt-1", "{\"a\":\"x\\ny\"}"))
        );
        assert_eq!(parse_published("0\n{}"), Some((0, "", "{}")));
        assert_eq!(parse_published("x evt\n{}"), None);
        assert_eq!(parse_published("7 evt"), None);
        assert_eq!(parse_published("7"), None);
    }
}
