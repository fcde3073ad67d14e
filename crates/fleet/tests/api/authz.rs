//! Direct conversations, the Authorize check other services call, its cache
//! and the groups events.

use crate::groups::{add_member, create_group, user};
use crate::helpers::{TestApp, error_code};
use messenger_platform::callers::Caller;
use messenger_platform::grpc::lazy_channel;
use messenger_proto::groups::v1 as pb;
use messenger_proto::groups::v1::groups_service_client::GroupsServiceClient;
use prost::Message as _;
use rdkafka::Message;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Adds a user's access token to every call, as a service does for the
/// user whose call it serves.
#[derive(Clone)]
struct ForUser(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for ForUser {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Groups =
    GroupsServiceClient<tonic::service::interceptor::InterceptedService<Channel, ForUser>>;

/// Authorize as the messages service calls it, inside a call it serves for
/// some signed-in user (questions about others carry the asker's token).
async fn groups_client(app: &TestApp) -> Groups {
    let asker = user(app, "asker").await;
    let bearer = format!("Bearer {}", asker.token).parse().expect("metadata");
    let transport = messenger_testkit::transport_as(&app.config, Caller::Messages)
        .await
        .expect("a certificate for the messages service");
    let channel = lazy_channel(
        &transport,
        Caller::Groups,
        &app.config.grpc.groups.url,
        Duration::from_secs(5),
    )
    .expect("groups URL");
    GroupsServiceClient::with_interceptor(channel, ForUser(bearer))
}

async fn authorize(
    client: &mut Groups,
    user: &str,
    conversation: &str,
    action: pb::Action,
) -> pb::AuthorizeResponse {
    client
        .authorize(pb::AuthorizeRequest {
            user_id: user.to_owned(),
            conversation_id: conversation.to_owned(),
            action: action as i32,
            target_user_id: String::new(),
        })
        .await
        .expect("authorize")
        .into_inner()
}

async fn cached_answers(app: &TestApp, conversation: &str, user: &str) -> usize {
    let client = redis::Client::open(app.config.redis.url()).expect("redis");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("groups:authz:{conversation}:{user}:*"))
        .query_async(&mut connection)
        .await
        .expect("keys");
    keys.len()
}

#[tokio::test]
async fn direct_conversations_open_once_per_set_of_people() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "ann").await;
    let ben = user(&app, "ben").await;
    let cat = user(&app, "cat").await;
    let eve = user(&app, "eve").await;

    let first = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &ann.token,
            Some(json!({"user_ids": [ben.id]})),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["created"], true);
    assert_eq!(first.body["group"]["kind"], "direct");
    let again = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &ann.token,
            Some(json!({"user_ids": [ben.id]})),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["created"], false);
    assert_eq!(again.body["channel"]["id"], first.body["channel"]["id"]);
    // From the other side, and concurrently: still the same one.
    let (from_ben, from_ben_again) = tokio::join!(
        app.call(
            Method::POST,
            "/api/v1/dm",
            &ben.token,
            Some(json!({"user_id": ann.id}))
        ),
        app.call(
            Method::POST,
            "/api/v1/dm",
            &ben.token,
            Some(json!({"user_ids": [ann.id, ann.id]}))
        ),
    );
    assert_eq!(from_ben.body["group"]["id"], first.body["group"]["id"]);
    assert_eq!(
        from_ben_again.body["group"]["id"],
        first.body["group"]["id"]
    );

    // Three people make a different conversation; concurrent opens agree.
    let (one, two) = tokio::join!(
        app.call(
            Method::POST,
            "/api/v1/dm",
            &cat.token,
            Some(json!({"user_ids": [ann.id, ben.id]}))
        ),
        app.call(
            Method::POST,
            "/api/v1/dm",
            &ann.token,
            Some(json!({"user_ids": [cat.id, ben.id]}))
        ),
    );
    assert!(
        one.status.is_success() && two.status.is_success(),
        "{} {}",
        one.body,
        two.body
    );
    assert_eq!(one.body["group"]["id"], two.body["group"]["id"]);
    assert_ne!(one.body["group"]["id"], first.body["group"]["id"]);
    assert_eq!(
        one.body["participant_ids"].as_array().map(Vec::len),
        Some(3)
    );

    // Outsiders see nothing; nobody manages a direct conversation.
    let group = first.body["group"]["id"].as_str().expect("id");
    let channel = first.body["channel"]["id"].as_str().expect("id");
    let peek = app
        .get(&format!("/api/v1/groups/{group}"), Some(&eve.token))
        .await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    let peek = app
        .get(&format!("/api/v1/channels/{channel}"), Some(&eve.token))
        .await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    let kick = app
        .call(
            Method::DELETE,
            &format!("/api/v1/groups/{group}/members/{}", ben.id),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(kick.status, StatusCode::CONFLICT, "{}", kick.body);
    let leave = app
        .call(
            Method::DELETE,
            &format!("/api/v1/groups/{group}/members"),
            &ann.token,
            None,
        )
        .await;
    assert_eq!(leave.status, StatusCode::CONFLICT);

    // Bad input.
    let alone = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &ann.token,
            Some(json!({"user_ids": [ann.id]})),
        )
        .await;
    assert_eq!(alone.status, StatusCode::BAD_REQUEST, "{}", alone.body);
    let ghost = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &ann.token,
            Some(json!({"user_ids": [uuid::Uuid::now_v7()]})),
        )
        .await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND, "{}", ghost.body);
    let junk = app
        .call(
            Method::POST,
            "/api/v1/dm",
            &ann.token,
            Some(json!({"user_ids": ["not-a-uuid"]})),
        )
        .await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST, "{}", junk.body);
    assert!(!error_code(&junk).is_empty());

    let mut client = groups_client(&app).await;
    let talk = authorize(&mut client, &ann.id, channel, pb::Action::PostMessage).await;
    assert!(talk.allowed);
    assert_eq!(talk.kind, pb::GroupKind::Direct as i32);
    let stranger = authorize(&mut client, &eve.id, channel, pb::Action::ReadMessages).await;
    assert_eq!(stranger.denial, pb::Denial::NotFound as i32);
    assert!(
        stranger.group_id.is_empty(),
        "a hidden conversation's group leaks"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn kicked_and_banned_users_lose_access_at_once() {
    let app = TestApp::spawn().await;
    let owner = user(&app, "warden").await;
    let kicked = user(&app, "kicked").await;
    let banned = user(&app, "banned").await;
    let group = create_group(&app, &owner, "Jail", "private").await;
    let id = group["id"].as_str().expect("id").to_owned();
    let channel = group["default_channel_id"]
        .as_str()
        .expect("channel")
        .to_owned();
    add_member(&app, &id, &owner, &kicked, "member").await;
    add_member(&app, &id, &owner, &banned, "moderator").await;
    let mut client = groups_client(&app).await;

    for who in [&kicked, &banned] {
        // Warm the cache: the first answer fills it, the next come from it.
        for _ in 0..3 {
            let answer = authorize(&mut client, &who.id, &channel, pb::Action::ReadMessages).await;
            assert!(answer.allowed, "{answer:?}");
        }
        assert_eq!(
            cached_answers(&app, &channel, &who.id).await,
            1,
            "answer not cached"
        );
    }
    let answer = authorize(&mut client, &banned.id, &channel, pb::Action::Kick).await;
    assert!(answer.allowed);
    assert_eq!(answer.role, pb::Role::Moderator as i32);

    let kick = app
        .call(
            Method::DELETE,
            &format!("/api/v1/groups/{id}/members/{}", kicked.id),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(kick.status, StatusCode::NO_CONTENT, "{}", kick.body);
    let answer = authorize(&mut client, &kicked.id, &channel, pb::Action::ReadMessages).await;
    assert!(!answer.allowed, "kicked user still allowed: {answer:?}");
    assert_eq!(answer.denial, pb::Denial::NotFound as i32);

    let ban = app
        .call(
            Method::PUT,
            &format!("/api/v1/groups/{id}/bans/{}", banned.id),
            &owner.token,
            Some(json!({})),
        )
        .await;
    assert_eq!(ban.status, StatusCode::NO_CONTENT, "{}", ban.body);
    for action in [
        pb::Action::ReadMessages,
        pb::Action::PostMessage,
        pb::Action::Kick,
    ] {
        let answer = authorize(&mut client, &banned.id, &channel, action).await;
        assert!(!answer.allowed, "banned user still allowed to {action:?}");
    }
    let readable = client
        .list_readable_conversations(pb::ListReadableConversationsRequest {
            user_id: banned.id.clone(),
            conversation_ids: vec![],
        })
        .await
        .expect("readable")
        .into_inner();
    assert!(readable.conversations.is_empty());

    // Muting and demoting take effect at once too.
    let readable = client
        .list_readable_conversations(pb::ListReadableConversationsRequest {
            user_id: owner.id.clone(),
            conversation_ids: vec![channel.clone()],
        })
        .await
        .expect("readable")
        .into_inner();
    assert_eq!(readable.conversations.len(), 1);
    assert_eq!(readable.conversations[0].channel_id, channel);

    // Bad input is INVALID_ARGUMENT, never a crash.
    let status = client
        .authorize(pb::AuthorizeRequest {
            user_id: "nobody".to_owned(),
            conversation_id: channel.clone(),
            action: pb::Action::ReadMessages as i32,
            target_user_id: String::new(),
        })
        .await
        .expect_err("invalid user id");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = client
        .authorize(pb::AuthorizeRequest {
            user_id: owner.id.clone(),
            conversation_id: channel.clone(),
            action: 99,
            target_user_id: String::new(),
        })
        .await
        .expect_err("invalid action");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    app.cleanup().await;
}

#[tokio::test]
async fn muted_members_and_broadcast_channels_are_enforced() {
    let app = TestApp::spawn().await;
    let owner = user(&app, "herald").await;
    let member = user(&app, "listener").await;
    let group = create_group(&app, &owner, "Announcements", "public").await;
    let id = group["id"].as_str().expect("id").to_owned();
    let general = group["default_channel_id"]
        .as_str()
        .expect("channel")
        .to_owned();
    add_member(&app, &id, &owner, &member, "member").await;
    let news = app
        .call(
            Method::POST,
            &format!("/api/v1/groups/{id}/channels"),
            &owner.token,
            Some(json!({"name": "news", "broadcast": true})),
        )
        .await;
    let news = news.body["id"].as_str().expect("channel").to_owned();
    let mut client = groups_client(&app).await;

    assert!(
        authorize(&mut client, &member.id, &general, pb::Action::PostMessage)
            .await
            .allowed
    );
    let answer = authorize(&mut client, &member.id, &news, pb::Action::PostMessage).await;
    assert_eq!(answer.denial, pb::Denial::BroadcastOnly as i32);
    assert!(
        authorize(&mut client, &owner.id, &news, pb::Action::PostMessage)
            .await
            .allowed
    );

    let until = (time::OffsetDateTime::now_utc() + time::Duration::minutes(10))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("timestamp");
    let muted = app
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{id}/members/{}", member.id),
            &owner.token,
            Some(json!({"muted_until": until})),
        )
        .await;
    assert_eq!(muted.status, StatusCode::OK, "{}", muted.body);
    let answer = authorize(&mut client, &member.id, &general, pb::Action::PostMessage).await;
    assert_eq!(answer.denial, pb::Denial::Muted as i32);
    assert!(answer.muted_until.is_some());
    assert!(
        authorize(&mut client, &member.id, &general, pb::Action::ReadMessages)
            .await
            .allowed
    );

    // A public group's outsider is told to join, not that it does not exist.
    let outsider = user(&app, "outsider2").await;
    let answer = authorize(
        &mut client,
        &outsider.id,
        &general,
        pb::Action::ReadMessages,
    )
    .await;
    assert_eq!(answer.denial, pb::Denial::NotMember as i32);
    app.cleanup().await;
}

#[tokio::test]
async fn every_change_is_published_in_order_per_group() {
    let mut app = TestApp::spawn().await;
    let consumer = app
        .env
        .consume(pb::GroupsEvent::TOPIC.name())
        .await
        .expect("consumer");
    let owner = user(&app, "publisher").await;
    let member = user(&app, "subscriber").await;
    let group = create_group(&app, &owner, "Newsroom", "private").await;
    let id = group["id"].as_str().expect("id").to_owned();
    add_member(&app, &id, &owner, &member, "moderator").await;
    let channel = app
        .call(
            Method::POST,
            &format!("/api/v1/groups/{id}/channels"),
            &owner.token,
            Some(json!({"name": "desk", "visibility": "private"})),
        )
        .await;
    assert_eq!(channel.status, StatusCode::CREATED);
    let kicked = app
        .call(
            Method::DELETE,
            &format!("/api/v1/groups/{id}/members/{}", member.id),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(kicked.status, StatusCode::NO_CONTENT);
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/groups/{id}"),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let expected = [
        pb::GroupCreated::EVENT_TYPE,
        pb::MemberJoined::EVENT_TYPE,
        pb::MemberRoleChanged::EVENT_TYPE,
        pb::ChannelCreated::EVENT_TYPE,
        pb::ChannelMemberAdded::EVENT_TYPE,
        pb::MemberKicked::EVENT_TYPE,
        pb::GroupDeleted::EVENT_TYPE,
    ];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < expected.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => message,
            Ok(Err(err)) => {
                eprintln!("transient consumer error: {err}");
                continue;
            }
            Err(_) => panic!("only {seen:?} arrived"),
        };
        assert_eq!(message.key(), Some(id.as_bytes()));
        let event =
            pb::GroupsEvent::decode(message.payload().expect("payload")).expect("GroupsEvent");
        let meta = event.meta.expect("meta");
        assert_eq!(meta.aggregate_id, id);
        assert_eq!(event.actor_id, owner.id);
        if let Some(pb::groups_event::Payload::MemberKicked(kicked)) = &event.payload {
            assert_eq!(kicked.user_id, member.id);
        }
        seen.push(meta.event_type);
    }
    assert_eq!(seen, expected);
    drop(consumer);
    app.cleanup().await;
}
