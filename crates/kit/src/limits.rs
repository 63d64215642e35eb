//! Bounds on what one request can put into an event, an outbox row or a log line.
//!
//! An agent's error message, a step's output or a user's text can be as large as a request
//! allows (megabytes). Copied whole into an event it can exceed what NATS accepts (1 MiB by
//! default), and one event the relay can never publish would hold up every event behind it. So
//! text that crosses into an event or a log is cut to [`MAX_ERROR_BYTES`] with [`truncate`], and
//! every event's `data` is fitted to [`MAX_EVENT_DATA_BYTES`] with [`fit`] when it is built.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The longest error message kept in an event, a stored row or a log line.
pub const MAX_ERROR_BYTES: usize = 4 * 1024;
/// The largest `data` an event carries; a larger one is fitted by [`fit`].
pub const MAX_EVENT_DATA_BYTES: usize = 64 * 1024;
/// What [`fit`] keeps of each top-level field of a too-large event.
const MAX_FIELD_BYTES: usize = 1024;

/// `text` cut to at most `max_bytes` (on a character boundary), with a note of how much was
/// left out when it was cut.
pub fn truncate(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let note = format!("... ({} bytes truncated)", text.len());
    let mut end = max_bytes.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{note}", &text[..end]))
}

/// An error message as it may enter an event, a row or a log: at most [`MAX_ERROR_BYTES`].
pub fn error_message(text: &str) -> Cow<'_, str> {
    truncate(text, MAX_ERROR_BYTES)
}

/// Whether `value` as compact JSON is longer than `limit` bytes, counted without writing it;
/// counting stops once past `limit`, so a huge value costs no more than a small one. Text and
/// structure are counted as written; a number as 24 bytes, the most one takes.
pub fn json_len_exceeds(value: &Value, limit: usize) -> bool {
    let mut budget = limit as i64;
    !fits(value, &mut budget)
}

fn fits(value: &Value, budget: &mut i64) -> bool {
    *budget -= match value {
        Value::Null => 4,
        Value::Bool(flag) => 5 - i64::from(*flag),
        Value::Number(_) => 24,
        Value::String(text) => escaped_len(text),
        Value::Array(items) => {
            *budget -= 2 + separators(items.len());
            return *budget >= 0 && items.iter().all(|item| fits(item, budget));
        }
        Value::Object(fields) => {
            *budget -= 2 + fields.len() as i64 + separators(fields.len());
            return *budget >= 0
                && fields.iter().all(|(name, field)| {
                    *budget -= escaped_len(name);
                    *budget >= 0 && fits(field, budget)
                });
        }
    };
    *budget >= 0
}

/// The commas between `count` items.
fn separators(count: usize) -> i64 {
    count.saturating_sub(1) as i64
}

fn escaped_len(text: &str) -> i64 {
    2 + text
        .bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<i64>()
}

/// `data` unchanged when it is at most `max_bytes` of JSON; otherwise an object that keeps each
/// small top-level field (ids, status, names), cuts long strings to 1 KiB, replaces large nested
/// values with `{"truncated": true}`, and says `"truncated": true` itself, so a subscriber still
/// learns what happened to which thing and can fetch the rest.
pub fn fit(data: Value, max_bytes: usize) -> Value {
    if !json_len_exceeds(&data, max_bytes) {
        return data;
    }
    let mut fitted = Map::new();
    match data {
        Value::Object(fields) => {
            for (name, field) in fields {
                let kept = match field {
                    Value::String(text) => Value::String(truncate(&text, MAX_FIELD_BYTES).into()),
                    small if !json_len_exceeds(&small, MAX_FIELD_BYTES) => small,
                    _ => serde_json::json!({ "truncated": true }),
                };
                fitted.insert(name, kept);
            }
        }
        Value::String(text) => {
            fitted.insert(
                "text".to_owned(),
                Value::String(truncate(&text, MAX_FIELD_BYTES).into()),
            );
        }
        _ => {}
    }
    fitted.insert("truncated".to_owned(), Value::Bool(true));
    Value::Object(fitted)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 100), "short");
        let long = "é".repeat(10_000);
        let cut = truncate(&long, 1000);
        assert!(cut.len() <= 1000, "{}", cut.len());
        assert!(cut.ends_with("(20000 bytes truncated)"), "{cut}");
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn the_size_estimate_matches_serde_json_on_text_and_structure() {
        let value = json!({"a": "x\"y\n", "list": [true, null, "\u{1}"], "o": {}});
        let written = serde_json::to_vec(&value).unwrap().len();
        assert!(!json_len_exceeds(&value, written));
        assert!(json_len_exceeds(&value, written - 1));
    }

    #[test]
    fn a_large_event_keeps_its_ids_and_says_it_was_truncated() {
        let data = json!({
            "run_id": "r1",
            "step": "build",
            "error": "e".repeat(2 * 1024 * 1024),
            "output": {"files": vec!["f".repeat(100); 10_000]},
        });
        let fitted = fit(data, MAX_EVENT_DATA_BYTES);
        assert!(serde_json::to_vec(&fitted).unwrap().len() <= MAX_EVENT_DATA_BYTES);
        assert_eq!(fitted["run_id"], "r1");
        assert_eq!(fitted["step"], "build");
        assert_eq!(fitted["truncated"], true);
        assert_eq!(fitted["output"], json!({"truncated": true}));
        assert!(fitted["error"].as_str().unwrap().len() <= 1024);
    }

    #[test]
    fn a_small_event_is_untouched() {
        let data = json!({"run_id": "r1", "status": "completed"});
        assert_eq!(fit(data.clone(), MAX_EVENT_DATA_BYTES), data);
    }
}
