//! Serves the web console (`clients/web`, built by Vite) from a folder, on the same origin as the
//! API so that no CORS and no third-party host is needed.
//!
//! Every GET or HEAD that no API route matched and that is not under a reserved prefix (`/api`,
//! `/docs`, `/openapi.json`, `/ws`, `/metrics`, ...) is the console's: a file of the folder when
//! one has that path, otherwise `index.html`, so that client routes (`/runs/42`) load the app.
//! Hashed files under `/assets/` never change and are cached for a year; `index.html` is checked
//! again on every load, so a new build shows at once. The build writes `.br` and `.gz` beside
//! each compressible file, served by `Accept-Encoding` without compressing anything per request.
//! Only path segments a Vite build produces (letters, digits, `-`, `_`, `.`, not starting with a
//! dot) are looked up, so no request can name a file outside the folder.
//!
//! Without a folder (`SANKALPA_CONSOLE_DIR` unset) `/` answers a short page saying how to build
//! the console.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sankalpa_kit::problem::Problem;

/// The console's policy: everything from this origin, nothing inline, no frames. React sets
/// styles through the DOM (allowed by `style-src 'self'`), and the build inlines no script.
pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; \
     form-action 'self'; frame-ancestors 'none'";

/// Paths that belong to the API and the gateway itself: an unknown one is a problem+json 404,
/// never the console's page.
const RESERVED: [&str; 9] = [
    "/api",
    "/docs",
    "/openapi.json",
    "/ws",
    "/metrics",
    "/healthz",
    "/readyz",
    "/problems",
    "/.well-known",
];

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The console's folder, if the gateway has one.
#[derive(Debug, Clone, Default)]
pub struct Console {
    dir: Option<PathBuf>,
}

impl Console {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// Answers a request no route matched: the console's file or page, or the API's 404.
    pub async fn serve(&self, request: Request) -> Response {
        let method = request.method();
        let path = request.uri().path();
        if (method != Method::GET && method != Method::HEAD) || is_reserved(path) {
            return Problem::new(StatusCode::NOT_FOUND, "no such route").into_response();
        }
        let head = method == Method::HEAD;
        let Some(dir) = &self.dir else {
            return if path == "/" {
                with_policy(Html(NOT_BUILT).into_response())
            } else {
                Problem::new(StatusCode::NOT_FOUND, "no such route").into_response()
            };
        };
        let accepted = Accepted::from(request.headers());
        let Some(segments) = segments(path) else {
            return index(dir, accepted, head).await;
        };
        let is_asset = segments.first() == Some(&"assets");
        let file = segments
            .iter()
            .fold(dir.clone(), |file, part| file.join(part));
        let cache = if is_asset { IMMUTABLE } else { REVALIDATE };
        match file_response(&file, cache, accepted, head).await {
            Some(response) => response,
            // A missing hashed file is an old page asking for a build that is gone: a 404 lets
            // it fail and reload, where index.html would be parsed as JavaScript.
            None if is_asset => {
                Problem::new(StatusCode::NOT_FOUND, "no such asset").into_response()
            }
            None => index(dir, accepted, head).await,
        }
    }
}

/// `/api`, `/api/...`, but not `/apidocs`.
fn is_reserved(path: &str) -> bool {
    RESERVED.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The path's segments when each is a plain file name; `None` for `/`, a trailing slash or any
/// segment that is not (`..`, `%2e%2e`, a backslash, a hidden file): those get `index.html`.
fn segments(path: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let plain = |segment: &&str| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte))
    };
    segments.iter().all(plain).then_some(segments)
}

async fn index(dir: &Path, accepted: Accepted, head: bool) -> Response {
    match file_response(&dir.join("index.html"), REVALIDATE, accepted, head).await {
        Some(response) => response,
        None => {
            tracing::warn!(dir = %dir.display(), "the console folder has no index.html");
            Problem::new(
                StatusCode::NOT_FOUND,
                "the console is not built: its folder has no index.html",
            )
            .into_response()
        }
    }
}

/// Which precompressed variants the client takes.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    br: bool,
    gzip: bool,
}

impl From<&HeaderMap> for Accepted {
    fn from(headers: &HeaderMap) -> Self {
        let mut accepted = Self {
            br: false,
            gzip: false,
        };
        let offers = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','));
        for offer in offers {
            let mut parts = offer.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
            // `q=0` declines a coding; any other weight accepts it.
            let declined = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            match coding.as_str() {
                "br" => accepted.br = !declined,
                "gzip" => accepted.gzip = !declined,
                _ => {}
            }
        }
        accepted
    }
}

/// The file at `file`, or its precompressed variant the client accepts; `None` when there is
/// no such regular file.
async fn file_response(
    file: &Path,
    cache: &'static str,
    accepted: Accepted,
    head: bool,
) -> Option<Response> {
    let content_type = content_type(file);
    let mut variants: Vec<(PathBuf, Option<&'static str>)> = Vec::with_capacity(3);
    if accepted.br {
        variants.push((with_suffix(file, "br"), Some("br")));
    }
    if accepted.gzip {
        variants.push((with_suffix(file, "gz"), Some("gzip")));
    }
    variants.push((file.to_path_buf(), None));
    // The identity file must exist: a stray `.gz` alone does not make a path servable.
    if !tokio::fs::metadata(file).await.ok()?.is_file() {
        return None;
    }
    for (path, encoding) in variants {
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        let length = bytes.len();
        let mut response = Response::new(if head {
            Body::empty()
        } else {
            Body::from(bytes)
        });
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        return Some(with_policy(response));
    }
    None
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn with_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    response
}

/// The types a Vite build writes; anything else is served as bytes.
fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|ext| ext.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sankalpa</title></head>
<body>
<h1>Sankalpa</h1>
<p>The web console is not served by this gateway. Build it with
<code>npm ci &amp;&amp; npm run build</code> in <code>clients/web</code> (or run
<code>make run</code>, which does both) and start the gateway with
<code>SANKALPA_CONSOLE_DIR=clients/web/dist</code>.</p>
<p>The API is here: <a href="/docs">/docs</a>, <a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefixes_match_whole_segments_only() {
        assert!(is_reserved("/api"));
        assert!(is_reserved("/api/nothing"));
        assert!(is_reserved("/metrics"));
        assert!(!is_reserved("/apidocs"));
        assert!(!is_reserved("/runs/1"));
    }

    #[test]
    fn only_plain_file_names_are_looked_up() {
        assert_eq!(
            segments("/assets/index-1a.js"),
            Some(vec!["assets", "index-1a.js"])
        );
        assert_eq!(segments("/"), None);
        assert_eq!(segments("/assets/../secret"), None);
        assert_eq!(segments("/%2e%2e/secret"), None);
        assert_eq!(segments("/.env"), None);
        assert_eq!(segments("/a\\b"), None);
    }

    #[test]
    fn a_coding_with_weight_zero_is_declined() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br;q=0"),
        );
        let accepted = Accepted::from(&headers);
        assert!(accepted.gzip);
        assert!(!accepted.br);
    }
}
