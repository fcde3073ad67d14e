//! Realtime delivery over WebSocket (`/ws`): the Kafka → Redis fan-out,
//! this replica's Redis subscriber, presence and the socket protocol.

mod access;
mod fanout;
pub mod frames;
mod hub;
mod presence;
pub mod rooms;
mod socket;
pub mod store;
mod translate;

/// The topics the fan-out reads: the gateway's Kafka user's read rights
/// (deploy/kafka/acls.tsv); its consumer group is `websocket.consumer_group`.
pub use fanout::TOPICS as KAFKA_READS;

/// The topics the gateway writes (presence): its Kafka user's write rights.
pub const KAFKA_WRITES: &[messenger_proto::Topic] =
    &[messenger_proto::presence::v1::PresenceEvent::TOPIC];

use crate::settings::WebSocketSettings;
use messenger_platform::identity::UserTokens;
use messenger_platform::{CancellationToken, Config};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use access::{Grant, GroupsAccess, ReadAccess, Readable};
pub use frames::MAX_CLIENT_FRAME;
pub use hub::GROUP_CHANGES;
pub use socket::{Incoming, Outgoing, serve};

/// What the realtime side is built from besides its settings.
pub struct Wiring {
    pub redis: redis::Client,
    /// Verifies the tokens sockets present (keys rotate underneath), with
    /// the deny-list of ended sessions.
    pub tokens: Arc<UserTokens>,
    pub access: Arc<dyn ReadAccess>,
    pub settings: WebSocketSettings,
    /// Frames one socket may send per second, when rate limiting is on.
    pub frames_per_second: Option<u32>,
}

pub struct Realtime {
    hub: hub::Hub,
    store: Arc<store::Store>,
    settings: WebSocketSettings,
    tokens: Arc<UserTokens>,
    access: Arc<dyn ReadAccess>,
    /// Frames one socket may send per second, when rate limiting is on.
    frames_per_second: Option<u32>,
    /// Publishes presence changes, when Kafka is on.
    presence: Option<Arc<presence::Publisher>>,
    next_socket: AtomicU64,
    /// Names this replica's sockets in Redis: process ids repeat across
    /// containers (every one may be pid 1), and several replicas may share
    /// a process (tests), so each draws a random id.
    instance: String,
    shutdown: CancellationToken,
}

impl Realtime {
    /// Starts the fan-out consumer (when Kafka is on), the Redis subscriber
    /// and the presence sweeper; they stop with `shutdown`.
    pub fn start(config: &Config, wiring: Wiring, shutdown: CancellationToken) -> Arc<Realtime> {
        let store = Arc::new(store::Store::new(
            wiring.redis.clone(),
            wiring.settings.room_history,
            &config.kafka.topic_prefix,
        ));
        let consumer_group = wiring.settings.consumer_group.clone();
        let publisher = config
            .features
            .kafka_enabled
            .then(|| presence::Publisher::new(&config.kafka))
            .transpose()
            .unwrap_or_else(|err| {
                tracing::error!(%err, "presence will not be published: no Kafka producer");
                None
            })
            .map(Arc::new);
        let realtime = Arc::new(Realtime {
            hub: hub::Hub::new(wiring.redis),
            store: store.clone(),
            settings: wiring.settings,
            tokens: wiring.tokens,
            access: wiring.access,
            frames_per_second: wiring.frames_per_second,
            presence: publisher.clone(),
            next_socket: AtomicU64::new(1),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(realtime.hub.clone().run(shutdown.clone()));
        if config.features.kafka_enabled {
            tokio::spawn(fanout::run(
                config.clone(),
                consumer_group,
                store,
                shutdown.clone(),
            ));
        }
        tokio::spawn(presence::sweep(realtime.clone()));
        if let Some(publisher) = publisher {
            tokio::spawn(presence::publish_settled(
                realtime.clone(),
                config.kafka.clone(),
                publisher,
            ));
        }
        realtime
    }
}
