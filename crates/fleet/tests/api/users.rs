use crate::helpers::{TestApp, error_code, token};
use messenger_testkit::TEST_JWT_KEYS;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn profiles_are_read_and_updated() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let alice_token = token(&alice);
    let bob_id = bob["user"]["id"].as_str().expect("id");

    let public = app
        .get(&format!("/api/v1/users/{bob_id}"), Some(&alice_token))
        .await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(public.body["username"], "bob");
    assert!(
        public.body.get("email").is_none(),
        "email is private: {}",
        public.body
    );

    let avatar = uuid::Uuid::new_v4();
    let updated = app
        .request(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&alice_token),
            Some(json!({"display_name": "Alice Liddell", "bio": "down the hole", "avatar_media_id": avatar})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["display_name"], "Alice Liddell");
    assert_eq!(updated.body["avatar_media_id"], avatar.to_string());

    // Omitted fields stay; null clears the avatar.
    let cleared = app
        .request(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&alice_token),
            Some(json!({"avatar_media_id": null})),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(cleared.body["display_name"], "Alice Liddell");
    assert_eq!(cleared.body["avatar_media_id"], Value::Null);

    let invalid = app
        .request(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&alice_token),
            Some(json!({"display_name": ""})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.body["error"]["details"]["field"], "display_name");
    let bad_avatar = app
        .request(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&alice_token),
            Some(json!({"avatar_media_id": "x"})),
        )
        .await;
    assert_eq!(bad_avatar.status, StatusCode::BAD_REQUEST);

    let missing = app
        .get(
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            Some(&alice_token),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "not_found");
    let malformed = app
        .get("/api/v1/users/not-a-uuid", Some(&alice_token))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&malformed), "invalid_path");
    app.cleanup().await;
}

#[tokio::test]
async fn search_matches_prefixes_and_typos_and_pages_without_gaps() {
    let app = TestApp::spawn().await;
    let me = token(&app.register("searcher").await);
    for name in [
        "jonathan",
        "jonas",
        "johnny",
        "joan_of_arc",
        "maria",
        "marianne",
    ] {
        app.register(name).await;
    }
    let names = |body: &Value| -> Vec<String> {
        body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["username"].as_str().expect("name").to_owned())
            .collect()
    };

    let prefix = app.get("/api/v1/users?q=jon", Some(&me)).await;
    assert_eq!(prefix.status, StatusCode::OK, "{}", prefix.body);
    let found = names(&prefix.body);
    assert!(
        found.contains(&"jonathan".to_owned()) && found.contains(&"jonas".to_owned()),
        "{found:?}"
    );
    assert!(!found.contains(&"maria".to_owned()));

    let typo = app.get("/api/v1/users?q=marianme", Some(&me)).await;
    assert_eq!(
        names(&typo.body).first().map(String::as_str),
        Some("marianne"),
        "{}",
        typo.body
    );

    // Cursor paging over everyone: every user exactly once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_owned();
    loop {
        let page = app.get(&path, Some(&me)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(names(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(before, 7);
    assert_eq!(seen.len(), 7);

    // Paging through each tier (display-name prefixes, then username
    // prefixes into typo matches) repeats and skips nobody.
    for (query, expected) in [("user", 7), ("mari", 2)] {
        let mut seen = Vec::new();
        let mut path = format!("/api/v1/users?q={query}&limit=1");
        for _ in 0..20 {
            let page = app.get(&path, Some(&me)).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            seen.extend(names(&page.body));
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/users?q={query}&limit=1&cursor={cursor}"),
                None => break,
            }
        }
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{query}: duplicates in {seen:?}");
        assert!(seen.len() >= expected, "{query}: {seen:?}");
    }

    // The original offset paging still works.
    let offset = app
        .get("/api/v1/users?q=&limit=3&offset=6", Some(&me))
        .await;
    assert_eq!(names(&offset.body).len(), 1);

    for bad in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "offset=-1",
        "offset=20000",
        "cursor=garbage",
        "unknown=1",
    ] {
        let response = app.get(&format!("/api/v1/users?{bad}"), Some(&me)).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            response.body
        );
        error_code(&response);
    }
    app.cleanup().await;
}

/// A token signed (Ed25519) with the key `kid:secret` derives, expiring
/// `exp_offset` seconds from now.
fn forge(secret: &str, kid: &str, exp_offset: i64) -> String {
    let auth = messenger_platform::config::AuthConfig {
        jwt_keys: messenger_platform::config::Secret::new(format!("{kid}:{secret}")),
        jwt_active_kid: kid.to_owned(),
        jwt_issuer: "messenger".to_owned(),
        access_ttl_seconds: 900,
        refresh_ttl_seconds: 3600,
    };
    let principal = messenger_platform::auth::Principal {
        user_id: uuid::Uuid::new_v4(),
        session_id: uuid::Uuid::new_v4(),
    };
    messenger_platform::auth::TokenSigner::from_config(&auth)
        .expect("keys")
        .issue_for(principal, time::Duration::seconds(exp_offset))
        .expect("sign")
        .token
}

#[tokio::test]
async fn bad_access_tokens_are_401() {
    let app = TestApp::spawn().await;
    let (kid, secret) = TEST_JWT_KEYS.split_once(':').expect("kid:secret");
    let cases = [
        ("missing", None),
        ("garbage", Some("garbage".to_owned())),
        ("expired", Some(forge(secret, kid, -3600))),
        (
            "forged",
            Some(forge("another-secret-that-is-32-bytes-long!", kid, 600)),
        ),
        ("unknown kid", Some(forge(secret, "other", 600))),
    ];
    for (case, token) in cases {
        let response = app.get("/api/v1/users/me", token.as_deref()).await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {}",
            response.body
        );
        let code = error_code(&response);
        let expected = if case == "expired" {
            "token_expired"
        } else {
            "unauthenticated"
        };
        assert_eq!(code, expected, "{case}");
    }
    // A correctly signed token for the right key works.
    let valid = forge(secret, kid, 600);
    let response = app.get("/api/v1/users?q=x", Some(&valid)).await;
    assert_eq!(response.status, StatusCode::OK);
    app.cleanup().await;
}
