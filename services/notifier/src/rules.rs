//! Whether a notification becomes a push: the user's settings (level per
//! conversation, mute, do-not-disturb hours in their own time zone), their
//! presence and what they have read. Pure: every input is given, so the
//! whole matrix is tested without a clock, a database or a broker.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// What a notification is about (the messages service decided that; the
/// notifier does not work out mentions again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mention,
    Reply,
    /// Every message in a direct conversation is one.
    Direct,
}

/// How much of a conversation may reach the user's devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Level {
    /// Mentions, replies to their messages, direct messages.
    #[default]
    All,
    /// Mentions and direct messages; not replies.
    Mentions,
    Nothing,
}

impl Level {
    /// Whether a notification of this kind may reach the user's devices.
    pub fn admits(self, kind: Kind) -> bool {
        match self {
            Level::All => true,
            Level::Mentions => matches!(kind, Kind::Mention | Kind::Direct),
            Level::Nothing => false,
        }
    }
}

/// What a user's sockets say, from `presence.events.v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Presence {
    #[default]
    Offline,
    Away,
    /// Using the app right now: it shows the message itself.
    Online,
}

/// Quiet hours, every day, in the user's time zone: `start` to `end`
/// (may pass midnight: 22:00 to 07:00).
#[derive(Clone, Debug, PartialEq)]
pub struct QuietHours {
    pub start: Time,
    pub end: Time,
    pub zone: TimeZone,
}

impl QuietHours {
    /// True while the wall clock in the user's zone is within the hours,
    /// whatever the date and the zone's offset that day (DST included).
    pub fn contains(&self, now: Timestamp) -> bool {
        let local = Zoned::new(now, self.zone.clone()).time();
        if self.start <= self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }
}

/// A user's settings as they apply to one conversation: the conversation's
/// own where set, the user's global ones otherwise.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effective {
    pub level: Level,
    pub muted_until: Option<Timestamp>,
    pub quiet_hours: Option<QuietHours>,
}

/// Why nothing was pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Read (on any device) during the grace delay.
    Read,
    /// On a socket and using the app.
    Active,
    /// The conversation's level leaves this kind out.
    Level,
    Muted,
    QuietHours,
}

impl Skip {
    pub fn label(self) -> &'static str {
        match self {
            Skip::Read => "read",
            Skip::Active => "active",
            Skip::Level => "level",
            Skip::Muted => "muted",
            Skip::QuietHours => "quiet_hours",
        }
    }
}

/// The facts about one notification when its grace delay has passed.
pub struct Due {
    pub kind: Kind,
    /// The message's position in its channel.
    pub seq: u64,
    /// The user's read position in that channel.
    pub read_up_to: u64,
    pub presence: Presence,
    pub now: Timestamp,
}

/// Push, or why not.
pub fn decide(due: &Due, settings: &Effective) -> Result<(), Skip> {
    if due.read_up_to >= due.seq {
        return Err(Skip::Read);
    }
    if due.presence == Presence::Online {
        return Err(Skip::Active);
    }
    if !settings.level.admits(due.kind) {
        return Err(Skip::Level);
    }
    if settings.muted_until.is_some_and(|until| due.now < until) {
        return Err(Skip::Muted);
    }
    if settings
        .quiet_hours
        .as_ref()
        .is_some_and(|hours| hours.contains(due.now))
    {
        return Err(Skip::QuietHours);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn hours(start: &str, end: &str, zone: &str) -> QuietHours {
        QuietHours {
            start: start.parse().expect("time"),
            end: end.parse().expect("time"),
            zone: TimeZone::get(zone).expect("a zone"),
        }
    }

    fn due(kind: Kind, presence: Presence, read_up_to: u64, now: &str) -> Due {
        Due {
            kind,
            seq: 10,
            read_up_to,
            presence,
            now: at(now),
        }
    }

    #[test]
    fn quiet_hours_follow_the_users_wall_clock_across_midnight_and_dst() {
        let night = hours("22:00", "07:00", "Europe/Berlin");
        // 21:30 and 22:30 in Berlin in winter (UTC+1).
        assert!(!night.contains(at("2026-01-15T20:30:00Z")));
        assert!(night.contains(at("2026-01-15T21:30:00Z")));
        // 06:59 and 07:00 the next morning.
        assert!(night.contains(at("2026-01-16T05:59:00Z")));
        assert!(!night.contains(at("2026-01-16T06:00:00Z")));
        // Summer time (UTC+2): the same wall clock, other instants.
        assert!(night.contains(at("2026-07-15T20:30:00Z")));
        assert!(!night.contains(at("2026-07-15T05:00:00Z")));
        let lunch = hours("12:00", "13:00", "America/New_York");
        assert!(lunch.contains(at("2026-03-02T17:30:00Z")));
        assert!(!lunch.contains(at("2026-03-02T12:30:00Z")));
    }

    /// Every combination of kind, level, presence, read state, mute and
    /// quiet hours, against the rule written out longhand.
    #[test]
    fn the_matrix_of_settings_presence_and_read_state() {
        let now = "2026-01-15T22:30:00Z"; // 23:30 in Berlin
        let kinds = [Kind::Mention, Kind::Reply, Kind::Direct];
        let levels = [Level::All, Level::Mentions, Level::Nothing];
        let presences = [Presence::Offline, Presence::Away, Presence::Online];
        let mutes = [
            None,
            Some(at("2026-01-15T23:00:00Z")),
            Some(at("2026-01-15T22:00:00Z")),
        ];
        let quiet = [
            None,
            Some(hours("22:00", "07:00", "Europe/Berlin")),
            Some(hours("08:00", "18:00", "Europe/Berlin")),
        ];
        let mut pushed = 0;
        let mut cases = 0;
        for kind in kinds {
            for level in levels {
                for presence in presences {
                    for read_up_to in [9, 10, 11] {
                        for muted_until in mutes {
                            for quiet_hours in &quiet {
                                let settings = Effective {
                                    level,
                                    muted_until,
                                    quiet_hours: quiet_hours.clone(),
                                };
                                let due = due(kind, presence, read_up_to, now);
                                let expected = if read_up_to >= 10 {
                                    Err(Skip::Read)
                                } else if presence == Presence::Online {
                                    Err(Skip::Active)
                                } else if level == Level::Nothing
                                    || (level == Level::Mentions && kind == Kind::Reply)
                                {
                                    Err(Skip::Level)
                                } else if muted_until == mutes[1] {
                                    Err(Skip::Muted)
                                } else if quiet_hours.as_ref() == quiet[1].as_ref() {
                                    Err(Skip::QuietHours)
                                } else {
                                    Ok(())
                                };
                                assert_eq!(
                                    decide(&due, &settings),
                                    expected,
                                    "{kind:?} {level:?} {presence:?} read {read_up_to} muted {muted_until:?} quiet {quiet_hours:?}"
                                );
                                cases += 1;
                                pushed += usize::from(expected.is_ok());
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 3 * 3 * 3 * 3 * 3 * 3);
        // Unread, not active, wanted (5 kind × level pairs), not muted
        // (2 of 3), not in quiet hours (2 of 3), for both idle presences.
        assert_eq!(pushed, 5 * 2 * 2 * 2);
    }
}
