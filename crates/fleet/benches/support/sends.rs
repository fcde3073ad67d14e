//! Sends through the gateway's REST API, and the same transaction run by
//! pgbench straight on Postgres: the send load tools' two sides.

use messenger_platform::Config;
use messenger_proto::messages::v1::{MessageCreated, MessagesEvent};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who sends, and where: the members' tokens and the group's channels,
/// shared with every sending task.
pub struct Senders {
    pub members: Arc<Vec<String>>,
    pub channels: Arc<Vec<String>>,
}

/// Each member sends, waits for the answer, sends again, until `phase`
/// ends. Returns the number of sends, the time taken and each latency.
pub async fn run_closed_loop(
    http: &reqwest::Client,
    base: &str,
    senders: &Senders,
    phase: Duration,
) -> anyhow::Result<(usize, Duration, Vec<Duration>)> {
    let started = Instant::now();
    let deadline = started + phase;
    let mut clients = Vec::new();
    for client in 0..senders.members.len() {
        let (http, base, members, channels) = (
            http.clone(),
            base.to_owned(),
            senders.members.clone(),
            senders.channels.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = client;
            while Instant::now() < deadline {
                let channel = &channels[i % channels.len()];
                let sent_at = Instant::now();
                send(&http, &base, &members[client], channel, i).await?;
                latencies.push(sent_at.elapsed());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await??);
    }
    Ok((latencies.len(), started.elapsed(), latencies))
}

/// Sends at a fixed rate whatever the answers take.
pub async fn run_paced(
    http: &reqwest::Client,
    base: &str,
    senders: &Senders,
    rate: f64,
    phase: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let mut sends = Vec::new();
    let mut i = 0usize;
    loop {
        let due = started + interval.mul_f64(i as f64);
        if due >= started + phase {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let (http, base, members, channels) = (
            http.clone(),
            base.to_owned(),
            senders.members.clone(),
            senders.channels.clone(),
        );
        sends.push(tokio::spawn(async move {
            let member = &members[i % members.len()];
            send(&http, &base, member, &channels[i % channels.len()], i).await?;
            anyhow::Ok(due.elapsed())
        }));
        i += 1;
    }
    let mut latencies = Vec::with_capacity(sends.len());
    for send in sends {
        latencies.push(send.await??);
    }
    Ok(latencies)
}

pub async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    channel: &str,
    i: usize,
) -> anyhow::Result<()> {
    http.post(format!("{base}/api/v1/channels/{channel}/messages"))
        .bearer_auth(token)
        .json(&json!({"content": format!("benchmark message number {i}, about sixty characters long")}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// The transaction a send commits, as pgbench script; returns its rate.
pub fn pgbench(config: &Config, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join(format!("send-bench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        format!(
            r#"\set ch random(10, 25)
\set author random(10, 25)
BEGIN;
WITH counter AS (
    INSERT INTO channel_state (channel_id, group_id, last_seq)
    VALUES (('00000000-0000-0000-0000-0000000000' || :ch)::uuid, '00000000-0000-0000-0000-0000000000ff', 1)
    ON CONFLICT (channel_id) DO UPDATE SET last_seq = channel_state.last_seq + 1, updated_at = now()
    RETURNING last_seq
  ),
  author_read AS (
    INSERT INTO message_reads (channel_id, user_id, last_read_seq, last_message_id)
    SELECT ('00000000-0000-0000-0000-0000000000' || :ch)::uuid,
           ('00000000-0000-0000-0000-0000000001' || :author)::uuid, counter.last_seq, gen_random_uuid()
    FROM counter
    ON CONFLICT (channel_id, user_id) DO UPDATE
      SET last_read_seq = EXCLUDED.last_read_seq, last_message_id = EXCLUDED.last_message_id, updated_at = now()
      WHERE message_reads.last_read_seq < EXCLUDED.last_read_seq
  )
INSERT INTO messages (id, channel_id, group_id, seq, author_id, kind, content, mention_ids, created_at)
  SELECT gen_random_uuid(), ('00000000-0000-0000-0000-0000000000' || :ch)::uuid,
         '00000000-0000-0000-0000-0000000000ff', counter.last_seq,
         ('00000000-0000-0000-0000-0000000001' || :author)::uuid, 'text',
         'benchmark message number 12345, about sixty characters long', '{{}}', now()
  FROM counter
  RETURNING seq;
INSERT INTO outbox (event_id, topic, partition_key, event_type, payload)
  VALUES (gen_random_uuid(), '{topic}', 'key', '{event_type}',
          decode(repeat('ab', 300), 'hex'));
COMMIT;
"#,
            topic = MessagesEvent::TOPIC,
            event_type = MessageCreated::EVENT_TYPE,
        ),
    )?;
    let db = &config.database;
    let output = std::process::Command::new("pgbench")
        .env("PGOPTIONS", "-c search_path=messages,public")
        .env("PGPASSWORD", db.password.expose())
        .args(["-h", &db.host, "-p", &db.port.to_string(), "-U", &db.user])
        .args(["-n", "-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(&db.name)
        .output()?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|tps| tps.parse().ok())
        })
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output: {stdout}"))
}
