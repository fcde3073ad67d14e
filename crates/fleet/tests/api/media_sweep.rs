//! The sweeper of unattached uploads, on the whole fleet: uploads never
//! attached to a message nor used as an avatar go after
//! `media.unattached_upload_ttl_seconds`, with their quota and (unless
//! another upload shares them) their stored bytes; everything in use stays.
//! Uploads are aged by moving their timestamps back in the database.

use crate::groups::{User, user};
use crate::helpers::TestApp;
use crate::media::{download, files_under, jpeg_with_gps, pdf, ready, upload};
use crate::messages::group_with_channel;
use messenger_proto::media::v1::{MediaDeletedReason, MediaEvent, media_event::Payload};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Long enough for a test to finish well inside it (fresh uploads must
/// survive), short enough for the sweeper to look every 3 s (a 24th).
const TTL_SECONDS: u64 = 72;
/// Two sweeps and some slack.
const TWO_SWEEPS: Duration = Duration::from_secs(7);

async fn sweeping_fleet(quota: u64) -> TestApp {
    TestApp::spawn_with(|config| {
        config
            .set("media.user_quota_bytes", quota)
            .expect("known setting");
        config
            .set("media.unattached_upload_ttl_seconds", TTL_SECONDS)
            .expect("known setting");
    })
    .await
}

/// Uploads a PDF and returns its id and content hash.
async fn stored(app: &TestApp, who: &User, name: &str, bytes: Vec<u8>) -> (String, String) {
    let uploaded = upload(app, who, name, "application/pdf", bytes).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let id = uploaded.body["id"].as_str().expect("id").to_owned();
    let sha = uploaded.body["sha256"].as_str().expect("sha256").to_owned();
    (id, sha)
}

fn uuid(id: &str) -> Uuid {
    Uuid::parse_str(id).expect("uuid")
}

/// Moves uploads two hours into the past, as if they had waited that long.
async fn age(pool: &PgPool, ids: &[&str]) {
    let ids: Vec<Uuid> = ids.iter().map(|id| uuid(id)).collect();
    sqlx::query(
        "UPDATE media SET unattached_since = unattached_since - interval '2 hours', \
                          created_at = created_at - interval '2 hours' \
         WHERE id = ANY($1)",
    )
    .bind(&ids)
    .execute(pool)
    .await
    .expect("aged");
}

/// `Some(unattached)` while the upload's row exists.
async fn row(pool: &PgPool, id: &str) -> Option<bool> {
    sqlx::query_scalar::<_, bool>("SELECT unattached_since IS NOT NULL FROM media WHERE id = $1")
        .bind(uuid(id))
        .fetch_optional(pool)
        .await
        .expect("row")
}

async fn until_gone(pool: &PgPool, ids: &[&str]) {
    messenger_testkit::eventually(Duration::from_secs(30), || async {
        for id in ids {
            if row(pool, id).await.is_some() {
                return None;
            }
        }
        Some(())
    })
    .await
    .expect("the sweeper deleted the aged uploads within 30 s");
}

fn blob_exists(app: &TestApp, sha: &str) -> bool {
    let dir = app.env.media_dir().expect("local storage");
    dir.join("blobs").join(&sha[..2]).join(sha).exists()
}

async fn send(app: &TestApp, who: &User, channel: &str, media: &str) {
    let sent = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            &who.token,
            Some(json!({"content": "attached", "attachments": [media]})),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
}

/// Waits for `MediaDeleted` of `id` on the media topic and returns its reason.
async fn deleted_reason(consumer: &StreamConsumer, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(record)) = tokio::time::timeout(left, consumer.recv()).await else {
            assert!(
                Instant::now() < deadline,
                "no MediaDeleted for {id} in 30 s"
            );
            continue;
        };
        let Some(event) = record.payload().and_then(|p| MediaEvent::decode(p).ok()) else {
            continue;
        };
        if let Some(Payload::MediaDeleted(deleted)) = event.payload
            && deleted.media_id == id
        {
            assert_eq!(event.actor_id, deleted.owner_id);
            return deleted.reason;
        }
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.internal))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn uploads_never_attached_are_swept_and_their_quota_freed() {
    let mut app = sweeping_fleet(150_000).await;
    let events = app
        .env
        .consume(MediaEvent::TOPIC.name())
        .await
        .expect("consumer");
    let ann = user(&app, "sweep_ann").await;
    let ben = user(&app, "sweep_ben").await;
    let (_, channel) = group_with_channel(&app, &ann, "Sweep").await;
    let big = || pdf(&"a".repeat(100_000));

    // Forgotten: uploaded, never used, and it fills the quota.
    let (forgotten, forgotten_sha) = stored(&app, &ann, "forgotten.pdf", big()).await;
    let refused = upload(&app, &ann, "second.pdf", "application/pdf", big()).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    // In use: attached to a message, Ann's avatar, a group's avatar.
    let (attached, attached_sha) = stored(&app, &ann, "attached.pdf", pdf("attached")).await;
    send(&app, &ann, &channel, &attached).await;
    let (avatar, _) = stored(&app, &ann, "avatar.pdf", pdf("avatar")).await;
    let profile = app
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            &ann.token,
            Some(json!({"avatar_media_id": avatar})),
        )
        .await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    let (logo, _) = stored(&app, &ann, "logo.pdf", pdf("logo")).await;
    let group = app
        .call(
            Method::POST,
            "/api/v1/groups",
            &ann.token,
            Some(json!({"name": "Logo", "avatar_media_id": logo})),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    // Ben naming Ann's upload as his avatar does not keep it for her.
    let (lent, _) = stored(&app, &ann, "lent.pdf", pdf("lent")).await;
    let borrowed = app
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            &ben.token,
            Some(json!({"avatar_media_id": lent})),
        )
        .await;
    assert_eq!(borrowed.status, StatusCode::OK, "{}", borrowed.body);
    // Attached before its claim could be recorded (a replica of a release
    // that did not claim): the sweeper asks the messages service first.
    let (relic, _) = stored(&app, &ann, "relic.pdf", pdf("relic")).await;
    send(&app, &ann, &channel, &relic).await;
    let (fresh, _) = stored(&app, &ann, "fresh.pdf", pdf("fresh")).await;

    let pool = app.env.pool("media").await.expect("pool");
    // Claims are recorded as the message is sent or the avatar set.
    for (id, unattached) in [
        (&forgotten, true),
        (&attached, false),
        (&avatar, false),
        (&logo, false),
        (&lent, true),
        (&relic, false),
        (&fresh, true),
    ] {
        assert_eq!(row(&pool, id).await, Some(unattached), "{id}");
    }
    sqlx::query("UPDATE media SET unattached_since = now() WHERE id = $1")
        .bind(uuid(&relic))
        .execute(&pool)
        .await
        .expect("claim lost");

    let deleted_before = metric(&app, "media_unattached_uploads_deleted_total").await;
    age(
        &pool,
        &[&forgotten, &attached, &avatar, &logo, &lent, &relic],
    )
    .await;
    until_gone(&pool, &[&forgotten, &lent]).await;
    tokio::time::sleep(TWO_SWEEPS).await;
    for id in [&attached, &avatar, &logo, &fresh] {
        assert!(row(&pool, id).await.is_some(), "{id} was swept");
    }
    assert_eq!(
        row(&pool, &relic).await,
        Some(false),
        "the attachment is kept and claimed again"
    );

    // Gone for good: no download, no stored bytes, no quota, an event.
    let path = format!("/api/v1/media/{forgotten}");
    assert_eq!(
        download(&app, &ann, &path, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(!blob_exists(&app, &forgotten_sha));
    assert!(blob_exists(&app, &attached_sha));
    let kept = download(&app, &ann, &format!("/api/v1/media/{attached}"), &[]).await;
    assert_eq!(kept.status(), StatusCode::OK);
    let again = upload(&app, &ann, "second.pdf", "application/pdf", big()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(
        deleted_reason(&events, &forgotten).await,
        MediaDeletedReason::Unattached as i32
    );
    let deleted = metric(&app, "media_unattached_uploads_deleted_total").await;
    assert!(
        deleted >= deleted_before + 2.0,
        "{deleted_before} -> {deleted}"
    );
    pool.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn swept_content_stays_while_another_upload_shares_it() {
    let app = sweeping_fleet(1 << 30).await;
    let ann = user(&app, "share_ann").await;
    let ben = user(&app, "share_ben").await;
    let bytes = pdf("the same bytes, twice");
    let (mine, sha) = stored(&app, &ann, "mine.pdf", bytes.clone()).await;
    let (theirs, their_sha) = stored(&app, &ben, "theirs.pdf", bytes.clone()).await;
    assert_eq!(sha, their_sha, "identical content is stored once");
    let photo = upload(
        &app,
        &ann,
        "photo.jpg",
        "image/jpeg",
        jpeg_with_gps(320, 240),
    )
    .await;
    assert_eq!(photo.status, StatusCode::CREATED, "{}", photo.body);
    let photo_id = photo.body["id"].as_str().expect("id").to_owned();
    let photo_sha = photo.body["sha256"].as_str().expect("sha").to_owned();
    assert_eq!(ready(&app, &ann, &photo_id).await["state"], "ready");
    let dir = app.env.media_dir().expect("local storage");
    let derived = dir.join("derived").join(&photo_sha);
    assert!(!files_under(&derived).is_empty(), "thumbnails were made");

    let pool = app.env.pool("media").await.expect("pool");
    age(&pool, &[&mine, &photo_id]).await;
    until_gone(&pool, &[&mine, &photo_id]).await;
    // Ben's upload of the same bytes keeps them; the photo's are all gone.
    assert!(blob_exists(&app, &sha));
    let served = download(&app, &ben, &format!("/api/v1/media/{theirs}"), &[]).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.expect("body").to_vec(), bytes);
    assert!(!blob_exists(&app, &photo_sha));
    assert!(
        files_under(&derived).is_empty(),
        "{:?}",
        files_under(&derived)
    );

    // Once Ben's goes too, so do the bytes.
    age(&pool, &[&theirs]).await;
    until_gone(&pool, &[&theirs]).await;
    assert!(!blob_exists(&app, &sha));
    pool.close().await;
    app.cleanup().await;
}
