//! The notifier: reaches people who are not connected. Built so far: the
//! Web Push sender ([`webpush`]), the rules that decide whether a
//! notification becomes a push ([`rules`]: settings, do-not-disturb,
//! presence, read state) and what a push says ([`payload`]: privacy,
//! one notification per conversation). The service around them
//! (consumers, storage, API) is built on these.

pub mod payload;
pub mod rules;
pub mod webpush;
