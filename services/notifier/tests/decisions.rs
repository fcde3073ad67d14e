//! What the notifier decides between queuing a push and sending it, with
//! the real binary: a newer message of a conversation retires an older
//! push still waiting for its retry (they share a topic, and a late retry
//! must not replace the newer notification); a push whose conversation was
//! read before it went out is not sent; under a `mentions` level a reply
//! arriving with a mention does not reach the screen; and a device that
//! refuses every push is dropped.

// Runtime SQL is fine here: the test reads the notifier's rows directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Note, child_env, device, produce, pushes, read_moved, start};
use messenger_proto::messages::v1::NotificationKind;
use messenger_testkit::push_service::PushService;
use messenger_testkit::{TestEnv, eventually};
use std::time::Duration;
use uuid::Uuid;

async fn states(pool: &sqlx::PgPool, user: Uuid) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT seq, state FROM deliveries WHERE user_id = $1 ORDER BY seq")
        .bind(user)
        .fetch_all(pool)
        .await
        .expect("rows")
}

#[tokio::test]
async fn newer_messages_and_reads_retire_unsent_pushes() {
    let service = PushService::start();
    let test = TestEnv::new().await.expect("test environment");
    let (notifier, pool) = start(&test, &child_env(&test, 0)).await;
    // The device's push service is busy: 429, Retry-After 7 s.
    let user = Uuid::now_v7();
    device(&pool, &service, user, "/busy").await;
    let channel = Uuid::now_v7();

    produce(&test, &[Note::direct(user, channel, 1).record()]).await;
    eventually(Duration::from_secs(30), || async {
        let tried: Option<(String, i32, Option<String>)> =
            sqlx::query_as("SELECT state, attempts, last_error FROM deliveries WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&pool)
                .await
                .ok()?;
        // Tried once; the answer was 429: it waits out Retry-After (7 s).
        let (state, attempts, error) = tried?;
        (state == "sending" && attempts == 1 && error.is_some()).then_some(())
    })
    .await
    .expect("the first push waits for its retry");

    // A newer message: the older push is retired, the newer one waits.
    produce(&test, &[Note::direct(user, channel, 2).record()]).await;
    eventually(Duration::from_secs(30), || async {
        (states(&pool, user).await == [(1, "superseded".to_owned()), (2, "sending".to_owned())])
            .then_some(())
    })
    .await
    .expect("the older push was superseded");

    // Read before the retry: it is not sent.
    produce(&test, &[read_moved(user, channel, 2)]).await;
    eventually(Duration::from_secs(30), || async {
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT seq, state, last_error FROM deliveries WHERE user_id = $1 AND seq = 2",
        )
        .bind(user)
        .fetch_all(&pool)
        .await
        .ok()?;
        (rows == [(2, "superseded".to_owned(), Some("read".to_owned()))]).then_some(())
    })
    .await
    .expect("the read push was not sent");
    let attempts: Vec<(i64, i32)> =
        sqlx::query_as("SELECT seq, attempts FROM deliveries WHERE user_id = $1 ORDER BY seq")
            .bind(user)
            .fetch_all(&pool)
            .await
            .expect("attempts");
    // The second lease of message 2 found it read and ended it without a
    // request (the only way to `superseded` with reason `read`).
    assert_eq!(attempts, [(1, 1), (2, 2)]);
    notifier.kill();
    pool.close().await;
    test.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_mentions_level_shows_the_mention_not_the_reply_after_it() {
    let service = PushService::start();
    let test = TestEnv::new().await.expect("test environment");
    // A grace long enough for both notifications to come due together.
    let (notifier, pool) = start(&test, &child_env(&test, 1500)).await;
    let user = Uuid::now_v7();
    device(&pool, &service, user, "/push/phone").await;
    sqlx::query("INSERT INTO settings (user_id, level) VALUES ($1, 'mentions')")
        .bind(user)
        .execute(&pool)
        .await
        .expect("settings");
    let channel = Uuid::now_v7();
    let mention = Note {
        kind: NotificationKind::Mention,
        ..Note::direct(user, channel, 1)
    };
    let reply = Note {
        kind: NotificationKind::Reply,
        ..Note::direct(user, channel, 2)
    };
    produce(&test, &[mention.record(), reply.record()]).await;
    let sent = eventually(Duration::from_secs(30), || async {
        let sent = pushes(&service, "/push/phone").await;
        (!sent.is_empty()).then_some(sent)
    })
    .await
    .expect("a push");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent_after = pushes(&service, "/push/phone").await;
    assert_eq!(sent_after.len(), 1, "one push for the two: {sent_after:?}");
    assert_eq!(
        sent[0].1,
        mention.message.to_string(),
        "the mention is shown"
    );
    notifier.kill();
    pool.close().await;
    test.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_device_that_refuses_five_pushes_in_a_row_is_dropped() {
    let service = PushService::start();
    let test = TestEnv::new().await.expect("test environment");
    let (notifier, pool) = start(&test, &child_env(&test, 0)).await;
    let user = Uuid::now_v7();
    let id = device(&pool, &service, user, "/push/stranger").await;
    // Keys of another browser: the push service cannot decrypt, answers 400.
    sqlx::query("UPDATE subscriptions SET auth = 'AAAAAAAAAAAAAAAAAAAAAA' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .expect("keys");
    let records: Vec<_> = (0..4)
        .map(|_| Note::direct(user, Uuid::now_v7(), 1).record())
        .collect();
    produce(&test, &records).await;
    eventually(Duration::from_secs(30), || async {
        let failed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE user_id = $1 AND state = 'failed'",
        )
        .bind(user)
        .fetch_one(&pool)
        .await
        .ok()?;
        (failed == 4).then_some(())
    })
    .await
    .expect("four pushes refused");
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(kept, 1, "four refusals keep the device");
    produce(&test, &[Note::direct(user, Uuid::now_v7(), 1).record()]).await;
    eventually(Duration::from_secs(30), || async {
        let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .ok()?;
        (kept == 0).then_some(())
    })
    .await
    .expect("the fifth refusal drops the device");
    notifier.kill();
    pool.close().await;
    test.cleanup().await.expect("cleanup");
}
