//! The notifier: reaches people who are not connected. Built so far: the
//! Web Push sender ([`webpush`]) and the rules that decide whether a
//! notification becomes a push ([`rules`]: settings, do-not-disturb,
//! presence, read state). The service around them (consumers, storage,
//! API) is built on these.

pub mod rules;
pub mod webpush;
