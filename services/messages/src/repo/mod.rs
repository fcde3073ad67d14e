//! SQL of the messages service, checked against the schema at compile time
//! (offline data in `services/messages/.sqlx`, refreshed by `./dev sqlx`).
//! Tables are unqualified: the pool's search_path is the `messages` schema.

mod messages;
mod notifications;
mod reads;

pub use messages::*;
pub use notifications::*;
pub use reads::*;
