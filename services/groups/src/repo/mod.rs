//! SQL of the groups service, checked against the schema at compile time
//! (offline data in `services/groups/.sqlx`, refreshed by `./dev sqlx`).
//! Tables are unqualified: the pool's search_path is the `groups` schema.

mod access;
mod channels;
mod groups;

pub use access::*;
pub use channels::*;
pub use groups::*;
