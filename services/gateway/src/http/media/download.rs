//! `GET /media/{id}` and `/media/{id}/thumbnail`: files streamed from the
//! media service as they arrive, with single byte ranges and conditional
//! requests.

use super::headers::{ByteRange, content_disposition, none_match, parse_range};
use super::requests::ThumbnailParams;
use super::upload::media_request;
use crate::backends::call;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::http::extract::{Auth, Path, Query};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use messenger_proto::media::v1 as pb;
use uuid::Uuid;

const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// Which file of a media item to serve.
#[derive(Clone, Copy)]
enum Variant {
    Original,
    /// A thumbnail by the limit of its longer side.
    Thumbnail(u32),
}

impl Variant {
    fn to_pb(self) -> pb::Variant {
        match self {
            Variant::Original => pb::Variant::Original,
            Variant::Thumbnail(64) => pb::Variant::Thumbnail64,
            Variant::Thumbnail(_) => pb::Variant::Thumbnail320,
        }
    }

    /// Its entity tag (unquoted) as the service makes it, if it exists.
    fn etag(self, media: &pb::Media) -> Option<String> {
        match self {
            Variant::Original => Some(media.sha256.clone()),
            Variant::Thumbnail(size) => media
                .thumbnails
                .iter()
                .any(|thumbnail| thumbnail.size == size)
                .then(|| format!("{}-{size}", media.sha256)),
        }
    }
}

/// A started download: its first message (what is served) and the rest.
struct Opened {
    first: pb::DownloadChunk,
    rest: tonic::Streaming<pb::DownloadChunk>,
}

/// Starts a download and waits for its first message, within the usual
/// call time (the stream after it may take as long as the client reads).
async fn open(state: &AppState, request: pb::DownloadRequest) -> Result<Opened, tonic::Status> {
    let mut client = state.media();
    let opening = async {
        let mut rest = call("media.Download", client.download(request)).await?;
        let first = rest
            .message()
            .await?
            .ok_or_else(|| tonic::Status::internal("Download answered nothing"))?;
        Ok(Opened { first, rest })
    };
    tokio::time::timeout(state.media_limits().call_timeout, opening)
        .await
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(
                "the media service did not start the download in time",
            ))
        })
}

/// The size of the file served for `request`, by asking for one byte.
async fn size(state: &AppState, request: &pb::DownloadRequest) -> ApiResult<u64> {
    let probe = pb::DownloadRequest {
        offset: 0,
        length: 1,
        ..request.clone()
    };
    // Dropping the rest of the stream cancels it.
    Ok(open(state, probe).await?.first.total_size)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn quoted_etag(etag: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{etag}\"")).ok()
}

fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    let headers = response.headers_mut();
    if let Some(etag) = quoted_etag(etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

fn unsatisfiable(total: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorCode::RangeNotSatisfiable,
        format!("the file has {total} bytes"),
    )
    .into_response();
    if let Ok(range) = HeaderValue::from_str(&format!("bytes */{total}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, range);
    }
    response
        .headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

/// The response for a started download; its body streams the rest.
fn respond(opened: Opened, ranged: bool) -> Response {
    let Opened { first, rest } = opened;
    let media = first.media.unwrap_or_default();
    let (start, length, total) = (first.range_start, first.range_length, first.total_size);
    let ranged = ranged && length > 0;
    let head = futures::stream::once(std::future::ready(Ok(Bytes::from(first.data))));
    let rest = rest.map(|chunk| {
        chunk
            .map(|chunk| Bytes::from(chunk.data))
            .inspect_err(|status| tracing::warn!(%status, "download stream failed"))
    });
    let mut response = Response::new(Body::from_stream(head.chain(rest)));
    if ranged {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&first.content_type)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = content_disposition(&first.content_type, &media.filename);
    let optional = [
        (header::CONTENT_LENGTH, Some(length.to_string())),
        (
            header::ETAG,
            (!first.etag.is_empty()).then(|| format!("\"{}\"", first.etag)),
        ),
        (header::CONTENT_DISPOSITION, Some(disposition)),
        (
            header::CONTENT_RANGE,
            ranged.then(|| {
                let end = start.saturating_add(length - 1);
                format!("bytes {start}-{end}/{total}")
            }),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

async fn download(
    state: &AppState,
    actor: Uuid,
    id: Uuid,
    variant: Variant,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    // Only a conditional request costs a GetMedia: it answers without
    // starting a download.
    if let Some(condition) = header_str(headers, &header::IF_NONE_MATCH) {
        let request = media_request(state, actor, id);
        let media = call("media.GetMedia", state.media().get_media(request)).await?;
        if let Some(etag) = variant.etag(&media)
            && none_match(condition, &etag)
        {
            return Ok(not_modified(&etag));
        }
    }
    let range = header_str(headers, &header::RANGE).and_then(parse_range);
    let request = pb::DownloadRequest {
        actor_id: actor.to_string(),
        media_id: id.to_string(),
        variant: variant.to_pb() as i32,
        offset: 0,
        length: 0,
    };
    let (offset, length) = match range {
        None => (0, 0),
        Some(ByteRange::Suffix(count)) => {
            // The last `count` bytes: the size is needed first.
            let total = size(state, &request).await?;
            if count == 0 || total == 0 {
                return Ok(unsatisfiable(total));
            }
            (total.saturating_sub(count), 0)
        }
        Some(range) => range.offset_length().unwrap_or((0, 0)),
    };
    let wanted = pb::DownloadRequest {
        offset,
        length,
        ..request.clone()
    };
    match open(state, wanted).await {
        Ok(opened) => Ok(respond(opened, range.is_some())),
        Err(status) if range.is_some() && status.code() == tonic::Code::OutOfRange => {
            Ok(unsatisfiable(size(state, &request).await?))
        }
        Err(status) => Err(status.into()),
    }
}

/// Download a file. Supports one byte range (`Range: bytes=a-b`, `a-`,
/// `-n`; others are ignored) and `If-None-Match` with its `ETag`. Images
/// are shown inline, other files saved (`Content-Disposition`).
#[utoipa::path(get, path = "/media/{id}", tag = "media",
    params(
        ("id" = Uuid, Path, description = "Media id"),
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client has"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file, as its detected type (`Content-Type`)", body = Vec<u8>, content_type = "*/*"),
        (status = 206, description = "The range asked for, with `Content-Range`", body = Vec<u8>, content_type = "*/*"),
        (status = 304, description = "The client's copy is current"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "An image still being processed, or whose processing failed", body = ErrorBody),
        (status = 416, description = "The range starts past the end; `Content-Range: bytes */size`", body = ErrorBody),
    ))]
pub async fn download_media(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download(&state, who.user_id, id, Variant::Original, &headers).await
}

/// Download a thumbnail of an image, like the file itself.
#[utoipa::path(get, path = "/media/{id}/thumbnail", tag = "media",
    params(
        ("id" = Uuid, Path, description = "Media id"),
        ThumbnailParams,
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client has"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The thumbnail", body = Vec<u8>, content_type = "image/jpeg"),
        (status = 206, description = "The range asked for, with `Content-Range`", body = Vec<u8>, content_type = "image/jpeg"),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "`size` is not 64 or 320", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown file, or not an image", body = ErrorBody),
        (status = 409, description = "An image still being processed, or whose processing failed", body = ErrorBody),
        (status = 416, description = "The range starts past the end; `Content-Range: bytes */size`", body = ErrorBody),
    ))]
pub async fn download_thumbnail(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Query(params): Query<ThumbnailParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let size = match params.size.as_deref().map(str::trim) {
        Some("64") => 64,
        Some("320") => 320,
        _ => return Err(ApiError::invalid_field("size", "size must be 64 or 320")),
    };
    download(&state, who.user_id, id, Variant::Thumbnail(size), &headers).await
}
