//! The web console served from a folder: client routes fall back to index.html, hashed assets
//! are cached for good, precompressed files go by Accept-Encoding, the policy allows only the
//! gateway's own origin, nothing outside the folder can be reached, and the API's paths stay
//! the API's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::header;
use sqlx::PgPool;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const INDEX: &str = "<!doctype html><title>console index</title>";
const SCRIPT: &str = "console.log('the app');";
const SECRET: &str = "secret beside the console folder";

/// A built console in a folder of its own (with a secret next to it, which no request may
/// read), removed when dropped.
struct Built {
    base: PathBuf,
}

impl Built {
    fn new() -> Self {
        let base = std::env::temp_dir().join(format!("console-{}", uuid::Uuid::new_v4().simple()));
        let assets = base.join("dist/assets");
        std::fs::create_dir_all(&assets).unwrap();
        std::fs::write(base.join("dist/index.html"), INDEX).unwrap();
        std::fs::write(base.join("dist/favicon.svg"), "<svg/>").unwrap();
        std::fs::write(assets.join("index-Ab12Cd.js"), SCRIPT).unwrap();
        // Distinct contents, so the test sees which variant it got.
        std::fs::write(assets.join("index-Ab12Cd.js.br"), "brotli bytes").unwrap();
        std::fs::write(assets.join("index-Ab12Cd.js.gz"), "gzip bytes").unwrap();
        std::fs::write(base.join("secret.txt"), SECRET).unwrap();
        Self { base }
    }

    fn dist(&self) -> PathBuf {
        self.base.join("dist")
    }
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

async fn serving(pool: PgPool, dist: &Path) -> TestApp {
    let dist = dist.to_path_buf();
    spawn_app_with(pool, move |_, gateway| gateway.console_dir = Some(dist)).await
}

#[sqlx::test(migrations = false)]
async fn client_routes_get_index_html_and_files_are_served_as_themselves(pool: PgPool) {
    let built = Built::new();
    let app = serving(pool, &built.dist()).await;

    for path in [
        "/",
        "/runs",
        "/runs/0b9e8f1c-2d7a",
        "/agents/hello_world",
        "/apidocs",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(response.text().await.unwrap(), INDEX, "{path}");
    }
    let icon = app
        .client
        .get(app.url("/favicon.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.headers()[header::CONTENT_TYPE], "image/svg+xml");
    assert_eq!(icon.text().await.unwrap(), "<svg/>");

    // HEAD answers the same headers without the body.
    let head = app.client.head(app.url("/runs")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        INDEX.len().to_string()
    );
    assert!(head.bytes().await.unwrap().is_empty());
}

#[sqlx::test(migrations = false)]
async fn hashed_assets_are_cached_for_a_year_and_index_html_is_revalidated(pool: PgPool) {
    let built = Built::new();
    let app = serving(pool, &built.dist()).await;

    let asset = app
        .client
        .get(app.url("/assets/index-Ab12Cd.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(
        asset.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        asset.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(asset.text().await.unwrap(), SCRIPT);

    for path in ["/", "/settings"] {
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache", "{path}");
    }

    // An asset of an older build is a 404, not index.html parsed as JavaScript.
    let gone = app
        .client
        .get(app.url("/assets/index-Old000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        gone.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

#[sqlx::test(migrations = false)]
async fn precompressed_files_are_served_by_accept_encoding(pool: PgPool) {
    let built = Built::new();
    let app = serving(pool, &built.dist()).await;
    let fetch = |accept: &'static str| {
        let request = app.client.get(app.url("/assets/index-Ab12Cd.js"));
        let request = if accept.is_empty() {
            request
        } else {
            request.header(header::ACCEPT_ENCODING, accept)
        };
        async move { request.send().await.unwrap() }
    };

    let brotli = fetch("gzip, deflate, br").await;
    assert_eq!(brotli.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(brotli.headers()[header::VARY], "accept-encoding");
    assert_eq!(brotli.text().await.unwrap(), "brotli bytes");

    let gzip = fetch("gzip, br;q=0").await;
    assert_eq!(gzip.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(gzip.text().await.unwrap(), "gzip bytes");

    let identity = fetch("").await;
    assert!(identity.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(identity.text().await.unwrap(), SCRIPT);

    // A file without a precompressed variant is sent as it is, whatever the client accepts.
    let icon = app
        .client
        .get(app.url("/favicon.svg"))
        .header(header::ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert!(icon.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(icon.text().await.unwrap(), "<svg/>");
}

#[sqlx::test(migrations = false)]
async fn the_console_policy_allows_only_the_gateways_own_origin(pool: PgPool) {
    let built = Built::new();
    let app = serving(pool, &built.dist()).await;

    for path in ["/", "/runs/1", "/assets/index-Ab12Cd.js"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self';"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert!(!policy.contains("http"), "{path}: no other host: {policy}");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
    }
}

/// Sends `path` exactly as written (no client normalises it) and returns the whole response.
fn raw_get(address: &str, path: &str) -> String {
    let host = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[sqlx::test(migrations = false)]
async fn no_path_reaches_a_file_outside_the_console_folder(pool: PgPool) {
    let built = Built::new();
    let app = serving(pool, &built.dist()).await;
    let address = app.address.clone();

    let responses = tokio::task::spawn_blocking(move || {
        [
            "/../secret.txt",
            "/assets/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/assets/..%2f..%2fsecret.txt",
            "/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
            "/assets/..\\..\\secret.txt",
            "/.%2e/secret.txt",
        ]
        .map(|path| (path, raw_get(&address, path)))
    })
    .await
    .unwrap();

    for (path, response) in responses {
        let status = response.lines().next().unwrap_or_default().to_owned();
        assert!(
            status.contains(" 200 ") || status.contains(" 400 ") || status.contains(" 404 "),
            "{path}: {status}"
        );
        assert!(
            !response.contains(SECRET),
            "{path} read the secret: {response}"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn unknown_api_paths_and_other_methods_stay_problem_json_404s(pool: PgPool) {
    let built = Built::new();
    let app = serving(pool, &built.dist()).await;

    for path in [
        "/api/nothing",
        "/api",
        "/docs/nothing",
        "/ws/x",
        "/problems/x/y",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json",
            "{path}"
        );
    }
    let post = app.client.post(app.url("/runs")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        post.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    // The API itself still answers.
    let status = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn without_a_console_folder_the_root_says_how_to_build_it(pool: PgPool) {
    let app = spawn_app(pool).await;

    let root = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    assert_eq!(
        root.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let page = root.text().await.unwrap();
    assert!(page.contains("SANKALPA_CONSOLE_DIR"), "{page}");
    assert!(page.contains("make run"), "{page}");

    let route = app.client.get(app.url("/runs")).send().await.unwrap();
    assert_eq!(route.status(), StatusCode::NOT_FOUND);
}
