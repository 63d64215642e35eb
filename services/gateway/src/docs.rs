//! The API's description: `/openapi.json`, generated from the handlers' annotations, and an
//! interactive page at `/docs` (Swagger UI, loaded from a CDN by the browser, so the gateway
//! ships no web assets).

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use sankalpa_kit::problem::{FieldViolation, Problem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    agents, audit, chains, events, keys, marketplace, memory, sessions, status, tenants, users,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sankalpa", description = "The REST API of the Sankalpa platform."),
    paths(
        status::status,
        sessions::register,
        sessions::login,
        sessions::refresh,
        sessions::logout,
        sessions::jwks,
        users::me,
        users::list,
        users::create,
        users::get_one,
        users::delete,
        users::set_roles,
        keys::create,
        keys::list,
        keys::revoke,
        tenants::create,
        tenants::list,
        tenants::get_one,
        audit::list,
        memory::save,
        memory::load,
        memory::all,
        memory::sessions,
        memory::delete_key,
        memory::delete_session,
        memory::transaction,
        memory::backup,
        memory::backups,
        memory::restore,
        agents::list,
        agents::enhanced,
        agents::get_one,
        agents::execute,
        agents::create_custom,
        agents::update_custom,
        agents::delete_custom,
        agents::validate_custom,
        agents::artifacts,
        chains::list,
        chains::create,
        chains::get_one,
        chains::update,
        chains::delete_one,
        chains::validate,
        chains::execute,
        chains::runs,
        chains::run,
        chains::cancel,
        marketplace::search,
        marketplace::publish,
        marketplace::get_one,
        marketplace::versions,
        marketplace::yank,
        marketplace::review,
        marketplace::reviews,
        marketplace::install,
        marketplace::installs,
        events::run_events,
        events::tenant_events,
        events::websocket,
    ),
    components(schemas(
        Problem,
        FieldViolation,
        agents::AgentOriginFilter,
        chains::ChainOriginFilter,
        marketplace::ItemKind,
        marketplace::SearchSort,
    )),
    modifiers(&Credentials),
)]
pub struct ApiDoc;

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

pub fn routes() -> Router {
    // Rendered once: the document does not change while the process runs.
    let document = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document always serialises");
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
        .route("/docs", get(page))
        .route("/docs/init.js", get(init_script))
}

const SWAGGER_UI: &str = "https://unpkg.com/swagger-ui-dist@5";

/// The page's own policy: scripts and styles from the CDN and from here, the API from here.
/// Swagger UI sets inline styles, hence `'unsafe-inline'` for styles (never for scripts).
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self' https://unpkg.com; \
     style-src https://unpkg.com 'unsafe-inline'; img-src 'self' data: https://unpkg.com; \
     connect-src 'self'; frame-ancestors 'none'";

async fn page() -> impl IntoResponse {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sankalpa API</title>
<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#
    );
    ([(header::CONTENT_SECURITY_POLICY, DOCS_POLICY)], Html(html))
}

/// Kept out of the page so the policy needs no inline script.
async fn init_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript")],
        "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });\n",
    )
}
