//! Groups, their members, roles and bans, their channels, and direct
//! conversations.

pub mod channels;
pub mod direct;
pub mod group;
pub mod members;
pub mod requests;
