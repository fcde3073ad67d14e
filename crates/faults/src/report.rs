//! The verdict: every acknowledged send stored once, on Kafka once, pushed
//! to each member once and in order, and to nobody else.

use crate::ledger::{Entries, SendRecord};
use crate::world::World;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

pub struct Stored {
    pub channel: String,
    pub id: String,
    pub content: String,
}

/// One fault of the run, and when things happened.
pub struct Phase {
    pub label: String,
    pub outage: Duration,
    pub start: Instant,
    pub restart_at: Option<Instant>,
    pub recovery: Option<Duration>,
}

#[derive(Default)]
struct Row {
    sent: usize,
    acked: usize,
    stored: usize,
    delivered: usize,
    expected: usize,
    on_kafka: usize,
    lost: usize,
    duplicated: usize,
}

impl Row {
    fn add(&mut self, row: &Row) {
        self.sent += row.sent;
        self.acked += row.acked;
        self.stored += row.stored;
        self.delivered += row.delivered;
        self.expected += row.expected;
        self.on_kafka += row.on_kafka;
        self.lost += row.lost;
        self.duplicated += row.duplicated;
    }
}

pub struct Verdict {
    pub table: String,
    pub passed: bool,
}

pub fn judge(world: &World, entries: &Entries, stored: &[Stored], phases: &[Phase]) -> Verdict {
    let index = Index::new(world, entries, stored);
    let mut tally = Tally::new(phases.len());
    for send in &entries.sends {
        tally.count(&index, phases, send);
    }
    let Tally {
        rows,
        missing,
        mut problems,
        overlaps,
    } = tally;
    problems.extend(never_sent(entries, stored));
    problems.extend(missing_problems(world, &missing));
    problems.extend(order_problems(entries));
    problems.extend(leaks(world, entries));
    problems.extend(unrecovered(phases));

    let mut table = String::new();
    let total = write_phases(&mut table, phases, &rows);
    write_traffic(&mut table, world, entries, &index.events, overlaps);
    let passed = problems.is_empty() && total.lost == 0 && total.duplicated == 0;
    write_problems(&mut table, &problems);
    Verdict { table, passed }
}

/// The run's records, looked up by message while each send is judged.
struct Index<'a> {
    /// Stored copies per content (each send's content is its key).
    copies: HashMap<&'a str, Vec<&'a Stored>>,
    /// (pushed, refetched) copies per receiver and message.
    pushed: HashMap<(usize, &'a str), (usize, usize)>,
    /// Distinct Kafka event ids per message.
    events: HashMap<&'a str, HashSet<&'a str>>,
    /// Receivers that must get each channel's messages.
    readers: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(world: &'a World, entries: &'a Entries, stored: &'a [Stored]) -> Self {
        let mut copies: HashMap<&str, Vec<&Stored>> = HashMap::new();
        for message in stored {
            copies.entry(&message.content).or_default().push(message);
        }
        let mut pushed: HashMap<(usize, &str), (usize, usize)> = HashMap::new();
        for delivery in &entries.deliveries {
            let copies = pushed
                .entry((delivery.receiver, &delivery.message_id))
                .or_default();
            if delivery.refetched {
                copies.1 += 1;
            } else {
                copies.0 += 1;
            }
        }
        let mut events: HashMap<&str, HashSet<&str>> = HashMap::new();
        for record in &entries.kafka {
            events
                .entry(&record.message_id)
                .or_default()
                .insert(&record.event_id);
        }
        let readers = world
            .channels
            .keys()
            .map(|channel| (channel.as_str(), readers_of(world, channel).collect()))
            .collect();
        Index {
            copies,
            pushed,
            events,
            readers,
        }
    }
}

/// What the sends of each phase came to, and what went wrong with them.
struct Tally<'a> {
    rows: Vec<Row>,
    /// Messages never pushed, per receiver and channel.
    missing: HashMap<(usize, &'a str), usize>,
    problems: Vec<String>,
    /// After `resync_required` a client refetches over REST while new
    /// frames keep coming, so a message may reach it both ways; it keeps
    /// one by id. Counted apart: any other second copy is a duplicate.
    overlaps: usize,
}

impl<'a> Tally<'a> {
    fn new(phases: usize) -> Self {
        Tally {
            rows: (0..phases).map(|_| Row::default()).collect(),
            missing: HashMap::new(),
            problems: Vec::new(),
            overlaps: 0,
        }
    }

    /// Counts `send` in the row of the phase it began in.
    fn count(&mut self, index: &Index<'a>, phases: &[Phase], send: &SendRecord) {
        let phase = phases
            .iter()
            .rposition(|phase| phase.start <= send.first_attempt)
            .unwrap_or(0);
        let row = &mut self.rows[phase];
        row.sent += 1;
        if let Some(refused) = &send.refused {
            self.problems
                .push(format!("send {} refused: {refused}", send.key));
        }
        let found = index
            .copies
            .get(send.key.as_str())
            .map_or(&[][..], Vec::as_slice);
        check_ack(row, &mut self.problems, send, found);
        row.duplicated += found.len().saturating_sub(1);
        let Some(&message) = found.first() else {
            return;
        };
        row.stored += 1;
        self.overlaps += count_pushes(row, &mut self.missing, index, message);
        match index
            .events
            .get(message.id.as_str())
            .map_or(0, HashSet::len)
        {
            0 => row.lost += 1,
            n => {
                row.on_kafka += 1;
                row.duplicated += n - 1;
            }
        }
    }
}

/// An acknowledged send must be stored, as the message it was
/// acknowledged as; an unrefused one must have been acknowledged.
fn check_ack(row: &mut Row, problems: &mut Vec<String>, send: &SendRecord, found: &[&Stored]) {
    if let Some(ack) = &send.acked {
        row.acked += 1;
        if found.is_empty() {
            row.lost += 1;
            problems.push(format!("acknowledged send {} is not stored", send.key));
        } else if found[0].id != ack.message_id {
            problems.push(format!("send {} acknowledged as another message", send.key));
            row.lost += 1;
        }
    } else if send.refused.is_none() {
        problems.push(format!("send {} was never acknowledged", send.key));
    }
}

/// Counts the pushes of `message` to each reader of its channel; returns
/// how many readers got it both live and refetched.
fn count_pushes<'a>(
    row: &mut Row,
    missing: &mut HashMap<(usize, &'a str), usize>,
    index: &Index<'a>,
    message: &'a Stored,
) -> usize {
    let mut overlaps = 0;
    for &receiver in index
        .readers
        .get(message.channel.as_str())
        .into_iter()
        .flatten()
    {
        row.expected += 1;
        match index.pushed.get(&(receiver, message.id.as_str())) {
            Some(&(live, refetched)) => {
                row.delivered += 1;
                row.duplicated += live.saturating_sub(1) + refetched.saturating_sub(1);
                if live > 0 && refetched > 0 {
                    overlaps += 1;
                }
            }
            None => {
                row.lost += 1;
                *missing
                    .entry((receiver, message.channel.as_str()))
                    .or_default() += 1;
            }
        }
    }
    overlaps
}

/// Stored messages no send asked for.
fn never_sent(entries: &Entries, stored: &[Stored]) -> Vec<String> {
    let keys: HashSet<&str> = entries.sends.iter().map(|send| send.key.as_str()).collect();
    stored
        .iter()
        .filter(|message| !keys.contains(message.content.as_str()))
        .map(|message| format!("stored message {} was never sent", message.id))
        .collect()
}

fn missing_problems(world: &World, missing: &HashMap<(usize, &str), usize>) -> Vec<String> {
    missing
        .iter()
        .map(|((receiver, channel), count)| {
            format!(
                "{} is missing {count} messages of channel {channel}",
                world.receivers[*receiver].account.name
            )
        })
        .collect()
}

/// Faults whose service was restarted but never served again.
fn unrecovered(phases: &[Phase]) -> Vec<String> {
    phases
        .iter()
        .filter(|phase| phase.restart_at.is_some() && phase.recovery.is_none())
        .map(|phase| format!("{} did not recover", phase.label))
        .collect()
}

/// The table of phases with a total row; returns the total.
fn write_phases(table: &mut String, phases: &[Phase], rows: &[Row]) -> Row {
    let _ = writeln!(
        table,
        "| fault | outage | sent | acknowledged | stored | delivered (WebSocket) | on Kafka | lost | duplicated | recovery |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = Row::default();
    for (phase, row) in phases.iter().zip(rows) {
        let recovery = match (phase.restart_at, phase.recovery) {
            (None, _) => "-".to_owned(),
            (Some(_), Some(recovery)) => format!("{:.1} s", recovery.as_secs_f64()),
            (Some(_), None) => "not recovered".to_owned(),
        };
        let _ = writeln!(
            table,
            "| {} | {} s | {} | {} | {} | {}/{} | {} | {} | {} | {} |",
            phase.label,
            phase.outage.as_secs(),
            row.sent,
            row.acked,
            row.stored,
            row.delivered,
            row.expected,
            row.on_kafka,
            row.lost,
            row.duplicated,
            recovery
        );
        total.add(row);
    }
    let _ = writeln!(
        table,
        "| **total** | | {} | {} | {} | {}/{} | {} | {} | {} | |",
        total.sent,
        total.acked,
        total.stored,
        total.delivered,
        total.expected,
        total.on_kafka,
        total.lost,
        total.duplicated
    );
    let _ = writeln!(table);
    total
}

/// What the receivers and the Kafka reader went through on the way.
fn write_traffic(
    table: &mut String,
    world: &World,
    entries: &Entries,
    events: &HashMap<&str, HashSet<&str>>,
    overlaps: usize,
) {
    let redelivered = entries.kafka.len() - events.values().map(HashSet::len).sum::<usize>();
    let connects: u32 = entries.receivers.iter().map(|stats| stats.connects).sum();
    let resyncs: u32 = entries.receivers.iter().map(|stats| stats.resyncs).sum();
    let refetched = entries.deliveries.iter().filter(|d| d.refetched).count();
    let _ = writeln!(
        table,
        "Receivers: {} WebSocket connections ({} reconnects), {resyncs} resync_required, {refetched} messages refetched over REST ({overlaps} of them also pushed live, kept once by id). Kafka: {} records read, {redelivered} redelivered (same event id, dropped by dedup).",
        connects,
        connects as usize - world.receivers.len(),
        entries.kafka.len(),
    );
}

fn write_problems(table: &mut String, problems: &[String]) {
    if problems.is_empty() {
        let _ = writeln!(
            table,
            "Order: every receiver saw each channel's messages in seq order; Kafka kept seq order per key. Leaks: none (outsiders received 0 messages)."
        );
    } else {
        let _ = writeln!(table, "Problems ({}):", problems.len());
        for problem in problems.iter().take(40) {
            let _ = writeln!(table, "- {problem}");
        }
    }
}

/// Receivers that must get the messages of `channel`.
fn readers_of<'a>(world: &'a World, channel: &'a str) -> impl Iterator<Item = usize> + 'a {
    world
        .receivers
        .iter()
        .enumerate()
        .filter(move |(_, receiver)| receiver.channels.iter().any(|c| c == channel))
        .map(|(index, _)| index)
}

/// When a send begun at or after `since` had first reached every reader
/// of its channel, if one has.
pub fn first_complete_after(world: &World, entries: &Entries, since: Instant) -> Option<Instant> {
    let mut arrivals: HashMap<&str, HashMap<usize, Instant>> = HashMap::new();
    for delivery in &entries.deliveries {
        arrivals
            .entry(&delivery.message_id)
            .or_default()
            .entry(delivery.receiver)
            .or_insert(delivery.at);
    }
    entries
        .sends
        .iter()
        .filter(|send| send.first_attempt >= since)
        .filter_map(|send| {
            let ack = send.acked.as_ref()?;
            let arrived = arrivals.get(ack.message_id.as_str())?;
            readers_of(world, &send.channel)
                .map(|reader| arrived.get(&reader).copied())
                .collect::<Option<Vec<Instant>>>()?
                .into_iter()
                .max()
        })
        .min()
}

/// Acknowledged sends not yet pushed to every reader or not yet on Kafka.
pub fn pending(world: &World, entries: &Entries) -> usize {
    let pushed: HashSet<(usize, &str)> = entries
        .deliveries
        .iter()
        .map(|delivery| (delivery.receiver, delivery.message_id.as_str()))
        .collect();
    let on_kafka: HashSet<&str> = entries
        .kafka
        .iter()
        .map(|record| record.message_id.as_str())
        .collect();
    entries
        .sends
        .iter()
        .filter_map(|send| Some((send, send.acked.as_ref()?)))
        .filter(|(send, ack)| {
            !on_kafka.contains(ack.message_id.as_str())
                || readers_of(world, &send.channel)
                    .any(|reader| !pushed.contains(&(reader, ack.message_id.as_str())))
        })
        .count()
}

/// Messages out of order on a socket or on a Kafka key (after dedup).
fn order_problems(entries: &Entries) -> Vec<String> {
    let mut problems = Vec::new();
    let mut last: HashMap<(usize, &str), u64> = HashMap::new();
    for delivery in entries.deliveries.iter().filter(|d| !d.refetched) {
        let previous = last.entry((delivery.receiver, &delivery.room)).or_insert(0);
        if delivery.message_seq <= *previous {
            problems.push(format!(
                "receiver {} got seq {} after {} in {}",
                delivery.receiver, delivery.message_seq, previous, delivery.room
            ));
        }
        *previous = delivery.message_seq.max(*previous);
    }
    for (receiver, stats) in entries.receivers.iter().enumerate() {
        if stats.seq_regressions > 0 {
            problems.push(format!(
                "receiver {receiver}: {} frames with a room seq not above the last",
                stats.seq_regressions
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut per_key: HashMap<&str, u64> = HashMap::new();
    for record in &entries.kafka {
        if !seen.insert(&record.event_id) {
            continue;
        }
        let previous = per_key.entry(&record.key).or_insert(0);
        if record.message_seq <= *previous {
            problems.push(format!(
                "Kafka key {}: seq {} after {}",
                record.key, record.message_seq, previous
            ));
        }
        *previous = record.message_seq.max(*previous);
    }
    problems
}

/// Messages pushed to someone who may not read their channel.
fn leaks(world: &World, entries: &Entries) -> Vec<String> {
    entries
        .deliveries
        .iter()
        .filter(|delivery| {
            world
                .receivers
                .get(delivery.receiver)
                .is_none_or(|receiver| !receiver.channels.contains(&delivery.room))
        })
        .map(|delivery| {
            format!(
                "LEAK: {} received message {} of {}",
                world
                    .receivers
                    .get(delivery.receiver)
                    .map_or("?", |receiver| receiver.account.name.as_str()),
                delivery.message_id,
                delivery.room
            )
        })
        .collect()
}
