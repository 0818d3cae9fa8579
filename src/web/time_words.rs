//! Times and waits in words, as the reader sees them: in their own zone (always named), "3
//! days ago" where that reads better, "Wait 2 minutes".
use chrono::{NaiveDateTime, TimeZone as _};

use crate::domain::TimeZone;

pub(crate) use crate::accounts::wait_phrase;

/// Times as the reader sees them: in their own zone (always named), and "3 days ago" where
/// that reads better. Stored times are UTC.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    zone: TimeZone,
    now: NaiveDateTime,
}

/// One time on a page: the words shown, the exact time (`title`) and the machine-readable
/// one (`datetime`); `_macros.html`'s `when` renders it as a `<time>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct When {
    pub text: String,
    pub exact: String,
    pub iso: String,
}

impl Clock {
    pub(crate) fn new(zone: TimeZone) -> Self {
        Self { zone, now: chrono::Utc::now().naive_utc() }
    }

    pub(crate) fn zone(&self) -> &'static str {
        self.zone.name()
    }

    /// "2026-11-30 14:05 CET".
    pub(crate) fn exact(&self, at: NaiveDateTime) -> String {
        self.zone.tz().from_utc_datetime(&at).format("%Y-%m-%d %H:%M %Z").to_string()
    }

    /// To the second, for the audit trail: "2026-11-30 14:05:09 CET".
    pub(crate) fn stamp(&self, at: NaiveDateTime) -> When {
        let text = self.zone.tz().from_utc_datetime(&at).format("%Y-%m-%d %H:%M:%S %Z").to_string();
        When { exact: text.clone(), text, iso: Self::iso(at) }
    }

    /// "just now", "5 minutes ago", "in 3 hours", "3 days ago"; older than a month (or further
    /// ahead) the date in the reader's zone.
    pub(crate) fn ago(&self, at: NaiveDateTime) -> When {
        let seconds = (self.now - at).num_seconds();
        let (amount, past) = (seconds.unsigned_abs(), seconds >= 0);
        let words = |count: u64, unit: &str| {
            let unit = if count == 1 { unit.to_owned() } else { format!("{unit}s") };
            if past { format!("{count} {unit} ago") } else { format!("in {count} {unit}") }
        };
        let text = match amount {
            0..60 => {
                if past {
                    "just now".to_owned()
                } else {
                    "in a minute".to_owned()
                }
            }
            60..3_600 => words(amount / 60, "minute"),
            3_600..86_400 => words(amount / 3_600, "hour"),
            86_400..2_592_000 => words(amount / 86_400, "day"),
            _ => self.zone.tz().from_utc_datetime(&at).format("%Y-%m-%d").to_string(),
        };
        When { text, exact: self.exact(at), iso: Self::iso(at) }
    }

    /// As `ago`, or `never` for a time that has not happened.
    pub(crate) fn ago_or_never(&self, at: Option<NaiveDateTime>) -> When {
        at.map_or_else(
            || When { text: "never".to_owned(), exact: String::new(), iso: String::new() },
            |at| self.ago(at),
        )
    }

    /// When `day` begins in the reader's zone, in UTC (for date filters).
    pub(crate) fn start_of(&self, day: chrono::NaiveDate) -> NaiveDateTime {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        // A zone that skips midnight (a daylight-saving change) starts the day at its first hour.
        let local = self.zone.tz().from_local_datetime(&midnight);
        local.earliest().map_or(midnight, |at| at.naive_utc())
    }

    fn iso(at: NaiveDateTime) -> String {
        at.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}
