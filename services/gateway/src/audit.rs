//! The audit log of the caller's tenant (`users:admin`): logins, failures, key and role changes.

use std::sync::Arc;

use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Page, next_page, page_request, timestamp};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub tenant_id: String,
    /// The user or key that acted, if known.
    pub actor: String,
    /// login.succeeded, login.failed, refresh.reused, api_key.created, api_key.revoked,
    /// user.created, user.roles_changed, user.deleted, tenant.created.
    pub action: String,
    pub target: String,
    /// Extra facts; never a secret.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub at: Option<DateTime<Utc>>,
}

impl From<v1::AuditEvent> for AuditEvent {
    fn from(event: v1::AuditEvent) -> Self {
        // auth writes the details itself, as JSON; should one ever not parse, it is still shown.
        let details = serde_json::from_str(&event.details_json)
            .unwrap_or(serde_json::Value::String(event.details_json));
        Self {
            id: event.id,
            tenant_id: event.tenant_id,
            actor: event.actor,
            action: event.action,
            target: event.target,
            details,
            at: timestamp(event.at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventList {
    pub events: Vec<AuditEvent>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// The audit events of the caller's tenant.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "audit",
    params(Page),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of events", body = AuditEventList),
        (status = 403, description = "Missing users:admin", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<AuditEventList>, Problem> {
    caller.require("users:admin")?;
    let request = v1::ListAuditEventsRequest {
        page: Some(page_request(page)),
    };
    let response = state
        .auth()
        .list_audit_events(state.request_as(&caller, request)?)
        .await?
        .into_inner();
    Ok(axum::Json(AuditEventList {
        events: response.events.into_iter().map(AuditEvent::from).collect(),
        next_page_token: next_page(response.page),
    }))
}
