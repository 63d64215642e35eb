//! date_formatter: parses a date or time in common notations and formats it in a time zone.
//!
//! Zones are UTC offsets (`+05:30`, `UTC-3`) or IANA names, looked up in the tz database jiff
//! bundles into the binary: every zone, with its historical rules, the same on every host. An
//! unknown name is an error rather than a silent UTC. chrono parses and formats (strftime).

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
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
    let (offset, dst) = offset_at(&target, instant)?;
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
    source: &TimeZone,
) -> Result<DateTime<Utc>, AgentError> {
    if let Some(format) = format {
        check_format(format)?;
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Ok(at.with_timezone(&Utc));
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return to_utc(source, naive);
        }
        if let Ok(day) = NaiveDate::parse_from_str(text, format) {
            return to_utc(source, day.and_time(NaiveTime::MIN));
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
        return to_utc(source, naive);
    }
    if let Some(day) = DATE_FORMATS
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
    {
        return to_utc(source, day.and_time(NaiveTime::MIN));
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

/// A named zone from the IANA database bundled into the binary (so a container without
/// /usr/share/zoneinfo answers the same), or a fixed UTC offset.
fn zone(name: &str) -> Result<TimeZone, AgentError> {
    if let Ok(zone) = TimeZone::get(name) {
        return Ok(zone);
    }
    let offset = name
        .strip_prefix("UTC")
        .or_else(|| name.strip_prefix("GMT"))
        .unwrap_or(name);
    parse_offset(offset)
        .and_then(|minutes| Offset::from_seconds(minutes * 60).ok())
        .map(TimeZone::fixed)
        .ok_or_else(|| {
            AgentError::InvalidInput(format!(
                "unknown time zone {name:?}: use an IANA name such as Europe/Paris or an offset such as +05:30"
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

fn timestamp(at: DateTime<Utc>) -> Result<Timestamp, AgentError> {
    Timestamp::new(at.timestamp(), at.timestamp_subsec_nanos() as i32)
        .map_err(|e| AgentError::InvalidInput(format!("{at} is out of range: {e}")))
}

/// The offset in force at `at` in `zone`, and whether it is daylight-saving time.
fn offset_at(zone: &TimeZone, at: DateTime<Utc>) -> Result<(FixedOffset, bool), AgentError> {
    let info = zone.to_offset_info(timestamp(at)?);
    let offset = FixedOffset::east_opt(info.offset().seconds())
        .expect("the tz database's offsets are within a day");
    Ok((offset, info.dst().is_dst()))
}

/// A wall-clock time in `zone` as an instant. A time skipped by a daylight-saving change reads
/// as the later instant and a repeated one as the earlier (RFC 5545's "compatible" rule).
fn to_utc(zone: &TimeZone, local: NaiveDateTime) -> Result<DateTime<Utc>, AgentError> {
    let out_of_range = |e: jiff::Error| AgentError::InvalidInput(format!("{local}: {e}"));
    let civil = jiff::civil::DateTime::new(
        i16::try_from(local.year())
            .map_err(|_| AgentError::InvalidInput(format!("{local}: the year is out of range")))?,
        local.month() as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        local.nanosecond().min(999_999_999) as i32,
    )
    .map_err(out_of_range)?;
    let instant = zone
        .to_ambiguous_timestamp(civil)
        .compatible()
        .map_err(out_of_range)?;
    DateTime::from_timestamp(instant.as_second(), instant.subsec_nanosecond() as u32)
        .ok_or_else(|| AgentError::InvalidInput(format!("{local} is out of range")))
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
    fn past_rules_and_every_iana_zone_apply() {
        let out =
            run(&json!({"date": "2006-03-20T12:00:00Z", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            out["utc_offset"], "-05:00",
            "in 2006 US DST began on 2 April, not on the second Sunday of March"
        );
        let out =
            run(&json!({"date": "2024-07-01T12:00:00Z", "timezone": "America/St_Johns"})).unwrap();
        assert_eq!(out["utc_offset"], "-02:30");
        let out =
            run(&json!({"date": "2024-07-01T12:00:00Z", "timezone": "europe/paris"})).unwrap();
        assert_eq!(
            out["utc_offset"], "+02:00",
            "names are matched case-insensitively"
        );
        let out = run(&json!({
            "date": "2024-03-31 02:30", "source_timezone": "Europe/Berlin", "timezone": "UTC"
        }))
        .unwrap();
        assert_eq!(
            out["iso"], "2024-03-31T01:30:00+00:00",
            "a wall time skipped by the spring change reads as the later instant"
        );
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
