//! Tenants: creating and listing them is for platform operators (`tenants:admin`); members may
//! read their own.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sankalpa_api::tenants::{CreateTenant, Tenant, TenantList};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, next_page, page_request, timestamp};

const TENANTS_ADMIN: &str = "tenants:admin";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
}

impl Rest for v1::Tenant {
    type Shown = Tenant;

    fn rest(self) -> Tenant {
        Tenant {
            id: self.id,
            name: self.name,
            created_at: timestamp(self.created_at),
        }
    }
}

/// Creates a tenant.
#[utoipa::path(
    post,
    path = "/api/tenants",
    tag = "tenants",
    request_body = CreateTenant,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The new tenant", body = Tenant),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing tenants:admin", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateTenant>,
) -> Result<(StatusCode, axum::Json<Tenant>), Problem> {
    caller.require(TENANTS_ADMIN)?;
    let request = v1::CreateTenantRequest { name: body.name };
    let tenant = state
        .auth()
        .create_tenant(state.request_as(&caller, request)?)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(tenant.into_inner().rest())))
}

/// Every tenant.
#[utoipa::path(
    get,
    path = "/api/tenants",
    tag = "tenants",
    params(Page),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of tenants", body = TenantList),
        (status = 403, description = "Missing tenants:admin", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<TenantList>, Problem> {
    caller.require(TENANTS_ADMIN)?;
    let request = v1::ListTenantsRequest {
        page: Some(page_request(page)),
    };
    let response = state
        .auth()
        .list_tenants(state.request_as(&caller, request)?)
        .await?
        .into_inner();
    Ok(axum::Json(TenantList {
        tenants: response.tenants.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// One tenant: any tenant for `tenants:admin`, otherwise the caller's own.
#[utoipa::path(
    get,
    path = "/api/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenant id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 404, description = "No such tenant visible to the caller", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Tenant>, Problem> {
    let tenant = state
        .auth()
        .get_tenant(state.request_as(&caller, v1::GetTenantRequest { id })?)
        .await?;
    Ok(axum::Json(tenant.into_inner().rest()))
}
