//! Uploads, processing and downloads through the gateway, with local
//! filesystem storage (each test has its own directory).

use crate::groups::{User, add_member, user};
use crate::helpers::TestApp;
use crate::messages::group_with_channel;
use image::DynamicImage;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Cursor;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A JPEG whose EXIF segment carries a GPS position.
pub fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let mut plain = Cursor::new(Vec::new());
    DynamicImage::new_rgb8(width, height)
        .write_to(&mut plain, image::ImageFormat::Jpeg)
        .expect("jpeg");
    let plain = plain.into_inner();
    let payload = b"Exif\0\0MM\0*GPSLatitude=48.8584;GPSLongitude=2.2945";
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&plain[2..]);
    out
}

pub fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% {text}\n%%EOF\n").into_bytes()
}

pub struct Upload {
    pub status: StatusCode,
    pub body: Value,
}

pub async fn upload(
    app: &TestApp,
    who: &User,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Upload {
    let response = app
        .http
        .post(format!("{}/api/v1/media", app.base))
        .query(&[("filename", filename)])
        .bearer_auth(&who.token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("upload sent");
    let status = response.status();
    Upload {
        status,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

pub async fn download(
    app: &TestApp,
    who: &User,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(&who.token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("download sent")
}

pub async fn ready(app: &TestApp, who: &User, id: &str) -> Value {
    messenger_testkit::eventually(Duration::from_secs(30), || async {
        let info = app
            .call(
                Method::GET,
                format!("/api/v1/media/{id}/info"),
                &who.token,
                None,
            )
            .await;
        (info.body["state"] != "pending").then_some(info.body)
    })
    .await
    .expect("processed in time")
}

pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn images_are_stripped_thumbnailed_and_served_with_caching_headers() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "img_ann").await;
    let original = jpeg_with_gps(800, 600);
    let uploaded = upload(&app, &ann, "holiday.jpg", "image/jpeg", original.clone()).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(uploaded.body["state"], "pending");
    assert_eq!(uploaded.body["content_type"], "image/jpeg");
    assert_eq!(uploaded.body["width"], 800);
    let id = uploaded.body["id"].as_str().expect("id").to_owned();
    let info = ready(&app, &ann, &id).await;
    assert_eq!(info["state"], "ready", "{info}");
    assert_eq!(info["thumbnails"].as_array().map(Vec::len), Some(2));

    let served = download(&app, &ann, &format!("/api/v1/media/{id}"), &[]).await;
    assert_eq!(served.status(), StatusCode::OK);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap_or("")
            .starts_with("inline")
    );
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    let body = served.bytes().await.expect("body");
    assert!(
        !body.windows(11).any(|w| w == b"GPSLatitude"),
        "GPS must not be served"
    );
    assert!(!body.windows(4).any(|w| w == b"Exif"));
    assert!(image::load_from_memory(&body).is_ok());

    let cached = download(
        &app,
        &ann,
        &format!("/api/v1/media/{id}"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let part = download(
        &app,
        &ann,
        &format!("/api/v1/media/{id}"),
        &[("range", "bytes=0-99")],
    )
    .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    let range = part.headers()["content-range"]
        .to_str()
        .expect("range")
        .to_owned();
    assert!(range.starts_with("bytes 0-99/"), "{range}");
    assert_eq!(part.bytes().await.expect("body").len(), 100);
    let beyond = download(
        &app,
        &ann,
        &format!("/api/v1/media/{id}"),
        &[("range", "bytes=99999999-")],
    )
    .await;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let thumb = download(
        &app,
        &ann,
        &format!("/api/v1/media/{id}/thumbnail?size=64"),
        &[],
    )
    .await;
    assert_eq!(thumb.status(), StatusCode::OK);
    let small = image::load_from_memory(&thumb.bytes().await.expect("thumb")).expect("decodes");
    assert_eq!((small.width(), small.height()), (64, 48));
    let odd = download(
        &app,
        &ann,
        &format!("/api/v1/media/{id}/thumbnail?size=100"),
        &[],
    )
    .await;
    assert_eq!(odd.status(), StatusCode::BAD_REQUEST);

    // A polyglot: a valid JPEG with a script appended. What is served is a
    // re-encoded picture, without the script.
    let mut polyglot = jpeg_with_gps(64, 64);
    polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    let uploaded = upload(&app, &ann, "innocent.jpg", "image/jpeg", polyglot).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let poly = uploaded.body["id"].as_str().expect("id").to_owned();
    let info = ready(&app, &ann, &poly).await;
    assert_eq!(info["state"], "ready", "{info}");
    let served = download(&app, &ann, &format!("/api/v1/media/{poly}"), &[]).await;
    let body = served.bytes().await.expect("body");
    assert!(
        !body.windows(7).any(|w| w == b"<script"),
        "the hidden script is gone"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn identical_content_is_stored_once_and_bad_uploads_leave_nothing() {
    let app = TestApp::spawn_with(|config| {
        config
            .set("media.max_file_bytes", 64 * 1024)
            .expect("known setting");
        config
            .set("media.max_image_bytes", 32 * 1024)
            .expect("known setting");
    })
    .await;
    let ann = user(&app, "up_ann").await;
    let dir = app.env.media_dir().expect("local storage");
    let first = upload(&app, &ann, "report.pdf", "application/pdf", pdf("same")).await;
    let second = upload(
        &app,
        &ann,
        "../../etc/copy.pdf",
        "application/pdf",
        pdf("same"),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.body["sha256"], second.body["sha256"]);
    assert_ne!(first.body["id"], second.body["id"]);
    assert_eq!(
        second.body["filename"], "copy.pdf",
        "no path in stored names"
    );
    assert_eq!(first.body["state"], "ready");

    // A PNG header announcing 100,000 x 100,000 pixels.
    let bomb = messenger_testkit::images::png_header(100_000, 100_000);
    let png = {
        let mut out = Cursor::new(Vec::new());
        DynamicImage::new_rgb8(4, 4)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("png");
        out.into_inner()
    };
    for (name, content_type, bytes, status) in [
        (
            "empty.pdf",
            "application/pdf",
            Vec::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "setup.exe",
            "application/octet-stream",
            b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".repeat(8),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "page.html",
            "text/html",
            b"<html><script>alert(1)</script></html>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "liar.jpg",
            "image/jpeg",
            png.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("bomb.png", "image/png", bomb, StatusCode::BAD_REQUEST),
        (
            "big.pdf",
            "application/pdf",
            pdf(&"x".repeat(70 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let refused = upload(&app, &ann, name, content_type, bytes).await;
        assert_eq!(refused.status, status, "{name}: {}", refused.body);
    }
    // Too big without a declared length: refused while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(pdf("start")))
        .chain((0..10).map(|_| Ok(vec![b' '; 16 * 1024])))
        .collect();
    let streamed = app
        .http
        .post(format!("{}/api/v1/media?filename=stream.pdf", app.base))
        .bearer_auth(&ann.token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("sent");
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A client that goes away mid-upload.
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/media?filename=cut.pdf HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\ncontent-type: application/pdf\r\ncontent-length: 60000\r\n\r\n",
        ann.token
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket
        .write_all(&pdf(&"y".repeat(2000)))
        .await
        .expect("part");
    socket.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest)).await;

    // The server notices the cut connection and removes the partial file.
    let no_partial = |stored: &[std::path::PathBuf]| {
        stored
            .iter()
            .all(|p| !p.strip_prefix(&dir).unwrap_or(p).starts_with("tmp"))
    };
    let settled = messenger_testkit::eventually(Duration::from_secs(10), || async {
        no_partial(&files_under(&dir)).then_some(())
    })
    .await;
    let stored = files_under(&dir);
    assert!(settled.is_ok(), "no partial upload left: {stored:?}");
    let blobs: Vec<_> = stored
        .iter()
        .filter(|p| p.strip_prefix(&dir).unwrap_or(p).starts_with("blobs"))
        .collect();
    assert_eq!(
        blobs.len(),
        1,
        "one blob for the two identical uploads: {stored:?}"
    );
    let pool = app.env.pool("media").await.expect("pool");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM media")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 2);
    pool.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn files_are_read_by_their_uploader_and_by_members_where_attached() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "att_ann").await;
    let ben = user(&app, "att_ben").await;
    let eve = user(&app, "att_eve").await;
    let (group, channel) = group_with_channel(&app, &ann, "Files").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let file = upload(&app, &ann, "plan.pdf", "application/pdf", pdf("plan")).await;
    let id = file.body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/media/{id}");

    assert_eq!(
        download(&app, &ben, &path, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    let unknown = format!("/api/v1/media/{}", uuid::Uuid::now_v7());
    assert_eq!(
        download(&app, &ann, &unknown, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    let mine = download(&app, &ann, &path, &[]).await;
    assert_eq!(mine.status(), StatusCode::OK);
    assert!(
        mine.headers()["content-disposition"]
            .to_str()
            .unwrap_or("")
            .starts_with("attachment")
    );

    // Ben cannot attach Ann's file; Ann can.
    let send = |who: &User| {
        app.call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            who.token.clone(),
            Some(json!({"content": "see attached", "attachments": [id]})),
        )
    };
    assert_eq!(send(&ben).await.status, StatusCode::FORBIDDEN);
    let sent = send(&ann).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["attachments"][0]["media_id"], id.as_str());
    assert_eq!(sent.body["attachments"][0]["filename"], "plan.pdf");
    assert_eq!(
        sent.body["attachments"][0]["content_type"],
        "application/pdf"
    );
    // The answer to the send is the message as stored, attachments too.
    let history = app
        .get(
            &format!("/api/v1/channels/{channel}/messages?limit=1"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(history.body["messages"][0], sent.body);

    // Members of the conversation may now read it; outsiders still not.
    assert_eq!(
        download(&app, &ben, &path, &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        download(&app, &eve, &path, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = app
        .call(Method::DELETE, path.clone(), &ben.token, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(Method::DELETE, path.clone(), &ann.token, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        download(&app, &ann, &path, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;

    let closed = TestApp::spawn_with(|config| config.features.file_upload_enabled = false).await;
    let cat = user(&closed, "att_cat").await;
    let refused = upload(&closed, &cat, "a.pdf", "application/pdf", pdf("no")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    closed.cleanup().await;
}

#[tokio::test]
async fn uploads_past_the_users_quota_are_refused_and_deleting_frees_it() {
    let app = TestApp::spawn_with(|config| {
        config
            .set("media.user_quota_bytes", 150_000)
            .expect("known setting");
    })
    .await;
    let ann = user(&app, "quota_ann").await;
    let ben = user(&app, "quota_ben").await;
    let big = || pdf(&"a".repeat(100_000));

    let first = upload(&app, &ann, "first.pdf", "application/pdf", big()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let refused = upload(&app, &ann, "second.pdf", "application/pdf", big()).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "storage_quota_exceeded");
    let used = first.body["size"].as_u64().expect("size");
    assert_eq!(refused.body["error"]["details"]["used_bytes"], used);
    assert_eq!(refused.body["error"]["details"]["quota_bytes"], 150_000);
    // Small enough to fit, and another user's quota is their own.
    let small = upload(&app, &ann, "small.pdf", "application/pdf", pdf("small")).await;
    assert_eq!(small.status, StatusCode::CREATED, "{}", small.body);
    let other = upload(&app, &ben, "ben.pdf", "application/pdf", big()).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);

    // The refused upload left no row behind; deleting a file frees its bytes.
    let pool = app.env.pool("media").await.expect("pool");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM media WHERE filename = 'second.pdf'")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 0);
    pool.close().await;
    let id = first.body["id"].as_str().expect("id");
    let deleted = app
        .call(
            Method::DELETE,
            format!("/api/v1/media/{id}"),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = upload(&app, &ann, "second.pdf", "application/pdf", big()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    app.cleanup().await;
}
