//! The HTTP probe behind `messenger-gateway healthcheck`.

use messenger_platform::healthcheck::{Probe, check};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-request HTTP server answering `status_line`; returns its address.
async fn answer_once(status_line: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(format!("{status_line}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                .await;
        }
    });
    format!("0.0.0.0:{}", addr.port())
}

const PROBE: Probe = Probe::Http {
    path: "/api/v1/health",
};

#[tokio::test]
async fn http_probe_accepts_200_only() {
    check(PROBE, &answer_once("HTTP/1.1 200 OK").await, false)
        .await
        .expect("healthy");
    let err = check(
        PROBE,
        &answer_once("HTTP/1.1 503 Service Unavailable").await,
        false,
    )
    .await
    .expect_err("unhealthy");
    assert!(err.to_string().contains("answered 503"), "{err}");
}

#[tokio::test]
async fn http_probe_fails_clearly_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let err = check(PROBE, &format!("127.0.0.1:{port}"), false)
        .await
        .expect_err("down");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}
