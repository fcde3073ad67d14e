use crate::helpers::{TestApp, error_code};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn health_ready_metrics_and_unknown_routes() {
    let app = TestApp::spawn().await;
    let health = app.get("/api/v1/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let request_id = health.headers.get("x-request-id").expect("request id");
    assert!(!request_id.is_empty());

    // The public answer says ready or not, nothing about what is behind.
    let public = app.get("/api/v1/ready", None).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.body);
    assert_eq!(public.body, serde_json::json!({"status": "ready"}));
    assert_eq!(
        app.get("/metrics", None).await.status,
        StatusCode::NOT_FOUND
    );
    let ready = internal(&app, "/ready").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["checks"]["redis"], "ok");
    for backend in ["users", "groups", "messages", "media"] {
        assert_eq!(ready.body["outbox"][backend], "ok", "{}", ready.body);
    }

    let missing = app.get("/api/v1/nope", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "not_found");

    // Security headers on answers of every kind: success, 404, 401.
    let anonymous = app.get("/api/v1/users/me", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for response in [&health, &missing, &anonymous] {
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            (
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'; sandbox",
            ),
        ] {
            assert_eq!(
                response.headers.get(name).map(|v| v.as_bytes()),
                Some(value.as_bytes()),
                "{name}"
            );
        }
    }

    app.register("metered").await;
    let metrics = app
        .http
        .get(format!("{}/metrics", app.internal))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.expect("text");
    for needle in [
        "http_requests_total",
        "route=\"/api/v1/auth/register\"",
        "http_request_duration_seconds_bucket",
        "grpc_client_requests_total",
        "method=\"users.SignUp\"",
        "outbox_pending",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn readiness_reports_a_down_dependency() {
    let app = TestApp::spawn_with(|config| config.redis.port = 1).await;
    let public = app.get("/api/v1/ready", None).await;
    assert_eq!(public.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(public.body, serde_json::json!({"status": "unavailable"}));
    let ready = internal(&app, "/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["status"], "unavailable");
    assert_ne!(ready.body["checks"]["redis"], "ok");
    assert_eq!(ready.body["checks"]["users"], "ok");
    app.cleanup().await;
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(
        doc.body["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );
    let paths = doc.body["paths"].as_object().expect("paths");
    let expected = [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/users", "post"),
        ("/api/v1/users", "get"),
        ("/api/v1/users/me", "get"),
        ("/api/v1/users/me", "patch"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/health", "get"),
        ("/api/v1/ready", "get"),
        ("/api/v1/groups", "post"),
        ("/api/v1/groups", "get"),
        ("/api/v1/groups/{id}", "get"),
        ("/api/v1/groups/{id}", "patch"),
        ("/api/v1/groups/{id}", "delete"),
        ("/api/v1/groups/{id}/members", "get"),
        ("/api/v1/groups/{id}/members", "post"),
        ("/api/v1/groups/{id}/members", "delete"),
        ("/api/v1/groups/{id}/members/{user_id}", "patch"),
        ("/api/v1/groups/{id}/members/{user_id}", "delete"),
        ("/api/v1/groups/{id}/bans/{user_id}", "put"),
        ("/api/v1/groups/{id}/bans/{user_id}", "delete"),
        ("/api/v1/groups/{id}/channels", "get"),
        ("/api/v1/groups/{id}/channels", "post"),
        ("/api/v1/channels/{id}", "get"),
        ("/api/v1/channels/{id}", "patch"),
        ("/api/v1/channels/{id}", "delete"),
        ("/api/v1/channels/{id}/members", "get"),
        ("/api/v1/channels/{id}/members", "post"),
        ("/api/v1/channels/{id}/members", "delete"),
        ("/api/v1/channels/{id}/members/{user_id}", "delete"),
        ("/api/v1/dm", "post"),
        ("/api/v1/messages", "post"),
        ("/api/v1/channels/{id}/messages", "post"),
        ("/api/v1/channels/{id}/messages", "get"),
        ("/api/v1/messages/group/{group_id}", "get"),
        ("/api/v1/messages/{id}", "get"),
        ("/api/v1/messages/{id}", "patch"),
        ("/api/v1/messages/{id}", "delete"),
        ("/api/v1/messages/{id}/edits", "get"),
        ("/api/v1/messages/{id}/thread", "get"),
        ("/api/v1/messages/{id}/reactions", "post"),
        ("/api/v1/messages/{id}/reactions/{emoji}", "delete"),
        ("/api/v1/channels/{id}/read", "post"),
        ("/api/v1/unread", "get"),
        ("/api/v1/messages/{id}/readers", "get"),
        ("/api/v1/notifications", "get"),
        ("/api/v1/notifications/read", "post"),
        ("/api/v1/search/messages", "get"),
        ("/api/v1/media", "post"),
        ("/api/v1/media/{id}", "get"),
        ("/api/v1/media/{id}", "delete"),
        ("/api/v1/media/{id}/info", "get"),
        ("/api/v1/media/{id}/thumbnail", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    // Every documented operation is routed (none answers "no such route").
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{user_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{group_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{emoji}", "%F0%9F%91%8D");
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = app
                .request(method.clone(), &concrete, None, Some(Value::Null))
                .await;
            assert_ne!(
                response.status,
                StatusCode::NOT_FOUND,
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    app.cleanup().await;
}

/// Every service's migrations apply, revert completely and apply again.
#[tokio::test]
async fn every_schema_migrates_down_and_up_again() {
    let env = messenger_testkit::TestEnv::new().await.expect("env");
    let schemas: [(&str, &sqlx::migrate::Migrator); 4] = [
        (messenger_users::SCHEMA, &messenger_users::MIGRATOR),
        (messenger_groups::SCHEMA, &messenger_groups::MIGRATOR),
        (messenger_messages::SCHEMA, &messenger_messages::MIGRATOR),
        (messenger_media::SCHEMA, &messenger_media::MIGRATOR),
    ];
    for (schema, migrator) in schemas {
        let pool = env.pool(schema).await.expect("pool");
        let tables = |pool: sqlx::PgPool| async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
            )
            .fetch_one(&pool)
            .await
            .expect("count")
        };
        messenger_platform::db::migrate_up(&pool, migrator)
            .await
            .expect("up");
        assert!(tables(pool.clone()).await > 0, "{schema}: nothing created");
        let reverted = messenger_platform::db::migrate_down(&pool, migrator, None)
            .await
            .expect("down");
        assert_eq!(reverted.len(), migrator.iter().count() / 2, "{schema}");
        assert_eq!(
            tables(pool.clone()).await,
            0,
            "{schema}: tables left behind"
        );
        messenger_platform::db::migrate_up(&pool, migrator)
            .await
            .expect("up again");
        pool.close().await;
    }
    env.cleanup().await.expect("cleanup");
}

/// With the broker unreachable, sends still succeed (the outbox keeps
/// them), the gateway stays ready, and its readiness details say which
/// relay is stalled.
#[tokio::test]
async fn a_stalled_outbox_relay_shows_in_readiness_without_making_it_fail() {
    let app = TestApp::spawn_with(|config| config.kafka.brokers = "127.0.0.1:1".to_owned()).await;
    app.register("stalled").await;
    let stalled = messenger_testkit::eventually(std::time::Duration::from_secs(60), || async {
        let public = app.get("/api/v1/ready", None).await;
        assert_eq!(public.status, StatusCode::OK, "{}", public.body);
        let ready = internal(&app, "/ready").await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
        let users = ready.body["outbox"]["users"].as_str()?.to_owned();
        users.starts_with("stalled").then_some(ready.body)
    })
    .await
    .expect("the users relay reports itself stalled");
    assert_eq!(stalled["status"], "ready");
    assert_eq!(stalled["outbox"]["groups"], "ok", "nothing waits there");
    app.cleanup().await;
}

/// A GET on the gateway's operators' listener.
async fn internal(app: &TestApp, path: &str) -> crate::helpers::Response {
    let response = app
        .http
        .get(format!("{}{path}", app.internal))
        .send()
        .await
        .expect("operators' listener");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    crate::helpers::Response {
        status,
        headers,
        body,
    }
}
