//! Uploads, reads and deletes of media: the rules.

use crate::detect::{self, Kind, SNIFF_BYTES};
use crate::error::{Error, Result};
use crate::events;
use crate::process;
use crate::repo::{self, MediaRow, NewMedia};
use crate::settings::MediaSettings;
use crate::storage::{self, Storage};
use messenger_platform::grpc::TracePropagation;
use messenger_proto::media::v1::{self as pb, media_event::Payload};
use messenger_proto::messages::v1 as messages_pb;
use messenger_proto::messages::v1::messages_service_client::MessagesServiceClient;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type MessagesClient = MessagesServiceClient<InterceptedService<Channel, TracePropagation>>;

#[derive(Clone)]
pub struct Media {
    pub pool: PgPool,
    pub storage: Storage,
    pub limits: MediaSettings,
    pub messages: MessagesClient,
}

/// What the upload's first chunk said.
pub struct UploadStart {
    pub owner: Uuid,
    pub filename: String,
    pub declared_type: String,
    pub content_length: u64,
}

impl Media {
    fn largest_upload(&self) -> u64 {
        self.limits.max_image_bytes.max(self.limits.max_file_bytes)
    }

    /// Streams an upload to storage. `next` yields the file's chunks; an
    /// error means the client went away (nothing is kept).
    pub async fn upload<S>(&self, start: UploadStart, mut chunks: S) -> Result<MediaRow>
    where
        S: futures::Stream<Item = Result<bytes::Bytes>> + Unpin,
    {
        let largest = self.largest_upload();
        if start.content_length > largest {
            return Err(Error::TooLarge(format!(
                "uploads are limited to {largest} bytes"
            )));
        }
        // A declared size past the quota is refused before a byte is read;
        // the stored size is checked again under the owner's lock.
        let mut conn = self.pool.acquire().await?;
        let used = repo::used_bytes(&mut conn, start.owner).await?;
        drop(conn);
        self.within_quota(used, start.content_length)?;
        let (head, ended) = read_head(&mut chunks).await?;
        let sniffed = self.sniff(&start, &head)?;
        let temporary = storage::temporary(Uuid::now_v7());
        let (size, sha256) = self
            .write_temporary(&temporary, &start, &sniffed, head, ended, &mut chunks)
            .await?;
        let id = Uuid::now_v7();
        let row = self
            .store(id, &start, &sniffed, &temporary, size, &sha256)
            .await?;
        metrics::counter!("media_uploaded_bytes_total").increment(size);
        tracing::info!(media_id = %id, mime = %sniffed.mime, size, "media uploaded");
        Ok(row)
    }

    fn within_quota(&self, used: u64, needed: u64) -> Result<()> {
        let quota = self.limits.user_quota_bytes;
        if used.saturating_add(needed) > quota {
            return Err(Error::QuotaExceeded {
                used,
                quota,
                needed,
            });
        }
        Ok(())
    }

    /// Decides from the file's first bytes what it is and refuses it early
    /// when it is not allowed, too large or an image of too many pixels.
    fn sniff(&self, start: &UploadStart, head: &[u8]) -> Result<Sniffed> {
        if head.is_empty() {
            return Err(Error::invalid("file", "the file is empty"));
        }
        let (mime, kind) = detect::classify(head, &start.declared_type)?;
        let limit = match kind {
            Kind::Image => self.limits.max_image_bytes,
            Kind::File => self.limits.max_file_bytes,
        };
        if start.content_length > limit || head.len() as u64 > limit {
            return Err(Error::TooLarge(format!(
                "{mime} uploads are limited to {limit} bytes"
            )));
        }
        let dimensions = match kind {
            Kind::Image => Some(self.image_dimensions(head)?),
            Kind::File => None,
        };
        Ok(Sniffed {
            mime,
            kind,
            limit,
            dimensions,
        })
    }

    /// Width and height from an image's first bytes, refused beyond the
    /// pixel allowance before anything is stored or decoded.
    fn image_dimensions(&self, head: &[u8]) -> Result<(u32, u32)> {
        let (width, height) =
            process::dimensions(head).map_err(|reason| Error::invalid("file", reason))?;
        if process::too_many_pixels(width, height, self.limits.max_image_pixels) {
            return Err(Error::invalid(
                "file",
                format!(
                    "{width}x{height} pixels is more than the {} allowed",
                    self.limits.max_image_pixels
                ),
            ));
        }
        Ok((width, height))
    }

    /// Writes the whole file to `temporary`, hashing it on the way, and
    /// returns its size and SHA-256. Whatever goes wrong, nothing is kept.
    async fn write_temporary<S>(
        &self,
        temporary: &object_store::path::Path,
        start: &UploadStart,
        sniffed: &Sniffed,
        head: Vec<u8>,
        ended: bool,
        chunks: &mut S,
    ) -> Result<(u64, String)>
    where
        S: futures::Stream<Item = Result<bytes::Bytes>> + Unpin,
    {
        use futures::StreamExt;
        let (mime, limit) = (sniffed.mime, sniffed.limit);
        let mut writer = self.storage.writer(temporary).await?;
        let mut hasher = Sha256::new();
        let mut size = head.len() as u64;
        hasher.update(&head);
        let written: Result<()> = async {
            writer.write(bytes::Bytes::from(head)).await?;
            if !ended {
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk?;
                    size += chunk.len() as u64;
                    if size > limit {
                        return Err(Error::TooLarge(format!(
                            "{mime} uploads are limited to {limit} bytes"
                        )));
                    }
                    hasher.update(&chunk);
                    writer.write(chunk).await?;
                }
            }
            if start.content_length != 0 && size != start.content_length {
                return Err(Error::invalid(
                    "file",
                    format!(
                        "truncated: {size} of {} bytes arrived",
                        start.content_length
                    ),
                ));
            }
            Ok(())
        }
        .await;
        if let Err(err) = written {
            writer.abort().await;
            return Err(err);
        }
        writer.finish().await?;
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Moves the written file to its content address and records it, under
    /// the content lock so that a concurrent delete of the same bytes
    /// cannot remove the blob this upload relies on.
    async fn store(
        &self,
        id: Uuid,
        start: &UploadStart,
        sniffed: &Sniffed,
        temporary: &object_store::path::Path,
        size: u64,
        sha256: &str,
    ) -> Result<MediaRow> {
        let mut tx = self.pool.begin().await?;
        repo::lock_owner(&mut tx, start.owner).await?;
        let used = repo::used_bytes(&mut tx, start.owner).await?;
        if let Err(refused) = self.within_quota(used, size) {
            let _ = self.storage.delete(temporary).await;
            return Err(refused);
        }
        repo::lock_content(&mut tx, sha256).await?;
        let blob = storage::blob(sha256);
        if let Err(err) = self.storage.promote(temporary, &blob).await {
            let _ = self.storage.delete(temporary).await;
            return Err(err.into());
        }
        // Acknowledged uploads must survive a crash of the host.
        self.storage.make_durable(&blob).await?;
        let dimensions = sniffed.dimensions;
        let row = repo::insert(
            &mut tx,
            NewMedia {
                id,
                owner_id: start.owner,
                filename: &start.filename,
                content_type: sniffed.mime,
                size: i64::try_from(size).unwrap_or(i64::MAX),
                sha256,
                width: dimensions.and_then(|(w, _)| i32::try_from(w).ok()),
                height: dimensions.and_then(|(_, h)| i32::try_from(h).ok()),
                state: if sniffed.kind == Kind::Image {
                    "pending"
                } else {
                    "ready"
                },
            },
        )
        .await?;
        events::publish(
            &mut tx,
            id,
            start.owner,
            Payload::MediaUploaded(pb::MediaUploaded {
                media: Some(crate::convert::media(&row)),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The media, if `actor` may see it: its uploader, or a member of a
    /// conversation where it is attached.
    pub async fn visible(&self, actor: Uuid, id: Uuid) -> Result<MediaRow> {
        let mut conn = self.pool.acquire().await?;
        let row = repo::get(&mut conn, id)
            .await?
            .ok_or(Error::NotFound("media"))?;
        drop(conn);
        if row.owner_id == actor {
            return Ok(row);
        }
        let access = self
            .messages
            .clone()
            .media_access(messages_pb::MediaAccessRequest {
                user_id: actor.to_string(),
                media_id: id.to_string(),
            })
            .await
            .map_err(Error::Dependency)?
            .into_inner();
        if access.allowed {
            Ok(row)
        } else {
            Err(Error::NotFound("media"))
        }
    }

    /// Where a variant lives, its content type and ETag.
    pub fn variant(
        &self,
        row: &MediaRow,
        variant: pb::Variant,
    ) -> Result<(object_store::path::Path, String, String)> {
        let image = detect::allowed(&row.content_type) == Some(Kind::Image);
        let thumbnail = match variant {
            pb::Variant::Original => None,
            pb::Variant::Thumbnail64 => Some(64),
            pb::Variant::Thumbnail320 => Some(320),
        };
        if image && row.state == "pending" {
            return Err(Error::Conflict(
                "the image is still being processed; try again in a moment".into(),
            ));
        }
        if image && row.state == "failed" {
            return Err(Error::Conflict(format!(
                "the image could not be processed: {}",
                row.failure.as_deref().unwrap_or("unknown reason")
            )));
        }
        match thumbnail {
            None if image && row.content_type != "image/gif" => Ok((
                storage::derived(&row.sha256, "clean"),
                row.content_type.clone(),
                row.sha256.clone(),
            )),
            None => Ok((
                storage::blob(&row.sha256),
                row.content_type.clone(),
                row.sha256.clone(),
            )),
            Some(size) if image => Ok((
                storage::derived(&row.sha256, &format!("thumb-{size}")),
                "image/jpeg".to_owned(),
                format!("{}-{size}", row.sha256),
            )),
            Some(_) => Err(Error::NotFound("thumbnail")),
        }
    }

    pub async fn delete(&self, actor: Uuid, id: Uuid) -> Result<()> {
        let row = self.visible(actor, id).await?;
        if row.owner_id != actor {
            return Err(Error::PermissionDenied(
                "only the uploader can delete a file".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        repo::lock_content(&mut tx, &row.sha256).await?;
        if !repo::delete(&mut tx, id).await? {
            // Deleted meanwhile (the sweeper of unattached uploads).
            return Err(Error::NotFound("media"));
        }
        let still_used = repo::blob_users(&mut tx, &row.sha256).await? > 0;
        events::publish(
            &mut tx,
            id,
            actor,
            Payload::MediaDeleted(pb::MediaDeleted {
                media_id: id.to_string(),
                owner_id: row.owner_id.to_string(),
                reason: pb::MediaDeletedReason::Owner as i32,
            }),
        )
        .await?;
        if !still_used {
            // Content no other upload shares goes too, under the content
            // lock: an upload of the same bytes waits, then stores it again.
            for path in storage::content_paths(&row.sha256) {
                if let Err(err) = self.storage.delete(&path).await {
                    tracing::warn!(%err, %path, "could not delete stored content");
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The files `owner` may attach: theirs, not failed. They are claimed
    /// as attached before the answer, under their row locks, so the sweeper
    /// of unattached uploads either deleted one before (it is not found,
    /// and the message is refused) or never will.
    pub async fn attachable(&self, owner: Uuid, ids: &[Uuid]) -> Result<Vec<MediaRow>> {
        let mut tx = self.pool.begin().await?;
        repo::lock_rows(&mut tx, ids).await?;
        let rows = repo::get_many(&mut tx, ids).await?;
        for id in ids {
            let Some(row) = rows.iter().find(|row| row.id == *id) else {
                return Err(Error::NotFound("media"));
            };
            if row.owner_id != owner {
                return Err(Error::PermissionDenied(format!(
                    "media {id} is not yours to attach"
                )));
            }
            if row.state == "failed" {
                return Err(Error::Conflict(format!(
                    "media {id} could not be processed"
                )));
            }
        }
        repo::claim(&mut tx, ids).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Claims those of `ids` that `owner` uploaded as used (an avatar), so
    /// the sweeper keeps them; the others are skipped. Returns the claimed.
    pub async fn claim(&self, owner: Uuid, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        if ids.len() > MAX_CLAIM {
            return Err(Error::invalid(
                "media_ids",
                format!("at most {MAX_CLAIM} per call"),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let owned = repo::lock_owned(&mut tx, owner, ids).await?;
        repo::claim(&mut tx, &owned).await?;
        tx.commit().await?;
        Ok(owned)
    }
}

/// Most ids one `ClaimMedia` call may name.
const MAX_CLAIM: usize = 100;

/// What an upload's first bytes showed it to be.
struct Sniffed {
    mime: &'static str,
    kind: Kind,
    /// Most bytes allowed for this kind of file.
    limit: u64,
    /// Width and height, for images.
    dimensions: Option<(u32, u32)>,
}

/// Reads chunks until the type can be told from the bytes read; `true`
/// when that was the whole file.
async fn read_head<S>(chunks: &mut S) -> Result<(Vec<u8>, bool)>
where
    S: futures::Stream<Item = Result<bytes::Bytes>> + Unpin,
{
    use futures::StreamExt;
    let mut head = Vec::new();
    while head.len() < SNIFF_BYTES {
        match chunks.next().await {
            Some(chunk) => head.extend_from_slice(&chunk?),
            None => return Ok((head, true)),
        }
    }
    Ok((head, false))
}
