//! When a schedule's ticks fall: a cron expression read in an IANA time zone, or a fixed
//! interval counted from the schedule's creation. Pure functions of the time given, so the
//! firing loop, the API's `next` times and the tests agree.
//!
//! Cron expressions have the standard five fields (minute, hour, day of month, month, day of
//! week 0-7, Sunday 0 or 7) or six with seconds first. Across DST changes they follow the
//! Open Cron Pattern Specification, as croner implements it on jiff's zoned times: a wall
//! time that a spring-forward skips fires at the first instant after the gap; in a fall-back
//! overlap, a job at fixed hours fires once (the first time the wall clock shows it) while a
//! job whose hour field is a wildcard or a step fires in both passes, since its ticks are a
//! period, not a time of day.

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The longest cron expression accepted.
pub const MAX_CRON_CHARS: usize = 256;
/// The longest interval: a year; longer periods are better said with a cron expression.
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 24 * 3600);

/// How a schedule's ticks are spaced.
#[derive(Debug, Clone)]
pub enum Timing {
    /// A cron expression read in a zone.
    Cron { cron: Box<Cron>, zone: TimeZone },
    /// Every `period`, from `anchor` on (the first tick is `anchor + period`).
    Every {
        period: Duration,
        anchor: DateTime<Utc>,
    },
}

/// Why an expression, a zone or an interval was refused, naming the field.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub field: &'static str,
    pub message: String,
}

fn refused(field: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        field,
        message: message.into(),
    }
}

impl Timing {
    /// A cron expression of five or six fields in the IANA zone `zone` ("UTC" when empty).
    pub fn cron(expression: &str, zone: &str) -> Result<Self, Refused> {
        let expression = expression.trim();
        if expression.chars().count() > MAX_CRON_CHARS {
            return Err(refused(
                "cron",
                format!("must be at most {MAX_CRON_CHARS} characters"),
            ));
        }
        let fields = expression.split_whitespace().count();
        // Nicknames (`@daily`) are one field; a year field is not taken.
        let nickname = fields == 1 && expression.starts_with('@');
        if !nickname && !(5..=6).contains(&fields) {
            return Err(refused(
                "cron",
                "must have 5 fields (minute hour day month weekday) or 6 with seconds first",
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|err| refused("cron", format!("is not a valid cron expression: {err}")))?;
        let zone = zone.trim();
        let zone = if zone.is_empty() {
            TimeZone::UTC
        } else {
            TimeZone::get(zone).map_err(|_| {
                refused(
                    "time_zone",
                    "must be an IANA time zone name, such as Europe/Paris or UTC",
                )
            })?
        };
        let timing = Self::Cron {
            cron: Box::new(cron),
            zone,
        };
        // A pattern such as `0 0 30 2 *` parses but never comes.
        if timing.next_after(Utc::now()).is_none() {
            return Err(refused("cron", "never fires"));
        }
        Ok(timing)
    }

    /// Every `seconds` seconds (1 to a year) after `anchor`.
    pub fn every(seconds: u64, anchor: DateTime<Utc>) -> Result<Self, Refused> {
        let period = Duration::from_secs(seconds);
        if seconds == 0 || period > MAX_INTERVAL {
            return Err(refused(
                "interval_seconds",
                format!("must be 1 to {}", MAX_INTERVAL.as_secs()),
            ));
        }
        Ok(Self::Every { period, anchor })
    }

    /// The first tick strictly after `after`; None when the expression never comes again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Cron { cron, zone } => {
                let start = to_jiff(after)?.to_zoned(zone.clone());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                from_jiff(next.timestamp())
            }
            Self::Every { period, anchor } => {
                let period = chrono::Duration::from_std(*period).ok()?;
                let elapsed = after.signed_duration_since(*anchor);
                if elapsed < chrono::Duration::zero() {
                    return anchor.checked_add_signed(period);
                }
                let count = elapsed.num_milliseconds() / period.num_milliseconds() + 1;
                anchor.checked_add_signed(period * i32::try_from(count).ok()?)
            }
        }
    }

    /// Up to `count` ticks after `after`, in order.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::with_capacity(count);
        let mut at = after;
        while ticks.len() < count {
            match self.next_after(at) {
                Some(next) => {
                    ticks.push(next);
                    at = next;
                }
                None => break,
            }
        }
        ticks
    }

    /// The latest tick at or before `at`; None when there is none.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Cron { cron, zone } => {
                let start = to_jiff(at)?.to_zoned(zone.clone());
                let latest = cron.find_previous_occurrence(&start, true).ok()?;
                from_jiff(latest.timestamp())
            }
            Self::Every { period, anchor } => {
                let period = chrono::Duration::from_std(*period).ok()?;
                let count = at.signed_duration_since(*anchor).num_milliseconds()
                    / period.num_milliseconds();
                (count >= 1)
                    .then(|| anchor.checked_add_signed(period * i32::try_from(count).ok()?))?
            }
        }
    }

    /// The ticks in `[from, until]`, the latest `most` of them, in order. Walks back from
    /// `until`, so a long outage costs `most` steps, not one per missed tick.
    pub fn due(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        most: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::new();
        let mut at = until;
        while ticks.len() < most {
            match self.latest_at_or_before(at) {
                Some(tick) if tick >= from => {
                    ticks.push(tick);
                    at = tick - chrono::Duration::seconds(1);
                }
                _ => break,
            }
        }
        ticks.reverse();
        ticks
    }
}

fn to_jiff(at: DateTime<Utc>) -> Option<Timestamp> {
    // Whole seconds: cron ticks are on them, and a tick is never after itself.
    Timestamp::from_second(at.timestamp()).ok()
}

fn from_jiff(at: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().try_into().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 time")
    }

    fn cron(expression: &str, zone: &str) -> Timing {
        Timing::cron(expression, zone).expect("a valid expression")
    }

    #[test]
    fn five_fields_fire_on_the_minute_and_six_on_the_second() {
        let minutes = cron("*/15 * * * *", "UTC");
        assert_eq!(
            minutes.upcoming(utc("2026-03-01T10:07:30Z"), 2),
            vec![utc("2026-03-01T10:15:00Z"), utc("2026-03-01T10:30:00Z")]
        );
        let seconds = cron("*/10 * * * * *", "");
        assert_eq!(
            seconds.next_after(utc("2026-03-01T10:00:05.5Z")),
            Some(utc("2026-03-01T10:00:10Z"))
        );
        // A tick is never after itself.
        assert_eq!(
            seconds.next_after(utc("2026-03-01T10:00:10Z")),
            Some(utc("2026-03-01T10:00:20Z"))
        );
    }

    #[test]
    fn sunday_is_0_and_7_as_in_standard_cron() {
        // 2026-03-01 is a Sunday.
        for expression in ["0 9 * * 0", "0 9 * * 7", "0 9 * * SUN"] {
            assert_eq!(
                cron(expression, "UTC").next_after(utc("2026-02-27T00:00:00Z")),
                Some(utc("2026-03-01T09:00:00Z")),
                "{expression}"
            );
        }
    }

    #[test]
    fn a_daily_time_keeps_its_wall_clock_across_a_spring_forward() {
        // Paris moves from UTC+1 to UTC+2 on 2026-03-29 at 02:00 local.
        let daily = cron("30 9 * * *", "Europe/Paris");
        assert_eq!(
            daily.upcoming(utc("2026-03-28T00:00:00Z"), 2),
            vec![utc("2026-03-28T08:30:00Z"), utc("2026-03-29T07:30:00Z")]
        );
    }

    #[test]
    fn a_time_the_spring_forward_skips_fires_once_just_after_the_gap() {
        // New York skips 02:00-03:00 local on 2026-03-08 (07:00 UTC).
        let at_half_past_two = cron("30 2 * * *", "America/New_York");
        let ticks = at_half_past_two.upcoming(utc("2026-03-07T12:00:00Z"), 2);
        assert_eq!(
            ticks[0],
            utc("2026-03-08T07:00:00Z"),
            "03:00 EDT, the gap's end"
        );
        assert_eq!(
            ticks[1],
            utc("2026-03-09T06:30:00Z"),
            "02:30 EDT the next day"
        );
    }

    #[test]
    fn a_fixed_time_in_a_fall_back_overlap_fires_once() {
        // New York repeats 01:00-02:00 local on 2026-11-01: 05:00-06:00 UTC then 06:00-07:00.
        let at_half_past_one = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            at_half_past_one.upcoming(utc("2026-11-01T00:00:00Z"), 2),
            vec![utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
        );
    }

    #[test]
    fn an_hourly_job_fires_in_both_passes_of_an_overlap() {
        let hourly = cron("0 * * * *", "America/New_York");
        assert_eq!(
            hourly.upcoming(utc("2026-11-01T04:30:00Z"), 3),
            vec![
                utc("2026-11-01T05:00:00Z"),
                utc("2026-11-01T06:00:00Z"),
                utc("2026-11-01T07:00:00Z"),
            ]
        );
    }

    #[test]
    fn an_interval_counts_from_its_anchor() {
        let anchor = utc("2026-01-01T00:00:00Z");
        let every = Timing::every(90, anchor).expect("a valid interval");
        assert_eq!(
            every.next_after(utc("2025-12-31T00:00:00Z")),
            Some(utc("2026-01-01T00:01:30Z"))
        );
        assert_eq!(
            every.next_after(utc("2026-01-01T00:03:00Z")),
            Some(utc("2026-01-01T00:04:30Z"))
        );
        assert_eq!(
            every.due(utc("2026-01-01T00:00:00Z"), utc("2026-01-01T00:10:00Z"), 3),
            vec![
                utc("2026-01-01T00:06:00Z"),
                utc("2026-01-01T00:07:30Z"),
                utc("2026-01-01T00:09:00Z")
            ]
        );
    }

    #[test]
    fn bad_expressions_zones_and_intervals_name_their_field() {
        for bad in ["", "* * *", "61 * * * *", "* * * * * * *", "0 0 30 2 *"] {
            let err = Timing::cron(bad, "UTC").expect_err(bad);
            assert_eq!(err.field, "cron", "{bad}");
        }
        let err = Timing::cron("* * * * *", "Mars/Olympus").expect_err("unknown zone");
        assert_eq!(err.field, "time_zone");
        let now = Utc::now();
        assert_eq!(
            Timing::every(0, now).expect_err("zero").field,
            "interval_seconds"
        );
        assert!(Timing::every(MAX_INTERVAL.as_secs() + 1, now).is_err());
    }
}
