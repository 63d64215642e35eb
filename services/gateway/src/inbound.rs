//! Inbound webhook triggers, in front of the triggers service: their CRUD under
//! `/api/webhooks/triggers` (webhooks:read / webhooks:write, the caller's tenant only), and the
//! public `/api/webhooks/in/{trigger_id}` that senders call without a token: the triggers
//! service checks the request's signature. Requests to one trigger are rate limited whoever
//! sends them (`SANKALPA_RATE_LIMIT_TRIGGER` a window), on top of the per-address limit.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sankalpa_api::inbound::{
    CreateInboundTrigger, CreatedInboundTrigger, InboundSignature, InboundTrigger,
    InboundTriggerList, ReceivedWebhook, UpdateInboundTrigger,
};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, next_page, page_request, shown, timestamp};

const READ: &str = "webhooks:read";
const WRITE: &str = "webhooks:write";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(receive))
}

fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, |field| {
        let field = field.strip_prefix("page.").unwrap_or(field);
        match field {
            "input_mapping_json" => "input_mapping".to_owned(),
            field => field.to_owned(),
        }
    })
}

fn non_empty(text: String) -> Option<String> {
    Some(text).filter(|text| !text.is_empty())
}

impl Rest for v1::InboundTrigger {
    type Shown = InboundTrigger;

    fn rest(self) -> InboundTrigger {
        let signature = match self.signature() {
            v1::InboundSignature::Github => InboundSignature::Github,
            v1::InboundSignature::Standard | v1::InboundSignature::Unspecified => {
                InboundSignature::Standard
            }
        };
        InboundTrigger {
            signature,
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            chain_id: non_empty(self.chain_id),
            template: non_empty(self.template),
            input_mapping: serde_json::from_str(&self.input_mapping_json).unwrap_or_default(),
            enabled: self.enabled,
            credential_expires_at: timestamp(self.credential_expires_at),
            created_by: self.created_by,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

/// Creates a trigger: signed requests to `/api/webhooks/in/<id>` start its chain. The answer
/// holds its signing secret, shown this once. Its runs act for the caller (an API key of
/// purpose `schedule` is made with the caller's token), who needs chains:execute too.
#[utoipa::path(
    post,
    path = "/api/webhooks/triggers",
    tag = "webhooks",
    request_body = CreateInboundTrigger,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The trigger and its secret", body = CreatedInboundTrigger, headers(("Location" = String, description = "The trigger's URL"))),
        (status = 400, description = "Invalid input, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing webhooks:write or chains:execute", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant has the most triggers it may have", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateInboundTrigger>,
) -> Result<Response, Problem> {
    caller.require(WRITE)?;
    let request = v1::CreateInboundTriggerRequest {
        name: body.name,
        chain_id: body.chain_id.unwrap_or_default(),
        template: body.template.unwrap_or_default(),
        input_mapping_json: body
            .input_mapping
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default(),
        signature: match body.signature {
            Some(InboundSignature::Github) => v1::InboundSignature::Github,
            Some(InboundSignature::Standard) | None => v1::InboundSignature::Standard,
        }
        .into(),
    };
    let response = state
        .inbound()
        .create_inbound_trigger(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    let trigger = shown(response.trigger, "trigger")?;
    let location = format!("/api/webhooks/triggers/{}", trigger.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(CreatedInboundTrigger {
            trigger,
            secret: response.secret,
        }),
    )
        .into_response())
}

/// The caller's tenant's triggers, newest first.
#[utoipa::path(
    get,
    path = "/api/webhooks/triggers",
    tag = "webhooks",
    params(Page),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of triggers", body = InboundTriggerList),
        (status = 403, description = "Missing webhooks:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<InboundTriggerList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListInboundTriggersRequest {
        page: Some(page_request(page)),
    };
    let response = state
        .inbound()
        .list_inbound_triggers(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(InboundTriggerList {
        triggers: response.triggers.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// One trigger.
#[utoipa::path(
    get,
    path = "/api/webhooks/triggers/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The trigger id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The trigger", body = InboundTrigger),
        (status = 403, description = "Missing webhooks:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trigger in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<InboundTrigger>, Problem> {
    caller.require(READ)?;
    let trigger = state
        .inbound()
        .get_inbound_trigger(state.request_as(&caller, v1::GetInboundTriggerRequest { id })?)
        .await
        .map_err(problem)?
        .into_inner()
        .trigger;
    Ok(axum::Json(shown(trigger, "trigger")?))
}

/// Changes the members sent.
#[utoipa::path(
    patch,
    path = "/api/webhooks/triggers/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The trigger id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = UpdateInboundTrigger,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The trigger as changed", body = InboundTrigger),
        (status = 400, description = "Invalid input, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trigger in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateInboundTrigger>,
) -> Result<axum::Json<InboundTrigger>, Problem> {
    caller.require(WRITE)?;
    let request = v1::UpdateInboundTriggerRequest {
        id,
        name: body.name,
        input_mapping_json: body.input_mapping.as_ref().map(Value::to_string),
        enabled: body.enabled,
    };
    let trigger = state
        .inbound()
        .update_inbound_trigger(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner()
        .trigger;
    Ok(axum::Json(shown(trigger, "trigger")?))
}

/// Removes a trigger and revokes its API key; its URL answers 404 from now on.
#[utoipa::path(
    delete,
    path = "/api/webhooks/triggers/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The trigger id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trigger in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(WRITE)?;
    state
        .inbound()
        .delete_inbound_trigger(state.request_as(&caller, v1::DeleteInboundTriggerRequest { id })?)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signed request to a trigger: no token, the signature authenticates it (Standard Webhooks
/// headers, or GitHub's `X-Hub-Signature-256` for a trigger made so). Starts the trigger's
/// chain with the input its mapping takes from the body, headers and query; a redelivery of
/// the same webhook id answers the run it started.
#[utoipa::path(
    post,
    path = "/api/webhooks/in/{trigger_id}",
    tag = "webhooks",
    params(("trigger_id" = String, Path, description = "The trigger id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body(content = String, description = "Any body, at most 1 MiB; JSON is mapped by path", content_type = "application/json"),
    responses(
        (status = 202, description = "The run started (or started before, for a redelivery)", body = ReceivedWebhook),
        (status = 400, description = "The mapped input does not fit the chain, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The signature is missing, wrong, or too old", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trigger, or disabled", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests to this trigger", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(trigger_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let decision = state.limiter.check_trigger(&trigger_id).await?;
    let request = v1::ReceiveWebhookRequest {
        trigger_id,
        body: body.to_vec(),
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        query,
    };
    let mut request = tonic::Request::new(request);
    request.set_timeout(state.grpc_timeout);
    let received = state
        .receiver()
        .receive_webhook(request)
        .await
        .map_err(problem)?
        .into_inner();
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(ReceivedWebhook {
            run_id: received.run_id,
        }),
    )
        .into_response();
    if let Some(decision) = decision {
        decision.set_headers(response.headers_mut());
    }
    Ok(response)
}
