//! Starts the whole fleet on ephemeral ports against a fresh database and
//! topic prefix, and drives it over real HTTP.

use messenger_platform::{CancellationToken, Config};
use messenger_testkit::{TestEnv, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub base: String,
    /// The gateway's operators' listener (metrics, detailed readiness).
    pub internal: String,
    pub http: reqwest::Client,
    pub env: TestEnv,
    /// The configuration the fleet runs with (ephemeral ports filled in).
    pub config: Config,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the fleet after `adjust` had its say on the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let env = TestEnv::new().await.expect("test environment");
        Self::start(env, adjust).await
    }

    /// Starts the fleet on an existing environment (e.g. after `stop`).
    pub async fn start(mut env: TestEnv, adjust: impl FnOnce(&mut Config)) -> Self {
        adjust(&mut env.config);
        // As in production: the tracing subscriber carries trace context
        // into gRPC metadata and Kafka headers. Installed once per process.
        static TELEMETRY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        TELEMETRY.get_or_init(|| {
            let mut config = env.config.clone();
            config.telemetry.log_level = "warn".to_owned();
            std::mem::forget(messenger_platform::telemetry::init(&config, "test"));
        });
        let mut config = env.config.clone();
        let listeners = messenger_fleet::Listeners::ephemeral(&mut config)
            .await
            .expect("listeners");
        let base = format!("http://127.0.0.1:{}", config.server.port);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(messenger_fleet::run(
            config.clone(),
            listeners,
            shutdown.clone(),
        ));
        let app = TestApp {
            base,
            internal: format!("http://{}", config.server.internal_listen),
            http: reqwest::Client::new(),
            env,
            config,
            shutdown,
            task,
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        let url = format!("{}/ready", self.internal);
        eventually(Duration::from_secs(30), || async {
            // Every backend answers its health check (Redis is checked by
            // the tests that care about it).
            let response = self.http.get(&url).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            let checks = body["checks"].as_object()?;
            ["users", "groups", "messages", "media"]
                .iter()
                .all(|name| checks.get(*name).and_then(Value::as_str) == Some("ok"))
                .then_some(())
        })
        .await
        .expect("fleet did not become ready");
    }

    /// Stops every service and returns the environment for reuse.
    pub async fn stop(self) -> TestEnv {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(20), self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "fleet did not stop cleanly: {result:?}"
        );
        self.env
    }

    pub async fn cleanup(self) {
        let env = self.stop().await;
        env.cleanup().await.expect("cleanup");
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, None, Some(body)).await
    }

    /// A request as the holder of `token`. Owns its arguments, so the
    /// returned future can outlive the strings it was built from.
    pub fn call(
        &self,
        method: Method,
        path: impl Into<String>,
        token: impl Into<String>,
        body: Option<Value>,
    ) -> impl std::future::Future<Output = Response> + '_ {
        let (path, token) = (path.into(), token.into());
        async move { self.request(method, &path, Some(&token), body).await }
    }

    /// Sends raw bytes with the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
        }
    }

    /// A second gateway replica in front of the same services and Redis, in
    /// the same fan-out consumer group.
    pub async fn second_gateway(&self) -> (String, CancellationToken) {
        self.second_gateway_with(|_| {}).await
    }

    /// Another gateway replica, its configuration changed by `change`.
    pub async fn second_gateway_with(
        &self,
        change: impl FnOnce(&mut Config),
    ) -> (String, CancellationToken) {
        let mut config = self.config.clone();
        change(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        tokio::spawn(messenger_gateway::serve_with(
            config,
            listener,
            None,
            shutdown.clone(),
        ));
        (base, shutdown)
    }

    /// Registers `username` and returns the auth response.
    pub async fn register(&self, username: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/register",
                json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "display_name": format!("User {username}"),
                    "password": "correct horse",
                }),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body
    }
}

pub fn token(auth: &Value) -> String {
    auth["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// Asserts the documented error shape and returns its code.
pub fn error_code(response: &Response) -> String {
    let error = &response.body["error"];
    assert!(
        error["message"].is_string(),
        "not an error body: {}",
        response.body
    );
    assert!(
        error["details"].is_object(),
        "not an error body: {}",
        response.body
    );
    error["code"].as_str().expect("error code").to_owned()
}
