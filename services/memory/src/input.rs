//! Checks on what callers send, each failing with the field it is about. They run before any
//! work, so bad input changes nothing.

use crate::error::{MemoryError, Result};

pub const MAX_ID_BYTES: usize = 256;
pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_OPS: usize = 1000;
pub const MAX_LABEL_CHARS: usize = 200;
/// Ten years: longer is "never" in practice, and it keeps `now() + ttl` far from overflow.
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A session id: 1 to 256 bytes of ASCII letters, digits, `_`, `-` and `:`. The id is a token of
/// the event subjects `memory.<tenant>.<session>.<action>`, where `.`, `*`, `>` and spaces
/// would change the subject's meaning.
pub fn session_id(field: &str, raw: &str) -> Result<String> {
    if raw.is_empty() || raw.len() > MAX_ID_BYTES {
        return Err(MemoryError::invalid(
            field,
            format!("must be 1 to {MAX_ID_BYTES} bytes"),
        ));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
    {
        return Err(MemoryError::invalid(
            field,
            "may hold only ASCII letters, digits, '_', '-' and ':'",
        ));
    }
    Ok(raw.to_owned())
}

/// A key: 1 to 256 bytes of UTF-8 without NUL (which Postgres text cannot hold).
pub fn key(field: &str, raw: &str) -> Result<String> {
    if raw.is_empty() || raw.len() > MAX_KEY_BYTES {
        return Err(MemoryError::invalid(
            field,
            format!("must be 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    if raw.contains('\0') {
        return Err(MemoryError::invalid(
            field,
            sankalpa_kit::bounded_json::NUL_REFUSED,
        ));
    }
    Ok(raw.to_owned())
}

/// A key prefix to filter by: empty, or no longer than a key and, like one, without NUL.
pub fn key_prefix(field: &str, raw: &str) -> Result<String> {
    if raw.len() > MAX_KEY_BYTES {
        return Err(MemoryError::invalid(
            field,
            format!("must be at most {MAX_KEY_BYTES} bytes"),
        ));
    }
    if raw.contains('\0') {
        return Err(MemoryError::invalid(
            field,
            sankalpa_kit::bounded_json::NUL_REFUSED,
        ));
    }
    Ok(raw.to_owned())
}

/// JSON text of at most `max_bytes`, counted as it is written back out (see [`written_len`]).
pub fn value(field: &str, raw: String, max_bytes: usize) -> Result<String> {
    if raw.len() > max_bytes {
        return Err(MemoryError::invalid(
            field,
            format!("must be at most {max_bytes} bytes, not {}", raw.len()),
        ));
    }
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&raw) {
        return Err(MemoryError::invalid(field, format!("must be JSON: {err}")));
    }
    let written = written_len(&raw);
    if written > max_bytes {
        return Err(MemoryError::invalid(
            field,
            format!(
                "must be at most {max_bytes} bytes, not {written}: a number counts as written \
                 out in full, without its exponent, as it is stored and read back"
            ),
        ));
    }
    // Postgres jsonb refuses the NUL character in strings. The cheap test first; only a value
    // that may hold one is parsed again to look.
    if raw.contains("\\u0000")
        && sankalpa_kit::bounded_json::holds_nul(&serde_json::from_str(&raw).unwrap_or_default())
    {
        return Err(MemoryError::invalid(
            field,
            sankalpa_kit::bounded_json::NUL_REFUSED,
        ));
    }
    Ok(raw)
}

/// At least the length of valid JSON `text` once stored and read back. Postgres keeps a
/// number exactly and writes it out without an exponent, so the 9 bytes of `[1e99999]` come
/// back as 100,002: unchecked, a value of a few kilobytes would be read back as gigabytes. So
/// each exponent's size is added to the text's length, which is never less than what writing
/// the number out adds.
pub fn written_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut total = bytes.len();
    let mut in_string = false;
    let mut escaped = false;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        index += 1;
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            // Outside strings, an `e` after a digit opens an exponent; the `e` of `true` and
            // `false` follows a letter.
            b'e' | b'E' if index >= 2 && bytes[index - 2].is_ascii_digit() => {
                if matches!(bytes.get(index), Some(b'+' | b'-')) {
                    index += 1;
                }
                let mut exponent: usize = 0;
                while let Some(digit) = bytes.get(index).filter(|byte| byte.is_ascii_digit()) {
                    exponent = exponent
                        .saturating_mul(10)
                        .saturating_add(usize::from(digit - b'0'));
                    index += 1;
                }
                total = total.saturating_add(exponent);
            }
            _ => {}
        }
    }
    total
}

pub fn ttl(field: &str, seconds: u64) -> Result<i64> {
    if seconds > MAX_TTL_SECONDS {
        return Err(MemoryError::invalid(
            field,
            format!("must be at most {MAX_TTL_SECONDS} seconds"),
        ));
    }
    Ok(i64::try_from(seconds).expect("bounded by MAX_TTL_SECONDS"))
}

/// A version a caller expects; versions are stored as Postgres bigint.
pub fn version(field: &str, version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| MemoryError::invalid(field, "is out of range"))
}

pub fn label(raw: &str) -> Result<String> {
    let label = raw.trim();
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(MemoryError::invalid(
            "label",
            format!("must be at most {MAX_LABEL_CHARS} characters"),
        ));
    }
    // Postgres text cannot hold NUL.
    if label.contains('\0') {
        return Err(MemoryError::invalid(
            "label",
            sankalpa_kit::bounded_json::NUL_REFUSED,
        ));
    }
    Ok(label.to_owned())
}

pub fn uuid(field: &str, raw: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| MemoryError::invalid(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_safe_subject_tokens() {
        assert!(session_id("session_id", "run:42_a-b").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "é"] {
            assert!(
                session_id("session_id", bad).is_err(),
                "{bad:?} was accepted"
            );
        }
        assert!(session_id("session_id", &"a".repeat(257)).is_err());
    }

    #[test]
    fn labels_are_short_text_without_nul() {
        assert_eq!(label("  before migration ").unwrap(), "before migration");
        assert!(label("a\0b").is_err());
        assert!(label(&"x".repeat(MAX_LABEL_CHARS + 1)).is_err());
    }

    #[test]
    fn values_must_be_json_postgres_can_store() {
        assert!(value("v", r#"{"a":[1,"x"]}"#.into(), 100).is_ok());
        assert!(value("v", r#"{"a":"\\u0000"}"#.into(), 100).is_ok());
        assert!(value("v", r#"{"a":"\u0000"}"#.into(), 100).is_err());
        assert!(value("v", "{".into(), 100).is_err());
        assert!(value("v", "[1,2,3]".into(), 5).is_err());
        assert!(value("v", "[1e5]".into(), 100).is_ok());
        assert!(value("v", "[1e99]".into(), 100).is_err());
    }

    #[test]
    fn a_number_counts_as_long_as_it_is_written_out() {
        for (json, written_out) in [
            ("[1e5]", "[100000]"),
            ("[1.5E+3,2e-2]", "[1500, 0.02]"),
            ("-12.25e-4", "-0.001225"),
        ] {
            assert!(
                written_len(json) >= written_out.len(),
                "{json} is written out as {written_out}"
            );
        }
        // Only numbers have exponents: not strings, keys or the literals.
        let plain = r#"{"1e99":"2e99","t":[true,false,null,10]}"#;
        assert_eq!(written_len(plain), plain.len());
        assert_eq!(written_len(r#"["\"1e9"]"#), r#"["\"1e9"]"#.len());
        assert_eq!(written_len("[1e99999999999999999999999]"), usize::MAX);
    }
}
