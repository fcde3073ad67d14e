//! The thumbnail worker: consumes `media.events.v1`, and for each uploaded
//! image strips its metadata, makes thumbnails and marks it ready (or
//! failed), off the request path. Offsets are stored after the outcome is
//! committed: a crash repeats the work, never skips it.

use crate::convert::StoredThumbnail;
use crate::events;
use crate::media::Media;
use crate::process;
use crate::repo;
use crate::storage;
use messenger_platform::{CancellationToken, Config};
use messenger_proto::media::v1::{self as pb, MediaEvent, media_event::Payload};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use std::time::Duration;
use uuid::Uuid;

/// The worker's consumer group, which also names its client and metrics.
pub const GROUP: &str = "media-thumbnailer";

pub async fn run(config: Config, media: Media, shutdown: CancellationToken) {
    let kafka = &config.kafka;
    let topic = kafka.topic(MediaEvent::TOPIC.name());
    let group = kafka.topic(GROUP);
    tokio::spawn(messenger_platform::kafka::report_lag(
        kafka.clone(),
        group.clone(),
        vec![topic.clone()],
        shutdown.clone(),
    ));
    // A consumer librdkafka declared dead is replaced; anything else ends
    // only with the shutdown.
    let topics = [topic];
    while let Some(consumer) = messenger_platform::kafka::subscribed_consumer(
        kafka,
        &topics,
        &group,
        GROUP,
        messenger_platform::kafka::Urgency::Background,
        &shutdown,
    )
    .await
    {
        let fatal = consume(&consumer, &media, &shutdown).await;
        messenger_platform::kafka::close_consumer(consumer).await;
        match fatal {
            Some(reason) => messenger_platform::kafka::note_rebuild(GROUP, &reason),
            None => break,
        }
    }
}

/// Handles uploads until shutdown (`None`) or until the consumer has a
/// fatal error (`Some(reason)`).
async fn consume(
    consumer: &rdkafka::consumer::StreamConsumer,
    media: &Media,
    shutdown: &CancellationToken,
) -> Option<String> {
    loop {
        let record = tokio::select! {
            _ = shutdown.cancelled() => return None,
            record = consumer.recv() => record,
        };
        let record = match record {
            Ok(record) => record,
            Err(_) => match messenger_platform::kafka::fatal_error(consumer.client()) {
                Some(fatal) => return Some(fatal),
                None => continue,
            },
        };
        let uploaded = record
            .payload()
            .and_then(|payload| MediaEvent::decode(payload).ok())
            .and_then(|event| match event.payload {
                Some(Payload::MediaUploaded(uploaded)) => uploaded.media,
                _ => None,
            });
        if let Some(uploaded) = uploaded
            && uploaded.state == pb::MediaState::Pending as i32
            && let Ok(id) = Uuid::parse_str(&uploaded.id)
        {
            let mut backoff = Duration::from_millis(100);
            while let Err(err) = handle(media, id).await {
                tracing::warn!(error = %err, media_id = %id, "thumbnail worker failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        if let Err(err) = consumer.store_offset_from_message(&record) {
            tracing::warn!(error = %err, "cannot store thumbnail worker offset");
        }
    }
}

/// Processes one image. An error is worth retrying (storage or database);
/// a bad image is an outcome (`failed`), not an error.
async fn handle(media: &Media, id: Uuid) -> anyhow::Result<()> {
    let mut conn = media.pool.acquire().await?;
    let Some(row) = repo::get(&mut conn, id).await? else {
        return Ok(()); // deleted meanwhile
    };
    drop(conn);
    if row.state != "pending" {
        return Ok(()); // done before (a redelivery)
    }
    let original = media.storage.read_all(&storage::blob(&row.sha256)).await?;
    let mime = row.content_type.clone();
    let max_pixels = media.limits.max_image_pixels;
    let started = std::time::Instant::now();
    let outcome =
        tokio::task::spawn_blocking(move || process::process(&original, &mime, max_pixels)).await?;
    let mut tx = media.pool.begin().await?;
    let (updated, payload) = match outcome {
        Ok(processed) => {
            if let Some(clean) = processed.clean {
                media
                    .storage
                    .put(&storage::derived(&row.sha256, "clean"), clean)
                    .await?;
            }
            let mut stored = Vec::new();
            for thumbnail in processed.thumbnails {
                let name = format!("thumb-{}", thumbnail.size);
                media
                    .storage
                    .put(&storage::derived(&row.sha256, &name), thumbnail.bytes)
                    .await?;
                stored.push(StoredThumbnail {
                    size: thumbnail.size,
                    width: thumbnail.width,
                    height: thumbnail.height,
                    content_type: "image/jpeg".to_owned(),
                });
            }
            let updated = repo::finish_processing(
                &mut tx,
                id,
                "ready",
                i32::try_from(processed.width).ok(),
                i32::try_from(processed.height).ok(),
                &serde_json::to_string(&stored)?,
                None,
            )
            .await?;
            let payload = updated.as_ref().map(|row| {
                Payload::ThumbnailReady(pb::ThumbnailReady {
                    media: Some(crate::convert::media(row)),
                })
            });
            (updated, payload)
        }
        Err(reason) => {
            tracing::info!(media_id = %id, %reason, "image could not be processed");
            let updated =
                repo::finish_processing(&mut tx, id, "failed", None, None, "[]", Some(&reason))
                    .await?;
            let payload = updated.as_ref().map(|row| {
                Payload::ThumbnailFailed(pb::ThumbnailFailed {
                    media: Some(crate::convert::media(row)),
                    reason: reason.clone(),
                })
            });
            (updated, payload)
        }
    };
    if let (Some(row), Some(payload)) = (updated, payload) {
        events::publish(&mut tx, row.id, row.owner_id, payload).await?;
    }
    tx.commit().await?;
    metrics::histogram!("media_processing_seconds").record(started.elapsed().as_secs_f64());
    Ok(())
}
