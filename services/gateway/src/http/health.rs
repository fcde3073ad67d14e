//! Liveness, readiness and metrics.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use utoipa::ToSchema;

/// The operators' listener: metrics and detailed readiness, never on the
/// public port.
pub fn internal_router(state: AppState) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .route("/health", get(health))
        .with_state(state)
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` while the process is up.
    pub status: &'static str,
    pub version: &'static str,
}

/// Liveness: the gateway process answers.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The public readiness answer: no dependency names or error texts.
#[derive(Serialize, ToSchema)]
pub struct PublicReadiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
}

/// Readiness for load balancers: 200 when every backend service and Redis
/// answer, 503 otherwise. What failed is on the operators' listener
/// (`SERVER_INTERNAL_LISTEN`, `/ready`).
#[utoipa::path(get, path = "/ready", tag = "ops",
    responses((status = 200, body = PublicReadiness), (status = 503, body = PublicReadiness)))]
pub async fn ready_public(State(state): State<AppState>) -> (StatusCode, Json<PublicReadiness>) {
    let (status, Json(detail)) = ready(State(state)).await;
    (
        status,
        Json(PublicReadiness {
            status: detail.status,
        }),
    )
}

/// The detailed readiness answer (operators' listener only).
#[derive(Serialize)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    /// Each dependency: `ok` or why not.
    pub checks: BTreeMap<String, String>,
    /// Each backend's outbox relay: `ok`, or `stalled` while events wait
    /// for the broker. Informational: a stalled relay does not make the
    /// gateway unready, since the outbox holds the events until Kafka is back.
    pub outbox: BTreeMap<String, String>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness with each dependency's state and each outbox relay's
/// (operators' listener).
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let mut checks = BTreeMap::new();
    let backends = state.backends().iter().map(|(name, client)| {
        let mut client = client.clone();
        async move {
            let check = client.check(HealthCheckRequest {
                service: String::new(),
            });
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
                    "ok".to_owned()
                }
                Ok(Ok(_)) => "not serving".to_owned(),
                Ok(Err(status)) => format!("{:?}: {}", status.code(), status.message()),
                Err(_) => "timed out".to_owned(),
            };
            ((*name).to_owned(), outcome)
        }
    });
    let redis = async {
        let ping = async {
            let mut conn = state.redis().get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(Ok(_)) => "ok".to_owned(),
            Ok(Err(err)) => err.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        ("redis".to_owned(), outcome)
    };
    let outboxes = state.backends().iter().map(|(name, client)| {
        let mut client = client.clone();
        async move { ((*name).to_owned(), outbox_state(&mut client).await) }
    });
    let (backend_results, redis_result, outbox) = tokio::join!(
        futures::future::join_all(backends),
        redis,
        futures::future::join_all(outboxes)
    );
    checks.extend(backend_results);
    checks.insert(redis_result.0, redis_result.1);
    let ready = checks.values().all(|outcome| outcome == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "unavailable" },
            checks,
            outbox: outbox.into_iter().collect(),
        }),
    )
}

/// What a backend's health service says of its outbox relay.
async fn outbox_state(
    client: &mut tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>,
) -> String {
    let check = client.check(HealthCheckRequest {
        service: messenger_platform::backend::OUTBOX_HEALTH.to_owned(),
    });
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
            "ok".to_owned()
        }
        Ok(Ok(_)) => "stalled: the broker has acknowledged nothing for 15 s or more; \
                      events wait in the outbox"
            .to_owned(),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
            "not relaying (KAFKA_ENABLED=false)".to_owned()
        }
        Ok(Err(status)) => format!("{:?}: {}", status.code(), status.message()),
        Err(_) => "timed out".to_owned(),
    }
}

/// Prometheus metrics of this process.
pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        messenger_platform::telemetry::prometheus().render(),
    )
}
