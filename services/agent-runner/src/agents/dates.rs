//! date_formatter: parses a date or time in common notations and formats it in a time zone.
//!
//! Zones are UTC offsets (`+05:30`, `UTC-3`) or the IANA names of [`ZONES`] — a table, not the
//! tz database: `chrono-tz` compiles the whole database into the binary and costs a long build,
//! while the table covers the zones people ask for, with today's daylight-saving rules (EU, US,
//! Australian, New Zealand). Historical rule changes are not modelled, and an unknown name is an
//! error rather than a silent UTC.

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AgentError, parse};

#[derive(Deserialize)]
struct Input {
    date: Value,
    #[serde(default)]
    input_format: Option<String>,
    #[serde(default)]
    output_format: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    /// The zone of a date written without one; UTC by default.
    #[serde(default)]
    source_timezone: Option<String>,
}

pub fn run(input: &Value) -> Result<Value, AgentError> {
    let input: Input = parse(input)?;
    let source = zone(input.source_timezone.as_deref().unwrap_or("UTC"))?;
    let instant = match &input.date {
        Value::Number(n) => from_unix(n.as_f64().unwrap_or(f64::NAN))?,
        Value::String(text) => parse_date(text.trim(), input.input_format.as_deref(), &source)?,
        _ => {
            return Err(AgentError::InvalidInput(
                "date must be text or a number".to_owned(),
            ));
        }
    };
    let target_name = input.timezone.as_deref().unwrap_or("UTC");
    let target = zone(target_name)?;
    let (offset, dst) = target.offset_at(instant);
    let local = instant.with_timezone(&offset);
    let pattern = input
        .output_format
        .as_deref()
        .unwrap_or("%Y-%m-%d %H:%M:%S %:z");
    let formatted = format(&local, pattern)?;
    Ok(json!({
        "iso": local.to_rfc3339(),
        "formatted": formatted,
        "timezone": target_name,
        "utc_offset": local.format("%:z").to_string(),
        "dst": dst,
        "unix": instant.timestamp(),
        "utc": instant.to_rfc3339(),
        "date": local.format("%Y-%m-%d").to_string(),
        "time": local.format("%H:%M:%S").to_string(),
        "weekday": local.format("%A").to_string(),
        "day_of_year": local.ordinal(),
        "iso_week": local.iso_week().week(),
    }))
}

fn from_unix(seconds: f64) -> Result<DateTime<Utc>, AgentError> {
    if !seconds.is_finite() {
        return Err(AgentError::InvalidInput(
            "the timestamp is not a number".to_owned(),
        ));
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round() as u32;
    DateTime::from_timestamp(whole as i64, nanos.min(999_999_999))
        .ok_or_else(|| AgentError::InvalidInput(format!("{seconds} is out of range")))
}

/// Notations tried, in order, when no `input_format` is given (zone-less ones).
const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d %B %Y %H:%M",
    "%B %d, %Y %H:%M",
];
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d %B %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%Y%m%d",
];

fn parse_date(
    text: &str,
    format: Option<&str>,
    source: &Zone,
) -> Result<DateTime<Utc>, AgentError> {
    if let Some(format) = format {
        check_format(format)?;
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Ok(at.with_timezone(&Utc));
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(source.to_utc(naive));
        }
        if let Ok(day) = NaiveDate::parse_from_str(text, format) {
            return Ok(source.to_utc(day.and_time(NaiveTime::MIN)));
        }
        return Err(AgentError::InvalidInput(format!(
            "{text:?} does not match the format {format:?}"
        )));
    }
    if text.chars().all(|c| c.is_ascii_digit()) && text.len() >= 9 {
        return from_unix(text.parse::<f64>().unwrap_or(f64::NAN));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_rfc2822(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Some(naive) = NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        return Ok(source.to_utc(naive));
    }
    if let Some(day) = DATE_FORMATS
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
    {
        return Ok(source.to_utc(day.and_time(NaiveTime::MIN)));
    }
    Err(AgentError::InvalidInput(format!(
        "{text:?} is not a date this agent reads (ISO 8601, RFC 2822, \"March 10, 2024\", a Unix timestamp, or give input_format)"
    )))
}

/// A strftime pattern with an unknown specifier would make chrono panic while formatting.
fn check_format(pattern: &str) -> Result<(), AgentError> {
    if StrftimeItems::new(pattern).any(|item| matches!(item, Item::Error)) {
        return Err(AgentError::InvalidInput(format!(
            "{pattern:?} is not a valid strftime format"
        )));
    }
    Ok(())
}

fn format(at: &DateTime<FixedOffset>, pattern: &str) -> Result<String, AgentError> {
    check_format(pattern)?;
    Ok(at.format(pattern).to_string())
}

/// Which Sunday of a month a transition falls on.
#[derive(Clone, Copy)]
enum Week {
    Nth(u32),
    Last,
}

/// A daylight-saving transition: the day, and the hour it happens at (in UTC for the EU rule,
/// in the local time in force before the change otherwise).
#[derive(Clone, Copy)]
struct Transition {
    month: u32,
    week: Week,
    hour: u32,
    utc: bool,
}

#[derive(Clone, Copy)]
struct Rule {
    start: Transition,
    end: Transition,
}

const EU: Rule = Rule {
    start: Transition {
        month: 3,
        week: Week::Last,
        hour: 1,
        utc: true,
    },
    end: Transition {
        month: 10,
        week: Week::Last,
        hour: 1,
        utc: true,
    },
};
const US: Rule = Rule {
    start: Transition {
        month: 3,
        week: Week::Nth(2),
        hour: 2,
        utc: false,
    },
    end: Transition {
        month: 11,
        week: Week::Nth(1),
        hour: 2,
        utc: false,
    },
};
const AU: Rule = Rule {
    start: Transition {
        month: 10,
        week: Week::Nth(1),
        hour: 2,
        utc: false,
    },
    end: Transition {
        month: 4,
        week: Week::Nth(1),
        hour: 3,
        utc: false,
    },
};
const NZ: Rule = Rule {
    start: Transition {
        month: 9,
        week: Week::Last,
        hour: 2,
        utc: false,
    },
    end: Transition {
        month: 4,
        week: Week::Nth(1),
        hour: 3,
        utc: false,
    },
};

/// Named zones: standard offset in minutes, and the daylight-saving rule if any (+60 minutes).
const ZONES: &[(&str, i32, Option<Rule>)] = &[
    ("UTC", 0, None),
    ("Etc/UTC", 0, None),
    ("GMT", 0, None),
    ("Europe/London", 0, Some(EU)),
    ("Europe/Dublin", 0, Some(EU)),
    ("Europe/Lisbon", 0, Some(EU)),
    ("Europe/Paris", 60, Some(EU)),
    ("Europe/Berlin", 60, Some(EU)),
    ("Europe/Madrid", 60, Some(EU)),
    ("Europe/Rome", 60, Some(EU)),
    ("Europe/Amsterdam", 60, Some(EU)),
    ("Europe/Brussels", 60, Some(EU)),
    ("Europe/Vienna", 60, Some(EU)),
    ("Europe/Zurich", 60, Some(EU)),
    ("Europe/Stockholm", 60, Some(EU)),
    ("Europe/Oslo", 60, Some(EU)),
    ("Europe/Copenhagen", 60, Some(EU)),
    ("Europe/Warsaw", 60, Some(EU)),
    ("Europe/Prague", 60, Some(EU)),
    ("Europe/Athens", 120, Some(EU)),
    ("Europe/Helsinki", 120, Some(EU)),
    ("Europe/Kyiv", 120, Some(EU)),
    ("Europe/Bucharest", 120, Some(EU)),
    ("Europe/Istanbul", 180, None),
    ("Europe/Moscow", 180, None),
    ("Africa/Lagos", 60, None),
    ("Africa/Johannesburg", 120, None),
    ("Africa/Nairobi", 180, None),
    ("Asia/Dubai", 240, None),
    ("Asia/Karachi", 300, None),
    ("Asia/Kolkata", 330, None),
    ("Asia/Calcutta", 330, None),
    ("Asia/Kathmandu", 345, None),
    ("Asia/Dhaka", 360, None),
    ("Asia/Bangkok", 420, None),
    ("Asia/Jakarta", 420, None),
    ("Asia/Shanghai", 480, None),
    ("Asia/Hong_Kong", 480, None),
    ("Asia/Singapore", 480, None),
    ("Asia/Tokyo", 540, None),
    ("Asia/Seoul", 540, None),
    ("Australia/Brisbane", 600, None),
    ("Australia/Sydney", 600, Some(AU)),
    ("Australia/Melbourne", 600, Some(AU)),
    ("Pacific/Auckland", 720, Some(NZ)),
    ("Pacific/Honolulu", -600, None),
    ("America/Anchorage", -540, Some(US)),
    ("America/Los_Angeles", -480, Some(US)),
    ("America/Vancouver", -480, Some(US)),
    ("America/Phoenix", -420, None),
    ("America/Denver", -420, Some(US)),
    ("America/Chicago", -360, Some(US)),
    ("America/Mexico_City", -360, None),
    ("America/New_York", -300, Some(US)),
    ("America/Toronto", -300, Some(US)),
    ("America/Bogota", -300, None),
    ("America/Lima", -300, None),
    ("America/Halifax", -240, Some(US)),
    ("America/Sao_Paulo", -180, None),
    ("America/Argentina/Buenos_Aires", -180, None),
];

struct Zone {
    standard: i32,
    rule: Option<Rule>,
}

fn zone(name: &str) -> Result<Zone, AgentError> {
    if let Some((_, standard, rule)) = ZONES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)) {
        return Ok(Zone {
            standard: *standard,
            rule: *rule,
        });
    }
    let offset = name
        .strip_prefix("UTC")
        .or_else(|| name.strip_prefix("GMT"))
        .unwrap_or(name);
    parse_offset(offset)
        .map(|standard| Zone { standard, rule: None })
        .ok_or_else(|| {
            AgentError::InvalidInput(format!(
                "unknown time zone {name:?}: use an offset such as +05:30 or one of the {} named zones this agent knows",
                ZONES.len()
            ))
        })
}

/// `+05:30`, `-0300`, `+9` as minutes east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.chars().next()? {
        '+' => (1, &text[1..]),
        '-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

fn nth_sunday(year: i32, transition: Transition) -> NaiveDate {
    let first =
        NaiveDate::from_ymd_opt(year, transition.month, 1).expect("months 1-12 have a first day");
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    let first_sunday = first + Duration::days(i64::from(to_sunday));
    match transition.week {
        Week::Nth(n) => first_sunday + Duration::weeks(i64::from(n - 1)),
        Week::Last => {
            let mut day = first_sunday;
            while (day + Duration::weeks(1)).month() == transition.month {
                day += Duration::weeks(1);
            }
            debug_assert_eq!(day.weekday(), Weekday::Sun);
            day
        }
    }
}

impl Zone {
    /// The transition's instant, given the offset (minutes) in force just before it.
    fn instant(year: i32, transition: Transition, before: i32) -> DateTime<Utc> {
        let local = nth_sunday(year, transition)
            .and_hms_opt(transition.hour, 0, 0)
            .expect("transition hours are valid");
        let shift = if transition.utc { 0 } else { before };
        Utc.from_utc_datetime(&(local - Duration::minutes(i64::from(shift))))
    }

    /// The offset in force at `at`, and whether it is daylight-saving time.
    fn offset_at(&self, at: DateTime<Utc>) -> (FixedOffset, bool) {
        let dst = self.rule.is_some_and(|rule| {
            let year = at.year();
            let start = Self::instant(year, rule.start, self.standard);
            let end = Self::instant(year, rule.end, self.standard + 60);
            if start < end {
                at >= start && at < end
            } else {
                at >= start || at < end
            }
        });
        let minutes = self.standard + if dst { 60 } else { 0 };
        let offset = FixedOffset::east_opt(minutes * 60).expect("table offsets are within a day");
        (offset, dst)
    }

    /// A wall-clock time in this zone as an instant. In the hour a DST change repeats or skips,
    /// the standard-time reading wins.
    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let standard =
            Utc.from_utc_datetime(&(local - Duration::minutes(i64::from(self.standard))));
        let (offset, _) = self.offset_at(standard);
        Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(offset.local_minus_utc()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_utc_instant_is_shown_in_named_zones_with_daylight_saving() {
        let out =
            run(&json!({"date": "2024-07-01T12:00:00Z", "timezone": "Europe/Paris"})).unwrap();
        assert_eq!(out["iso"], "2024-07-01T14:00:00+02:00");
        assert_eq!(out["dst"], true);
        let out =
            run(&json!({"date": "2024-01-15T12:00:00Z", "timezone": "America/New_York"})).unwrap();
        assert_eq!(out["iso"], "2024-01-15T07:00:00-05:00");
        let out =
            run(&json!({"date": "2024-03-10T07:30:00Z", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            out["utc_offset"], "-04:00",
            "US DST began at 07:00 UTC on 10 March 2024"
        );
        let out =
            run(&json!({"date": "2024-01-15T12:00:00Z", "timezone": "Australia/Sydney"})).unwrap();
        assert_eq!(out["utc_offset"], "+11:00");
        let out =
            run(&json!({"date": "2024-01-15T12:00:00Z", "timezone": "Asia/Kolkata"})).unwrap();
        assert_eq!(out["time"], "17:30:00");
    }

    #[test]
    fn common_notations_and_formats_are_read_and_written() {
        let out = run(&json!({
            "date": "March 10, 2024", "output_format": "%A %d %B %Y", "timezone": "+05:30"
        }))
        .unwrap();
        assert_eq!(out["formatted"], "Sunday 10 March 2024");
        let out = run(&json!({"date": 1_700_000_000, "timezone": "UTC"})).unwrap();
        assert_eq!(out["iso"], "2023-11-14T22:13:20+00:00");
        let out = run(&json!({
            "date": "10/03/2024 09:15", "input_format": "%d/%m/%Y %H:%M",
            "source_timezone": "Europe/London", "timezone": "Asia/Tokyo"
        }))
        .unwrap();
        assert_eq!(out["iso"], "2024-03-10T18:15:00+09:00");
        assert_eq!(out["weekday"], "Sunday");
    }

    #[test]
    fn bad_dates_zones_and_formats_are_input_errors() {
        for input in [
            json!({"date": "not a date"}),
            json!({"date": "2024-01-01", "timezone": "Mars/Olympus"}),
            json!({"date": "2024-01-01", "output_format": "%Q"}),
            json!({"date": "2024-02-30"}),
        ] {
            assert!(
                matches!(run(&input), Err(AgentError::InvalidInput(_))),
                "{input}"
            );
        }
    }
}
