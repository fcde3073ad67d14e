//! Authorize latency through the real gRPC path, warm and cold, against
//! baselines measured in the same run: a bare gRPC round trip to the same
//! server (`Info`) and a bare Redis `GET`.
//!
//!     ./dev infra && cargo bench -p messenger-groups --bench authorize [-- MEMBERS]
//!
//! One public group with MEMBERS members (default 2000) and a second,
//! private channel. Calls are sequential from one client, so each sample is
//! one request's latency, not a queueing artefact.
//! - warm: the (conversation, user) facts are in Redis under the current
//!   generation: one Lua round trip, no Postgres;
//! - cold, facts: the conversation's group is cached but this user's facts
//!   are not (first check of a user, or the first after a membership change):
//!   Redis lookup, Postgres query, Redis store;
//! - cold, conversation: nothing about the conversation is in Redis (after a
//!   Redis restart or eviction): Postgres only, then the group is remembered.
//!
//! Finally N concurrent callers measure warm throughput.
//!
//! The service runs as shipped, over mutual TLS (client certificates from
//! OpenBao's PKI engine, the callers' gate on every call) and verifying the
//! user's access token each call forwards (Ed25519 signature, expiry, the
//! Redis deny-list; public keys fetched from a users service the bench
//! starts). A second instance on the same database serves plaintext with no
//! gate and no token check (`grpc.user_tokens` off, a debug-only setting):
//! the warm and concurrent phases run against both, interleaved, as the
//! same-run baseline of what mTLS and token verification cost together.

use messenger_platform::CancellationToken;
use messenger_platform::auth::{Principal, TokenSigner};
use messenger_platform::callers::Caller;
use messenger_platform::grpc::lazy_channel;
use messenger_proto::groups::v1 as pb;
use messenger_proto::groups::v1::groups_service_client::GroupsServiceClient;
use messenger_testkit::TestEnv;
use redis::AsyncCommands;
use std::time::{Duration, Instant};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

const WARM_SAMPLES: usize = 5000;
const CONCURRENCY: usize = 16;
const THROUGHPUT_CALLS: usize = 20_000;

type Client = GroupsServiceClient<InterceptedService<Channel, Forward>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let members: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(2000);
    let mut env = TestEnv::new().await?;
    env.config.features.kafka_enabled = false;
    anyhow::ensure!(
        env.config.grpc.mtls.enabled,
        "needs OpenBao with the fleet's CA (./dev infra; VAULT_ADDR and VAULT_TOKEN set)"
    );
    let shutdown = CancellationToken::new();
    let users = start_users(&mut env.config, &shutdown).await?;
    // Authorize is asked inside a signed-in user's call, with that user's
    // token: the messages service asking about a sender or a mention.
    let asker = TokenSigner::from_config(&env.config.auth)?
        .issue(Principal {
            user_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
        })?
        .token;
    let (mut client, service) = start(&env.config, Some(&asker), &shutdown).await?;
    let mut plaintext_config = env.config.clone();
    plaintext_config.grpc.mtls.enabled = false;
    plaintext_config.grpc.user_tokens = false;
    plaintext_config.features.debug_enabled = true;
    let (mut plaintext, plaintext_service) = start(&plaintext_config, None, &shutdown).await?;
    let redis = redis::Client::open(env.config.redis.url())?;
    let mut redis = redis.get_multiplexed_async_connection().await?;
    // Members join through the baseline instance: the synthetic users have
    // no sessions of their own.
    let group = Group::populate(&mut plaintext, members).await?;

    println!("| measurement ({members} members) | n | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    baselines(&mut client, &mut plaintext, &mut redis).await?;
    cold(&mut client, &mut redis, &group).await?;
    let hot: Vec<&String> = group.users.iter().take(200).collect();
    for round in 1..=2 {
        warm(
            &mut plaintext,
            &group,
            &hot,
            &format!("plaintext, round {round}"),
        )
        .await?;
        warm(
            &mut client,
            &group,
            &hot,
            &format!("mTLS + token, round {round}"),
        )
        .await?;
    }
    throughput(&plaintext, &group, &hot, "plaintext").await?;
    throughput(&client, &group, &hot, "mTLS + token").await?;

    shutdown.cancel();
    service.await??;
    plaintext_service.await??;
    users.await??;
    env.cleanup().await?;
    Ok(())
}

/// The users service the verifiers fetch the signing keys from; points
/// `config` at it.
async fn start_users(
    config: &mut messenger_platform::Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    config.grpc.users.url = format!("http://{}", listener.local_addr()?);
    Ok(tokio::spawn(messenger_users::serve(
        config.clone(),
        listener,
        shutdown.clone(),
    )))
}

/// Adds the asking user's token to every call, as a service forwards it.
#[derive(Clone)]
struct Forward(Option<MetadataValue<Ascii>>);

impl Interceptor for Forward {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(bearer) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        Ok(request)
    }
}

/// A groups service on a free port and a client calling it as the gateway
/// does (with the gateway's certificate when the transport is mutual, and
/// `token` on every call).
async fn start(
    config: &messenger_platform::Config,
    token: Option<&str>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Client, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let service = tokio::spawn(messenger_groups::serve(
        config.clone(),
        listener,
        shutdown.clone(),
    ));
    let transport = messenger_testkit::transport_as(config, Caller::Gateway).await?;
    let channel = lazy_channel(&transport, Caller::Groups, &url, Duration::from_secs(5))?;
    let bearer = token
        .map(|token| format!("Bearer {token}").parse())
        .transpose()?;
    let mut client = GroupsServiceClient::with_interceptor(channel, Forward(bearer));
    while client.info(pb::InfoRequest {}).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((client, service))
}

/// The public group under test, its members and its private channel.
struct Group {
    users: Vec<String>,
    general: String,
    private: String,
}

impl Group {
    async fn populate(client: &mut Client, members: usize) -> anyhow::Result<Group> {
        let owner = Uuid::now_v7().to_string();
        let group = client
            .create_group(pb::CreateGroupRequest {
                actor_id: owner.clone(),
                name: "authorize bench".into(),
                visibility: pb::Visibility::Public.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let general = group.default_channel_id.clone();
        let started = Instant::now();
        let mut users = Vec::with_capacity(members);
        for i in 0..members {
            let user = Uuid::now_v7().to_string();
            client
                .join_group(pb::JoinGroupRequest {
                    actor_id: user.clone(),
                    group_id: group.id.clone(),
                })
                .await?;
            users.push(user);
            if (i + 1) % 500 == 0 {
                eprintln!(
                    "  joined {}/{members} members ({:.0?})",
                    i + 1,
                    started.elapsed()
                );
            }
        }
        let private = client
            .create_channel(pb::CreateChannelRequest {
                actor_id: owner.clone(),
                group_id: group.id.clone(),
                name: "staff".into(),
                visibility: pb::Visibility::Private.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(Group {
            users,
            general,
            private: private.id,
        })
    }
}

fn authorize(user: &str, conversation: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        user_id: user.to_owned(),
        conversation_id: conversation.to_owned(),
        action: pb::Action::PostMessage.into(),
        target_user_id: String::new(),
    }
}

/// What any call costs at least: a gRPC round trip and a Redis one.
async fn baselines(
    client: &mut Client,
    plaintext: &mut Client,
    redis: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<()> {
    for (transport, client) in [("plaintext", plaintext), ("mTLS", client)] {
        let mut samples = Vec::new();
        for _ in 0..WARM_SAMPLES {
            let t = Instant::now();
            client.info(pb::InfoRequest {}).await?;
            samples.push(t.elapsed());
        }
        row(
            &format!("baseline: gRPC round trip (Info), {transport}"),
            &mut samples,
        );
    }

    let probe = format!("groups:bench:{}", Uuid::now_v7());
    let _: () = redis.set(&probe, "x").await?;
    let mut samples = Vec::new();
    for _ in 0..WARM_SAMPLES {
        let t = Instant::now();
        let _: Option<String> = redis.get(&probe).await?;
        samples.push(t.elapsed());
    }
    let _: () = redis.del(&probe).await?;
    row("baseline: Redis GET round trip", &mut samples);
    Ok(())
}

async fn cold(
    client: &mut Client,
    redis: &mut redis::aio::MultiplexedConnection,
    group: &Group,
) -> anyhow::Result<()> {
    let general = &group.general;
    // Cold facts first: every member is checked once, for the first time.
    let mut samples = Vec::new();
    for user in &group.users {
        let t = Instant::now();
        let answer = client
            .authorize(authorize(user, general))
            .await?
            .into_inner();
        samples.push(t.elapsed());
        anyhow::ensure!(answer.allowed, "a member must be allowed to post");
    }
    row("Authorize, cold: user's facts not cached", &mut samples);

    let conv_key = format!("groups:conv:{general}");
    let mut samples = Vec::new();
    for user in group.users.iter().take(1000) {
        let _: () = redis.del(&conv_key).await?;
        let t = Instant::now();
        client.authorize(authorize(user, general)).await?;
        samples.push(t.elapsed());
    }
    row("Authorize, cold: conversation not cached", &mut samples);
    Ok(())
}

async fn warm(
    client: &mut Client,
    group: &Group,
    hot: &[&String],
    transport: &str,
) -> anyhow::Result<()> {
    // Re-warm (the cold loop stored only the group), then measure hits.
    for user in hot {
        client.authorize(authorize(user, &group.general)).await?;
    }
    let mut samples = Vec::new();
    for i in 0..WARM_SAMPLES {
        let t = Instant::now();
        let answer = client
            .authorize(authorize(hot[i % hot.len()], &group.general))
            .await?
            .into_inner();
        samples.push(t.elapsed());
        anyhow::ensure!(answer.allowed, "a member must be allowed to post");
    }
    row(
        &format!("Authorize, warm: allowed, {transport}"),
        &mut samples,
    );

    for user in hot {
        client.authorize(authorize(user, &group.private)).await?;
    }
    let mut samples = Vec::new();
    for i in 0..WARM_SAMPLES {
        let t = Instant::now();
        let answer = client
            .authorize(authorize(hot[i % hot.len()], &group.private))
            .await?
            .into_inner();
        samples.push(t.elapsed());
        anyhow::ensure!(
            !answer.allowed,
            "a non-member of a private channel must be denied"
        );
    }
    row(
        &format!("Authorize, warm: denied (private channel), {transport}"),
        &mut samples,
    );
    Ok(())
}

async fn throughput(
    client: &Client,
    group: &Group,
    hot: &[&String],
    transport: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut callers = Vec::new();
    for caller in 0..CONCURRENCY {
        let mut client = client.clone();
        let requests: Vec<_> = (0..THROUGHPUT_CALLS / CONCURRENCY)
            .map(|i| authorize(hot[(caller * 7 + i) % hot.len()], &group.general))
            .collect();
        callers.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(requests.len());
            for request in requests {
                let t = Instant::now();
                client.authorize(request).await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for caller in callers {
        samples.extend(caller.await??);
    }
    let elapsed = started.elapsed();
    row(
        &format!("Authorize, warm, {CONCURRENCY} concurrent callers, {transport}"),
        &mut samples,
    );
    println!(
        "\nwarm throughput with {CONCURRENCY} concurrent callers, {transport}: {:.0} checks/s\n",
        samples.len() as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn row(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | {} | {} | {} | {} | {} |",
        samples.len(),
        us(p(0.5)),
        us(p(0.9)),
        us(p(0.99)),
        us(p(1.0))
    );
}
