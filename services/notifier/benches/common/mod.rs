//! What the notifier's benches share: flags and per-thread CPU time.

use std::time::Duration;

/// The number after `flag` on the command line, or `default`.
pub fn flag(flag: &str, default: u64) -> u64 {
    let raw: Vec<String> = std::env::args().collect();
    raw.iter()
        .position(|arg| arg == flag)
        .and_then(|i| raw.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A thread's CPU time so far (user + system) from its /proc stat file
/// (`/proc/thread-self/stat` for the calling thread).
pub fn thread_cpu(stat_path: &str) -> Duration {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15; 11 and 12 after the ')'.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
