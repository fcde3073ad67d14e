//! The hostile insider with a valid service certificate but no user: every
//! method the callers' table marks user-scoped must refuse a call without
//! the user's access token, or with a forged, expired or revoked one, and
//! take the acting user from the token, never from a request field.

use crate::helpers::{TestApp, token};
use crate::insiders::{call_as, issue, methods_of, require_mtls, services};
use messenger_platform::auth::{Principal, TokenSigner};
use messenger_platform::callers::{self, Admits, Caller, Scope};
use messenger_platform::config::Secret;
use messenger_platform::grpc::lazy_channel;
use messenger_platform::mtls::Transport;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tonic::Code;
use uuid::Uuid;

/// A caller the table lets through the certificate check of `path`, and
/// that has no user-free access to it.
fn admitted_caller(path: &str) -> Caller {
    let own_work: &[Caller] = match callers::scope(path) {
        Some(Scope::UserOrOwnWork(own)) => own,
        _ => &[],
    };
    match callers::admits(path).expect("in the table") {
        Admits::Only(allowed) => *allowed
            .iter()
            .find(|caller| !own_work.contains(caller))
            .expect("a caller without own work"),
        Admits::AnyIdentity | Admits::Anyone => Caller::Gateway,
    }
}

fn is_user_scoped(path: &str) -> bool {
    matches!(
        callers::scope(path),
        Some(Scope::User | Scope::UserOrOwnWork(_))
    )
}

/// The user's id and session from an auth response.
fn principal_of(auth: &serde_json::Value) -> Principal {
    let claims = token(auth);
    let payload = claims.split('.').nth(1).expect("payload");
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    let claims: serde_json::Value = serde_json::from_slice(&raw).expect("claims");
    Principal {
        user_id: claims["sub"].as_str().expect("sub").parse().expect("uuid"),
        session_id: claims["sid"].as_str().expect("sid").parse().expect("uuid"),
    }
}

#[tokio::test]
async fn every_user_scoped_method_refuses_missing_forged_expired_and_revoked_tokens() {
    let app = TestApp::spawn().await;
    require_mtls(&app);
    let alive = app.register("holder").await;
    let valid = token(&alive);
    let who = principal_of(&alive);

    // Signed with the fleet's keys, but an hour past its expiry.
    let signer = TokenSigner::from_config(&app.config.auth).expect("test keys");
    let expired = signer
        .issue_for(who, time::Duration::hours(-1))
        .expect("sign")
        .token;
    // Same kid and claims, another private key.
    let mut forger_auth = app.config.auth.clone();
    forger_auth.jwt_keys = Secret::new("test:a-forger-who-guessed-the-kid-but-not-the-key");
    let forged = TokenSigner::from_config(&forger_auth)
        .expect("forger keys")
        .issue(who)
        .expect("sign")
        .token;
    // A session that logged out: its access token is deny-listed.
    let ended = app.register("leaver").await;
    let revoked = token(&ended);
    let logout = app
        .post(
            "/api/v1/auth/logout",
            json!({"refresh_token": ended["refresh_token"]}),
        )
        .await;
    assert!(logout.status.is_success(), "{}", logout.body);

    let bad: [(&str, Option<&str>, &str); 4] = [
        ("missing", None, "acts for a user"),
        ("forged", Some(&forged), "signature or claims are invalid"),
        ("expired", Some(&expired), "has expired"),
        ("revoked", Some(&revoked), "session has ended"),
    ];
    let mut transports: HashMap<Caller, Transport> = HashMap::new();
    for caller in Caller::ALL {
        let issued = issue(&app.config, &app.config.grpc.mtls.pki_mount, caller, 300).await;
        let transport = Transport::client(
            &app.config.grpc.mtls.domain,
            &issued.ca_chain_pem,
            Some(&issued),
        )
        .expect("transport");
        transports.insert(caller, transport);
    }
    let mut checked = 0;
    for (target, url, service) in services(&app.config) {
        for path in methods_of(service)
            .into_iter()
            .filter(|path| is_user_scoped(path))
        {
            let caller = admitted_caller(&path);
            let transport = &transports[&caller];
            let channel =
                || lazy_channel(transport, target, &url, Duration::from_secs(5)).expect("channel");
            for (kind, presented, says) in &bad {
                let outcome = call_as(channel(), &path, *presented).await;
                let Err(status) = &outcome else {
                    panic!("{path} by {caller} with a {kind} token was served");
                };
                assert_eq!(
                    status.code(),
                    Code::Unauthenticated,
                    "{path} {kind}: {status:?}"
                );
                assert!(status.message().contains(says), "{path} {kind}: {status:?}");
                checked += 1;
            }
            // The control: the live user's token gets past the door (the
            // empty request then fails the method's own checks, or not).
            let outcome = call_as(channel(), &path, Some(&valid)).await;
            if let Err(status) = &outcome {
                assert_ne!(status.code(), Code::Unauthenticated, "{path}: {status:?}");
            }
        }
    }
    assert!(checked >= 4 * 45, "only {checked} refusals checked");
    app.cleanup().await;
}

#[tokio::test]
async fn the_acting_user_comes_from_the_token_not_the_request() {
    use messenger_proto::groups::v1 as pb;
    let app = TestApp::spawn().await;
    let mallory = app.register("mallory").await;
    let victim = principal_of(&app.register("victim").await);
    let transport = messenger_testkit::transport_as(&app.config, Caller::Gateway)
        .await
        .expect("gateway identity");
    let channel = lazy_channel(
        &transport,
        Caller::Groups,
        &app.config.grpc.groups.url,
        Duration::from_secs(5),
    )
    .expect("channel");
    let mut groups = pb::groups_service_client::GroupsServiceClient::new(channel);
    let create = |actor: Uuid| {
        let mut request = tonic::Request::new(pb::CreateGroupRequest {
            actor_id: actor.to_string(),
            name: "Not mine".into(),
            ..Default::default()
        });
        let value = format!("Bearer {}", token(&mallory))
            .parse()
            .expect("metadata");
        request.metadata_mut().insert("authorization", value);
        request
    };
    let refused = groups
        .create_group(create(victim.user_id))
        .await
        .expect_err("acting as someone else");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("another user"), "{refused:?}");

    let own = principal_of(&mallory).user_id;
    let created = groups
        .create_group(create(own))
        .await
        .expect("acting as oneself")
        .into_inner();
    assert_eq!(created.created_by, own.to_string());
    app.cleanup().await;
}

#[tokio::test]
async fn the_key_set_is_published_and_verifies_issued_tokens() {
    let app = TestApp::spawn().await;
    let auth = app.register("reader").await;
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, reqwest::StatusCode::OK, "{}", jwks.body);
    assert_eq!(
        jwks.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=60")
    );
    let key = &jwks.body["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    // What another team would do: verify our token with the published key.
    let decoding =
        jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().expect("x")).expect("jwk");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[&app.config.auth.jwt_issuer]);
    let header = jsonwebtoken::decode_header(&token(&auth)).expect("header");
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    jsonwebtoken::decode::<serde_json::Value>(&token(&auth), &decoding, &validation)
        .expect("our token verifies with the published key");
    app.cleanup().await;
}
