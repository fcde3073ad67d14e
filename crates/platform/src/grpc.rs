//! gRPC plumbing shared by every service: serving on a given listener with
//! health checks, trace propagation and the gate (service identity, user
//! tokens), and lazily connected clients that forward the trace and the
//! user's token, over mutual TLS when the transport is mutual.

use crate::Config;
use crate::callers::Caller;
use crate::gate::GateLayer;
use crate::identity::UserTokens;
use crate::mtls::Transport;
use crate::sessions::DenyList;
use crate::shutdown::CancellationToken;
use opentelemetry::propagation::Injector;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Span for one incoming call, continuing the caller's trace.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc.server", rpc = %request.uri().path());
    crate::telemetry::set_parent_from_headers(&span, request.headers());
    span
}

/// A server whose every call passes the callers' gate first.
pub type Server = tonic::transport::Server<tower_layer::Stack<GateLayer, tower_layer::Identity>>;
pub type Router =
    tonic::transport::server::Router<tower_layer::Stack<GateLayer, tower_layer::Identity>>;

/// A tonic server builder with the fleet's defaults (tracing, a 30 s limit
/// per call, the callers' gate when `transport` is mutual, user tokens
/// checked by `users` on user-scoped methods).
pub fn server(transport: &Transport, users: Option<Arc<UserTokens>>) -> Server {
    server_with_call_limit(transport, users, Duration::from_secs(30))
}

/// The same with another limit per call, for services whose calls may
/// legitimately run long (a large upload from a slow client).
pub fn server_with_call_limit(
    transport: &Transport,
    users: Option<Arc<UserTokens>>,
    limit: Duration,
) -> Server {
    tonic::transport::Server::builder()
        .timeout(limit)
        // Bulk streams (uploads) would otherwise stall on 1 MiB windows and
        // 16 KiB frames; calls with small messages are unaffected.
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .trace_fn(server_span)
        .layer(GateLayer::new(transport.is_mutual(), users))
}

/// The user-token verifier of a service other than the users service:
/// public keys from the users service, ended sessions from the deny-list in
/// Redis. `None` when `grpc.user_tokens` is off.
pub fn user_tokens(
    config: &Config,
    transport: &Transport,
) -> anyhow::Result<Option<Arc<UserTokens>>> {
    if !config.grpc.user_tokens {
        return Ok(None);
    }
    let channel = lazy_channel(
        transport,
        Caller::Users,
        &config.grpc.users.url,
        Duration::from_millis(config.grpc.timeout_ms),
    )?;
    Ok(Some(UserTokens::from_users(
        channel,
        &config.auth.jwt_issuer,
        deny_list(config)?,
    )))
}

/// The deny-list of ended sessions every verifier consults, following the
/// revocation announcements. Must be called inside a Tokio runtime.
pub fn deny_list(config: &Config) -> anyhow::Result<Arc<DenyList>> {
    Ok(Arc::new(DenyList::new(
        redis::Client::open(config.redis.url())?,
        config.auth.access_ttl_seconds,
        &config.kafka.topic_prefix,
    ))
    .follow_revocations())
}

const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
const MAX_FRAME: u32 = 256 * 1024;

/// The standard `grpc.health.v1.Health` service plus its reporter.
pub fn health() -> (
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// Adds gRPC server reflection (v1, and v1alpha for older tools) to a
/// service's router, so `grpcurl`-style tools can list and describe its
/// methods. It advertises the named services (pass each server's
/// `NamedService::NAME`) and the health service, nothing else the fleet's
/// contracts hold.
pub fn with_reflection(router: Router, services: &[&str]) -> anyhow::Result<Router> {
    // Naming services turns off advertising every registered one, the
    // reflection service's own name included: each version names itself.
    let builder = |reflection: &'static str| {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(messenger_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(HEALTH_SERVICE)
            .with_service_name(reflection);
        services
            .iter()
            .fold(builder, |builder, name| builder.with_service_name(*name))
    };
    Ok(router
        .add_service(builder("grpc.reflection.v1.ServerReflection").build_v1()?)
        .add_service(builder("grpc.reflection.v1alpha.ServerReflection").build_v1alpha()?))
}

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Accepts connections from `listener` until `shutdown` is cancelled.
pub async fn serve(
    transport: &Transport,
    router: Router,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use tokio_stream::StreamExt;
    if let Some(tls) = transport.tls() {
        let accepted =
            crate::mtls::incoming(listener, std::sync::Arc::clone(tls), shutdown.clone());
        router
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::ReceiverStream::new(accepted),
                shutdown.cancelled_owned(),
            )
            .await?;
        return Ok(());
    }
    // Without TCP_NODELAY a response written in several segments waits for
    // the peer's delayed ACK: ~40 ms added to calls with larger replies.
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.and_then(|stream| {
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    });
    router
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// A channel to the `target` service at `url` that connects on first use
/// and reconnects by itself, so a service can start before the services it
/// calls. Over mutual TLS, it accepts only a server proving to be `target`.
pub fn lazy_channel(
    transport: &Transport,
    target: Caller,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned())?
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keep_alive_interval(Duration::from_secs(30));
    let Some(tls) = transport.tls() else {
        return Ok(endpoint.connect_lazy());
    };
    let tls = std::sync::Arc::clone(tls);
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |uri: http::Uri| {
            crate::mtls::connect(std::sync::Arc::clone(&tls), target, uri)
        })),
    )
}

/// Client interceptor that sends the current trace context as metadata,
/// and the access token of the user the current call is made for (see
/// [`crate::identity`]) unless the request carries one already.
#[derive(Clone, Copy, Default)]
pub struct TracePropagation;

impl Interceptor for TracePropagation {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        });
        if let Some(user) = crate::identity::current()
            && !request.metadata().contains_key("authorization")
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {}", user.token))
        {
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}
