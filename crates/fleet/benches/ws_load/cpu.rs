//! CPU time by process, read from /proc before and after a phase: which
//! process the machine's two cores went to, per message sent.

use std::collections::BTreeMap;

/// The processes a send crosses, by command name (`/proc/PID/comm`).
const WATCHED: [(&str, &str); 5] = [
    (
        "messenger",
        "fleet (gateway, users, groups, messages, media)",
    ),
    (
        "postgres",
        "Postgres (the services' and the broker's storage)",
    ),
    ("tansu", "broker (tansu)"),
    ("redis-server", "Redis"),
    ("ws_load", "load tool"),
];

/// Clock ticks of user and system time per watched process name.
pub struct CpuSample(BTreeMap<&'static str, u64>);

impl CpuSample {
    pub fn take() -> CpuSample {
        let mut ticks = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return CpuSample(ticks);
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Some((name, used)) = process_ticks(pid) else {
                continue;
            };
            if let Some((watched, _)) = WATCHED
                .iter()
                .find(|(watched, _)| name.starts_with(watched))
            {
                *ticks.entry(*watched).or_default() += used;
            }
        }
        CpuSample(ticks)
    }

    /// Prints each watched process's CPU milliseconds per message between
    /// `self` and `later`.
    pub fn report(&self, later: &CpuSample, messages: usize, seconds: f64) {
        let per_tick_ms = 1000.0 / clock_ticks_per_second();
        println!("  CPU by process ({messages} messages in {seconds:.1} s):");
        let mut total = 0.0;
        for (name, label) in WATCHED {
            // Processes that ended in between (database connections) take
            // their time with them: never below zero.
            let used = later
                .0
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_sub(self.0.get(name).copied().unwrap_or(0));
            let ms = used as f64 * per_tick_ms;
            total += ms;
            println!(
                "    {label:<52} {:>6.0} % of a core  {:>6.2} ms per message",
                ms / 10.0 / seconds,
                ms / messages.max(1) as f64
            );
        }
        println!(
            "    {:<52} {:>6.0} % of a core  {:>6.2} ms per message",
            "all of the above",
            total / 10.0 / seconds,
            total / messages.max(1) as f64
        );
    }
}

/// A process's command name and its user + system clock ticks.
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may contain spaces: split after it.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, i.e. 11 and 12
    // after the name and state.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((name, user + system))
}

/// The unit of /proc's CPU times (USER_HZ; 100 on Linux as built for
/// every common architecture).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .filter(|ticks: &f64| *ticks > 0.0)
        .unwrap_or(100.0)
}
