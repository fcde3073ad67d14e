//! The notifier: reaches people who are not connected. It consumes the
//! messages service's notifications and read positions, the gateway's
//! presence and the names users and channels carry, decides per user and
//! conversation after a grace delay ([`rules`]: settings, do-not-disturb,
//! presence, read state), and sends Web Push to each device ([`webpush`]),
//! recording what it sent and publishing outcomes on `notifier.events.v1`.

mod api;
mod dispatch;
mod error;
pub mod events;
mod grpc;
pub mod ingest;
pub mod payload;
mod repo;
pub mod rules;
mod send;
pub mod settings;
mod upkeep;
pub mod webpush;

use base64::Engine as _;
use messenger_platform::backend::Backend;
use messenger_platform::callers::Caller;
use messenger_platform::egress::Egress;
use messenger_platform::mtls::Transport;
use messenger_platform::{CancellationToken, Config, grpc as rpc};
use messenger_proto::notifier::v1::NotifierEvent;
use messenger_proto::notifier::v1::notifier_service_server::NotifierServiceServer;
use ring::hmac;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::server::NamedService;

/// The Kafka topics this service writes, through its outbox.
pub const KAFKA_WRITES: &[messenger_proto::events::Topic] = &[NotifierEvent::TOPIC];
/// What its consumer reads: its Kafka user's read rights.
pub const KAFKA_READS: &[messenger_proto::events::Topic] = ingest::TOPICS;
/// Its consumer group (with `kafka.topic_prefix`).
pub const KAFKA_CONSUMER_GROUP: &str = ingest::GROUP;

pub const SCHEMA: &str = "notifier";
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/notifier");

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings: settings::NotifierSettings = config.section()?;
    let keys = web_push_keys(&settings)?;
    let transport = Transport::establish(&config, Caller::Notifier, &shutdown).await?;
    let backend = Backend::start(&config, SCHEMA, &MIGRATOR, KAFKA_WRITES, &shutdown).await?;
    let web_push = match &keys {
        Some((vapid, _)) => Some(Arc::new(webpush::WebPush::new(
            Egress::new(settings.egress.clone())?,
            vapid.clone(),
        ))),
        None => {
            tracing::warn!(
                "notifier.vapid_key is empty: Web Push is off (settings are kept, nothing is consumed or sent)"
            );
            None
        }
    };
    let mut workers = Vec::new();
    // Without a way to push there is nothing to decide: no consumer, no
    // dispatcher, no sender.
    if let (Some(web_push), Some((_, topic_key))) = (&web_push, keys) {
        let queued = Arc::new(Notify::new());
        let sending = Arc::new(Notify::new());
        if config.features.kafka_enabled {
            workers.push(tokio::spawn(ingest::run(
                config.clone(),
                ingest::Ingest {
                    pool: backend.pool.clone(),
                    grace: settings.grace(),
                    queued: queued.clone(),
                },
                backend.shutdown.clone(),
            )));
        }
        workers.push(tokio::spawn(dispatch::run(
            dispatch::Dispatcher {
                pool: backend.pool.clone(),
                topic_key,
                push_ttl: settings.push_ttl(),
                queued,
                sending: sending.clone(),
            },
            backend.shutdown.clone(),
        )));
        workers.push(tokio::spawn(send::run(
            send::Sender {
                pool: backend.pool.clone(),
                web_push: web_push.clone(),
                ttl: settings.push_ttl(),
                max_attempts: settings.max_attempts,
                concurrency: settings.send_concurrency,
                lease: Duration::from_millis(settings.egress.timeout_ms.saturating_mul(2))
                    + Duration::from_secs(5),
                wake: sending,
            },
            backend.shutdown.clone(),
        )));
    }
    workers.push(tokio::spawn(upkeep::run(
        backend.pool.clone(),
        settings.delivery_retention(),
        backend.shutdown.clone(),
    )));
    let (reporter, health) = rpc::health();
    backend.report_outbox_health(reporter.clone()).await;
    reporter
        .set_serving::<NotifierServiceServer<grpc::NotifierGrpc>>()
        .await;
    let api = api::Api {
        pool: backend.pool.clone(),
        web_push,
        max_subscriptions: settings.max_subscriptions_per_user,
    };
    let router = rpc::with_reflection(
        rpc::server(&transport, rpc::user_tokens(&config, &transport)?)
            .add_service(health)
            .add_service(NotifierServiceServer::new(grpc::NotifierGrpc { api })),
        &[<NotifierServiceServer<grpc::NotifierGrpc> as NamedService>::NAME],
    )?;
    let served = rpc::serve(&transport, router, listener, backend.shutdown.clone()).await;
    for worker in workers {
        let _ = worker.await;
    }
    backend.stop().await;
    served
}

/// The VAPID identity in `notifier.vapid_key` and the key of the collapse
/// topics, derived from it so there is one secret to keep; `None` when
/// the setting is empty (Web Push off).
fn web_push_keys(
    settings: &settings::NotifierSettings,
) -> anyhow::Result<Option<(Arc<webpush::Vapid>, hmac::Key)>> {
    let encoded = settings.vapid_key.expose().trim();
    if encoded.is_empty() {
        return Ok(None);
    }
    let pkcs8 = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('='))
        })
        .map_err(|_| anyhow::anyhow!("notifier.vapid_key: not base64 (a PKCS#8 P-256 key)"))?;
    let vapid = webpush::Vapid::from_pkcs8(&pkcs8, &settings.vapid_subject)
        .map_err(|err| anyhow::anyhow!("notifier.vapid_key: {err}"))?;
    let derived = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &pkcs8),
        b"messenger notifier collapse topics",
    );
    Ok(Some((
        Arc::new(vapid),
        hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
    )))
}
