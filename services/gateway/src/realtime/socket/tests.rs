//! The socket protocol driven through in-memory halves: the test holds the
//! client's ends of two channels, so no network connection to a gateway is
//! opened. Room logs, pub/sub, presence and the deny-list use the real local
//! Redis (each test in its own namespace and rooms); who may read what comes
//! from an in-memory directory in place of the groups service.

use super::{RECENT_EVENTS, RecentEvents, serve};
use crate::realtime::frames::{close, sequenced_parts};
use crate::realtime::rooms::Room;
use crate::realtime::store::Outgoing as Publish;
use crate::realtime::{Grant, ReadAccess, Readable, Realtime, Wiring};
use axum::extract::ws::Message;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::future::BoxFuture;
use futures::{Sink, StreamExt};
use messenger_platform::auth::{KeyRing, Principal, TokenSigner};
use messenger_platform::identity::UserTokens;
use messenger_platform::sessions::DenyList;
use messenger_platform::{CancellationToken, Config};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use uuid::Uuid;

/// Longest a test waits for one frame.
const PATIENCE: Duration = Duration::from_secs(5);

/// Who may read what: one group with one channel, readable by `reader`.
struct Directory {
    reader: Uuid,
    conversation: Readable,
}

impl ReadAccess for Directory {
    fn readable(&self, user: Uuid) -> BoxFuture<'_, Result<Vec<Readable>, tonic::Status>> {
        let readable = if user == self.reader {
            vec![self.conversation]
        } else {
            Vec::new()
        };
        Box::pin(async move { Ok(readable) })
    }

    fn authorize_read(
        &self,
        user: Uuid,
        conversation: Uuid,
    ) -> BoxFuture<'_, Result<Option<Grant>, tonic::Status>> {
        let Readable { group, channel, .. } = self.conversation;
        let grant = (user == self.reader).then_some(()).and_then(|()| {
            if conversation == channel {
                Some((group, Some(channel)))
            } else if conversation == group {
                Some((group, None))
            } else {
                None
            }
        });
        Box::pin(async move { Ok(grant) })
    }
}

/// A gateway replica's realtime side, with nothing but Redis under it.
struct Fixture {
    realtime: Arc<Realtime>,
    keys: Arc<KeyRing<TokenSigner>>,
    deny_list: Arc<DenyList>,
    redis: redis::Client,
    namespace: String,
    user: Uuid,
    group: Uuid,
    channel: Uuid,
    shutdown: CancellationToken,
}

impl Fixture {
    async fn start(settings: &[(&str, &str)]) -> Fixture {
        let namespace = format!("socket-test-{}.", Uuid::new_v4().simple());
        let mut vars = vec![
            ("JWT_KEYS", "test:socket-tests-secret-0123456789abcdef"),
            ("KAFKA_ENABLED", "false"),
            ("KAFKA_TOPIC_PREFIX", namespace.as_str()),
        ];
        vars.extend_from_slice(settings);
        let vars = vars
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let config = Config::load(None, vars).expect("test settings are valid");
        let keys = Arc::new(KeyRing::new(
            TokenSigner::from_config(&config.auth).expect("test key"),
        ));
        let redis = redis::Client::open(config.redis.url()).expect("redis url");
        let deny_list = Arc::new(DenyList::new(redis.clone(), 60, &namespace));
        let (user, group, channel) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let directory = Directory {
            reader: user,
            conversation: Readable {
                group,
                channel,
                direct: false,
            },
        };
        let shutdown = CancellationToken::new();
        let wiring = Wiring {
            redis: redis.clone(),
            tokens: UserTokens::signed_here(Arc::clone(&keys), Arc::clone(&deny_list)),
            access: Arc::new(directory),
            settings: config.section().expect("websocket settings"),
            frames_per_second: None,
        };
        let realtime = Realtime::start(&config, wiring, shutdown.clone());
        let fixture = Fixture {
            realtime,
            keys,
            deny_list,
            redis,
            namespace,
            user,
            group,
            channel,
            shutdown,
        };
        fixture.wait_for_subscriber().await;
        fixture
    }

    /// Frames published before the hub subscribed reach no socket live.
    async fn wait_for_subscriber(&self) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while !self.realtime.hub.subscribed() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the hub never subscribed to Redis");
    }

    fn token(&self, session: Uuid) -> String {
        let principal = Principal {
            user_id: self.user,
            session_id: session,
        };
        self.keys.current().issue(principal).expect("token").token
    }

    /// Opens a connection whose client side the test holds.
    fn connect(&self, token: String) -> Client {
        let (to_socket, incoming) = unbounded();
        let (outgoing, from_socket) = unbounded();
        let reading = Arc::new(AtomicBool::new(true));
        let sink = ClientEnd {
            frames: outgoing,
            reading: Arc::clone(&reading),
        };
        tokio::spawn(serve(
            sink,
            incoming,
            Arc::clone(&self.realtime),
            Some(token),
            "127.0.0.1".to_owned(),
        ));
        Client {
            to_socket,
            from_socket,
            reading,
        }
    }

    /// Publishes one event to the channel's room, as the fan-out does.
    async fn publish(&self, text: &str) {
        let room_id = self.channel.to_string();
        let (head, tail) = sequenced_parts("new_message", &room_id, &json!({"text": text}));
        let frame = Publish {
            room: Room::Conversation(self.channel),
            head,
            tail,
        };
        let event = Uuid::new_v4().to_string();
        let published = self.realtime.store.publish(&event, &[frame]).await;
        assert_eq!(published.ok(), Some(true), "publish {text}");
    }

    /// Deletes what this test wrote to Redis (keys named after its ids).
    async fn clean_up(self) {
        self.shutdown.cancel();
        let Ok(mut connection) = self.redis.get_multiplexed_async_connection().await else {
            return;
        };
        let names = [self.user, self.group, self.channel].map(|id| id.to_string());
        for name in names.iter().chain([&self.namespace]) {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("*{name}*"))
                .query_async(&mut connection)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut connection)
                    .await;
            }
        }
    }
}

/// The socket's sending half as the test sees it: every frame the socket
/// writes is recorded at once; while `reading` is off, flushes never finish,
/// as with a client that stopped reading and a full TCP window.
struct ClientEnd {
    frames: UnboundedSender<Message>,
    reading: Arc<AtomicBool>,
}

impl Sink<Message> for ClientEnd {
    type Error = futures::channel::mpsc::SendError;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        self.frames
            .unbounded_send(message)
            .map_err(|err| err.into_send_error())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.reading.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

struct Client {
    to_socket: UnboundedSender<Result<Message, axum::Error>>,
    from_socket: UnboundedReceiver<Message>,
    reading: Arc<AtomicBool>,
}

/// What the socket sent next: a JSON frame, or its Close code.
#[derive(Debug)]
enum Received {
    Frame(Value),
    Closed(u16),
}

impl Client {
    fn send(&self, frame: Value) {
        let text = Message::Text(frame.to_string().into());
        self.to_socket
            .unbounded_send(Ok(text))
            .expect("the socket reads");
    }

    async fn receive(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.from_socket.next())
                .await
                .expect("a frame in time")
                .expect("the socket is still open");
            match message {
                Message::Text(text) => {
                    return Received::Frame(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Message::Close(frame) => {
                    return Received::Closed(frame.map_or(1005, |frame| frame.code));
                }
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping heartbeats and presence.
    async fn expect(&mut self, kind: &str) -> Value {
        loop {
            match self.receive().await {
                Received::Frame(frame) if frame["type"] == kind => return frame,
                Received::Frame(frame)
                    if ["heartbeat", "user_online", "user_offline"]
                        .contains(&frame["type"].as_str().unwrap_or_default()) => {}
                other => panic!("expected {kind}, got {other:?}"),
            }
        }
    }

    /// The Close code the socket ends with, skipping the frames before it.
    async fn close_code(&mut self) -> u16 {
        loop {
            if let Received::Closed(code) = self.receive().await {
                return code;
            }
        }
    }
}

#[tokio::test]
async fn a_joined_room_delivers_its_events_in_order() {
    let fixture = Fixture::start(&[]).await;
    let mut client = fixture.connect(fixture.token(Uuid::new_v4()));
    let hello = client.expect("connected").await;
    assert_eq!(hello["data"]["user_id"], fixture.user.to_string());

    client.send(json!({"type": "join_room", "data": {"room_id": fixture.channel}}));
    let joined = client.expect("room_joined").await;
    assert_eq!(joined["data"]["room_id"], fixture.channel.to_string());

    fixture.publish("one").await;
    fixture.publish("two").await;
    let first = client.expect("new_message").await;
    let second = client.expect("new_message").await;
    assert_eq!(first["data"]["text"], "one");
    assert_eq!(second["data"]["text"], "two");
    let seq = |frame: &Value| frame["seq"].as_u64().expect("numbered");
    assert_eq!(seq(&second), seq(&first) + 1, "{first} then {second}");
    fixture.clean_up().await;
}

#[tokio::test]
async fn a_room_the_user_may_not_read_is_refused() {
    let fixture = Fixture::start(&[]).await;
    let mut client = fixture.connect(fixture.token(Uuid::new_v4()));
    client.expect("connected").await;
    let stranger = Uuid::new_v4();
    client.send(json!({"type": "join_room", "data": {"room_id": stranger}}));
    let refused = client.expect("error").await;
    assert_eq!(refused["data"]["code"], "not_found", "{refused}");
    fixture.clean_up().await;
}

#[tokio::test]
async fn resume_replays_the_events_after_the_clients_position() {
    let fixture = Fixture::start(&[]).await;
    for text in ["one", "two", "three"] {
        fixture.publish(text).await;
    }
    let room = Room::Conversation(fixture.channel);
    let newest = fixture.realtime.store.current_seq(room).await.expect("seq");
    let mut client = fixture.connect(fixture.token(Uuid::new_v4()));
    client.expect("connected").await;

    let seen = newest - 2; // the client saw "one"
    client.send(json!({"type": "resume", "data": {"rooms": {fixture.channel.to_string(): seen}}}));
    let two = client.expect("new_message").await;
    let three = client.expect("new_message").await;
    assert_eq!(
        (two["data"]["text"].clone(), two["seq"].clone()),
        (json!("two"), json!(seen + 1))
    );
    assert_eq!(
        (three["data"]["text"].clone(), three["seq"].clone()),
        (json!("three"), json!(newest))
    );
    let resumed = client.expect("resumed").await;
    assert_eq!(resumed["data"]["replayed"], 2, "{resumed}");
    assert_eq!(resumed["data"]["recovered"], true, "{resumed}");
    fixture.clean_up().await;
}

#[tokio::test]
async fn unanswered_heartbeats_close_the_socket() {
    let fixture = Fixture::start(&[("WS_HEARTBEAT_INTERVAL_MS", "100")]).await;
    let mut client = fixture.connect(fixture.token(Uuid::new_v4()));
    client.expect("connected").await;
    assert_eq!(client.close_code().await, close::HEARTBEAT_TIMEOUT);
    fixture.clean_up().await;
}

#[tokio::test]
async fn answered_heartbeats_keep_the_socket_open() {
    // Long enough that a test process starved of CPU for a moment (the
    // suite runs in parallel on two cores) still answers in time.
    let fixture = Fixture::start(&[("WS_HEARTBEAT_INTERVAL_MS", "300")]).await;
    let mut client = fixture.connect(fixture.token(Uuid::new_v4()));
    client.expect("connected").await;
    for _ in 0..5 {
        let beat = client.expect("heartbeat").await;
        client.send(json!({"type": "pong", "data": {"n": beat["data"]["n"]}}));
    }
    fixture.clean_up().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_as_slow() {
    let fixture = Fixture::start(&[("WS_SEND_QUEUE_FRAMES", "2")]).await;
    let mut client = fixture.connect(fixture.token(Uuid::new_v4()));
    client.expect("connected").await;
    client.send(json!({"type": "join_room", "data": {"room_id": fixture.channel}}));
    client.expect("room_joined").await;

    client.reading.store(false, Ordering::SeqCst);
    // The queue takes one fan-out burst on top of its 2 frames.
    for n in 0..(2 + crate::realtime::fanout::BATCH + 16) {
        fixture.publish(&format!("burst {n}")).await;
    }
    assert_eq!(client.close_code().await, close::SLOW_CONSUMER);
    fixture.clean_up().await;
}

#[tokio::test]
async fn revoking_the_session_closes_its_socket() {
    let fixture = Fixture::start(&[]).await;
    let session = Uuid::new_v4();
    let mut client = fixture.connect(fixture.token(session));
    client.expect("connected").await;
    fixture.deny_list.revoke(session).await.expect("revoke");
    assert_eq!(client.close_code().await, close::SESSION_REVOKED);
    fixture.clean_up().await;
}

#[tokio::test]
async fn a_socket_follows_the_session_it_reauthenticated_with() {
    let fixture = Fixture::start(&[]).await;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let mut client = fixture.connect(fixture.token(first));
    client.expect("connected").await;
    client.send(json!({"type": "auth", "data": {"token": fixture.token(second)}}));
    client.expect("auth_ok").await;
    // The first session ending no longer concerns this socket...
    fixture.deny_list.revoke(first).await.expect("revoke");
    client.send(json!({"type": "ping", "data": {}}));
    client.expect("pong").await;
    // ...the second one's does.
    fixture.deny_list.revoke(second).await.expect("revoke");
    assert_eq!(client.close_code().await, close::SESSION_REVOKED);
    fixture.clean_up().await;
}

#[tokio::test]
async fn a_token_of_an_ended_session_cannot_reauthenticate() {
    let fixture = Fixture::start(&[]).await;
    let ended = Uuid::new_v4();
    fixture.deny_list.revoke(ended).await.expect("revoke");
    let mut client = fixture.connect(fixture.token(Uuid::new_v4()));
    client.expect("connected").await;
    client.send(json!({"type": "auth", "data": {"token": fixture.token(ended)}}));
    let refused = client.expect("error").await;
    assert_eq!(refused["data"]["code"], "session_revoked", "{refused}");
    client.send(json!({"type": "ping", "data": {}}));
    client.expect("pong").await;
    fixture.clean_up().await;
}

#[tokio::test]
async fn a_revocation_missed_while_reconnecting_closes_on_catch_up() {
    let fixture = Fixture::start(&[]).await;
    let session = Uuid::new_v4();
    let mut client = fixture.connect(fixture.token(session));
    client.expect("connected").await;
    fixture
        .deny_list
        .revoke_unannounced(session)
        .await
        .expect("deny");
    fixture.realtime.hub.catch_up_everyone();
    assert_eq!(client.close_code().await, close::SESSION_REVOKED);
    fixture.clean_up().await;
}

#[tokio::test]
async fn a_revoked_session_cannot_connect() {
    let fixture = Fixture::start(&[]).await;
    let session = Uuid::new_v4();
    fixture.deny_list.revoke(session).await.expect("revoke");
    let mut client = fixture.connect(fixture.token(session));
    assert_eq!(client.close_code().await, close::SESSION_REVOKED);
    fixture.clean_up().await;
}

#[test]
fn recent_events_pass_each_event_once_within_the_window() {
    let mut recent = RecentEvents::default();
    assert!(recent.first_time("a"));
    assert!(!recent.first_time("a"));
    assert!(recent.first_time(""), "frames without an event always pass");
    assert!(recent.first_time(""));
    for n in 0..RECENT_EVENTS {
        assert!(recent.first_time(&n.to_string()));
    }
    // "a" fell out of the window; the newest are still known.
    assert!(recent.first_time("a"));
    assert!(!recent.first_time(&(RECENT_EVENTS - 1).to_string()));
}

/// What an idle socket costs the gateway, in the parts this crate decides:
/// its task's future and its queue's signals (the queue allocates room for
/// 32 of them up front). A larger future or signal shows here first; the
/// whole figure is measured by the `ws_load` tool (docs/benchmarks.md).
#[tokio::test]
async fn an_idle_socket_stays_small() {
    let fixture = Fixture::start(&[]).await;
    let (_to_socket, incoming) = unbounded();
    let (outgoing, _from_socket) = unbounded();
    let sink = ClientEnd {
        frames: outgoing,
        reading: Arc::new(AtomicBool::new(true)),
    };
    let connection = serve(
        sink,
        incoming,
        Arc::clone(&fixture.realtime),
        Some(fixture.token(Uuid::new_v4())),
        "127.0.0.1".to_owned(),
    );
    let future_bytes = std::mem::size_of_val(&connection);
    let signal_bytes = std::mem::size_of::<crate::realtime::hub::Signal>();
    println!("connection future {future_bytes} B, signal {signal_bytes} B");
    assert!(signal_bytes <= 24, "signal {signal_bytes} B");
    assert!(future_bytes <= 2048, "connection future {future_bytes} B");
    drop(connection);
    fixture.clean_up().await;
}
