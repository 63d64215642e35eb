//! The API's contract and the pages that explain it.
//!
//! The OpenAPI document is built from the route table itself ([`crate::api`], utoipa-axum's
//! `OpenApiRouter`): each route is one `routes!(handler)` entry whose `#[utoipa::path]` places it
//! in the router and describes it, so no route is served undocumented or documented without
//! being served. [`finish`] then adds what many operations share, declared once: the security
//! schemes and the problem responses (400, 401, 413, 415, 422, 429, 503), each attached by rule to
//! the operations it applies to. A response an operation declares itself for the same status
//! (a 400 saying which limits apply) is kept. `docs/openapi.json` is the committed copy of the
//! document: a test fails when the code generates anything else.
//!
//! Served here, outside the rate limit: `/openapi.json`; `/docs`, Swagger UI with its assets
//! vendored in `assets/swagger-ui` and embedded in the binary, so the page works on a cluster
//! without internet access, under a policy that lets it load nothing from elsewhere; and
//! `/problems/{slug}`, the page each problem's `type` points to.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sankalpa_kit::problem::{self, FieldViolation, Problem, ProblemType};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, Type, schema::Object,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sankalpa", description = "The REST API of the Sankalpa platform. Errors are \
        RFC 9457 problem documents (`application/problem+json`) whose `type` is a page of this \
        API describing the problem."),
    components(schemas(
        Problem,
        FieldViolation,
        sankalpa_api::agents::AgentOriginFilter,
        sankalpa_api::chains::ChainOriginFilter,
        sankalpa_api::marketplace::ItemKind,
        sankalpa_api::marketplace::SearchSort,
    )),
    modifiers(&Credentials),
)]
pub struct ApiDoc;

/// The document as served: the route table's descriptions, finished.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut document) = crate::api().split_for_parts();
    finish(&mut document);
    document
}

/// The ways to authenticate, named by the routes' `security`: the header ones everywhere, the
/// query one only on the event streams, whose browser clients cannot set headers.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "An access token (JWT), on the event stream routes only",
            ))),
        );
    }
}

/// A problem response shared by many operations, in `#/components/responses`.
struct Shared {
    name: &'static str,
    status: u16,
    description: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// Whether an operation answers it.
    applies: fn(&Operation) -> bool,
}

const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before retrying");

/// Every route passes the guard ([`crate::layers::guard`]): a credential that is sent is
/// checked even where none is needed, and every route is rate limited.
const SHARED: &[Shared] = &[
    Shared {
        name: "BadRequest",
        status: 400,
        description: "The request does not fit the API; `errors[]` names each invalid field",
        headers: &[],
        applies: |op| {
            op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty())
        },
    },
    Shared {
        name: "Unauthorized",
        status: 401,
        description: "The credential is missing (where one is needed), invalid, expired or revoked",
        headers: &[],
        applies: |_| true,
    },
    Shared {
        name: "PayloadTooLarge",
        status: 413,
        description: "The body is over the gateway's body limit",
        headers: &[],
        applies: |op| op.request_body.is_some(),
    },
    Shared {
        name: "UnsupportedMediaType",
        status: 415,
        description: "The body was sent without `Content-Type: application/json`",
        headers: &[],
        applies: |op| op.request_body.is_some(),
    },
    Shared {
        name: "UnprocessableEntity",
        status: 422,
        description: "The request is well formed but the state does not allow it now (a built-in \
            agent, deleting oneself, a session or item at its bound)",
        headers: &[],
        applies: |op| op.security.is_some() && op.request_body.is_some() || is_change(op),
    },
    Shared {
        name: "TooManyRequests",
        status: 429,
        description: "A rate limit or a tenant's quota is spent",
        headers: &[
            RETRY_AFTER,
            ("RateLimit-Limit", "Requests allowed in the window"),
            ("RateLimit-Remaining", "Requests left in the window"),
            ("RateLimit-Reset", "Seconds until room frees up"),
        ],
        applies: |_| true,
    },
    Shared {
        name: "ServiceUnavailable",
        status: 503,
        description: "A service this request needs is down, restarting or overloaded",
        headers: &[RETRY_AFTER],
        // Every route that calls a service takes a credential or a body; the others (status,
        // the JWK Set) answer from what the gateway holds.
        applies: |op| op.request_body.is_some() || op.security.is_some(),
    },
];

/// Whether an operation changes something without a body (DELETE, and POSTs such as a yank
/// or an install): its operation id tells, as utoipa names it after the handler.
fn is_change(op: &Operation) -> bool {
    op.operation_id.as_deref().is_some_and(|id| {
        ["delete", "revoke", "cancel", "yank", "install", "logout"]
            .iter()
            .any(|verb| id == *verb || id.starts_with(&format!("{verb}_")))
    })
}

/// Adds the shared problem responses to the components and to each operation they apply to.
pub fn finish(document: &mut utoipa::openapi::OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    for shared in SHARED {
        let mut response = ResponseBuilder::new()
            .description(shared.description)
            .content(
                problem::CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            );
        for (name, description) in shared.headers {
            response = response.header(
                *name,
                HeaderBuilder::new()
                    .schema(Object::with_type(Type::Integer))
                    .description(Some(*description))
                    .build(),
            );
        }
        components
            .responses
            .insert(shared.name.to_owned(), RefOr::T(response.build()));
    }
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let applicable: Vec<&Shared> = SHARED
                .iter()
                .filter(|shared| (shared.applies)(operation))
                .collect();
            for shared in applicable {
                operation
                    .responses
                    .responses
                    .entry(shared.status.to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(shared.name)));
            }
        }
    }
}

pub fn routes(document: &utoipa::openapi::OpenApi) -> Router {
    // Rendered once: the document does not change while the process runs.
    let document = document
        .to_pretty_json()
        .expect("the OpenAPI document always serialises");
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
        .route("/docs", get(page))
        .route("/docs/init.js", get(init_script))
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript", SWAGGER_UI_JS) }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async { asset("text/css", SWAGGER_UI_CSS) }),
        )
        .route("/problems", get(problem_index))
        .route("/problems/{slug}", get(problem_page))
}

const SWAGGER_UI_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_UI_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");

/// The page's own policy: everything from this origin only. Images may also be `data:` URIs
/// (Swagger UI's icons), which load nothing; Swagger UI sets inline styles, hence
/// `'unsafe-inline'` for styles (never for scripts).
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'";

/// The assets change only with the binary; a day of caching spares a reload of 2 MB.
fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> impl IntoResponse {
    let html = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sankalpa API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#;
    ([(header::CONTENT_SECURITY_POLICY, DOCS_POLICY)], Html(html))
}

/// Kept out of the page so the policy needs no inline script.
async fn init_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript")],
        "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });\n",
    )
}

/// Static pages: no script, no style, nothing loaded.
const PAGE_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

fn page_of(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n</head>\n<body>\n{body}</body>\n</html>\n"
    );
    ([(header::CONTENT_SECURITY_POLICY, PAGE_POLICY)], Html(html)).into_response()
}

fn describe(kind: &ProblemType) -> String {
    format!(
        "<h1>{title}</h1>\n<p>HTTP status {status}. Type <code>{prefix}{slug}</code>.</p>\n\
         <p>{description}</p>\n",
        title = kind.title,
        status = kind.status,
        prefix = problem::TYPE_PREFIX,
        slug = kind.slug,
        description = kind.description,
    )
}

/// The page a problem's `type` points to.
async fn problem_page(Path(slug): Path<String>) -> Response {
    match problem::problem_type(&slug) {
        Some(kind) => page_of(
            &format!("{} - Sankalpa API problem", kind.title),
            &format!(
                "{}<p><a href=\"{}\">All problem types</a></p>\n",
                describe(kind),
                problem::TYPE_PREFIX.trim_end_matches('/')
            ),
        ),
        None => Problem::new(StatusCode::NOT_FOUND, "no such problem type").into_response(),
    }
}

async fn problem_index() -> Response {
    let items: String = problem::PROBLEM_TYPES
        .iter()
        .map(|kind| {
            format!(
                "<li><a href=\"{}{}\">{}</a> ({})</li>\n",
                problem::TYPE_PREFIX,
                kind.slug,
                kind.title,
                kind.status
            )
        })
        .collect();
    page_of(
        "Sankalpa API problem types",
        &format!(
            "<h1>Problem types</h1>\n<p>Every error of the API is a problem document \
             (RFC 9457) whose <code>type</code> is one of these.</p>\n<ul>\n{items}</ul>\n"
        ),
    )
}
