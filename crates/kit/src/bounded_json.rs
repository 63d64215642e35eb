//! JSON written up to a bound: a value's length as JSON, or its text, found without ever
//! producing more than the bound, however large the value is. A custom agent's template and a
//! schema's error messages quote values from the input, which can be megabytes; these stop at
//! the bytes they may spend instead of writing the whole value and cutting it afterwards.

use std::io;

use serde_json::Value;

/// A writer that takes at most `room` bytes (keeping them in `out`, when given) and fails
/// once more would be needed, which stops serde_json there. What fits of the write that does
/// not is kept, so a long string leaves its beginning.
struct Capped<'a> {
    out: Option<&'a mut Vec<u8>>,
    room: usize,
    written: usize,
}

impl io::Write for Capped<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let fitting = bytes.len().min(self.room - self.written);
        self.written += fitting;
        if let Some(out) = self.out.as_deref_mut() {
            out.extend_from_slice(&bytes[..fitting]);
        }
        if fitting < bytes.len() {
            return Err(io::ErrorKind::FileTooLarge.into());
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length of `value` as compact JSON, if it is at most `limit` bytes.
pub fn len_within(value: &Value, limit: usize) -> Option<usize> {
    let mut counter = Capped {
        out: None,
        room: limit,
        written: 0,
    };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.written)
}

/// Appends `value` as compact JSON to `out` if it takes at most `limit` bytes; otherwise leaves
/// `out` as it was and says no.
pub fn append_within(out: &mut String, value: &Value, limit: usize) -> bool {
    let mut bytes = std::mem::take(out).into_bytes();
    let before = bytes.len();
    let written = serde_json::to_writer(
        Capped {
            out: Some(&mut bytes),
            room: limit,
            written: 0,
        },
        value,
    )
    .is_ok();
    if !written {
        bytes.truncate(before);
    }
    *out = String::from_utf8(bytes).expect("serde_json writes UTF-8, and a cut is undone");
    written
}

/// `value` as compact JSON, cut to about `max_bytes` and ending in `...` when it was cut.
pub fn text(value: &Value, max_bytes: usize) -> String {
    let mut bytes = Vec::new();
    let complete = serde_json::to_writer(
        Capped {
            out: Some(&mut bytes),
            room: max_bytes,
            written: 0,
        },
        value,
    )
    .is_ok();
    // A cut can fall inside a character; the lossy decoding marks it rather than failing.
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if !complete {
        text.push_str("...");
    }
    text
}

/// What a field holding a NUL is told, text or JSON (see [`holds_nul`]).
pub const NUL_REFUSED: &str = "must not contain the character \\u0000";

/// Whether `value` holds a NUL character in a string or a member's name, which Postgres's
/// `jsonb` cannot store: an input holding one is refused naming its field rather than failing
/// the write.
pub fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(name, item)| name.contains('\0') || holds_nul(item)),
        _ => false,
    }
}

/// `value` with every NUL character (in strings and members' names) replaced by U+FFFD, for an
/// output made elsewhere (an agent's, a model's) that must be stored whatever it holds.
pub fn replace_nul(value: Value) -> Value {
    fn clean(text: String) -> String {
        if text.contains('\0') {
            text.replace('\0', "\u{FFFD}")
        } else {
            text
        }
    }
    match value {
        Value::String(text) => Value::String(clean(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(replace_nul).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, item)| (clean(name), replace_nul(item)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_value_is_measured_and_written_only_up_to_its_bound() {
        let value = json!({"name": "Ada", "list": [1, 2, 3]});
        let exact = value.to_string().len();
        assert_eq!(len_within(&value, exact), Some(exact));
        assert_eq!(len_within(&value, exact - 1), None);

        let mut out = "x=".to_owned();
        assert!(!append_within(&mut out, &value, exact - 1));
        assert_eq!(out, "x=");
        assert!(append_within(&mut out, &value, exact));
        assert_eq!(out, format!("x={value}"));

        let long = json!("é".repeat(1000));
        let cut = text(&long, 11);
        assert!(cut.starts_with("\"éééé"), "{cut}");
        assert!(cut.ends_with("..."), "{cut}");
        assert!(cut.len() <= 11 + 3 + 3, "{cut}");
        assert_eq!(text(&json!([1, 2]), 100), "[1,2]");
    }

    #[test]
    fn a_nul_is_found_and_replaced_wherever_it_is() {
        let held = json!({"a\0": [1, {"b": "x\0y"}], "c": "\\u0000"});
        assert!(holds_nul(&held));
        let cleaned = replace_nul(held);
        assert!(!holds_nul(&cleaned));
        assert_eq!(
            cleaned,
            json!({"a\u{FFFD}": [1, {"b": "x\u{FFFD}y"}], "c": "\\u0000"})
        );
    }
}
