//! What every participant saw, with times: the sends and their
//! acknowledgements, every frame each WebSocket receiver got, every record
//! the Kafka reader consumed. The checks compare these against what the
//! server stored.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

pub struct SendRecord {
    /// Idempotency key and content: unique per send, kept across retries.
    pub key: String,
    pub channel: String,
    pub first_attempt: Instant,
    pub attempts: u32,
    pub acked: Option<Ack>,
    /// A 4xx other than 408/429: the API refused a valid send.
    pub refused: Option<String>,
}

pub struct Ack {
    pub message_id: String,
}

pub struct Delivery {
    pub receiver: usize,
    pub room: String,
    pub message_id: String,
    pub message_seq: u64,
    pub at: Instant,
    /// Fetched over REST after a `resync_required`, not pushed.
    pub refetched: bool,
}

pub struct KafkaRecord {
    pub event_id: String,
    pub key: String,
    pub message_id: String,
    pub message_seq: u64,
}

#[derive(Default)]
pub struct ReceiverStats {
    pub connects: u32,
    pub resyncs: u32,
    /// Sequenced frames whose `seq` was not above the last one of the room.
    pub seq_regressions: u32,
    pub error_frames: u32,
}

#[derive(Default)]
pub struct Entries {
    pub sends: Vec<SendRecord>,
    pub deliveries: Vec<Delivery>,
    pub kafka: Vec<KafkaRecord>,
    pub receivers: Vec<ReceiverStats>,
}

pub struct Ledger {
    entries: Mutex<Entries>,
}

impl Ledger {
    pub fn new(receivers: usize) -> Ledger {
        let entries = Entries {
            receivers: (0..receivers).map(|_| ReceiverStats::default()).collect(),
            ..Entries::default()
        };
        Ledger {
            entries: Mutex::new(entries),
        }
    }

    /// The entries; a panicked writer cannot leave them half-updated (each
    /// update is one push or one field), so a poisoned lock is still good.
    pub fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn begin_send(&self, key: String, channel: String) -> usize {
        let mut entries = self.lock();
        entries.sends.push(SendRecord {
            key,
            channel,
            first_attempt: Instant::now(),
            attempts: 0,
            acked: None,
            refused: None,
        });
        entries.sends.len() - 1
    }

    pub fn with_send(&self, index: usize, update: impl FnOnce(&mut SendRecord)) {
        if let Some(send) = self.lock().sends.get_mut(index) {
            update(send);
        }
    }

    pub fn with_receiver(&self, index: usize, update: impl FnOnce(&mut ReceiverStats)) {
        if let Some(stats) = self.lock().receivers.get_mut(index) {
            update(stats);
        }
    }

    pub fn deliver(&self, delivery: Delivery) {
        self.lock().deliveries.push(delivery);
    }

    pub fn consumed(&self, record: KafkaRecord) {
        self.lock().kafka.push(record);
    }
}
