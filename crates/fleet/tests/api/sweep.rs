//! The authorization sweep: every group, channel, member and message route
//! and the WebSocket join, tried as an anonymous caller, an outsider and
//! each role of a private group, against the permission matrix. Outsiders
//! must get 404 (the group's existence does not leak), never 403.

use crate::groups::{User, add_member, user};
use crate::helpers::{Response, TestApp};
use crate::messages::{group_with_channel, send};
use crate::ws::Ws;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ROLES: [&str; 6] = [
    "anonymous",
    "outsider",
    "member",
    "moderator",
    "admin",
    "owner",
];

pub const OK: StatusCode = StatusCode::OK;
pub const CREATED: StatusCode = StatusCode::CREATED;
pub const GONE: StatusCode = StatusCode::NO_CONTENT;
pub const UNAUTH: StatusCode = StatusCode::UNAUTHORIZED;
pub const HIDDEN: StatusCode = StatusCode::NOT_FOUND;
pub const DENIED: StatusCode = StatusCode::FORBIDDEN;

/// Who may do it: everyone in the group from `role` upwards.
pub fn from(role: &str, success: StatusCode) -> [StatusCode; 6] {
    let rank = ROLES.iter().position(|r| *r == role).expect("role");
    let mut expected = [UNAUTH, HIDDEN, DENIED, DENIED, DENIED, DENIED];
    for slot in expected.iter_mut().skip(rank) {
        *slot = success;
    }
    expected
}

pub struct World {
    pub group: String,
    pub channel: String,
    /// Indexed like `ROLES`; `None` for the anonymous caller.
    pub callers: Vec<Option<User>>,
    pub owner: User,
    /// A plain member whose messages others try to delete.
    pub author: User,
}

pub async fn world(app: &TestApp) -> World {
    let owner = user(app, "sw_owner").await;
    let (group, channel) = group_with_channel(app, &owner, "Swept").await;
    let outsider = user(app, "sw_outsider").await;
    let mut callers = vec![None, Some(outsider)];
    for role in ["member", "moderator", "admin"] {
        let person = user(app, &format!("sw_{role}")).await;
        add_member(app, &group, &owner, &person, role).await;
        callers.push(Some(person));
    }
    callers.push(Some(User {
        id: owner.id.clone(),
        token: owner.token.clone(),
    }));
    let author = user(app, "sw_author").await;
    add_member(app, &group, &owner, &author, "member").await;
    World {
        group,
        channel,
        callers,
        owner,
        author,
    }
}

pub async fn attempt(
    app: &TestApp,
    caller: &Option<User>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let token = caller.as_ref().map(|user| user.token.as_str());
    app.request(method, path, token, body).await
}

pub fn check(route: &str, role: &str, expected: StatusCode, got: &Response) {
    assert_eq!(
        got.status, expected,
        "{route} as {role}: expected {expected}, got {} {}",
        got.status, got.body
    );
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (group, channel) = (w.group.clone(), w.channel.clone());
    let message = send(&app, &w.author, &channel, "react to me").await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Repeatable routes: the same request for every caller.
    let routes: Vec<(Method, String, Option<Value>, [StatusCode; 6])> = vec![
        (
            Method::GET,
            format!("/api/v1/groups/{group}"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/groups/{group}/channels"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/groups/{group}/members"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/channels/{channel}/messages"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/messages/{message}"),
            None,
            from("member", OK),
        ),
        (
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            Some(json!({"content": "swept"})),
            from("member", CREATED),
        ),
        (
            Method::POST,
            format!("/api/v1/messages/{message}/reactions"),
            Some(json!({"emoji": "👍"})),
            from("member", OK),
        ),
        (
            Method::PATCH,
            format!("/api/v1/groups/{group}"),
            Some(json!({"description": "swept"})),
            from("admin", OK),
        ),
    ];
    for (method, path, body, expected) in &routes {
        for (index, role) in ROLES.iter().enumerate() {
            let got = attempt(&app, &w.callers[index], method.clone(), path, body.clone()).await;
            check(&format!("{method} {path}"), role, expected[index], &got);
        }
    }

    // Routes that create or destroy: a fresh target per caller.
    for (index, role) in ROLES.iter().enumerate() {
        let caller = &w.callers[index];
        let created = attempt(
            &app,
            caller,
            Method::POST,
            &format!("/api/v1/groups/{group}/channels"),
            Some(json!({"name": format!("by-{role}")})),
        )
        .await;
        check(
            "POST channels",
            role,
            from("admin", CREATED)[index],
            &created,
        );

        let invitee = user(&app, &format!("sw_inv_{role}")).await;
        let invited = attempt(
            &app,
            caller,
            Method::POST,
            &format!("/api/v1/groups/{group}/members"),
            Some(json!({"user_id": invitee.id})),
        )
        .await;
        check(
            "POST members (invite)",
            role,
            from("admin", CREATED)[index],
            &invited,
        );

        let victim = user(&app, &format!("sw_kick_{role}")).await;
        add_member(&app, &group, &w.owner, &victim, "member").await;
        let kicked = attempt(
            &app,
            caller,
            Method::DELETE,
            &format!("/api/v1/groups/{group}/members/{}", victim.id),
            None,
        )
        .await;
        check(
            "DELETE member (kick)",
            role,
            from("moderator", GONE)[index],
            &kicked,
        );

        // Roles are granted and bans laid by admins and the owner only.
        let target = user(&app, &format!("sw_role_{role}")).await;
        add_member(&app, &group, &w.owner, &target, "member").await;
        let promoted = attempt(
            &app,
            caller,
            Method::PATCH,
            &format!("/api/v1/groups/{group}/members/{}", target.id),
            Some(json!({"role": "moderator"})),
        )
        .await;
        check(
            "PATCH member role",
            role,
            from("admin", OK)[index],
            &promoted,
        );
        let banned = attempt(
            &app,
            caller,
            Method::PUT,
            &format!("/api/v1/groups/{group}/bans/{}", target.id),
            None,
        )
        .await;
        check("PUT ban", role, from("admin", GONE)[index], &banned);

        let others = send(&app, &w.author, &channel, "delete me").await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let deleted = attempt(
            &app,
            caller,
            Method::DELETE,
            &format!("/api/v1/messages/{others}"),
            None,
        )
        .await;
        check(
            "DELETE another's message",
            role,
            from("moderator", GONE)[index],
            &deleted,
        );
    }

    // A file is private to its uploader until attached in a conversation;
    // then every member may read it, and outsiders still cannot.
    let file = crate::media::upload(
        &app,
        &w.author,
        "plan.pdf",
        "application/pdf",
        crate::media::pdf("plan"),
    )
    .await;
    let file_id = file.body["id"].as_str().expect("media id").to_owned();
    let info = format!("/api/v1/media/{file_id}/info");
    let unattached = [UNAUTH, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN];
    for (index, role) in ROLES.iter().enumerate() {
        let got = attempt(&app, &w.callers[index], Method::GET, &info, None).await;
        check("GET media info (unattached)", role, unattached[index], &got);
    }
    let attached = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            w.author.token.clone(),
            Some(json!({"content": "see attached", "attachments": [file_id]})),
        )
        .await;
    assert_eq!(attached.status, CREATED, "{}", attached.body);
    for (index, role) in ROLES.iter().enumerate() {
        let got = attempt(&app, &w.callers[index], Method::GET, &info, None).await;
        check(
            "GET media info (attached)",
            role,
            from("member", OK)[index],
            &got,
        );
    }

    // WebSocket: members join the channel's room, an outsider learns
    // nothing, an anonymous socket is closed.
    for (index, role) in ROLES.iter().enumerate() {
        let Some(caller) = &w.callers[index] else {
            let mut ws =
                Ws::connect_url(&format!("{}/ws", app.base.replacen("http", "ws", 1))).await;
            ws.send("join_room", json!({"room_id": channel})).await;
            assert_eq!(
                ws.close_code(std::time::Duration::from_secs(10)).await,
                Some(4001),
                "anonymous socket"
            );
            continue;
        };
        let (mut ws, _) = Ws::open(&app.base, &caller.token).await;
        ws.send("join_room", json!({"room_id": channel})).await;
        if *role == "outsider" {
            let refused = ws.expect("error").await;
            assert_eq!(refused["data"]["code"], "not_found", "{role}");
        } else {
            let joined = ws.expect("room_joined").await;
            assert_eq!(joined["data"]["room_id"], channel.as_str(), "{role}");
        }
        ws.close().await;
    }

    // Last: deleting the group, which only its owner may do.
    for (index, role) in ROLES.iter().enumerate() {
        let got = attempt(
            &app,
            &w.callers[index],
            Method::DELETE,
            &format!("/api/v1/groups/{group}"),
            None,
        )
        .await;
        check("DELETE group", role, from("owner", GONE)[index], &got);
    }
    app.cleanup().await;
}
