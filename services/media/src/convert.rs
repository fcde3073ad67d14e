//! Conversions between rows and wire messages.

use crate::repo::MediaRow;
use messenger_proto::media::v1 as pb;
use serde::{Deserialize, Serialize};

pub use messenger_platform::wire::timestamp;

/// A thumbnail as recorded in `media.thumbnails`.
#[derive(Serialize, Deserialize)]
pub struct StoredThumbnail {
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
}

pub fn thumbnails(row: &MediaRow) -> Vec<StoredThumbnail> {
    serde_json::from_str(&row.thumbnails).unwrap_or_default()
}

pub fn media(row: &MediaRow) -> pb::Media {
    let state = match row.state.as_str() {
        "pending" => pb::MediaState::Pending,
        "ready" => pb::MediaState::Ready,
        _ => pb::MediaState::Failed,
    };
    pb::Media {
        id: row.id.to_string(),
        owner_id: row.owner_id.to_string(),
        filename: row.filename.clone(),
        content_type: row.content_type.clone(),
        size: u64::try_from(row.size).unwrap_or(0),
        sha256: row.sha256.clone(),
        width: row.width.and_then(|w| u32::try_from(w).ok()).unwrap_or(0),
        height: row.height.and_then(|h| u32::try_from(h).ok()).unwrap_or(0),
        state: state.into(),
        thumbnails: thumbnails(row)
            .into_iter()
            .map(|t| pb::Thumbnail {
                size: t.size,
                width: t.width,
                height: t.height,
                content_type: t.content_type,
            })
            .collect(),
        created_at: Some(timestamp(row.created_at)),
        failure: row.failure.clone().unwrap_or_default(),
    }
}
