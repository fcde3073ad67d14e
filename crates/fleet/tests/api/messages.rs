//! Messages through the public API: sending (idempotent, gap-free
//! sequence), history pages, threads, edits, deletes and reactions.

use crate::groups::{User, add_member, create_group, user};
use crate::helpers::{Response, TestApp, error_code};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

/// A group with `owner` and the default channel's id.
pub async fn group_with_channel(app: &TestApp, owner: &User, name: &str) -> (String, String) {
    let group = create_group(app, owner, name, "private").await;
    let id = group["id"].as_str().expect("group id").to_owned();
    let channel = group["default_channel_id"]
        .as_str()
        .expect("default channel")
        .to_owned();
    (id, channel)
}

pub async fn send(app: &TestApp, author: &User, channel: &str, content: &str) -> Value {
    let sent = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            &author.token,
            Some(json!({"content": content})),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    sent.body
}

/// POST with an `Idempotency-Key` header.
async fn send_with_key(app: &TestApp, author: &User, channel: &str, key: &str) -> Response {
    let response = app
        .http
        .post(format!("{}/api/v1/channels/{channel}/messages", app.base))
        .bearer_auth(&author.token)
        .header("Idempotency-Key", key)
        .json(&json!({"content": format!("keyed {key}")}))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Response {
        status,
        headers,
        body,
    }
}

pub fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn sends_are_idempotent_and_numbered_without_gaps() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "seq_ann").await;
    let ben = user(&app, "seq_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Sequencing").await;
    add_member(&app, &group, &ann, &ben, "member").await;

    let first = send(&app, &ann, &channel, "hello").await;
    assert_eq!(first["seq"], 1);
    assert_eq!(first["author_id"], ann.id.as_str());
    assert_eq!(first["type"], "text");
    assert_eq!(first["channel_id"], channel.as_str());
    assert_eq!(first["group_id"], group.as_str());

    // A retry with the same key returns the original, not a copy.
    let keyed = send_with_key(&app, &ann, &channel, "retry-1").await;
    assert_eq!(keyed.status, StatusCode::CREATED, "{}", keyed.body);
    let again = send_with_key(&app, &ann, &channel, "retry-1").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], keyed.body["id"]);
    assert_eq!(again.body["seq"], keyed.body["seq"]);
    // Keys are per author: Ben's "retry-1" is his own message.
    let bens = send_with_key(&app, &ben, &channel, "retry-1").await;
    assert_eq!(bens.status, StatusCode::CREATED);
    assert_ne!(bens.body["id"], keyed.body["id"]);

    // Ten concurrent attempts with one key store one message.
    let attempts = join_all((0..10).map(|_| send_with_key(&app, &ann, &channel, "storm"))).await;
    let created = attempts
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let ids: HashSet<String> = attempts.iter().map(|r| id(&r.body)).collect();
    assert!(
        attempts
            .iter()
            .all(|r| r.status == StatusCode::CREATED || r.status == StatusCode::OK)
    );
    assert_eq!(created, 1, "exactly one attempt stores the message");
    assert_eq!(ids.len(), 1);

    // Concurrent senders: every number handed out once, none skipped.
    let sends = (0..20).map(|i| {
        let author = if i % 2 == 0 { &ann } else { &ben };
        app.call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            &author.token,
            Some(json!({"content": format!("burst {i}")})),
        )
    });
    for response in join_all(sends).await {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    }
    let history = app
        .get(
            &format!("/api/v1/channels/{channel}/messages?limit=100"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let total = 1 + 1 + 1 + 1 + 20;
    assert_eq!(seqs(&history.body), (1..=total).collect::<Vec<u64>>());
    // The answer to a send is the message as stored, to the microsecond.
    let stored = history.body["messages"]
        .as_array()
        .and_then(|page| page.iter().find(|m| m["seq"] == 1))
        .cloned()
        .unwrap_or_default();
    assert_eq!(stored, first);

    // The original API: group_id alone means the default channel.
    let legacy = app
        .call(
            Method::POST,
            "/api/v1/messages",
            &ben.token,
            Some(json!({"group_id": group, "content": "old client", "message_type": "text"})),
        )
        .await;
    assert_eq!(legacy.status, StatusCode::CREATED, "{}", legacy.body);
    assert_eq!(legacy.body["channel_id"], channel.as_str());
    assert_eq!(legacy.body["seq"], total + 1);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_sends_are_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "bad_ann").await;
    let eve = user(&app, "bad_eve").await;
    let (group, channel) = group_with_channel(&app, &ann, "Strict").await;
    let path = format!("/api/v1/channels/{channel}/messages");
    for (body, field) in [
        (json!({"content": ""}), "content"),
        (json!({"content": "   "}), "content"),
        (json!({"content": "x".repeat(4001)}), "content"),
        (
            json!({"content": "hi", "message_type": "system"}),
            "message_type",
        ),
        (
            json!({"content": "hi", "message_type": "video"}),
            "message_type",
        ),
        (
            json!({"content": "hi", "reply_to": uuid::Uuid::now_v7()}),
            "reply_to",
        ),
        (
            json!({"content": "hi", "attachments": [uuid::Uuid::now_v7()]}),
            "attachments",
        ),
    ] {
        let r = app
            .call(Method::POST, path.clone(), &ann.token, Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(error_code(&r), "invalid_argument");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    let r = app
        .call(
            Method::POST,
            path.clone(),
            &ann.token,
            Some(json!({"content": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Exactly 4000 characters (not bytes) is fine.
    let r = app
        .call(
            Method::POST,
            path.clone(),
            &ann.token,
            Some(json!({"content": "я".repeat(4000)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Outsiders and unknown channels look the same: 404.
    let r = app
        .call(
            Method::POST,
            path.clone(),
            &eve.token,
            Some(json!({"content": "hi"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{}/messages", uuid::Uuid::now_v7()),
            &ann.token,
            Some(json!({"content": "hi"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::POST,
            "/api/v1/messages",
            &eve.token,
            Some(json!({"group_id": group, "content": "hi"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .call(
            Method::POST,
            "/api/v1/messages",
            &ann.token,
            Some(json!({"content": "nowhere"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .call(Method::GET, format!("{path}?limit=1000"), &ann.token, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .call(Method::GET, format!("{path}?before=nope"), &ann.token, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.call(Method::GET, path.clone(), &eve.token, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::GET,
            format!("/api/v1/messages/{}", uuid::Uuid::now_v7()),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

#[tokio::test]
async fn history_pages_by_position_in_both_directions() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "page_ann").await;
    let (group, channel) = group_with_channel(&app, &ann, "Pages").await;
    let mut ids = vec![String::new()]; // ids[seq]
    for i in 1..=25 {
        ids.push(id(
            &send(&app, &ann, &channel, &format!("message {i}")).await
        ));
    }
    let page = |query: String| {
        let token = ann.token.clone();
        let channel = channel.clone();
        let app = &app;
        async move {
            let r = app
                .call(
                    Method::GET,
                    format!("/api/v1/channels/{channel}/messages?{query}"),
                    token,
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            r.body
        }
    };
    let latest = page("limit=10".into()).await;
    assert_eq!(seqs(&latest), (16..=25).collect::<Vec<_>>());
    assert_eq!(latest["has_older"], true);
    assert_eq!(latest["has_newer"], false);
    let older = page(format!("before={}&limit=10", ids[16])).await;
    assert_eq!(seqs(&older), (6..=15).collect::<Vec<_>>());
    assert_eq!(older["has_older"], true);
    assert_eq!(older["has_newer"], true);
    let oldest = page(format!("before={}&limit=10", ids[6])).await;
    assert_eq!(seqs(&oldest), (1..=5).collect::<Vec<_>>());
    assert_eq!(oldest["has_older"], false);
    let newer = page(format!("after={}&limit=3", ids[5])).await;
    assert_eq!(seqs(&newer), vec![6, 7, 8]);
    assert_eq!(newer["has_newer"], true);
    let around = page(format!("around={}&limit=4", ids[10])).await;
    assert_eq!(seqs(&around), vec![9, 10, 11, 12]);
    let r = app
        .call(
            Method::GET,
            format!(
                "/api/v1/channels/{channel}/messages?before={}&after={}",
                ids[3], ids[4]
            ),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The original offset API pages the group newest first.
    let legacy = app
        .call(
            Method::GET,
            format!("/api/v1/messages/group/{group}?limit=5&offset=5"),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(legacy.status, StatusCode::OK, "{}", legacy.body);
    assert_eq!(seqs(&legacy.body), vec![20, 19, 18, 17, 16]);
    app.cleanup().await;
}

#[tokio::test]
async fn threads_edits_deletes_and_reactions() {
    let app = TestApp::spawn().await;
    let owner = user(&app, "thr_owner").await;
    let moderator = user(&app, "thr_mod").await;
    let member = user(&app, "thr_member").await;
    let outsider = user(&app, "thr_out").await;
    let (group, channel) = group_with_channel(&app, &owner, "Threads").await;
    add_member(&app, &group, &owner, &moderator, "moderator").await;
    add_member(&app, &group, &owner, &member, "member").await;

    let root = send(&app, &member, &channel, "what do we ship?").await;
    let root_id = id(&root);
    let reply = |author: &User, to: String, text: &str| {
        app.call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            author.token.clone(),
            Some(json!({"content": text, "reply_to": to})),
        )
    };
    let first = reply(&owner, root_id.clone(), "the API").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["thread_root_id"], root_id.as_str());
    // A reply to a reply stays in the root's thread.
    let second = reply(&moderator, id(&first.body), "and the docs").await;
    assert_eq!(second.body["reply_to"], first.body["id"]);
    assert_eq!(second.body["thread_root_id"], root_id.as_str());
    let thread = app
        .call(
            Method::GET,
            format!("/api/v1/messages/{root_id}/thread"),
            &member.token,
            None,
        )
        .await;
    assert_eq!(thread.status, StatusCode::OK, "{}", thread.body);
    assert_eq!(thread.body["messages"].as_array().map(Vec::len), Some(2));
    let root_now = app
        .call(
            Method::GET,
            format!("/api/v1/messages/{root_id}"),
            &member.token,
            None,
        )
        .await;
    assert_eq!(root_now.body["reply_count"], 2);
    assert!(root_now.body["last_reply_at"].is_string());
    let r = app
        .call(
            Method::GET,
            format!("/api/v1/messages/{root_id}"),
            &outsider.token,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Edits: the author only, history kept.
    let message = format!("/api/v1/messages/{root_id}");
    let r = app
        .call(
            Method::PATCH,
            message.clone(),
            &owner.token,
            Some(json!({"content": "hijacked"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .call(
            Method::PATCH,
            message.clone(),
            &member.token,
            Some(json!({"content": "what do we ship on Friday?"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["content"], "what do we ship on Friday?");
    assert!(r.body["edited_at"].is_string());
    let r = app
        .call(
            Method::PATCH,
            message.clone(),
            &member.token,
            Some(json!({"content": "x".repeat(4001)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let edits = app
        .call(Method::GET, format!("{message}/edits"), &member.token, None)
        .await;
    assert_eq!(edits.status, StatusCode::OK, "{}", edits.body);
    assert_eq!(
        edits.body["edits"][0]["previous_content"],
        "what do we ship?"
    );

    // Reactions: one per user per emoji, counted, "me" per viewer.
    let reactions = format!("{message}/reactions");
    for (who, emoji) in [
        (&owner, "👍"),
        (&owner, "👍"),
        (&moderator, "👍"),
        (&member, ":party_parrot:"),
    ] {
        let r = app
            .call(
                Method::POST,
                reactions.clone(),
                &who.token,
                Some(json!({"emoji": emoji})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let seen = app
        .call(Method::GET, message.clone(), &owner.token, None)
        .await;
    assert_eq!(
        seen.body["reactions"],
        json!([{"emoji": "👍", "count": 2, "me": true}, {"emoji": ":party_parrot:", "count": 1, "me": false}])
    );
    for bad in ["abc", "👍👍", ":Bad Code:", ""] {
        let r = app
            .call(
                Method::POST,
                reactions.clone(),
                &owner.token,
                Some(json!({"emoji": bad})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let r = app
        .call(
            Method::POST,
            reactions.clone(),
            &outsider.token,
            Some(json!({"emoji": "👍"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let remove = format!("{reactions}/%F0%9F%91%8D");
    let r = app
        .call(Method::DELETE, remove.clone(), &owner.token, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .call(Method::DELETE, remove.clone(), &owner.token, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Deletes: the author, or a moderator above the author; a tombstone
    // stays in place.
    let owners = send(&app, &owner, &channel, "owner speaks").await;
    let r = app
        .call(
            Method::DELETE,
            format!("/api/v1/messages/{}", id(&owners)),
            &moderator.token,
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "moderator deletes the owner's message"
    );
    let r = app
        .call(Method::DELETE, message.clone(), &outsider.token, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::DELETE,
            format!(
                "/api/v1/messages/{}",
                first.body["id"].as_str().expect("id")
            ),
            &member.token,
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "member deletes another's message"
    );
    let r = app
        .call(Method::DELETE, message.clone(), &moderator.token, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let tombstone = app
        .call(Method::GET, message.clone(), &member.token, None)
        .await;
    assert_eq!(tombstone.status, StatusCode::OK);
    assert_eq!(tombstone.body["content"], "");
    assert!(tombstone.body["deleted_at"].is_string());
    assert_eq!(tombstone.body["reactions"], json!([]));
    let edits = app
        .call(Method::GET, format!("{message}/edits"), &member.token, None)
        .await;
    assert_eq!(
        edits.body["edits"],
        json!([]),
        "edit history goes with the content"
    );
    let r = app
        .call(
            Method::PATCH,
            message.clone(),
            &member.token,
            Some(json!({"content": "back"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .call(Method::DELETE, message.clone(), &member.token, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "deleting twice is fine");
    let history = app
        .call(
            Method::GET,
            format!("/api/v1/channels/{channel}/messages"),
            &member.token,
            None,
        )
        .await;
    assert_eq!(
        seqs(&history.body),
        vec![1, 2, 3, 4],
        "the tombstone keeps its place"
    );
    app.cleanup().await;
}
