//! `sankalpa://runs/<id>` deep links, and the console's page of a run.

use url::Url;

/// A run id's length, at most (a UUID is 36).
pub const MAX_RUN_ID: usize = 64;

/// The run a `sankalpa://runs/<id>` link names; `None` for any other link.
pub fn run_of_link(link: &str) -> Option<String> {
    let url = Url::parse(link).ok()?;
    if url.scheme() != "sankalpa" || url.host_str() != Some("runs") {
        return None;
    }
    let id = url.path().trim_matches('/');
    check_run_id(id).ok()?;
    Some(id.to_owned())
}

/// A run id: 1 to [`MAX_RUN_ID`] letters, digits or `-`.
pub fn check_run_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= MAX_RUN_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!("id: 1 to {MAX_RUN_ID} letters, digits or '-'"))
    }
}

/// The console's page of run `id` on `gateway`.
pub fn run_page(gateway: &Url, id: &str) -> Url {
    gateway
        .join(&format!("runs/{id}"))
        .expect("a checked run id joins any base")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_link_names_its_run() {
        let id = "0b7c5a4e-3f1d-4c2b-9a8e-7d6c5b4a3f21";
        assert_eq!(
            run_of_link(&format!("sankalpa://runs/{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(
            run_of_link(&format!("sankalpa://runs/{id}/")).as_deref(),
            Some(id)
        );
    }

    #[test]
    fn other_links_name_no_run() {
        for link in [
            "sankalpa://chains/abc",
            "https://runs/abc",
            "sankalpa://runs/",
            "sankalpa://runs/a/b",
            "sankalpa://runs/%00",
            "not a link",
        ] {
            assert_eq!(run_of_link(link), None, "{link}");
        }
        assert!(run_of_link(&format!("sankalpa://runs/{}", "a".repeat(MAX_RUN_ID + 1))).is_none());
    }

    #[test]
    fn the_run_page_is_under_the_gateway() {
        let gateway = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            run_page(&gateway, "r1").as_str(),
            "http://127.0.0.1:8080/runs/r1"
        );
    }
}
