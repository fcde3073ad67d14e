//! End-to-end tests of the public API: the whole fleet, real Postgres,
//! Redis and Kafka-protocol broker.

// Runtime SQL is fine here: tests assert on stored rows directly (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod auth;
mod authz;
mod broker_restart;
mod db_roles;
mod delivery;
mod events;
mod fuzzed;
mod groups;
mod helpers;
mod inbox;
mod insiders;
mod kafka_acls;
mod limits;
mod media;
mod media_sweep;
mod messages;
mod ops;
mod presence;
mod push;
mod realtime;
mod realtime_redis;
mod reflection;
mod sweep;
mod sweep_more;
mod sweep_sockets;
mod user_tokens;
mod users;
mod vault;
mod ws;
mod ws_close;
