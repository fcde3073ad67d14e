//! Read positions, unread counts, notifications, search and the messages
//! events, through the public API and Kafka.

use crate::groups::{add_member, user};
use crate::helpers::TestApp;
use crate::messages::{group_with_channel, send};
use messenger_proto::messages::v1 as pb;
use prost::Message as _;
use rdkafka::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn unread_of<'a>(list: &'a Value, channel: &str) -> &'a Value {
    list["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["channel_id"] == channel)
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn read_positions_drive_unread_counts_and_notifications() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "rd_ann").await;
    let ben = user(&app, "rd_ben").await;
    let cat = user(&app, "rd_cat").await;
    let (group, channel) = group_with_channel(&app, &ann, "Reading").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    add_member(&app, &group, &ann, &cat, "member").await;

    let m1 = send(&app, &ann, &channel, "one").await;
    let m2 = send(&app, &ann, &channel, "two").await;
    let m3 = send(&app, &ann, &channel, "three, @RD_BEN please look").await;
    assert_eq!(m3["mentions"], json!([ben.id]));

    let unread = app
        .call(Method::GET, "/api/v1/unread", &ben.token, None)
        .await;
    assert_eq!(unread.status, StatusCode::OK, "{}", unread.body);
    let mine = unread_of(&unread.body, &channel);
    assert_eq!(mine["unread_count"], 3);
    assert_eq!(mine["mention_count"], 1);
    assert_eq!(mine["last_seq"], 3);
    // The author's own messages are read by the author.
    let unread = app
        .call(Method::GET, "/api/v1/unread", &ann.token, None)
        .await;
    assert_eq!(unread_of(&unread.body, &channel)["unread_count"], 0);

    let notes = app
        .call(Method::GET, "/api/v1/notifications", &ben.token, None)
        .await;
    assert_eq!(notes.status, StatusCode::OK, "{}", notes.body);
    assert_eq!(notes.body["unread_total"], 1);
    let note = &notes.body["notifications"][0];
    assert_eq!(note["kind"], "mention");
    assert_eq!(note["message_id"], m3["id"]);
    assert_eq!(note["actor_id"], ann.id.as_str());
    assert!(note["excerpt"].as_str().unwrap_or("").starts_with("three"));
    let cats = app
        .call(Method::GET, "/api/v1/notifications", &cat.token, None)
        .await;
    assert_eq!(cats.body["notifications"], json!([]), "no row per member");

    // An edit that adds a mention notifies the newly mentioned, once.
    let m1_path = format!("/api/v1/messages/{}", m1["id"].as_str().expect("id"));
    for text in ["one, @rd_cat please check", "one, @rd_cat please check it"] {
        let edited = app
            .call(
                Method::PATCH,
                m1_path.clone(),
                &ann.token,
                Some(json!({"content": text})),
            )
            .await;
        assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    }
    let cats = app
        .call(Method::GET, "/api/v1/notifications", &cat.token, None)
        .await;
    let cat_notes = cats.body["notifications"].as_array().expect("list");
    assert_eq!(cat_notes.len(), 1, "{}", cats.body);
    assert_eq!(cat_notes[0]["kind"], "mention");
    assert_eq!(cat_notes[0]["message_id"], m1["id"]);

    let read = format!("/api/v1/channels/{channel}/read");
    let r = app
        .call(
            Method::POST,
            read.clone(),
            &ben.token,
            Some(json!({"message_id": m2["id"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["seq"], 2);
    let unread = app
        .call(Method::GET, "/api/v1/unread", &ben.token, None)
        .await;
    assert_eq!(unread_of(&unread.body, &channel)["unread_count"], 1);
    assert_eq!(unread_of(&unread.body, &channel)["mention_count"], 1);
    app.call(
        Method::POST,
        read.clone(),
        &ben.token,
        Some(json!({"message_id": m3["id"]})),
    )
    .await;
    // Positions never move backwards.
    let r = app
        .call(
            Method::POST,
            read.clone(),
            &ben.token,
            Some(json!({"message_id": m1["id"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["seq"], 3);
    let unread = app
        .call(Method::GET, "/api/v1/unread", &ben.token, None)
        .await;
    assert_eq!(unread_of(&unread.body, &channel)["unread_count"], 0);
    assert_eq!(unread_of(&unread.body, &channel)["mention_count"], 0);
    let notes = app
        .call(Method::GET, "/api/v1/notifications", &ben.token, None)
        .await;
    assert_eq!(
        notes.body["unread_total"], 0,
        "reading the channel reads its mentions"
    );
    let r = app
        .call(
            Method::POST,
            read.clone(),
            &ben.token,
            Some(json!({"message_id": uuid::Uuid::now_v7()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Who has read message 2: Ben (past it), not Cat, not the author.
    let readers = app
        .call(
            Method::GET,
            format!(
                "/api/v1/messages/{}/readers",
                m2["id"].as_str().expect("id")
            ),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(readers.status, StatusCode::OK, "{}", readers.body);
    let ids: Vec<&str> = readers.body["readers"]
        .as_array()
        .expect("readers")
        .iter()
        .filter_map(|r| r["user_id"].as_str())
        .collect();
    assert_eq!(ids, vec![ben.id.as_str()]);

    // Replies and direct messages notify; marking read by id works.
    let reply = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            &cat.token,
            Some(json!({"content": "agreed", "reply_to": m1["id"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let dm = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &cat.token,
            Some(json!({"user_id": ben.id})),
        )
        .await;
    assert_eq!(dm.status, StatusCode::CREATED, "{}", dm.body);
    let dm_channel = dm.body["channel"]["id"]
        .as_str()
        .expect("dm channel")
        .to_owned();
    send(&app, &cat, &dm_channel, "psst").await;
    let anns = app
        .call(Method::GET, "/api/v1/notifications", &ann.token, None)
        .await;
    assert_eq!(anns.body["notifications"][0]["kind"], "reply");
    let bens = app
        .call(
            Method::GET,
            "/api/v1/notifications?unread_only=true",
            &ben.token,
            None,
        )
        .await;
    assert_eq!(bens.body["notifications"][0]["kind"], "direct_message");
    let note_id = bens.body["notifications"][0]["id"].clone();
    let r = app
        .call(
            Method::POST,
            "/api/v1/notifications/read",
            &ben.token,
            Some(json!({"ids": [note_id]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let bens = app
        .call(
            Method::GET,
            "/api/v1/notifications?unread_only=true",
            &ben.token,
            None,
        )
        .await;
    assert_eq!(bens.body["notifications"], json!([]));

    // Removed from the group: its history and its notifications are gone.
    let kicked = app
        .call(
            Method::DELETE,
            format!("/api/v1/groups/{group}/members/{}", ben.id),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(kicked.status, StatusCode::NO_CONTENT);
    let r = app
        .call(
            Method::GET,
            format!("/api/v1/channels/{channel}/messages"),
            &ben.token,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let bens = app
        .call(Method::GET, "/api/v1/notifications", &ben.token, None)
        .await;
    assert!(
        bens.body["notifications"]
            .as_array()
            .expect("list")
            .iter()
            .all(|n| n["group_id"] != group.as_str()),
        "{}",
        bens.body
    );
    app.cleanup().await;
}

#[tokio::test]
async fn search_finds_only_what_the_user_may_read() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "srch_ann").await;
    let ben = user(&app, "srch_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Fruit").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let (_, secret) = group_with_channel(&app, &ann, "Secret fruit").await;
    send(&app, &ann, &channel, "Bananas are yellow").await;
    send(&app, &ben, &channel, "I like banana bread").await;
    let gone = send(&app, &ann, &channel, "banana to be deleted").await;
    send(&app, &ann, &secret, "secret banana plan").await;
    send(&app, &ann, &channel, "apples only").await;
    let r = app
        .call(
            Method::DELETE,
            format!("/api/v1/messages/{}", gone["id"].as_str().expect("id")),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let search = |token: String, query: String| {
        let app = &app;
        async move {
            let r = app
                .call(
                    Method::GET,
                    format!("/api/v1/search/messages?{query}"),
                    token,
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            r.body
        }
    };
    let contents = |page: &Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let found = search(ben.token.clone(), "q=banana".into()).await;
    assert_eq!(contents(&found), vec!["I like banana bread"]);
    let found = search(ann.token.clone(), "q=banana".into()).await;
    assert_eq!(
        contents(&found),
        vec!["secret banana plan", "I like banana bread"]
    );
    // Pages by cursor, newest first.
    let first = search(ann.token.clone(), "q=banana&limit=1".into()).await;
    assert_eq!(contents(&first), vec!["secret banana plan"]);
    let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();
    let second = search(
        ann.token.clone(),
        format!("q=banana&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(contents(&second), vec!["I like banana bread"]);
    assert!(second["next_cursor"].is_null());
    let scoped = search(ann.token.clone(), format!("q=banana&channel_id={channel}")).await;
    assert_eq!(contents(&scoped), vec!["I like banana bread"]);
    let phrase = search(ann.token.clone(), "q=%22bananas%20are%22".into()).await;
    assert_eq!(contents(&phrase), vec!["Bananas are yellow"]);
    for bad in ["q=", "q=banana&limit=0x", "q=banana&cursor=zzz"] {
        let r = app
            .call(
                Method::GET,
                format!("/api/v1/search/messages?{bad}"),
                &ann.token,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = app
        .call(
            Method::GET,
            format!("/api/v1/search/messages?q=banana&channel_id={secret}"),
            &ben.token,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

#[tokio::test]
async fn every_change_is_published_in_channel_order() {
    let mut app = TestApp::spawn().await;
    let consumer = app
        .env
        .consume(pb::MessagesEvent::TOPIC.name())
        .await
        .expect("consumer");
    let ann = user(&app, "ev_ann").await;
    let ben = user(&app, "ev_ben").await;
    let (group, channel) = group_with_channel(&app, &ann, "Events").await;
    add_member(&app, &group, &ann, &ben, "member").await;
    let root = send(&app, &ann, &channel, "hi @ev_ben").await;
    let root_id = root["id"].as_str().expect("id").to_owned();
    let reply = app
        .call(
            Method::POST,
            format!("/api/v1/channels/{channel}/messages"),
            &ben.token,
            Some(json!({"content": "hello", "reply_to": root_id})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let reply_id = reply.body["id"].as_str().expect("id").to_owned();
    let message = format!("/api/v1/messages/{root_id}");
    for (method, path, token, body) in [
        (
            Method::POST,
            format!("{message}/reactions"),
            &ben.token,
            Some(json!({"emoji": "🎉"})),
        ),
        (
            Method::PATCH,
            message.clone(),
            &ann.token,
            Some(json!({"content": "hi all"})),
        ),
        (
            Method::POST,
            format!("/api/v1/channels/{channel}/read"),
            &ann.token,
            Some(json!({"message_id": reply_id})),
        ),
        (
            Method::DELETE,
            format!("{message}/reactions/%F0%9F%8E%89"),
            &ben.token,
            None,
        ),
        (Method::DELETE, message.clone(), &ann.token, None),
    ] {
        let r = app.call(method, path, token.clone(), body).await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let expected = [
        pb::MessageCreated::EVENT_TYPE,
        pb::NotificationCreated::EVENT_TYPE,
        pb::MessageCreated::EVENT_TYPE,
        pb::ThreadUpdated::EVENT_TYPE,
        pb::NotificationCreated::EVENT_TYPE,
        pb::ReactionAdded::EVENT_TYPE,
        pb::MessageEdited::EVENT_TYPE,
        pb::ReadPositionMoved::EVENT_TYPE,
        pb::ReactionRemoved::EVENT_TYPE,
        pb::MessageDeleted::EVENT_TYPE,
    ];
    let mut seen = Vec::new();
    let mut created_seqs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < expected.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let record = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(record)) => record,
            Ok(Err(err)) => {
                eprintln!("transient consumer error: {err}");
                continue;
            }
            Err(_) => panic!("only {seen:?} arrived"),
        };
        assert_eq!(record.key(), Some(channel.as_bytes()));
        let event = pb::MessagesEvent::decode(record.payload().expect("payload")).expect("event");
        let meta = event.meta.expect("meta");
        assert_eq!(meta.aggregate_id, channel);
        if let Some(pb::messages_event::Payload::MessageCreated(created)) = &event.payload {
            created_seqs.push(created.message.as_ref().expect("message").seq);
        }
        seen.push(meta.event_type);
    }
    assert_eq!(seen, expected);
    assert_eq!(created_seqs, vec![1, 2]);
    drop(consumer);
    app.cleanup().await;
}
