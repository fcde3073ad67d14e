//! Public JSON shapes and query parameters of the media routes.

use super::timestamp;
use messenger_proto::media::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaState {
    /// An image whose metadata is being stripped and thumbnails made; it
    /// cannot be downloaded yet.
    Pending,
    Ready,
    /// Processing failed (see `failure`); it cannot be attached.
    Failed,
}

impl MediaState {
    fn from_pb(raw: i32) -> MediaState {
        match pb::MediaState::try_from(raw) {
            Ok(pb::MediaState::Pending) => MediaState::Pending,
            Ok(pb::MediaState::Failed) => MediaState::Failed,
            // Files other than images need no processing.
            Ok(pb::MediaState::Ready | pb::MediaState::Unspecified) | Err(_) => MediaState::Ready,
        }
    }
}

/// A smaller copy of an image.
#[derive(Serialize, ToSchema)]
pub struct Thumbnail {
    /// The limit of its longer side: 64 or 320 (`?size=` of the thumbnail
    /// route).
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
}

/// An uploaded file.
#[derive(Serialize, ToSchema)]
pub struct Media {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The name given at upload, sanitized.
    pub filename: String,
    /// Detected from the content, not taken from the client.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Images only.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub state: MediaState,
    pub thumbnails: Vec<Thumbnail>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Why processing failed.
    pub failure: Option<String>,
}

fn nonzero(value: u32) -> Option<u32> {
    (value != 0).then_some(value)
}

impl From<pb::Media> for Media {
    fn from(media: pb::Media) -> Self {
        Media {
            // Ids come from the service, which only issues UUIDs.
            id: Uuid::parse_str(&media.id).unwrap_or_default(),
            owner_id: Uuid::parse_str(&media.owner_id).unwrap_or_default(),
            filename: media.filename,
            content_type: media.content_type,
            size: media.size,
            sha256: media.sha256,
            width: nonzero(media.width),
            height: nonzero(media.height),
            state: MediaState::from_pb(media.state),
            thumbnails: media
                .thumbnails
                .into_iter()
                .map(|thumbnail| Thumbnail {
                    size: thumbnail.size,
                    width: thumbnail.width,
                    height: thumbnail.height,
                    content_type: thumbnail.content_type,
                })
                .collect(),
            created_at: timestamp(media.created_at),
            failure: (!media.failure.is_empty()).then_some(media.failure),
        }
    }
}
