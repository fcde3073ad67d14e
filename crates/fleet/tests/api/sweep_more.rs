//! The authorization sweep, continued: channel settings and membership,
//! group history, threads, edits, readers, read positions, reactions,
//! unbans, files (download, thumbnail, delete), users, notifications, push
//! subscriptions and notification settings, and the WebSocket actions after a join (resume, typing), each as every
//! caller of `sweep.rs`.

use crate::groups::{add_member, user};
use crate::helpers::TestApp;
use crate::messages::send;
use crate::sweep::{CREATED, DENIED, GONE, HIDDEN, OK, ROLES, UNAUTH, attempt, check, from, world};
use crate::ws::Ws;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// Any signed-in caller, whatever their place in the group.
const SIGNED_IN: fn(StatusCode) -> [StatusCode; 6] = |ok| [UNAUTH, ok, ok, ok, ok, ok];

#[tokio::test]
async fn the_remaining_routes_answer_each_role_as_the_matrix_says() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (group, channel) = (w.group.clone(), w.channel.clone());
    let message = send(&app, &w.author, &channel, "the author's words").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let image = crate::media::upload(
        &app,
        &w.author,
        "photo.jpg",
        "image/jpeg",
        crate::media::jpeg_with_gps(96, 64),
    )
    .await;
    let image_id = image.body["id"].as_str().expect("media id").to_owned();
    let attached = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            w.author.token.clone(),
            Some(json!({"content": "a picture", "attachments": [image_id]})),
        )
        .await;
    assert_eq!(attached.status, CREATED, "{}", attached.body);
    // Thumbnails are made in the background; wait for the uploader's view.
    let thumbnail = format!("/api/v1/media/{image_id}/thumbnail?size=64");
    let mut ready = false;
    for _ in 0..150 {
        let got = app
            .request(Method::GET, &thumbnail, Some(&w.author.token), None)
            .await;
        if got.status == OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "no thumbnail within 15 s");

    let routes: Vec<(Method, String, Option<serde_json::Value>, [StatusCode; 6])> = vec![
        (
            Method::GET,
            format!("/api/v1/channels/{channel}"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/channels/{channel}/members"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/messages/group/{group}"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/messages/{message}/thread"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/messages/{message}/edits"),
            None,
            from("member", OK),
        ),
        (
            Method::GET,
            format!("/api/v1/messages/{message}/readers"),
            None,
            from("member", OK),
        ),
        (
            Method::POST,
            format!("/api/v1/channels/{channel}/read"),
            Some(json!({"message_id": message})),
            from("member", OK),
        ),
        (
            Method::PATCH,
            format!("/api/v1/channels/{channel}"),
            Some(json!({"topic": "swept"})),
            from("admin", OK),
        ),
        // Only the author edits, whatever the role of anyone else.
        (
            Method::PATCH,
            format!("/api/v1/messages/{message}"),
            Some(json!({"content": "not yours"})),
            [UNAUTH, HIDDEN, DENIED, DENIED, DENIED, DENIED],
        ),
        (
            Method::GET,
            format!("/api/v1/media/{image_id}"),
            None,
            from("member", OK),
        ),
        (Method::GET, thumbnail.clone(), None, from("member", OK)),
        // A file is deleted by its uploader only: members, who can see
        // it, are refused; outsiders do not learn it exists.
        (
            Method::DELETE,
            format!("/api/v1/media/{image_id}"),
            None,
            [UNAUTH, HIDDEN, DENIED, DENIED, DENIED, DENIED],
        ),
        (
            Method::GET,
            format!("/api/v1/users/{}", w.author.id),
            None,
            SIGNED_IN(OK),
        ),
        (
            Method::GET,
            "/api/v1/users/me".to_owned(),
            None,
            SIGNED_IN(OK),
        ),
        (
            Method::GET,
            "/api/v1/notifications".to_owned(),
            None,
            SIGNED_IN(OK),
        ),
        (
            Method::GET,
            "/api/v1/unread".to_owned(),
            None,
            SIGNED_IN(OK),
        ),
        // Web Push is off in this fleet (no VAPID key): the key and new
        // subscriptions are 409 to everyone signed in; settings work.
        (
            Method::GET,
            "/api/v1/push/vapid-key".to_owned(),
            None,
            SIGNED_IN(StatusCode::CONFLICT),
        ),
        (
            Method::GET,
            "/api/v1/push/subscriptions".to_owned(),
            None,
            SIGNED_IN(OK),
        ),
        (
            Method::POST,
            "/api/v1/push/subscriptions".to_owned(),
            Some(json!({
                "endpoint": "https://push.example.com/sweep",
                "keys": {"p256dh": "BAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
            })),
            SIGNED_IN(StatusCode::CONFLICT),
        ),
        (
            Method::DELETE,
            format!("/api/v1/push/subscriptions/{}", uuid::Uuid::now_v7()),
            None,
            SIGNED_IN(HIDDEN),
        ),
        (
            Method::GET,
            "/api/v1/users/me/notification-settings".to_owned(),
            None,
            SIGNED_IN(OK),
        ),
        (
            Method::PATCH,
            "/api/v1/users/me/notification-settings".to_owned(),
            Some(json!({"level": "mentions"})),
            SIGNED_IN(OK),
        ),
        // A conversation's settings: only for those who may read it.
        (
            Method::GET,
            format!("/api/v1/channels/{channel}/notification-settings"),
            None,
            from("member", OK),
        ),
        (
            Method::PATCH,
            format!("/api/v1/channels/{channel}/notification-settings"),
            Some(json!({"level": "nothing"})),
            from("member", OK),
        ),
        // Search filters by what the caller may read: an outsider naming
        // the group gets an empty page, the same as for a group that does
        // not exist (checked below).
        (
            Method::GET,
            format!("/api/v1/search/messages?q=words&group_id={group}"),
            None,
            SIGNED_IN(OK),
        ),
    ];
    for (method, path, body, expected) in &routes {
        for (index, role) in ROLES.iter().enumerate() {
            let got = attempt(&app, &w.callers[index], method.clone(), path, body.clone()).await;
            check(&format!("{method} {path}"), role, expected[index], &got);
        }
    }

    for (index, role) in ROLES.iter().enumerate().skip(1) {
        let found = attempt(
            &app,
            &w.callers[index],
            Method::GET,
            &format!("/api/v1/search/messages?q=words&group_id={group}"),
            None,
        )
        .await;
        let hits = found.body["messages"].as_array().map_or(0, Vec::len);
        let expected = usize::from(*role != "outsider");
        assert_eq!(hits, expected, "search as {role}: {}", found.body);
    }

    // Per caller: a reaction to remove, a ban to lift, a channel member.
    for (index, role) in ROLES.iter().enumerate() {
        let caller = &w.callers[index];
        let emoji = "🎉";
        if let Some(person) = caller.as_ref().filter(|_| index >= 2) {
            let reacted = app
                .call(
                    Method::POST,
                    format!("/api/v1/messages/{message}/reactions"),
                    person.token.clone(),
                    Some(json!({"emoji": emoji})),
                )
                .await;
            assert_eq!(reacted.status, OK, "{}", reacted.body);
        }
        let unreacted = attempt(
            &app,
            caller,
            Method::DELETE,
            &format!("/api/v1/messages/{message}/reactions/{emoji}"),
            None,
        )
        .await;
        check(
            "DELETE own reaction",
            role,
            from("member", GONE)[index],
            &unreacted,
        );

        let banned = user(&app, &format!("sw_unban_{role}")).await;
        add_member(&app, &group, &w.owner, &banned, "member").await;
        let ban = app
            .call(
                Method::PUT,
                format!("/api/v1/groups/{group}/bans/{}", banned.id),
                w.owner.token.clone(),
                None,
            )
            .await;
        assert_eq!(ban.status, GONE, "{}", ban.body);
        let lifted = attempt(
            &app,
            caller,
            Method::DELETE,
            &format!("/api/v1/groups/{group}/bans/{}", banned.id),
            None,
        )
        .await;
        check(
            "DELETE ban (unban)",
            role,
            from("admin", GONE)[index],
            &lifted,
        );
    }

    // A direct conversation between the author and the plain member is
    // theirs alone: the group's owner and admins are outsiders to it.
    let member = w.callers[2].as_ref().expect("member");
    let opened = app
        .call(
            Method::POST,
            "/api/v1/dm".to_owned(),
            w.author.token.clone(),
            Some(json!({"user_ids": [member.id]})),
        )
        .await;
    assert_eq!(opened.status, CREATED, "{}", opened.body);
    let dm = opened.body["channel"]["id"]
        .as_str()
        .expect("dm channel")
        .to_owned();
    send(&app, &w.author, &dm, "just between us").await;
    let party = [UNAUTH, HIDDEN, OK, HIDDEN, HIDDEN, HIDDEN];
    for (method, path, body, expected) in [
        (
            Method::GET,
            format!("/api/v1/channels/{dm}/messages"),
            None,
            party,
        ),
        (
            Method::POST,
            format!("/api/v1/channels/{dm}/messages"),
            Some(json!({"content": "me too"})),
            [UNAUTH, HIDDEN, CREATED, HIDDEN, HIDDEN, HIDDEN],
        ),
    ] {
        for (index, role) in ROLES.iter().enumerate() {
            let got = attempt(&app, &w.callers[index], method.clone(), &path, body.clone()).await;
            check(
                &format!("{method} {path} (DM)"),
                role,
                expected[index],
                &got,
            );
        }
    }
    for (index, role) in ROLES.iter().enumerate() {
        let got = attempt(
            &app,
            &w.callers[index],
            Method::POST,
            "/api/v1/dm",
            Some(json!({"user_ids": [w.author.id]})),
        )
        .await;
        // Anyone signed in may start one; the member's already exists.
        let expected = match *role {
            "anonymous" => UNAUTH,
            "member" => OK,
            _ => CREATED,
        };
        check("POST dm", role, expected, &got);
    }

    // Channels are deleted by admins and the owner: a fresh one each.
    for (index, role) in ROLES.iter().enumerate() {
        let made = app
            .call(
                Method::POST,
                format!("/api/v1/groups/{group}/channels"),
                w.owner.token.clone(),
                Some(json!({"name": format!("doomed-{role}")})),
            )
            .await;
        assert_eq!(made.status, CREATED, "{}", made.body);
        let id = made.body["id"].as_str().expect("channel id").to_owned();
        let got = attempt(
            &app,
            &w.callers[index],
            Method::DELETE,
            &format!("/api/v1/channels/{id}"),
            None,
        )
        .await;
        check("DELETE channel", role, from("admin", GONE)[index], &got);
    }

    // A private channel exists only for its members and the group's
    // admins, who see and manage it; its messages are for its members
    // alone (the owner created it, so is one). Everyone else in the group
    // is an outsider to it.
    let secret = app
        .call(
            Method::POST,
            format!("/api/v1/groups/{group}/channels"),
            w.owner.token.clone(),
            Some(json!({"name": "secret", "visibility": "private"})),
        )
        .await;
    assert_eq!(secret.status, CREATED, "{}", secret.body);
    let secret = secret.body["id"].as_str().expect("channel id").to_owned();
    let admins_only = [UNAUTH, HIDDEN, HIDDEN, HIDDEN, OK, OK];
    let members_only = [UNAUTH, HIDDEN, HIDDEN, HIDDEN, HIDDEN, OK];
    for (path, expected) in [
        (format!("/api/v1/channels/{secret}"), admins_only),
        (format!("/api/v1/channels/{secret}/members"), admins_only),
        (format!("/api/v1/channels/{secret}/messages"), members_only),
    ] {
        for (index, role) in ROLES.iter().enumerate() {
            let got = attempt(&app, &w.callers[index], Method::GET, &path, None).await;
            check(
                &format!("GET {path} (private channel)"),
                role,
                expected[index],
                &got,
            );
        }
    }
    for (index, role) in ROLES.iter().enumerate() {
        let joiner = user(&app, &format!("sw_chan_{role}")).await;
        add_member(&app, &group, &w.owner, &joiner, "member").await;
        let added = attempt(
            &app,
            &w.callers[index],
            Method::POST,
            &format!("/api/v1/channels/{secret}/members"),
            Some(json!({"user_id": joiner.id})),
        )
        .await;
        let expected = [UNAUTH, HIDDEN, HIDDEN, HIDDEN, CREATED, CREATED];
        check("POST private channel member", role, expected[index], &added);
        let joined = attempt(
            &app,
            &Some(joiner),
            Method::GET,
            &format!("/api/v1/channels/{secret}/messages"),
            None,
        )
        .await;
        let expected = if index >= 4 { OK } else { HIDDEN };
        check(
            "GET private channel as the added member",
            role,
            expected,
            &joined,
        );
    }

    // WebSocket actions after a join: only members resume a channel's
    // room or type in it; outsiders get not_found and nothing else.
    for (index, role) in ROLES.iter().enumerate().skip(1) {
        let Some(caller) = &w.callers[index] else {
            continue;
        };
        let (mut ws, _) = Ws::open(&app.base, &caller.token).await;
        ws.send("resume", json!({"rooms": {channel.as_str(): 0}}))
            .await;
        if *role == "outsider" {
            let refused = ws.expect("error").await;
            assert_eq!(refused["data"]["code"], "not_found", "{role}");
            ws.send("typing", json!({"room_id": group, "channel_id": channel}))
                .await;
            // Typing needs a joined room, which an outsider cannot have:
            // the same answer as for a room that does not exist.
            let refused = ws.expect("error").await;
            assert_eq!(refused["data"]["code"], "not_joined", "{role} typing");
            ws.silent("new_message", Duration::from_millis(300)).await;
        } else {
            let resumed = ws.expect("resumed").await;
            assert_eq!(resumed["data"]["room_id"], channel.as_str(), "{role}");
        }
        ws.close().await;
    }
    app.cleanup().await;
}
