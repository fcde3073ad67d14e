//! `/media`: uploading a file (streamed through to the media service, never
//! held whole), its description, and deleting it. Downloads are in
//! `media_download`.

use super::headers::disposition_filename;
use super::requests::UploadParams;
use crate::api::media::Media;
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::http::extract::{Auth, Json, Path, Query};
use crate::state::{AppState, MediaLimits};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use futures::{Stream, StreamExt};
use messenger_proto::media::v1 as pb;
use std::future::ready;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use uuid::Uuid;

/// Largest `data` chunk sent to the service.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks waiting for the service: with the chunk size, the most of an
/// upload the gateway holds at once.
const UPLOAD_QUEUE: usize = 4;

/// What the body forwarder hands to the call's request stream.
enum Frame {
    Chunk(pb::UploadChunk),
    /// The whole body went through. Only this ends the request stream
    /// cleanly: without it (the body failed, the request was dropped) the
    /// stream never ends, and dropping the call resets it, so the service
    /// sees an interrupted upload, never a complete shorter file.
    End,
}

/// The request stream of `Upload`: the chunks until [`Frame::End`]; if the
/// sender goes away without it, it stays pending for as long as the call
/// lives.
fn request_stream(frames: mpsc::Receiver<Frame>) -> impl Stream<Item = pb::UploadChunk> {
    ReceiverStream::new(frames)
        .chain(futures::stream::pending())
        .take_while(|frame| ready(matches!(frame, Frame::Chunk(_))))
        .filter_map(|frame| {
            ready(match frame {
                Frame::Chunk(chunk) => Some(chunk),
                Frame::End => None,
            })
        })
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("files may have at most {max} bytes"),
    )
    .with_detail("max_bytes", max)
}

/// Sends `start`, then the body in chunks of at most [`CHUNK_BYTES`], then
/// [`Frame::End`]. Stops early without error if the call ended (its answer
/// says why); fails if the body does, stalls or grows past the limit.
async fn forward(
    body: Body,
    start: pb::UploadStart,
    frames: &mpsc::Sender<Frame>,
    limits: &MediaLimits,
) -> ApiResult<()> {
    let chunk = |chunk| Frame::Chunk(pb::UploadChunk { chunk: Some(chunk) });
    if frames
        .send(chunk(pb::upload_chunk::Chunk::Start(start)))
        .await
        .is_err()
    {
        return Ok(());
    }
    let max = limits.max_upload_bytes();
    let mut body = body.into_data_stream();
    let mut received: u64 = 0;
    let mut pending = bytes::BytesMut::with_capacity(CHUNK_BYTES);
    loop {
        let next = tokio::time::timeout(limits.upload_idle_timeout, body.next())
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::RequestTimeout,
                    "the upload stalled: no bytes arrived for too long",
                )
            })?;
        let mut bytes = match next {
            None => break,
            Some(Ok(bytes)) => bytes,
            Some(Err(err)) => {
                tracing::debug!(%err, "upload body failed");
                return Err(ApiError::bad_request(
                    "upload interrupted: the request body ended early",
                ));
            }
        };
        received = received.saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        if received > max {
            return Err(too_large(max));
        }
        // Small body frames are gathered into fewer, larger messages.
        pending.extend_from_slice(&bytes);
        bytes.clear();
        while pending.len() >= CHUNK_BYTES {
            let piece = pending.split_to(CHUNK_BYTES);
            let data = chunk(pb::upload_chunk::Chunk::Data(piece.freeze()));
            if frames.send(data).await.is_err() {
                return Ok(());
            }
        }
    }
    if !pending.is_empty() {
        let data = chunk(pb::upload_chunk::Chunk::Data(pending.freeze()));
        if frames.send(data).await.is_err() {
            return Ok(());
        }
    }
    // If the call already ended, its answer says why.
    let _ = frames.send(Frame::End).await;
    Ok(())
}

/// An `Upload` error as HTTP: over a size limit is 413, a refused or
/// misdeclared type 415.
fn upload_error(status: tonic::Status) -> ApiError {
    let code = status.code();
    let error = ApiError::from(status);
    match code {
        Code::OutOfRange => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: ErrorCode::PayloadTooLarge,
            ..error
        },
        Code::FailedPrecondition
            if error
                .details
                .get("field")
                .is_some_and(|field| field == "content_type")
                || error.message.to_ascii_lowercase().contains("type") =>
        {
            ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: ErrorCode::UnsupportedMediaType,
                ..error
            }
            .with_detail("field", "Content-Type")
        }
        _ => error,
    }
}

fn content_length(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|value| value.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::invalid_field("Content-Length", "Content-Length must be a number")
                })
        })
        .transpose()
}

/// The name from `?filename=`, else from `Content-Disposition`.
fn filename(query: Option<String>, headers: &HeaderMap) -> ApiResult<String> {
    query
        .filter(|name| !name.trim().is_empty())
        .or_else(|| {
            let value = headers.get(header::CONTENT_DISPOSITION)?;
            // Raw UTF-8 in `filename="…"` is common; take it too.
            disposition_filename(std::str::from_utf8(value.as_bytes()).ok()?)
        })
        .ok_or_else(|| {
            ApiError::invalid_field(
                "filename",
                "name the file with ?filename= or Content-Disposition: attachment; filename=\"…\"",
            )
        })
}

/// Upload a file: the request body is the file itself. Its type is
/// detected from its content and must be allowed (and match
/// `Content-Type`, if sent); images are then stripped of metadata and get
/// thumbnails in the background (`state` is `pending` until then).
#[utoipa::path(post, path = "/media", tag = "media",
    params(
        UploadParams,
        ("Content-Type" = Option<String>, Header, description = "What the file is, as the client believes; checked against its content"),
        ("Content-Disposition" = Option<String>, Header, description = "`attachment; filename=\"…\"`: the name, when not given as `?filename=`"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = Media),
        (status = 400, description = "No name, an empty file, or the upload was interrupted", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Uploads are disabled (`uploads_disabled`)", body = ErrorBody),
        (status = 408, description = "The upload stalled", body = ErrorBody),
        (status = 413, description = "Over the size limit of its type (`payload_too_large`), or past the user's storage quota (`storage_quota_exceeded`)", body = ErrorBody),
        (status = 415, description = "A type not allowed, or not the declared one", body = ErrorBody),
    ))]
pub async fn upload_media(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    // The raw body: not cut by the global body limit, never read whole.
    body: Body,
) -> ApiResult<(StatusCode, Json<Media>)> {
    let limits = *state.media_limits();
    if !limits.uploads_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::UploadsDisabled,
            "file uploads are disabled",
        ));
    }
    let length = content_length(&headers)?;
    if length.is_some_and(|length| length > limits.max_upload_bytes()) {
        return Err(too_large(limits.max_upload_bytes()));
    }
    let filename = filename(params.filename, &headers)?;
    let declared_content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| {
            value
                .to_str()
                .map(|value| value.trim().to_owned())
                .map_err(|_| {
                    ApiError::invalid_field("Content-Type", "Content-Type must be printable ASCII")
                })
        })
        .transpose()?
        .unwrap_or_default();
    let start = pb::UploadStart {
        owner_id: who.user_id.to_string(),
        filename,
        declared_content_type,
        content_length: length.unwrap_or(0),
    };
    let (sender, receiver) = mpsc::channel(UPLOAD_QUEUE);
    let mut client = state.media();
    let upload = call("media.Upload", client.upload(request_stream(receiver)));
    let forwarding = forward(body, start, &sender, &limits);
    tokio::pin!(upload, forwarding);
    // Returning early drops the call before its stream ended: the
    // service sees the upload reset, never finished.
    let media = tokio::select! {
        // The service answered before the body ended: a refusal.
        answer = &mut upload => answer.map_err(upload_error)?,
        forwarded = &mut forwarding => {
            forwarded?;
            upload.await.map_err(upload_error)?
        }
    };
    Ok((StatusCode::CREATED, Json(media.into())))
}

/// A `GetMedia`/`DeleteMedia` request, bounded like other backend calls.
pub(super) fn media_request(
    state: &AppState,
    actor: Uuid,
    media: Uuid,
) -> tonic::Request<pb::GetMediaRequest> {
    let mut request = tonic::Request::new(pb::GetMediaRequest {
        actor_id: actor.to_string(),
        media_id: media.to_string(),
    });
    request.set_timeout(state.media_limits().call_timeout);
    request
}

/// A file's description: its type, size, processing state and thumbnails.
/// Readable by its uploader and by whoever can read a message it is
/// attached to.
#[utoipa::path(get, path = "/media/{id}/info", tag = "media",
    params(("id" = Uuid, Path, description = "Media id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Media),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn get_media(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Media>> {
    let request = media_request(&state, who.user_id, id);
    let media = call("media.GetMedia", state.media().get_media(request)).await?;
    Ok(Json(media.into()))
}

/// Delete a file you uploaded.
#[utoipa::path(delete, path = "/media/{id}", tag = "media",
    params(("id" = Uuid, Path, description = "Media id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not the uploader", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn delete_media(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let request = media_request(&state, who.user_id, id);
    call("media.DeleteMedia", state.media().delete_media(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}
