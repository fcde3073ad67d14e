//! Messages and what hangs off them: history and search, threads, edits,
//! reactions, read positions and notifications.

pub mod history;
pub mod message;
pub mod notifications;
pub mod reactions;
pub mod reads;
pub mod requests;
