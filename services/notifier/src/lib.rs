//! The notifier: reaches people who are not connected. Its first part is
//! the Web Push sender ([`webpush`]); the service that decides who gets a
//! push (settings, do-not-disturb, presence) is built on it.

pub mod webpush;
