//! Logs, traces and metrics.
//!
//! JSON logs by default (text with `DEBUG_ENABLED`), OpenTelemetry traces
//! exported over OTLP/gRPC when an endpoint is configured, W3C trace context
//! propagated through HTTP headers, gRPC metadata and Kafka headers, and one
//! Prometheus registry per process.

use crate::config::Config;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes pending spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. Calling it again (tests, the all-in-one
/// binary) keeps the first installation.
pub fn init(config: &Config, service: &str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(format!("messenger-{service}"))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let endpoint = config.telemetry.otlp_endpoint.trim();
    if !endpoint.is_empty() {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(format!("messenger-{service}"));
    opentelemetry::global::set_tracer_provider(provider.clone());

    let filter = EnvFilter::try_new(&config.telemetry.log_level).map_err(|err| {
        crate::config::ConfigError::invalid("telemetry.log_level", err.to_string())
    })?;
    let format = if config.features.debug_enabled {
        tracing_subscriber::fmt::layer().boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    };
    // The log filter applies to logs only: spans that logs leave out must
    // still exist for tracing, or trace context would stop propagating.
    let installed = tracing_subscriber::registry()
        .with(format.with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .try_init()
        .is_ok();
    Ok(TelemetryGuard {
        provider: installed.then_some(provider),
    })
}

/// W3C trace context of the current span, as header name → value.
pub fn trace_headers() -> BTreeMap<String, String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    carrier.into_iter().collect()
}

/// Makes `span` a child of the trace context found in `headers`, if any.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let context = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let _ = span.set_parent(context);
}

/// Writes the current span's trace context into outgoing headers.
pub fn inject_into_headers(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The process-wide Prometheus registry, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (should not happen): keep a
            // detached one so /metrics still answers.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        keep_up(handle.clone());
        handle
    })
}

/// How often recorded histogram samples are folded into their buckets.
pub const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds histogram samples into their buckets every [`METRICS_UPKEEP`].
/// The recorder keeps every sample until the next render or upkeep: a
/// process nobody scrapes would otherwise grow by each one (the soak in
/// docs/benchmarks.md measured 17 MiB a minute at 1,450 deliveries/s).
fn keep_up(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(METRICS_UPKEEP);
                handle.run_upkeep();
            }
        });
    if let Err(err) = started {
        tracing::warn!(error = %err, "cannot start the metrics upkeep thread");
    }
}

/// Serves this process's Prometheus metrics at `GET /metrics` on
/// `listener` until `shutdown` is cancelled (for services run as their own
/// process; the gateway serves them on its public port).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shutdown: crate::shutdown::CancellationToken,
) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                prometheus().render(),
            )
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
