//! End-to-end tests of the public API: the whole fleet, real Postgres,
//! Redis and Kafka-protocol broker.

mod auth;
mod authz;
mod events;
mod groups;
mod helpers;
mod ops;
mod users;
