//! Regressions found by fuzzing the public API (deploy/fuzz-api.sh and
//! probes of what it pointed at): each of these answered 500 or accepted a
//! body that is not an object.

use crate::helpers::{TestApp, error_code, token};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn nul_bytes_and_control_characters_are_refused_not_500() {
    let app = TestApp::spawn().await;
    let access = token(&app.register("nully").await);
    let group_cursor = URL_SAFE_NO_PAD.encode("a\0\n00000000-0000-0000-0000-000000000000");
    let user_cursor = URL_SAFE_NO_PAD.encode("u:a\0");
    for path in [
        "/api/v1/groups?q=%00".to_owned(),
        "/api/v1/groups?q=ab%07c".to_owned(),
        format!("/api/v1/groups?q=ab&cursor={group_cursor}"),
        format!("/api/v1/groups?q=abc&cursor={group_cursor}"),
        format!("/api/v1/users?q=a&cursor={user_cursor}"),
    ] {
        let response = app.get(&path, Some(&access)).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            response.body
        );
        assert_eq!(error_code(&response), "invalid_argument", "{path}");
    }
    // A login no account can have is a wrong login, like any other.
    for login in ["nully\0", "\0", "nu\u{1b}lly"] {
        let response = app
            .post(
                "/api/v1/auth/login",
                json!({"login": login, "password": "correct horse"}),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{login:?}");
    }
    let ok = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "nully", "password": "correct horse"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

/// serde reads a struct from an array of its fields too: `[null, null]`
/// was taken as an empty profile update.
#[tokio::test]
async fn bodies_must_be_objects() {
    let app = TestApp::spawn().await;
    let access = token(&app.register("arrays").await);
    for (method, path, body) in [
        (Method::PATCH, "/api/v1/users/me", json!([null, null])),
        (Method::POST, "/api/v1/groups", json!(["name"])),
        (
            Method::POST,
            "/api/v1/auth/login",
            json!(["arrays", "correct horse"]),
        ),
    ] {
        let response = app.request(method, path, Some(&access), Some(body)).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            response.body
        );
        assert_eq!(error_code(&response), "invalid_json", "{path}");
    }
}
