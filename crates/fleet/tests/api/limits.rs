//! Rate limiting: per-class allowances shared by gateway replicas through
//! Redis, 429 with `Retry-After` and `RateLimit-*`, logins slowed per
//! account, WebSocket frames limited per socket.

use crate::helpers::{TestApp, token};
use crate::ws::Ws;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn requests_over_the_allowance_get_429_on_every_replica() {
    let app = TestApp::spawn_with(|config| {
        config.features.rate_limit_enabled = true;
        config
            .set("rate_limit.search_per_minute", 3)
            .expect("known setting");
        config
            .set("rate_limit.login_per_account_per_minute", 2)
            .expect("known setting");
    })
    .await;
    let (other, stop_other) = app.second_gateway().await;
    let access = token(&app.register("limited").await);
    let search = |base: &str| {
        app.http
            .get(format!("{base}/api/v1/users?q=lim"))
            .bearer_auth(&access)
            .send()
    };
    let mut remaining = Vec::new();
    for base in [&app.base, &other, &app.base] {
        let response = search(base).await.expect("search");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit"), Some(3));
        remaining.push(header(&response, "ratelimit-remaining").expect("remaining"));
    }
    assert_eq!(remaining, [2, 1, 0], "one allowance across both replicas");
    for base in [&other, &app.base] {
        let refused = search(base).await.expect("search");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        // One token comes back every 20 s.
        let retry = header(&refused, "retry-after").expect("Retry-After");
        assert!((1..=20).contains(&retry), "{retry}");
        assert_eq!(header(&refused, "ratelimit-remaining"), Some(0));
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    // Other classes have their own allowance; probes are never limited.
    let me = app.get("/api/v1/users/me", Some(&access)).await;
    assert_eq!(me.status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/health", None).await.status, StatusCode::OK);
    }

    // Password guessing against one account: two attempts a minute, then
    // 429 even with the right password, from either replica, whichever
    // spelling of the login names the account.
    guesses_at_one_account_are_throttled(&app, &other, "limited").await;
    stop_other.cancel();
    app.cleanup().await;
}

async fn login(app: &TestApp, base: &str, login: &str, password: &str) -> reqwest::Response {
    app.http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("login")
}

/// Two wrong guesses under two spellings, then even the right password
/// waits; another account is not affected.
async fn guesses_at_one_account_are_throttled(app: &TestApp, other: &str, name: &str) {
    let upper = name.to_uppercase();
    let email = format!("{name}@example.com");
    let wrong = login(app, &app.base, &upper, "wrong guess").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = login(app, other, &email, "wrong guess").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let blocked = login(app, &app.base, name, "correct horse").await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = header(&blocked, "retry-after").expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = blocked.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    let bystander = format!("{name}_2");
    app.register(&bystander).await;
    let fine = login(app, other, &bystander, "correct horse").await;
    assert_eq!(
        fine.status(),
        StatusCode::OK,
        "other accounts are not affected"
    );
}

#[tokio::test]
async fn account_guessing_is_limited_even_with_rate_limiting_off() {
    let app = TestApp::spawn_with(|config| {
        config.features.rate_limit_enabled = false;
        config
            .set("rate_limit.login_per_account_per_minute", 2)
            .expect("known setting");
    })
    .await;
    let (other, stop_other) = app.second_gateway().await;
    app.register("guessed").await;
    guesses_at_one_account_are_throttled(&app, &other, "guessed").await;
    // A login that names no account answers the same way, or the 429 alone
    // would tell which accounts exist.
    for (base, spelling) in [(&app.base, "nobody_here"), (&other, "NOBODY_HERE")] {
        let wrong = login(&app, base, spelling, "wrong guess").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let third = login(&app, &app.base, "Nobody_Here", "wrong guess").await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = third.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    stop_other.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn a_socket_sending_too_fast_is_told_and_its_extra_frames_dropped() {
    let app = TestApp::spawn_with(|config| {
        config.features.rate_limit_enabled = true;
        config
            .set("rate_limit.ws_frames_per_second", 5)
            .expect("known setting");
    })
    .await;
    let access = token(&app.register("chatty").await);
    let (mut ws, _) = Ws::open(&app.base, &access).await;
    for _ in 0..30 {
        ws.send("no_such_frame", json!({})).await;
    }
    let mut codes = Vec::new();
    while let Some(error) = ws.next_of("error", Duration::from_millis(500)).await {
        codes.push(
            error["data"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let refused = codes.iter().filter(|code| *code == "invalid_frame").count();
    let limited = codes.iter().filter(|code| *code == "rate_limited").count();
    // About five frames are handled (plus what refilled meanwhile), the rest
    // dropped with a single notice.
    assert!((5..30).contains(&refused), "{codes:?}");
    assert_eq!(limited, 1, "{codes:?}");
    ws.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn sockets_are_capped_per_user_and_per_address_across_replicas() {
    let app = TestApp::spawn_with(|config| {
        config
            .set("websocket.max_sockets_per_user", 2)
            .expect("known setting");
        config
            .set("websocket.max_sockets_per_address", 3)
            .expect("known setting");
        config
            .set("websocket.max_rooms_per_socket", 2)
            .expect("known setting");
    })
    .await;
    let (other, stop_other) = app.second_gateway().await;
    let ann = token(&app.register("caps_ann").await);
    let ben = token(&app.register("caps_ben").await);
    let cat = token(&app.register("caps_cat").await);
    let wait = Duration::from_secs(5);

    let (first, _) = Ws::open(&app.base, &ann).await;
    let (_second, _) = Ws::open(&other, &ann).await;
    let mut third = Ws::connect(&app.base, &ann).await;
    assert_eq!(third.closed_by_server(wait).await, 4029, "per user");
    let (_ben, _) = Ws::open(&other, &ben).await;
    let mut crowded = Ws::connect(&app.base, &cat).await;
    assert_eq!(crowded.closed_by_server(wait).await, 4029, "per address");

    // A closed socket gives its place back at once.
    first.close().await;
    let mut again = None;
    for _ in 0..50 {
        let mut ws = Ws::connect(&app.base, &ann).await;
        match ws.next(wait).await {
            crate::ws::Next::Frame(hello) if hello["type"] == "connected" => {
                again = Some(ws);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let mut again = again.expect("a place again after a close");

    // Rooms per socket: a resume naming more is refused whole.
    let rooms: serde_json::Map<String, Value> = (0..3)
        .map(|_| (uuid::Uuid::new_v4().to_string(), json!(0)))
        .collect();
    again.send("resume", json!({"rooms": rooms})).await;
    assert_eq!(
        again.expect("error").await["data"]["code"],
        "too_many_rooms"
    );
    // Joining a group follows its room and every readable channel: the
    // user's own room plus these two would pass the cap of two, so none of
    // it is joined.
    let owner = crate::groups::User {
        id: String::new(),
        token: ann.clone(),
    };
    let group = crate::groups::create_group(&app, &owner, "Capped", "private").await;
    let group_id = group["id"].as_str().expect("group id");
    again.send("join_room", json!({"room_id": group_id})).await;
    assert_eq!(
        again.expect("error").await["data"]["code"],
        "too_many_rooms"
    );
    stop_other.cancel();
    app.cleanup().await;
}
