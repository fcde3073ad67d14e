//! Cross-cutting plumbing shared by the services: configuration, telemetry,
//! database pools and migrations, the transactional outbox, Kafka and Vault
//! clients, access-token verification, gRPC helpers and shutdown.
//!
//! Business rules never live here.

pub mod auth;
pub mod backend;
pub mod callers;
pub mod config;
pub mod db;
pub mod egress;
pub mod gate;
pub mod grpc;
pub mod healthcheck;
pub mod identity;
pub mod kafka;
pub mod mtls;
pub mod outbox;
pub mod service;
pub mod sessions;
pub mod shutdown;
pub mod telemetry;
pub mod vault;
pub mod wire;

pub use config::Config;
pub use shutdown::CancellationToken;
