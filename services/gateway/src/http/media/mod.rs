//! Uploading files, reading their records, downloading them and their
//! thumbnails (with ranges and validators).

pub mod download;
pub mod headers;
pub mod requests;
pub mod upload;
