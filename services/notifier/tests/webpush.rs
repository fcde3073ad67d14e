//! Web Push against a push service on loopback (tests/push_service.py,
//! run by `messenger_testkit::push_service`) that checks every request as
//! RFC 8030, 8291 and 8292 say and decrypts it with Mozilla's `http_ece`:
//! an implementation that is not ours.

use messenger_notifier::webpush::{
    MAX_PLAINTEXT, Outcome, Push, PushError, Subscription, Urgency, Vapid, WebPush,
};
use messenger_platform::egress::{Egress, EgressError, EgressPolicy, Forbidden};
use messenger_testkit::push_service::PushService;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn subscription(service: &PushService, path: &str) -> Subscription {
    Subscription {
        endpoint: service.endpoint(path),
        p256dh: service.p256dh.clone(),
        auth: service.auth.clone(),
    }
}

fn vapid() -> Vapid {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("a key");
    Vapid::from_pkcs8(pkcs8.as_ref(), "mailto:ops@example.com").expect("vapid")
}

/// The tests' push service lives on 127.0.0.1 over plain HTTP: allowed
/// here, as an operator would allow a relay on their own network.
fn loopback_allowed() -> EgressPolicy {
    EgressPolicy {
        allow_networks: vec!["127.0.0.1/32".parse().expect("cidr")],
        allow_plain_http: true,
        ..EgressPolicy::default()
    }
}

fn push<'a>(payload: &'a [u8], topic: Option<&'a str>) -> Push<'a> {
    Push {
        payload,
        ttl: Duration::from_secs(60),
        urgency: Urgency::High,
        topic,
    }
}

#[tokio::test]
async fn pushes_arrive_encrypted_signed_and_answered() {
    let service = PushService::start();
    let egress = Egress::new(loopback_allowed()).expect("egress");
    let sender = WebPush::new(egress, Arc::new(vapid()));
    let device = subscription(&service, "/push/device-1");

    let message = r#"{"title":"Ann in #general","body":"lunch? ☃"}"#;
    let sent = sender
        .send(&device, &push(message.as_bytes(), Some("c-general")))
        .await;
    assert_eq!(sent.expect("sent"), Outcome::Accepted);
    let largest = "x".repeat(MAX_PLAINTEXT);
    let sent = sender.send(&device, &push(largest.as_bytes(), None)).await;
    assert_eq!(sent.expect("sent"), Outcome::Accepted);

    let gone = sender
        .send(&subscription(&service, "/gone"), &push(b"hi", None))
        .await;
    assert_eq!(gone.expect("answered"), Outcome::Gone);
    let busy = sender
        .send(&subscription(&service, "/busy"), &push(b"hi", None))
        .await;
    assert_eq!(
        busy.expect("answered"),
        Outcome::Retry(Some(Duration::from_secs(7)))
    );
    // Encrypted for another browser's secret: the push service cannot read it.
    let mut stranger = subscription(&service, "/push/stranger");
    stranger.auth = "AAAAAAAAAAAAAAAAAAAAAA".to_owned();
    let refused = sender.send(&stranger, &push(b"hi", None)).await;
    assert_eq!(refused.expect("answered"), Outcome::Rejected(400));

    let received = service.received().await;
    assert_eq!(received.len(), 3, "{received:#?}");
    let first = &received[0];
    assert_eq!(first["plaintext"], message, "{first}");
    assert_eq!(first["topic"], "c-general");
    assert_eq!(first["urgency"], "high");
    assert_eq!(first["ttl"], 60);
    assert_eq!(first["vapid_key"], sender.vapid().public_key());
    assert_eq!(received[1]["plaintext"], largest.as_str());
    assert!(received[2]["error"].as_str().is_some(), "{}", received[2]);
}

#[tokio::test]
async fn bad_subscriptions_and_payloads_are_refused_before_sending() {
    let service = PushService::start();
    let sender = WebPush::new(
        Egress::new(loopback_allowed()).expect("egress"),
        Arc::new(vapid()),
    );
    let good = subscription(&service, "/push/device-2");

    let too_large = "x".repeat(MAX_PLAINTEXT + 1);
    let refused = sender.send(&good, &push(too_large.as_bytes(), None)).await;
    assert!(matches!(refused, Err(PushError::Payload(_))), "{refused:?}");
    let refused = sender.send(&good, &push(b"hi", Some("not a topic"))).await;
    assert!(matches!(refused, Err(PushError::Topic)), "{refused:?}");
    for broken in [
        Subscription {
            p256dh: "short".to_owned(),
            ..good.clone()
        },
        Subscription {
            auth: "c2hvcnQ".to_owned(),
            ..good.clone()
        },
        Subscription {
            endpoint: "not a url".to_owned(),
            ..good.clone()
        },
    ] {
        let refused = sender.send(&broken, &push(b"hi", None)).await;
        assert!(
            matches!(refused, Err(PushError::Subscription(_))),
            "{refused:?}"
        );
    }
    assert_eq!(service.received().await, Vec::<Value>::new());
}

#[tokio::test]
async fn endpoints_inside_the_network_are_refused_by_default() {
    let service = PushService::start();
    // The shipped policy: HTTPS only, no special-purpose address.
    let strict = WebPush::new(
        Egress::new(EgressPolicy::default()).expect("egress"),
        Arc::new(vapid()),
    );
    let plain = strict
        .send(&subscription(&service, "/push/d"), &push(b"hi", None))
        .await;
    assert!(
        matches!(plain, Err(PushError::Egress(EgressError::BadTarget(_)))),
        "{plain:?}"
    );
    let https = Subscription {
        endpoint: format!("https://127.0.0.1:{}/push/d", service.port),
        ..subscription(&service, "/push/d")
    };
    let refused = strict.send(&https, &push(b"hi", None)).await;
    assert!(
        matches!(
            refused,
            Err(PushError::Egress(EgressError::Refused {
                reason: Forbidden::Loopback,
                ..
            }))
        ),
        "{refused:?}"
    );
    let metadata = Subscription {
        endpoint: "https://169.254.169.254/latest/meta-data/".to_owned(),
        ..subscription(&service, "/push/d")
    };
    let refused = strict.send(&metadata, &push(b"hi", None)).await;
    assert!(
        matches!(
            refused,
            Err(PushError::Egress(EgressError::Refused {
                reason: Forbidden::Metadata,
                ..
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(service.received().await, Vec::<Value>::new());
}
