//! Groups, channels and members through the public API.

use crate::helpers::{TestApp, error_code, token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A signed-in user: their id and access token.
pub struct User {
    pub id: String,
    pub token: String,
}

pub async fn user(app: &TestApp, name: &str) -> User {
    let auth = app.register(name).await;
    User {
        id: auth["user"]["id"].as_str().expect("id").to_owned(),
        token: token(&auth),
    }
}

pub async fn create_group(app: &TestApp, owner: &User, name: &str, visibility: &str) -> Value {
    let created = app
        .call(
            Method::POST,
            "/api/v1/groups",
            &owner.token,
            Some(json!({"name": name, "description": "about", "visibility": visibility})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body
}

/// Adds `member` to the group with `role` (invited by the owner).
pub async fn add_member(app: &TestApp, group: &str, owner: &User, member: &User, role: &str) {
    let invited = app
        .call(
            Method::POST,
            &format!("/api/v1/groups/{group}/members"),
            &owner.token,
            Some(json!({"user_id": member.id})),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    if role != "member" {
        let promoted = app
            .call(
                Method::PATCH,
                &format!("/api/v1/groups/{group}/members/{}", member.id),
                &owner.token,
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
        assert_eq!(promoted.body["role"], role);
    }
}

#[tokio::test]
async fn a_group_is_created_found_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let owner = user(&app, "founder").await;
    let group = create_group(&app, &owner, "Rustaceans", "public").await;
    let id = group["id"].as_str().expect("id").to_owned();
    assert_eq!(group["my_role"], "owner");
    assert_eq!(group["kind"], "group");
    assert_eq!(group["member_count"], 1);
    assert!(group["default_channel_id"].is_string(), "{group}");

    let channels = app
        .get(&format!("/api/v1/groups/{id}/channels"), Some(&owner.token))
        .await;
    assert_eq!(channels.status, StatusCode::OK);
    assert_eq!(channels.body["channels"][0]["name"], "general");
    assert_eq!(channels.body["channels"][0]["is_default"], true);

    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{id}"),
            &owner.token,
            Some(json!({"name": "Rustaceans EU"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Rustaceans EU");
    assert_eq!(renamed.body["description"], "about");

    let mine = app.get("/api/v1/groups", Some(&owner.token)).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["groups"].as_array().map(Vec::len), Some(1));

    // Public search finds it by substring and by prefix, for anyone.
    let stranger = user(&app, "stranger").await;
    for query in ["aceans", "ru"] {
        let found = app
            .get(&format!("/api/v1/groups?q={query}"), Some(&stranger.token))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.body);
        assert_eq!(found.body["groups"][0]["id"], id.as_str(), "q={query}");
        assert_eq!(found.body["groups"][0]["my_role"], Value::Null);
    }

    // Name limits.
    for name in ["", "   ", &"x".repeat(101)] {
        let invalid = app
            .call(
                Method::POST,
                "/api/v1/groups",
                &owner.token,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{name:?}");
        assert_eq!(error_code(&invalid), "invalid_argument");
    }

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/groups/{id}"),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = app
        .get(&format!("/api/v1/groups/{id}"), Some(&owner.token))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

#[tokio::test]
async fn private_groups_and_channels_do_not_exist_for_outsiders() {
    let app = TestApp::spawn().await;
    let owner = user(&app, "keeper").await;
    let outsider = user(&app, "outsider").await;
    let group = create_group(&app, &owner, "Secret society", "private").await;
    let id = group["id"].as_str().expect("id");
    let channel = group["default_channel_id"].as_str().expect("channel");

    // Every route answers 404 to an outsider, exactly as for an unknown id.
    let unknown = uuid::Uuid::now_v7();
    for target in [id.to_owned(), unknown.to_string()] {
        for (method, path, body) in [
            (Method::GET, format!("/api/v1/groups/{target}"), None),
            (
                Method::PATCH,
                format!("/api/v1/groups/{target}"),
                Some(json!({"name": "x"})),
            ),
            (Method::DELETE, format!("/api/v1/groups/{target}"), None),
            (
                Method::GET,
                format!("/api/v1/groups/{target}/members"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/groups/{target}/members"),
                Some(json!({})),
            ),
            (
                Method::GET,
                format!("/api/v1/groups/{target}/channels"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/groups/{target}/channels"),
                Some(json!({"name": "x"})),
            ),
        ] {
            let response = app.call(method.clone(), &path, &outsider.token, body).await;
            assert_eq!(
                response.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                response.body
            );
        }
    }
    let hidden_channel = app
        .get(
            &format!("/api/v1/channels/{channel}"),
            Some(&outsider.token),
        )
        .await;
    assert_eq!(hidden_channel.status, StatusCode::NOT_FOUND);
    let search = app
        .get("/api/v1/groups?q=secret", Some(&outsider.token))
        .await;
    assert_eq!(search.body["groups"], json!([]));

    // A private channel inside a public group: hidden from members who are
    // not in it, until an admin adds them.
    let public = create_group(&app, &owner, "Open house", "public").await;
    let public_id = public["id"].as_str().expect("id");
    let joined = app
        .call(
            Method::POST,
            &format!("/api/v1/groups/{public_id}/members"),
            &outsider.token,
            None,
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let private_channel = app
        .call(
            Method::POST,
            &format!("/api/v1/groups/{public_id}/channels"),
            &owner.token,
            Some(json!({"name": "staff", "visibility": "private"})),
        )
        .await;
    assert_eq!(
        private_channel.status,
        StatusCode::CREATED,
        "{}",
        private_channel.body
    );
    let staff = private_channel.body["id"].as_str().expect("id");
    let path = format!("/api/v1/channels/{staff}");
    assert_eq!(
        app.get(&path, Some(&outsider.token)).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = app
        .get(
            &format!("/api/v1/groups/{public_id}/channels"),
            Some(&outsider.token),
        )
        .await;
    assert_eq!(
        listed.body["channels"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.body
    );
    let self_join = app
        .call(
            Method::POST,
            &format!("{path}/members"),
            &outsider.token,
            None,
        )
        .await;
    assert_eq!(self_join.status, StatusCode::NOT_FOUND);
    let added = app
        .call(
            Method::POST,
            &format!("{path}/members"),
            &owner.token,
            Some(json!({"user_id": outsider.id})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(
        app.get(&path, Some(&outsider.token)).await.status,
        StatusCode::OK
    );

    // Non-members of a public group see it but not its members.
    let passerby = user(&app, "passerby").await;
    let seen = app
        .get(
            &format!("/api/v1/groups/{public_id}"),
            Some(&passerby.token),
        )
        .await;
    assert_eq!(seen.status, StatusCode::OK);
    let members = app
        .get(
            &format!("/api/v1/groups/{public_id}/members"),
            Some(&passerby.token),
        )
        .await;
    assert_eq!(members.status, StatusCode::FORBIDDEN);
    app.cleanup().await;
}

#[tokio::test]
async fn roles_decide_who_may_act_on_whom() {
    let app = TestApp::spawn().await;
    let owner = user(&app, "owner").await;
    let admin = user(&app, "admin").await;
    let admin2 = user(&app, "admin2").await;
    let moderator = user(&app, "moderator").await;
    let member = user(&app, "member").await;
    let victim = user(&app, "victim").await;
    let group = create_group(&app, &owner, "Ranks", "private").await;
    let id = group["id"].as_str().expect("id").to_owned();
    add_member(&app, &id, &owner, &admin, "admin").await;
    add_member(&app, &id, &owner, &admin2, "admin").await;
    add_member(&app, &id, &owner, &moderator, "moderator").await;
    add_member(&app, &id, &owner, &member, "member").await;
    add_member(&app, &id, &owner, &victim, "member").await;
    let members = format!("/api/v1/groups/{id}/members");

    let expect = |status: StatusCode, response: &crate::helpers::Response, what: &str| {
        assert_eq!(response.status, status, "{what}: {}", response.body);
    };
    let patch = |who: &User, target: &User, body: Value| {
        app.call(
            Method::PATCH,
            format!("{members}/{}", target.id),
            who.token.clone(),
            Some(body),
        )
    };
    let kick = |who: &User, target: &User| {
        app.call(
            Method::DELETE,
            format!("{members}/{}", target.id),
            who.token.clone(),
            None,
        )
    };

    // Members do not manage anything.
    let r = app
        .call(
            Method::POST,
            &members,
            &member.token,
            Some(json!({"user_id": moderator.id})),
        )
        .await;
    expect(StatusCode::FORBIDDEN, &r, "member invites");
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/groups/{id}/channels"),
            &member.token,
            Some(json!({"name": "mine"})),
        )
        .await;
    expect(StatusCode::FORBIDDEN, &r, "member creates a channel");
    expect(
        StatusCode::FORBIDDEN,
        &kick(&member, &victim).await,
        "member kicks",
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{id}"),
            &member.token,
            Some(json!({"name": "Mine"})),
        )
        .await;
    expect(StatusCode::FORBIDDEN, &r, "member renames the group");

    // Moderators mute and kick members, never admins; they grant no roles.
    let until = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("timestamp");
    let r = patch(&moderator, &victim, json!({"muted_until": until})).await;
    expect(StatusCode::OK, &r, "moderator mutes a member");
    assert!(r.body["muted_until"].is_string());
    let r = patch(&moderator, &victim, json!({"muted_until": null})).await;
    expect(StatusCode::OK, &r, "moderator unmutes");
    assert_eq!(r.body["muted_until"], Value::Null);
    expect(
        StatusCode::FORBIDDEN,
        &patch(&moderator, &admin, json!({"muted_until": until})).await,
        "moderator mutes an admin",
    );
    expect(
        StatusCode::FORBIDDEN,
        &kick(&moderator, &admin).await,
        "moderator kicks an admin",
    );
    expect(
        StatusCode::FORBIDDEN,
        &patch(&moderator, &member, json!({"role": "moderator"})).await,
        "moderator promotes",
    );

    // Admins grant roles below admin, ban, manage channels; not their equals.
    expect(
        StatusCode::OK,
        &patch(&admin, &member, json!({"role": "moderator"})).await,
        "admin promotes to moderator",
    );
    expect(
        StatusCode::OK,
        &patch(&admin, &member, json!({"role": "member"})).await,
        "admin demotes",
    );
    expect(
        StatusCode::FORBIDDEN,
        &patch(&admin, &member, json!({"role": "admin"})).await,
        "admin makes an admin",
    );
    expect(
        StatusCode::FORBIDDEN,
        &patch(&admin, &admin2, json!({"role": "member"})).await,
        "admin demotes an admin",
    );
    expect(
        StatusCode::FORBIDDEN,
        &kick(&admin, &admin2).await,
        "admin kicks an admin",
    );
    expect(
        StatusCode::FORBIDDEN,
        &kick(&admin, &owner).await,
        "admin kicks the owner",
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/groups/{id}/channels"),
            &admin.token,
            Some(json!({"name": "news", "broadcast": true})),
        )
        .await;
    expect(StatusCode::CREATED, &r, "admin creates a channel");
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/groups/{id}"),
            &admin.token,
            None,
        )
        .await;
    expect(StatusCode::FORBIDDEN, &r, "admin deletes the group");
    let bans = format!("/api/v1/groups/{id}/bans/{}", victim.id);
    let r = app
        .call(
            Method::PUT,
            &bans,
            &admin.token,
            Some(json!({"reason": "spam"})),
        )
        .await;
    expect(StatusCode::NO_CONTENT, &r, "admin bans a member");
    let r = app.get(&members, Some(&victim.token)).await;
    expect(
        StatusCode::NOT_FOUND,
        &r,
        "banned user sees the private group",
    );
    let r = app
        .call(
            Method::POST,
            &members,
            &owner.token,
            Some(json!({"user_id": victim.id})),
        )
        .await;
    expect(StatusCode::CONFLICT, &r, "inviting a banned user");
    let r = app.call(Method::DELETE, &bans, &admin.token, None).await;
    expect(StatusCode::NO_CONTENT, &r, "admin unbans");
    let r = app.call(Method::DELETE, &bans, &admin.token, None).await;
    expect(StatusCode::NOT_FOUND, &r, "unbanning twice");

    // The owner acts on everyone, cannot leave without handing over, and
    // cannot stop being owner except by transferring.
    expect(
        StatusCode::OK,
        &patch(&owner, &admin2, json!({"role": "moderator"})).await,
        "owner demotes an admin",
    );
    let r = app.call(Method::DELETE, &members, &owner.token, None).await;
    expect(StatusCode::CONFLICT, &r, "owner leaves");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("transfer")
    );
    expect(
        StatusCode::CONFLICT,
        &patch(&owner, &owner, json!({"role": "admin"})).await,
        "owner demotes self",
    );
    expect(
        StatusCode::FORBIDDEN,
        &patch(&admin, &member, json!({"role": "owner"})).await,
        "admin transfers ownership",
    );
    let r = patch(&owner, &admin, json!({"role": "owner"})).await;
    expect(StatusCode::OK, &r, "owner transfers ownership");
    assert_eq!(r.body["role"], "owner");
    let r = app.call(Method::DELETE, &members, &owner.token, None).await;
    expect(StatusCode::NO_CONTENT, &r, "former owner leaves");

    // Bad input is a 400, unknown members a 404.
    expect(
        StatusCode::BAD_REQUEST,
        &patch(&admin, &member, json!({"role": "emperor"})).await,
        "unknown role",
    );
    expect(
        StatusCode::BAD_REQUEST,
        &patch(&admin, &member, json!({})).await,
        "empty change",
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("{members}/{}", uuid::Uuid::now_v7()),
            &admin.token,
            None,
        )
        .await;
    expect(StatusCode::NOT_FOUND, &r, "kicking a stranger");
    let r = app
        .call(
            Method::POST,
            &members,
            &admin.token,
            Some(json!({"user_id": uuid::Uuid::now_v7()})),
        )
        .await;
    expect(StatusCode::NOT_FOUND, &r, "inviting an unknown user");

    let listed = app
        .get(&format!("{members}?limit=2"), Some(&member.token))
        .await;
    expect(StatusCode::OK, &listed, "listing members");
    assert_eq!(listed.body["members"].as_array().map(Vec::len), Some(2));
    let cursor = listed.body["next_cursor"].as_str().expect("next page");
    let rest = app
        .get(
            &format!("{members}?limit=100&cursor={cursor}"),
            Some(&member.token),
        )
        .await;
    // The owner left and the victim was banned (unbanning does not bring
    // them back): admin (now owner), admin2, moderator and member remain.
    assert_eq!(
        rest.body["members"].as_array().map(Vec::len),
        Some(2),
        "{}",
        rest.body
    );
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_changes_leave_a_consistent_group() {
    let app = TestApp::spawn().await;
    let owner = user(&app, "boss").await;
    let first = user(&app, "first_admin").await;
    let second = user(&app, "second_admin").await;
    let group = create_group(&app, &owner, "Busy", "public").await;
    let id = group["id"].as_str().expect("id").to_owned();
    add_member(&app, &id, &owner, &first, "admin").await;
    add_member(&app, &id, &owner, &second, "admin").await;

    // Many users join at once: every join counts exactly once.
    let mut joiners = Vec::new();
    for n in 0..12 {
        joiners.push(user(&app, &format!("joiner{n}")).await);
    }
    let joins = joiners.iter().map(|joiner| {
        app.call(
            Method::POST,
            format!("/api/v1/groups/{id}/members"),
            joiner.token.clone(),
            None,
        )
    });
    for response in futures::future::join_all(joins).await {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    }

    // Two admins change the same members at the same time: one promotes,
    // the other kicks. Each change sees the other's result: a kick always
    // lands (admins outrank moderators), a promotion after it finds nobody.
    let changes = joiners.iter().flat_map(|target| {
        let path = format!("/api/v1/groups/{id}/members/{}", target.id);
        [
            app.call(
                Method::PATCH,
                path.clone(),
                first.token.clone(),
                Some(json!({"role": "moderator"})),
            ),
            app.call(Method::DELETE, path.clone(), second.token.clone(), None),
        ]
    });
    for (n, response) in futures::future::join_all(changes)
        .await
        .into_iter()
        .enumerate()
    {
        let allowed: &[StatusCode] = if n % 2 == 0 {
            &[StatusCode::OK, StatusCode::NOT_FOUND]
        } else {
            &[StatusCode::NO_CONTENT]
        };
        assert!(
            allowed.contains(&response.status),
            "{} {}",
            response.status,
            response.body
        );
    }
    let listed = app
        .get(
            &format!("/api/v1/groups/{id}/members?limit=100"),
            Some(&owner.token),
        )
        .await;
    let members = listed.body["members"].as_array().expect("members").clone();
    assert_eq!(members.len(), 3, "{}", listed.body);
    let group = app
        .get(&format!("/api/v1/groups/{id}"), Some(&owner.token))
        .await;
    assert_eq!(group.body["member_count"], 3, "{}", group.body);
    let owners = members.iter().filter(|m| m["role"] == "owner").count();
    assert_eq!(owners, 1);
    app.cleanup().await;
}
