//! gRPC transport: parses requests, calls the rules, converts results.

use crate::convert;
use crate::error::{Error, Result};
use crate::media::{Media, UploadStart};
use crate::storage;
use futures::{Stream, StreamExt};
use messenger_platform::identity::{ActorError, acting_user};
use messenger_proto::media::v1 as pb;
use messenger_proto::media::v1::media_service_server::MediaService;
use std::pin::Pin;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

/// Largest chunk sent by Download.
const CHUNK_BYTES: usize = 64 * 1024;

pub struct MediaGrpc {
    pub media: Media,
}

fn uuid(raw: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| Error::invalid(field, "must be a UUID"))
}

/// The acting user: the one of the verified access token (a request field
/// naming someone else is refused).
fn actor(raw: &str, field: &'static str) -> Result<Uuid> {
    match acting_user(raw) {
        Ok(user) => Ok(user),
        Err(ActorError::NotTheCaller) => Err(Error::PermissionDenied(
            ActorError::NotTheCaller.to_string(),
        )),
        Err(ActorError::Invalid) => uuid(raw, field),
    }
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadChunk, Status>> + Send>>;

#[tonic::async_trait]
impl MediaService for MediaGrpc {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        Ok(Response::new(pb::InfoResponse {
            service: crate::SCHEMA.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadChunk>>,
    ) -> Result<Response<pb::Media>, Status> {
        let mut chunks = request.into_inner();
        let start = match chunks.message().await {
            Ok(Some(pb::UploadChunk {
                chunk: Some(pb::upload_chunk::Chunk::Start(start)),
            })) => start,
            Ok(_) => {
                return Err(
                    Error::invalid("start", "the first chunk must describe the upload").into(),
                );
            }
            Err(_) => return Err(Error::invalid("file", "the upload was interrupted").into()),
        };
        if start.filename.trim().is_empty() {
            return Err(Error::invalid("filename", "is required").into());
        }
        let start = UploadStart {
            owner: actor(&start.owner_id, "owner_id")?,
            filename: crate::detect::sanitize_filename(&start.filename),
            declared_type: start.declared_content_type,
            content_length: start.content_length,
        };
        let data = chunks.filter_map(|chunk| async move {
            match chunk {
                Ok(pb::UploadChunk {
                    chunk: Some(pb::upload_chunk::Chunk::Data(data)),
                }) => Some(Ok(data)),
                Ok(_) => Some(Err(Error::invalid(
                    "data",
                    "only the first chunk may describe the upload",
                ))),
                Err(_) => Some(Err(Error::invalid("file", "the upload was interrupted"))),
            }
        });
        let row = self.media.upload(start, Box::pin(data)).await?;
        Ok(Response::new(convert::media(&row)))
    }

    async fn get_media(
        &self,
        request: Request<pb::GetMediaRequest>,
    ) -> Result<Response<pb::Media>, Status> {
        let r = request.into_inner();
        let row = self
            .media
            .visible(
                actor(&r.actor_id, "actor_id")?,
                uuid(&r.media_id, "media_id")?,
            )
            .await?;
        Ok(Response::new(convert::media(&row)))
    }

    type DownloadStream = DownloadStream;

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<DownloadStream>, Status> {
        let r = request.into_inner();
        let variant = pb::Variant::try_from(r.variant)
            .map_err(|_| Error::invalid("variant", "unknown variant"))?;
        let row = self
            .media
            .visible(
                actor(&r.actor_id, "actor_id")?,
                uuid(&r.media_id, "media_id")?,
            )
            .await?;
        let (path, content_type, etag) = self.media.variant(&row, variant)?;
        let total = self.media.storage.size(&path).await.map_err(Error::from)?;
        if r.offset >= total && !(total == 0 && r.offset == 0) {
            return Err(Status::out_of_range(format!("the file has {total} bytes")));
        }
        let end = match r.length {
            0 => total,
            length => r.offset.saturating_add(length).min(total),
        };
        let bytes = self
            .media
            .storage
            .read_range(&path, r.offset, end)
            .await
            .map_err(Error::from)?;
        let first = pb::DownloadChunk {
            media: Some(convert::media(&row)),
            total_size: total,
            range_start: r.offset,
            range_length: end - r.offset,
            content_type,
            etag,
            data: Vec::new(),
        };
        let body = storage::rechunk(bytes, CHUNK_BYTES).map(|chunk| match chunk {
            Ok(data) => Ok(pb::DownloadChunk {
                data: data.to_vec(),
                ..Default::default()
            }),
            Err(err) => {
                tracing::warn!(%err, "download interrupted");
                Err(Status::unavailable("storage read failed"))
            }
        });
        let stream = futures::stream::once(async move { Ok(first) }).chain(body);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn delete_media(
        &self,
        request: Request<pb::GetMediaRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        self.media
            .delete(
                actor(&r.actor_id, "actor_id")?,
                uuid(&r.media_id, "media_id")?,
            )
            .await?;
        Ok(Response::new(()))
    }

    async fn check_attachable(
        &self,
        request: Request<pb::CheckAttachableRequest>,
    ) -> Result<Response<pb::CheckAttachableResponse>, Status> {
        let r = request.into_inner();
        let ids = r
            .media_ids
            .iter()
            .map(|id| uuid(id, "media_ids"))
            .collect::<Result<Vec<_>>>()?;
        let rows = self
            .media
            .attachable(actor(&r.owner_id, "owner_id")?, &ids)
            .await?;
        Ok(Response::new(pb::CheckAttachableResponse {
            media: rows.iter().map(convert::media).collect(),
        }))
    }

    async fn claim_media(
        &self,
        request: Request<pb::ClaimMediaRequest>,
    ) -> Result<Response<pb::ClaimMediaResponse>, Status> {
        let r = request.into_inner();
        let ids = r
            .media_ids
            .iter()
            .map(|id| uuid(id, "media_ids"))
            .collect::<Result<Vec<_>>>()?;
        let claimed = self
            .media
            .claim(actor(&r.owner_id, "owner_id")?, &ids)
            .await?;
        Ok(Response::new(pb::ClaimMediaResponse {
            claimed_ids: claimed.iter().map(Uuid::to_string).collect(),
        }))
    }
}
