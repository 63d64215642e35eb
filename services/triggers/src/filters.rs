//! Which events an endpoint receives. A filter is matched against the event's CloudEvents type
//! (`sankalpa.chains.run.completed`) and against its subject without the tenant
//! (`chains.<run>.run.completed`, the tenant being the endpoint's own): `*` stands for one
//! dot-separated token, a final `>` for one or more, as in NATS subjects; `*` alone takes
//! every event.

use crate::error::{Result, TriggersError};

/// Filters an endpoint may have, and the longest one, in bytes.
pub const MAX_FILTERS: usize = 50;
pub const MAX_FILTER_BYTES: usize = 200;

/// The filters, trimmed, deduplicated and checked; `field` names them in errors.
pub fn check(field: &str, filters: &[String]) -> Result<Vec<String>> {
    if filters.is_empty() {
        return Err(TriggersError::invalid(
            field,
            "must name at least one event type or pattern (`*` for all)",
        ));
    }
    if filters.len() > MAX_FILTERS {
        return Err(TriggersError::invalid(
            field,
            format!("must have at most {MAX_FILTERS} entries"),
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(filters.len());
    for (index, filter) in filters.iter().enumerate() {
        let filter = filter.trim();
        let entry = format!("{field}[{index}]");
        if filter.is_empty() || filter.len() > MAX_FILTER_BYTES {
            return Err(TriggersError::invalid(
                entry,
                format!("must be 1 to {MAX_FILTER_BYTES} bytes"),
            ));
        }
        let tokens: Vec<&str> = filter.split('.').collect();
        let last = tokens.len() - 1;
        for (position, token) in tokens.iter().enumerate() {
            let valid = match *token {
                "*" => true,
                ">" => position == last,
                token => {
                    !token.is_empty()
                        && token
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                }
            };
            if !valid {
                return Err(TriggersError::invalid(
                    entry,
                    "must be dot-separated tokens of letters, digits, `_` and `-`, \
                     `*` for any one token, or a final `>` for the rest",
                ));
            }
        }
        if !kept.iter().any(|known| known == filter) {
            kept.push(filter.to_owned());
        }
    }
    Ok(kept)
}

/// Whether any of `filters` takes the event of `event_type` whose subject without the tenant
/// is `subject`.
pub fn matches(filters: &[String], event_type: &str, subject: &str) -> bool {
    filters
        .iter()
        .any(|filter| pattern_matches(filter, event_type) || pattern_matches(filter, subject))
}

fn pattern_matches(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let mut wanted = pattern.split('.');
    let mut given = value.split('.');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(token), Some(actual)) if token == actual => {}
            _ => return false,
        }
    }
}

/// An event's subject without the test or deployment prefix and without its tenant, the second
/// token: `chains.<tenant>.<run>.run.completed` gives `chains.<run>.run.completed`.
pub fn subject_without_tenant(prefix: &str, subject: &str) -> String {
    let subject = subject.strip_prefix(prefix).unwrap_or(subject);
    let mut tokens = subject.splitn(3, '.');
    match (tokens.next(), tokens.next(), tokens.next()) {
        (Some(channel), Some(_tenant), Some(rest)) => format!("{channel}.{rest}"),
        _ => subject.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn types_and_subjects_match_with_wildcards() {
        let run_done = ("sankalpa.chains.run.completed", "chains.r1.run.completed");
        let agent_done = ("sankalpa.agents.completed", "agents.echo.completed");
        let cases = [
            ("*", true, true),
            ("sankalpa.chains.run.completed", true, false),
            ("sankalpa.chains.>", true, false),
            ("agents.*.completed", false, true),
            ("chains.*.run.completed", true, false),
            ("sankalpa.*.completed", false, true),
            ("chains.>", true, false),
            ("memory.>", false, false),
        ];
        for (filter, run, agent) in cases {
            let list = filters(&[filter]);
            assert_eq!(
                matches(&list, run_done.0, run_done.1),
                run,
                "{filter} on a run"
            );
            assert_eq!(
                matches(&list, agent_done.0, agent_done.1),
                agent,
                "{filter} on an agent"
            );
        }
    }

    #[test]
    fn bad_filters_are_named_by_index() {
        let err = check("event_types", &filters(&["*", "chains..x"])).unwrap_err();
        assert!(err.to_string().starts_with("event_types[1]"), "{err}");
        assert!(check("event_types", &filters(&["a.>.b"])).is_err());
        assert!(check("event_types", &[]).is_err());
        assert_eq!(
            check("event_types", &filters(&[" * ", "*"])).unwrap(),
            filters(&["*"])
        );
    }

    #[test]
    fn the_tenant_leaves_the_subject() {
        assert_eq!(
            subject_without_tenant("t1.", "t1.chains.ten.r1.run.completed"),
            "chains.r1.run.completed"
        );
    }
}
