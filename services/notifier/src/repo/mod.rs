//! The notifier's SQL. Each function is one statement on the connection or
//! transaction it is given.

pub mod deliveries;
pub mod known;
pub mod preferences;
pub mod queue;
pub mod subscriptions;
