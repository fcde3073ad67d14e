use crate::helpers::{TestApp, error_code, token};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn register_login_refresh_logout() {
    let app = TestApp::spawn().await;
    let registered = app.register("Alice_W").await;
    assert_eq!(registered["user"]["username"], "alice_w");
    assert_eq!(registered["token_type"], "Bearer");
    assert!(registered["expires_in"].as_i64().expect("expires_in") > 800);

    // Login by username (any case) and by email.
    for login in ["ALICE_W", "alice_w@example.com"] {
        let response = app
            .post(
                "/api/v1/auth/login",
                json!({"login": login, "password": "correct horse"}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        assert_eq!(
            response.headers.get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-store"[..]),
            "token answers are never cached"
        );
        let me = app
            .get("/api/v1/users/me", Some(&token(&response.body)))
            .await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["username"], "alice_w");
    }

    // Refresh rotates: the new token works once, the old one is spent.
    let first = registered["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let refreshed = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": first}))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(
        refreshed.headers.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let second = refreshed.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(first, second);
    let me = app
        .get("/api/v1/users/me", Some(&token(&refreshed.body)))
        .await;
    assert_eq!(me.status, StatusCode::OK);

    // Logout ends the session: its refresh token no longer works.
    let logout = app
        .post("/api/v1/auth/logout", json!({"refresh_token": second}))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let after = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": second}))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    // Logout is idempotent and says nothing about unknown tokens.
    let again = app
        .post("/api/v1/auth/logout", json!({"refresh_token": "nonsense"}))
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    app.cleanup().await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_family() {
    let app = TestApp::spawn().await;
    let registered = app.register("bob").await;
    let original = registered["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let rotated = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": original}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let current = rotated.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // An attacker replays the stolen original...
    let replay = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": original}))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&replay), "unauthenticated");
    // ...which also kills the legitimate holder's current token.
    let legit = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": current}))
        .await;
    assert_eq!(legit.status, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

#[tokio::test]
async fn wrong_credentials_are_401_without_saying_which_part() {
    let app = TestApp::spawn().await;
    app.register("carol").await;
    let wrong_password = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "carol", "password": "wrong password"}),
        )
        .await;
    let unknown_user = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "nobody", "password": "wrong password"}),
        )
        .await;
    for response in [&wrong_password, &unknown_user] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(response), "unauthenticated");
        assert!(response.headers.contains_key("www-authenticate"));
    }
    assert_eq!(wrong_password.body, unknown_user.body);
    app.cleanup().await;
}

#[tokio::test]
async fn duplicate_username_or_email_is_409() {
    let app = TestApp::spawn().await;
    app.register("dave").await;
    let same_name = app
        .post(
            "/api/v1/auth/register",
            json!({"username": "DAVE", "email": "other@example.com", "display_name": "D", "password": "12345678"}),
        )
        .await;
    assert_eq!(same_name.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&same_name), "already_exists");
    assert_eq!(same_name.body["error"]["details"]["field"], "username");
    let same_email = app
        .post(
            "/api/v1/users",
            json!({"username": "dave2", "email": "Dave@Example.com", "display_name": "D", "password": "12345678"}),
        )
        .await;
    assert_eq!(same_email.status, StatusCode::CONFLICT);
    assert_eq!(same_email.body["error"]["details"]["field"], "email");
    app.cleanup().await;
}

#[tokio::test]
async fn invalid_registration_fields_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let valid = json!({"username": "erin", "email": "erin@example.com", "display_name": "Erin", "password": "12345678"});
    let cases = [
        ("username", json!("ab")),
        ("username", json!("has space")),
        ("username", json!("x".repeat(33))),
        ("email", json!("not-an-email")),
        ("email", json!("a@b")),
        ("display_name", json!("   ")),
        ("display_name", json!("x".repeat(65))),
        ("password", json!("short")),
    ];
    for (field, value) in cases {
        let mut body = valid.clone();
        body[field] = value.clone();
        let response = app.post("/api/v1/auth/register", body).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{field}={value}: {}",
            response.body
        );
        assert_eq!(error_code(&response), "invalid_argument");
        assert_eq!(
            response.body["error"]["details"]["field"], field,
            "{}",
            response.body
        );
    }
    // Nothing was half-written by the rejected attempts.
    let ok = app.post("/api/v1/auth/register", valid).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    app.cleanup().await;
}

#[tokio::test]
async fn malformed_bodies_get_clear_4xx() {
    let app = TestApp::spawn_with(|config| config.server.body_limit_bytes = 4096).await;
    let syntax = app
        .post_raw(
            "/api/v1/auth/login",
            "application/json",
            b"{\"login\": ".to_vec(),
        )
        .await;
    assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&syntax), "invalid_json");

    let unknown = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "x", "password": "y", "admin": true}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("admin")
    );

    let missing = app.post("/api/v1/auth/login", json!({"login": "x"})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("password")
    );

    let wrong_type = app
        .post("/api/v1/auth/login", json!({"login": 5, "password": "y"}))
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);

    let not_json = app
        .post_raw("/api/v1/auth/login", "text/plain", b"login".to_vec())
        .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&not_json), "unsupported_media_type");

    let huge = format!(
        "{{\"login\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(10_000)
    );
    let too_large = app
        .post_raw("/api/v1/auth/login", "application/json", huge.into_bytes())
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&too_large), "payload_too_large");

    let wrong_method = app
        .request(Method::DELETE, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&wrong_method), "method_not_allowed");
    app.cleanup().await;
}

/// Logout ends the session everywhere at once: its access tokens are refused
/// by every replica and its sockets (on any replica) close with 4003, while
/// the same user's other sessions go on.
#[tokio::test]
async fn logout_revokes_access_tokens_and_sockets_at_once() {
    use crate::ws::Ws;
    use std::time::Duration;
    let app = TestApp::spawn().await;
    let (other, stop_other) = app.second_gateway().await;
    let registered = app.register("leaver").await;
    let access = token(&registered);
    let refresh = registered["refresh_token"].as_str().expect("refresh");
    let second = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "leaver", "password": "correct horse"}),
        )
        .await;
    let kept = token(&second.body);
    let (mut here, _) = Ws::open(&app.base, &access).await;
    let (mut there, _) = Ws::open(&other, &access).await;
    let (mut unaffected, _) = Ws::open(&app.base, &kept).await;

    let logout = app
        .post("/api/v1/auth/logout", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    for base in [&app.base, &other] {
        let me = app
            .http
            .get(format!("{base}/api/v1/users/me"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("me");
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = me.json().await.expect("json");
        assert_eq!(body["error"]["code"], "session_revoked");
    }
    let wait = Duration::from_secs(5);
    assert_eq!(here.closed_by_server(wait).await, 4003);
    assert_eq!(there.closed_by_server(wait).await, 4003);
    let mut again = Ws::connect(&app.base, &access).await;
    assert_eq!(again.closed_by_server(wait).await, 4003);

    let me = app.get("/api/v1/users/me", Some(&kept)).await;
    assert_eq!(me.status, StatusCode::OK, "another session is untouched");
    unaffected.send("ping", json!({"t": 1})).await;
    assert_eq!(unaffected.expect("pong").await["data"]["t"], 1);
    unaffected.close().await;
    stop_other.cancel();
    app.cleanup().await;
}

/// A replayed refresh token revokes its session (the family), and with it
/// the access tokens already issued to whoever holds the newer one.
#[tokio::test]
async fn a_reused_refresh_token_revokes_the_sessions_access_tokens() {
    let app = TestApp::spawn().await;
    let registered = app.register("replayed").await;
    let first = registered["refresh_token"].as_str().expect("refresh");
    let rotated = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": first}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let access = token(&rotated.body);
    assert_eq!(
        app.get("/api/v1/users/me", Some(&access)).await.status,
        StatusCode::OK
    );
    let replay = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": first}))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    let me = app.get("/api/v1/users/me", Some(&access)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&me), "session_revoked");
    app.cleanup().await;
}
