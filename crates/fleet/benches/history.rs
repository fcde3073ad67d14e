//! History pages in one very large channel, through the messages service's
//! gRPC API (authorization included), against a primary-key GetMessage
//! baseline measured in the same run through the same path.
//!
//!     ./dev infra && cargo bench -p messenger-fleet --bench history [-- MESSAGES]
//!
//! Seeds MESSAGES rows (default 10,000,000) into one channel straight into
//! the `messages` table (sending them through the API would take hours and
//! measure sending), rebuilds the secondary indexes, runs ANALYZE, then
//! times each page 30 times with limit 50.

// Runtime SQL is fine here: seeds rows straight into the table (clippy.toml).
#![allow(clippy::disallowed_methods)]

use messenger_platform::Config;
use messenger_proto::groups::v1 as groups_pb;
use messenger_proto::groups::v1::groups_service_client::GroupsServiceClient;
use messenger_proto::messages::v1 as pb;
use messenger_proto::messages::v1::messages_service_client::MessagesServiceClient;
use messenger_testkit::TestEnv;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use support::InProcessFleet;
use tonic::transport::Channel;
use uuid::Uuid;

mod support;

const RUNS: usize = 30;

/// Rows per INSERT … SELECT while seeding.
const BATCH: i64 = 500_000;

type Messages = MessagesServiceClient<Channel>;

/// The one large channel, and the group member who reads it.
struct History {
    owner: String,
    group_id: String,
    channel: String,
    total: i64,
}

impl History {
    fn page(&self, before: String, after: String, around: String) -> pb::ListMessagesRequest {
        pb::ListMessagesRequest {
            actor_id: self.owner.clone(),
            channel_id: self.channel.clone(),
            before,
            after,
            around,
            limit: 50,
        }
    }
}

/// The id seeded for `seq`: ids increase with seq, like the UUIDv7 ids the
/// service assigns.
fn id_at(seq: i64) -> String {
    format!("00000000-0000-7000-8000-{seq:012x}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: i64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(10_000_000);
    let mut env = TestEnv::new().await?;
    env.config.features.kafka_enabled = false;
    // The seeded users have no sessions, so no access tokens: the services
    // trust actor_id here (a debug-only setting; what is measured is the
    // history query, not the token check).
    env.config.features.debug_enabled = true;
    env.config.grpc.user_tokens = false;
    let fleet = InProcessFleet::start(&env.config).await?;
    let (mut groups, mut messages) = connect(&fleet.config).await?;
    let history = create_channel(&mut groups, total).await?;
    let pool = env.pool("messages").await?;
    seed(&pool, &history).await?;
    measure(&mut messages, &history).await?;
    pool.close().await;
    fleet.stop().await?;
    env.cleanup().await?;
    Ok(())
}

/// Clients of the groups and messages services, once the latter answers.
async fn connect(config: &Config) -> anyhow::Result<(GroupsServiceClient<Channel>, Messages)> {
    let groups = GroupsServiceClient::new(
        Channel::from_shared(config.grpc.groups.url.clone())?.connect_lazy(),
    );
    let mut messages = MessagesServiceClient::new(
        Channel::from_shared(config.grpc.messages.url.clone())?.connect_lazy(),
    );
    while messages.info(pb::InfoRequest {}).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((groups, messages))
}

/// A new group; its default channel is the one seeded.
async fn create_channel(
    groups: &mut GroupsServiceClient<Channel>,
    total: i64,
) -> anyhow::Result<History> {
    let owner = Uuid::now_v7().to_string();
    let group = groups
        .create_group(groups_pb::CreateGroupRequest {
            actor_id: owner.clone(),
            name: "history bench".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(History {
        owner,
        group_id: group.id,
        channel: group.default_channel_id,
        total,
    })
}

async fn seed(pool: &PgPool, history: &History) -> anyhow::Result<()> {
    let started = Instant::now();
    sqlx::query("INSERT INTO channel_state (channel_id, group_id, last_seq) VALUES ($1::uuid, $2::uuid, $3)")
        .bind(&history.channel)
        .bind(&history.group_id)
        .bind(history.total)
        .execute(pool)
        .await?;
    // Secondary indexes are rebuilt once after the load: much faster than
    // maintaining them row by row.
    sqlx::query("DROP INDEX messages_search, messages_group")
        .execute(pool)
        .await?;
    insert_messages(pool, history, started).await?;
    eprintln!(
        "  rebuilding indexes and analyzing ({:.0?})",
        started.elapsed()
    );
    sqlx::query("CREATE INDEX messages_group ON messages (group_id, id)")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE INDEX messages_search ON messages USING gin (search) WHERE deleted_at IS NULL",
    )
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE messages").execute(pool).await?;
    eprintln!("  ready ({:.0?})", started.elapsed());
    Ok(())
}

/// Seqs 1 to `total`, BATCH rows per statement, one second apart in time.
async fn insert_messages(pool: &PgPool, history: &History, started: Instant) -> anyhow::Result<()> {
    let total = history.total;
    let mut done = 0;
    while done < total {
        let upto = (done + BATCH).min(total);
        // Ids as `id_at` spells them.
        sqlx::query(
            "INSERT INTO messages (id, channel_id, group_id, seq, author_id, kind, content, created_at) \
             SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, $1::uuid, $2::uuid, \
                    i, $3::uuid, 'text', 'message number ' || i, \
                    now() - make_interval(secs => ($4 - i)::double precision) \
             FROM generate_series($5::bigint, $6::bigint) AS i",
        )
        .bind(&history.channel)
        .bind(&history.group_id)
        .bind(&history.owner)
        .bind(total)
        .bind(done + 1)
        .bind(upto)
        .execute(pool)
        .await?;
        done = upto;
        eprintln!(
            "  seeded {done}/{total} messages ({:.0?})",
            started.elapsed()
        );
    }
    Ok(())
}

/// Times every request RUNS times and prints a row for each.
async fn measure(messages: &mut Messages, history: &History) -> anyhow::Result<()> {
    let total = history.total;
    println!(
        "| request ({total} messages in one channel, limit 50, {RUNS} runs) | first seq | p50 | p95 | max |"
    );
    println!("|---|---|---|---|---|");
    measure_get_message(messages, history).await?;
    measure_pages(messages, history).await?;
    measure_group_offset(messages, history).await
}

/// The baseline: one message by its primary key, through the same path.
async fn measure_get_message(messages: &mut Messages, history: &History) -> anyhow::Result<()> {
    let total = history.total;
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        messages
            .get_message(pb::GetMessageRequest {
                actor_id: history.owner.clone(),
                message_id: id_at(total / 2),
            })
            .await?;
        samples.push(t.elapsed());
    }
    row(
        "baseline: GetMessage by primary key",
        total / 2,
        &mut samples,
    );
    Ok(())
}

/// Pages at both ends and in the middle of the channel.
async fn measure_pages(messages: &mut Messages, history: &History) -> anyhow::Result<()> {
    let total = history.total;
    let cases = [
        (
            "latest page",
            history.page(String::new(), String::new(), String::new()),
        ),
        (
            "before the middle",
            history.page(id_at(total / 2), String::new(), String::new()),
        ),
        (
            "after the 100th (oldest end)",
            history.page(String::new(), id_at(100), String::new()),
        ),
        (
            "around 90 %",
            history.page(String::new(), String::new(), id_at(total / 10 * 9)),
        ),
    ];
    for (label, request) in cases {
        let mut samples = Vec::new();
        let mut first = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let page = messages.list_messages(request.clone()).await?.into_inner();
            samples.push(t.elapsed());
            anyhow::ensure!(page.messages.len() == 50, "a full page");
            first = page.messages[0].seq as i64;
        }
        row(label, first, &mut samples);
    }
    Ok(())
}

/// The original offset-paged group API, at its largest offset.
async fn measure_group_offset(messages: &mut Messages, history: &History) -> anyhow::Result<()> {
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        messages
            .list_group_messages(pb::ListGroupMessagesRequest {
                actor_id: history.owner.clone(),
                group_id: history.group_id.clone(),
                limit: 50,
                offset: 10_000,
            })
            .await?;
        samples.push(t.elapsed());
    }
    row(
        "original API, offset 10,000 (its maximum)",
        history.total - 10_000,
        &mut samples,
    );
    Ok(())
}

fn row(name: &str, first: i64, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | {first} | {} | {} | {} |",
        ms(p(0.5)),
        ms(p(0.95)),
        ms(p(1.0))
    );
}
