//! Checks on what callers send, each failing with the field it is about. They run before any
//! work, so bad input changes nothing.

use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use uuid::Uuid;

use crate::error::{MarketError, Result};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_BYTES: usize = 32;
pub const MAX_NOTES_CHARS: usize = 10_000;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_COMMENT_CHARS: usize = 4000;
pub const MAX_QUERY_CHARS: usize = 200;
/// How deep a list goes: a page starts at most this many results in. Postgres walks past every
/// result before a page's offset on every request for it, so past this a caller narrows the
/// search instead (tokens stop there; a deeper one is refused).
pub const MAX_PAGE_OFFSET: i64 = 10_000;
/// The longest version: semver bounds neither pre-release nor build parts, and an item's
/// latest version is in every read of it.
pub const MAX_VERSION_BYTES: usize = 64;

/// `[a-z0-9][a-z0-9-]{0,63}`: it names the item in URLs and stays readable there.
pub fn slug(field: &str, raw: &str) -> Result<String> {
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw.as_bytes()[0].is_ascii_alphanumeric()
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(MarketError::invalid(
            field,
            "must match [a-z0-9][a-z0-9-]{0,63}",
        ))
    }
}

/// Text of at most `max` characters, without NUL (which Postgres text cannot hold); `required`
/// refuses blank text.
pub fn text(field: &str, raw: &str, max: usize, required: bool) -> Result<String> {
    let trimmed = raw.trim();
    if required && trimmed.is_empty() {
        return Err(MarketError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(MarketError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.contains('\0') {
        return Err(MarketError::invalid(
            field,
            sankalpa_kit::bounded_json::NUL_REFUSED,
        ));
    }
    Ok(trimmed.to_owned())
}

/// Lowercase tags `[a-z0-9][a-z0-9-]*` of at most 32 bytes, at most 20, duplicates dropped.
pub fn tags(raw: &[String]) -> Result<Vec<String>> {
    if raw.len() > MAX_TAGS {
        return Err(MarketError::invalid(
            "tags",
            format!("must be at most {MAX_TAGS}"),
        ));
    }
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for (index, tag) in raw.iter().enumerate() {
        let tag = self::tag(&format!("tags[{index}]"), tag)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

pub fn tag(field: &str, raw: &str) -> Result<String> {
    let valid = !raw.is_empty()
        && raw.len() <= MAX_TAG_BYTES
        && raw.as_bytes()[0].is_ascii_alphanumeric()
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(MarketError::invalid(
            field,
            format!("must be lowercase [a-z0-9][a-z0-9-]*, at most {MAX_TAG_BYTES} bytes"),
        ))
    }
}

/// A semantic version 2.0.0 of at most [`MAX_VERSION_BYTES`], normalised ("01.2.3" is refused,
/// as semver requires).
pub fn version(field: &str, raw: &str) -> Result<semver::Version> {
    if raw.trim().len() > MAX_VERSION_BYTES {
        return Err(MarketError::invalid(
            field,
            format!("must be at most {MAX_VERSION_BYTES} bytes"),
        ));
    }
    semver::Version::parse(raw.trim()).map_err(|err| {
        MarketError::invalid(
            field,
            format!("must be a semantic version like 1.2.3: {err}"),
        )
    })
}

pub fn uuid(field: &str, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| MarketError::invalid(field, "must be a UUID"))
}

/// Page size and offset. The token is the offset of the next page: search ranks rows by
/// scores computed per query, which no keyset cursor can follow, and the lists here (versions
/// of one item, reviews of one item, installs of one tenant) stay small enough that an offset
/// costs nothing noticeable.
pub fn page(request: Option<&pb::PageRequest>) -> Result<(i64, i64)> {
    let (size, token) = paging::requested(request)?;
    let offset = if token.is_empty() {
        0
    } else {
        token
            .parse::<i64>()
            .ok()
            .filter(|offset| *offset >= 0)
            .ok_or_else(|| MarketError::invalid("page.page_token", "is not a token we issued"))?
    };
    if offset > MAX_PAGE_OFFSET {
        return Err(MarketError::invalid(
            "page.page_token",
            format!("lists go at most {MAX_PAGE_OFFSET} results deep; narrow the search"),
        ));
    }
    Ok((size, offset))
}

/// The token of the page after one of `size` at `offset` that found `found` rows and kept
/// `kept` of them (fewer when they did not all fit): empty when that page was the last, or
/// when the next would start past [`MAX_PAGE_OFFSET`].
pub fn next_page(size: i64, offset: i64, found: usize, kept: usize) -> String {
    let found = i64::try_from(found).unwrap_or(i64::MAX);
    let kept = i64::try_from(kept).unwrap_or(i64::MAX);
    let next = offset.saturating_add(kept);
    if (found < size && kept == found) || next > MAX_PAGE_OFFSET {
        String::new()
    } else {
        next.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_tags_are_lowercase_words_with_dashes() {
        assert!(slug("slug", "hello-world-2").is_ok());
        assert!(slug("slug", "-hello").is_err());
        assert!(slug("slug", "Hello").is_err());
        assert!(slug("slug", &"a".repeat(65)).is_err());
        assert_eq!(
            tags(&["ai".into(), "ai".into(), "web-3".into()]).unwrap(),
            ["ai", "web-3"]
        );
        assert!(tags(&["AI".into()]).is_err());
    }

    #[test]
    fn versions_are_semver_and_order_by_precedence() {
        let nine = version("version", "1.9.0").unwrap();
        let ten = version("version", "1.10.0").unwrap();
        assert!(ten > nine);
        assert!(version("version", "1.0").is_err());
        assert!(version("version", "01.0.0").is_err());
        assert!(version("version", "1.0.0-rc.1").unwrap() < version("version", "1.0.0").unwrap());
        assert!(version("version", &format!("1.0.0-{}", "a".repeat(64))).is_err());
    }

    #[test]
    fn a_page_token_goes_on_while_there_may_be_more_and_not_past_the_depth() {
        assert_eq!(next_page(10, 0, 10, 10), "10");
        assert_eq!(next_page(10, 0, 7, 7), "");
        assert_eq!(next_page(10, 20, 7, 3), "23", "what did not fit comes next");
        assert_eq!(next_page(200, MAX_PAGE_OFFSET - 100, 200, 200), "");
        assert!(
            page(Some(&pb::PageRequest {
                page_size: 1,
                page_token: (MAX_PAGE_OFFSET + 1).to_string(),
            }))
            .is_err()
        );
    }
}
