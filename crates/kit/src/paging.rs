//! Paging of list RPCs, one rule for every service: a `PageRequest` with `page_size` 0 (or none)
//! gets [`DEFAULT_PAGE_SIZE`] items, more than [`MAX_PAGE_SIZE`] is INVALID_ARGUMENT naming
//! `page.page_size`, and the `page_token` of the next page is whatever the service gave (a row
//! id, a key, an offset), empty on the last page. A service fetches one row more than the size
//! to know whether another page follows ([`next_token`]).

use sankalpa_proto::v1::{PageRequest, PageResponse};
use uuid::Uuid;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// A page request the service cannot serve, naming the field; each service answers it as its
/// INVALID_ARGUMENT.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadPage {
    pub field: &'static str,
    pub message: String,
}

impl BadPage {
    /// A `page_token` this service did not give.
    pub fn token() -> Self {
        Self {
            field: "page.page_token",
            message: "is not a token this service gave".to_owned(),
        }
    }
}

impl From<BadPage> for tonic::Status {
    fn from(err: BadPage) -> Self {
        crate::problem::invalid_argument(err.field, err.message)
    }
}

/// The page size asked for and the token as sent (empty for the first page).
pub fn requested(request: Option<&PageRequest>) -> Result<(i64, &str), BadPage> {
    let Some(request) = request else {
        return Ok((DEFAULT_PAGE_SIZE, ""));
    };
    let size = match i64::from(request.page_size) {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(BadPage {
                field: "page.page_size",
                message: format!("must be at most {MAX_PAGE_SIZE}"),
            });
        }
        size => size,
    };
    Ok((size, request.page_token.as_str()))
}

/// The page size and the row id to continue after, for lists paged by id.
pub fn after_id(request: Option<&PageRequest>) -> Result<(i64, Option<Uuid>), BadPage> {
    let (size, token) = requested(request)?;
    let after = match token {
        "" => None,
        token => Some(Uuid::parse_str(token.trim()).map_err(|_| BadPage::token())?),
    };
    Ok((size, after))
}

/// Trims `rows` (fetched with one row more than `size`) to the page, and gives the token of
/// the page after it, empty at the end.
pub fn next_token<T>(rows: &mut Vec<T>, size: i64, token_of: impl Fn(&T) -> String) -> String {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        rows.last().map(token_of).unwrap_or_default()
    } else {
        String::new()
    }
}

/// The `page` of a list's answer.
pub fn response(next_page_token: String) -> Option<PageResponse> {
    Some(PageResponse { next_page_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(page_size: u32, page_token: &str) -> PageRequest {
        PageRequest {
            page_size,
            page_token: page_token.to_owned(),
        }
    }

    #[test]
    fn sizes_default_and_are_bounded() {
        assert_eq!(requested(None).unwrap(), (DEFAULT_PAGE_SIZE, ""));
        assert_eq!(requested(Some(&request(0, "t"))).unwrap(), (50, "t"));
        assert_eq!(requested(Some(&request(200, ""))).unwrap().0, 200);
        assert_eq!(
            requested(Some(&request(201, ""))).unwrap_err().field,
            "page.page_size"
        );
    }

    #[test]
    fn an_id_token_must_be_an_id() {
        let id = Uuid::new_v4();
        assert_eq!(
            after_id(Some(&request(5, &id.to_string()))).unwrap(),
            (5, Some(id))
        );
        assert_eq!(
            after_id(Some(&request(5, "nope"))).unwrap_err().field,
            "page.page_token"
        );
    }

    #[test]
    fn the_next_token_names_the_last_row_kept_when_more_follow() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_token(&mut rows, 2, ToString::to_string), "2");
        assert_eq!(rows, [1, 2]);
        assert_eq!(next_token(&mut rows, 2, ToString::to_string), "");
    }
}
