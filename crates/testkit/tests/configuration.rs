//! docs/configuration.md lists every variable the services read, and only those: a setting
//! added to a `Config` without its line there, or a line left for a setting that is gone,
//! fails here. (`OTEL_*` variables may also be read by the OpenTelemetry SDK itself, so only
//! the ones the code names are checked.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Every `NAME...` in `text` that starts with one of `prefixes` and ends at a character that
/// cannot be part of a variable name.
fn names(text: &str, open: &str, close: char, prefixes: &[&str]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices(open) {
        let rest = &text[at + open.len()..];
        let Some(end) = rest.find(close) else {
            continue;
        };
        let name = &rest[..end];
        let variable = name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if variable && prefixes.iter().any(|prefix| name.starts_with(prefix)) {
            found.insert(name.to_owned());
        }
    }
    found
}

/// The variables the services' and the kit's code reads (tests excluded).
fn read_by_code() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_sources(&repo().join("crates/kit/src"), &mut files);
    for service in std::fs::read_dir(repo().join("services")).expect("services/") {
        rust_sources(&service.expect("a service").path().join("src"), &mut files);
    }
    let mut read = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        read.extend(names(code, "\"", '"', &["SANKALPA_", "OTEL_"]));
        // `Listen::from_env("MEMORY", ..)` reads SANKALPA_MEMORY_GRPC_ADDR and _HTTP_ADDR.
        for service in names(code, "Listen::from_env(\"", '"', &[""]) {
            read.insert(format!("SANKALPA_{service}_GRPC_ADDR"));
            read.insert(format!("SANKALPA_{service}_HTTP_ADDR"));
        }
    }
    read
}

#[test]
fn the_configuration_page_lists_every_variable_read_and_no_other() {
    let page = std::fs::read_to_string(repo().join("docs/configuration.md")).expect("the page");
    let listed = names(&page, "`", '`', &["SANKALPA_", "OTEL_"]);
    let read = read_by_code();
    assert!(read.len() > 50, "the scan found too little: {read:?}");

    let unlisted: Vec<_> = read.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "read but not in docs/configuration.md: {unlisted:?}"
    );
    let unread: Vec<_> = listed
        .difference(&read)
        .filter(|name| name.starts_with("SANKALPA_"))
        .collect();
    assert!(
        unread.is_empty(),
        "in docs/configuration.md but read by nothing: {unread:?}"
    );
}
