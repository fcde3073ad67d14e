//! A notifier killed (SIGKILL) in the middle of a batch of pushes shows no
//! second notification after it restarts: the pushes it had sent but not
//! recorded are sent again when their lease runs out, under the same
//! collapse topic and with the same message, so each device still shows
//! one notification per conversation; and a replay of the events it had
//! already decided sends nothing.
//!
//! The real binary runs as a child process against the real Postgres,
//! broker and OpenBao; the test plays the messages service by producing
//! `NotificationCreated` records, and the device through the push service
//! on loopback.

// Runtime SQL is fine here: the test reads the notifier's rows directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Note, child_env, device, produce, pushes, start};
use messenger_testkit::push_service::PushService;
use messenger_testkit::{TestEnv, eventually};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn a_notifier_killed_mid_batch_shows_no_second_notification() {
    let service = PushService::start();
    let test = TestEnv::new().await.expect("test environment");
    let env = child_env(&test, 0);
    let (first, pool) = start(&test, &env).await;

    // One device, answered slowly: the kill lands while pushes are in
    // flight (recorded by the push service, not yet by the notifier).
    let user = Uuid::now_v7();
    let path = "/slow/device";
    device(&pool, &service, user, path).await;
    let conversations: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let records: Vec<_> = conversations
        .iter()
        .map(|channel| Note::direct(user, *channel, 1).record())
        .collect();
    produce(&test, &records).await;
    eventually(Duration::from_secs(60), || async {
        (pushes(&service, path).await.len() >= 3).then_some(())
    })
    .await
    .expect("three pushes in flight");
    // The push service holds each answer 4 s: all three are unanswered.
    first.kill();
    let unrecorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'sending'")
            .fetch_one(&pool)
            .await
            .expect("count");
    let states: Vec<(String, i32, Option<String>)> =
        sqlx::query_as("SELECT state, attempts, last_error FROM deliveries")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert_eq!(
        unrecorded, 3,
        "the kill came before the outcomes were recorded: {states:?}"
    );

    // Restarted, it sends them again once their lease is over.
    let second = common::Notifier::start(&env);
    eventually(Duration::from_secs(60), || async {
        let delivered: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                .fetch_one(&pool)
                .await
                .ok()?;
        (delivered == 3).then_some(())
    })
    .await
    .expect("the pushes were delivered after the restart");
    let sent = pushes(&service, path).await;
    let mut by_topic: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (topic, message) in &sent {
        by_topic
            .entry(topic.clone())
            .or_default()
            .insert(message.clone());
    }
    assert_eq!(
        by_topic.len(),
        3,
        "one notification per conversation: {sent:?}"
    );
    assert!(
        by_topic.values().all(|messages| messages.len() == 1),
        "a resent push carries the same message under the same topic: {sent:?}"
    );
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM deliveries")
        .fetch_all(&pool)
        .await
        .expect("attempts");
    assert_eq!(attempts, vec![2, 2, 2]);

    // The events replayed (a consumer starting over): nothing new is sent.
    produce(&test, &records).await;
    let after_replay = sent.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pushes(&service, path).await.len(), after_replay);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM pending WHERE decided_at IS NULL")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(queued, 0);
    second.kill();
    pool.close().await;
    test.cleanup().await.expect("cleanup");
}
