//! What users ask of the notifier: their devices' subscriptions and their
//! settings. Input is parsed here into checked values; the transport only
//! converts.

use crate::error::{Error, Result};
use crate::repo::preferences::{self, ChannelRow, GlobalRow};
use crate::repo::subscriptions::{self, NewSubscription, SubscriptionRow};
use crate::webpush::{Subscription, WebPush};
use sqlx::PgPool;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest endpoint accepted (browsers' are under 600 characters).
const MAX_ENDPOINT: usize = 2048;
const MAX_DEVICE_NAME: usize = 64;

#[derive(Clone)]
pub struct Api {
    pub pool: PgPool,
    /// `None`: Web Push is not configured.
    pub web_push: Option<Arc<WebPush>>,
    pub max_subscriptions: u32,
}

pub struct Registration {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub device_name: String,
}

/// A change of the global settings: `None` keeps a field; `Some(None)`
/// clears one that may be empty.
#[derive(Default)]
pub struct GlobalChange {
    pub level: Option<String>,
    pub privacy: Option<String>,
    pub muted_until: Option<Option<OffsetDateTime>>,
    pub quiet_hours: Option<Option<QuietHoursInput>>,
}

pub struct QuietHoursInput {
    pub start: String,
    pub end: String,
    pub time_zone: String,
}

#[derive(Default)]
pub struct ChannelChange {
    pub level: Option<Option<String>>,
    pub muted_until: Option<Option<OffsetDateTime>>,
}

impl Api {
    pub fn vapid_key(&self) -> Result<String> {
        let web_push = self.web_push.as_ref().ok_or(Error::Disabled)?;
        Ok(web_push.vapid().public_key().to_owned())
    }

    pub async fn register(&self, user: Uuid, new: Registration) -> Result<SubscriptionRow> {
        let web_push = self.web_push.as_ref().ok_or(Error::Disabled)?;
        let endpoint = new.endpoint.trim();
        if endpoint.is_empty() || endpoint.len() > MAX_ENDPOINT {
            return Err(Error::invalid(
                "endpoint",
                format!("must be a URL of at most {MAX_ENDPOINT} characters"),
            ));
        }
        let url: reqwest::Url = endpoint
            .parse()
            .map_err(|_| Error::invalid("endpoint", "is not a URL"))?;
        web_push
            .egress()
            .check_url(&url)
            .map_err(|err| Error::invalid("endpoint", err.to_string()))?;
        let subscription = Subscription {
            endpoint: endpoint.to_owned(),
            p256dh: new.p256dh.trim().to_owned(),
            auth: new.auth.trim().to_owned(),
        };
        subscription
            .check_keys()
            .map_err(|err| Error::invalid("keys", err.to_string()))?;
        let device_name = new.device_name.trim();
        if device_name.chars().count() > MAX_DEVICE_NAME
            || device_name.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "device_name",
                format!("at most {MAX_DEVICE_NAME} characters, no control characters"),
            ));
        }
        let mut tx = self.pool.begin().await?;
        subscriptions::lock_user(&mut tx, user).await?;
        let others = subscriptions::count_others(&mut tx, user, endpoint).await?;
        if others >= i64::from(self.max_subscriptions) {
            return Err(Error::LimitReached(format!(
                "at most {} push subscriptions per user: remove one first",
                self.max_subscriptions
            )));
        }
        let (row, moved) = subscriptions::upsert(
            &mut tx,
            &NewSubscription {
                user,
                endpoint,
                p256dh: &subscription.p256dh,
                auth: &subscription.auth,
                device_name,
            },
        )
        .await?;
        if moved {
            subscriptions::drop_queued(&mut tx, row.id).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    pub async fn list(&self, user: Uuid) -> Result<Vec<SubscriptionRow>> {
        let mut conn = self.pool.acquire().await?;
        Ok(subscriptions::list(&mut conn, user).await?)
    }

    pub async fn unregister(&self, user: Uuid, id: Uuid) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        if subscriptions::delete(&mut conn, user, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound("subscription"))
        }
    }

    pub async fn settings(&self, user: Uuid) -> Result<GlobalRow> {
        let mut conn = self.pool.acquire().await?;
        Ok(preferences::global(&mut conn, user).await?)
    }

    pub async fn change_settings(&self, user: Uuid, change: GlobalChange) -> Result<GlobalRow> {
        let quiet = match change.quiet_hours {
            Some(Some(input)) => Some(Some(quiet_hours(&input)?)),
            Some(None) => Some(None),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let mut row = preferences::global(&mut tx, user).await?;
        if let Some(level) = change.level {
            row.level = level;
        }
        if let Some(privacy) = change.privacy {
            row.privacy = privacy;
        }
        if let Some(muted_until) = change.muted_until {
            row.muted_until = muted_until;
        }
        if let Some(quiet) = quiet {
            (row.quiet_start, row.quiet_end, row.time_zone) = match quiet {
                Some((start, end, zone)) => (Some(start), Some(end), Some(zone)),
                None => (None, None, None),
            };
        }
        preferences::save_global(&mut tx, user, &row).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn channel_settings(&self, user: Uuid, channel: Uuid) -> Result<ChannelRow> {
        let mut conn = self.pool.acquire().await?;
        Ok(preferences::channel(&mut conn, user, channel).await?)
    }

    pub async fn change_channel_settings(
        &self,
        user: Uuid,
        channel: Uuid,
        change: ChannelChange,
    ) -> Result<ChannelRow> {
        let mut tx = self.pool.begin().await?;
        let mut row = preferences::channel(&mut tx, user, channel).await?;
        if let Some(level) = change.level {
            row.level = level;
        }
        if let Some(muted_until) = change.muted_until {
            row.muted_until = muted_until;
        }
        preferences::save_channel(&mut tx, user, channel, &row).await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// `HH:MM` twice and an IANA zone, checked.
fn quiet_hours(input: &QuietHoursInput) -> Result<(time::Time, time::Time, String)> {
    let start = wall_clock(&input.start, "quiet_hours.start")?;
    let end = wall_clock(&input.end, "quiet_hours.end")?;
    if start == end {
        return Err(Error::invalid(
            "quiet_hours",
            "start and end must differ (remove the quiet hours to turn them off)",
        ));
    }
    let zone = input.time_zone.trim();
    if zone.is_empty() || jiff::tz::TimeZone::get(zone).is_err() {
        return Err(Error::invalid(
            "quiet_hours.time_zone",
            "must be an IANA time zone name such as Europe/Berlin",
        ));
    }
    Ok((start, end, zone.to_owned()))
}

fn wall_clock(raw: &str, field: &'static str) -> Result<time::Time> {
    let invalid = || Error::invalid(field, "must be a time of day as HH:MM (00:00 to 23:59)");
    let (hours, minutes) = raw.trim().split_once(':').ok_or_else(invalid)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(invalid());
    }
    let hours: u8 = hours.parse().map_err(|_| invalid())?;
    let minutes: u8 = minutes.parse().map_err(|_| invalid())?;
    time::Time::from_hms(hours, minutes, 0).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_are_checked() {
        let input = |start: &str, end: &str, zone: &str| QuietHoursInput {
            start: start.to_owned(),
            end: end.to_owned(),
            time_zone: zone.to_owned(),
        };
        let (start, end, zone) =
            quiet_hours(&input("22:00", "07:30", "Europe/Berlin")).expect("valid");
        assert_eq!((start.hour(), end.minute()), (22, 30));
        assert_eq!(zone, "Europe/Berlin");
        for (start, end, zone) in [
            ("24:00", "07:00", "UTC"),
            ("7:00", "08:00", "UTC"),
            ("07:00", "07:00", "UTC"),
            ("07:00", "08:00", "Mars/Olympus"),
            ("07:00", "08:00", ""),
            ("aa:bb", "08:00", "UTC"),
        ] {
            assert!(
                quiet_hours(&input(start, end, zone)).is_err(),
                "{start} {end} {zone}"
            );
        }
    }
}
