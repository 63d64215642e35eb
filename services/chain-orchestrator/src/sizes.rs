//! How many bytes a JSON value takes once written, counted against a limit.
//!
//! Step outputs, mapped inputs and expression lists are charged against budgets (engine,
//! definition.rs, expr.rs) before they are copied or stored. Counting writes the value into a
//! sink that keeps nothing and stops at the limit, so measuring a value of any size costs no
//! more than the limit. (`sankalpa_kit::limits::json_len_exceeds` answers only whether a value
//! is over; a budget needs the size itself.)

use std::io;

use serde_json::Value;

/// The length of `value` as compact JSON, or `None` when it is longer than `limit` bytes.
pub fn json_size(value: &Value, limit: usize) -> Option<usize> {
    let mut counter = Counter { written: 0, limit };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.written)
}

/// A sink that counts what is written to it and fails once past its limit.
struct Counter {
    written: usize,
    limit: usize,
}

impl io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.written += bytes.len();
        if self.written > self.limit {
            return Err(io::Error::other("over the limit"));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::json_size;

    #[test]
    fn the_size_is_that_of_compact_json_and_none_past_the_limit() {
        let value = json!({"a": [1, "two", null], "b": {"c": "\"quoted\""}});
        let written = serde_json::to_vec(&value).unwrap().len();
        assert_eq!(json_size(&value, written), Some(written));
        assert_eq!(json_size(&value, written - 1), None);
    }
}
