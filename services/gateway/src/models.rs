//! Model providers per tenant, in front of agent-runner (`/api/models/...`): the providers a
//! tenant's runs ask (OpenAI-compatible or Anthropic), a connection test, and the default
//! model. Members read them (`models:read`); admins change and test them (`models:admin`).
//! An API key is written, never answered: a provider says only whether it has one.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sankalpa_api::models::{
    DefaultModel, MAX_USAGE_DAYS, ModelProtocol, ModelProvider, ModelProviderList,
    ModelProviderTest, ModelUsage, ModelUsageDay, PutModelProvider, TestModelProvider, UsageQuery,
};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Rest, timestamp};

const READ: &str = "models:read";
const ADMIN: &str = "models:admin";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(put, delete))
        .routes(routes!(test))
        .routes(routes!(set_default))
        .routes(routes!(usage))
}

/// The tenant's LLM use per UTC day: tokens, and what they cost at the operator's prices.
#[utoipa::path(
    get,
    path = "/api/models/usage",
    tag = "models",
    params(UsageQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The days with any use, the latest first", body = ModelUsage),
        (status = 400, description = "`days` is not 1 to 90", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing models:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn usage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<UsageQuery>,
) -> Result<axum::Json<ModelUsage>, Problem> {
    caller.require(READ)?;
    // 0 would mean the default upstream; here the default is the parameter's absence.
    if query.days == Some(0) {
        return Err(Problem::invalid(
            "days",
            format!("must be 1 to {MAX_USAGE_DAYS}"),
        ));
    }
    let request = v1::GetModelUsageRequest {
        days: query.days.unwrap_or(30),
    };
    let response = state
        .agents()
        .get_model_usage(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ModelUsage {
        days: response
            .days
            .into_iter()
            .map(|day| ModelUsageDay {
                day: day.day,
                tokens: day.tokens,
                cost_usd: day.cost_usd,
            })
            .collect(),
        priced: response.priced,
        tokens_per_day: Some(response.tokens_per_day).filter(|limit| *limit > 0),
    }))
}

fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, str::to_owned)
}

impl Rest for v1::ModelProvider {
    type Shown = ModelProvider;

    fn rest(self) -> ModelProvider {
        let protocol = match self.protocol() {
            v1::ModelProtocol::Anthropic => ModelProtocol::Anthropic,
            v1::ModelProtocol::Openai | v1::ModelProtocol::Unspecified => ModelProtocol::Openai,
        };
        ModelProvider {
            name: self.name,
            protocol,
            base_url: self.base_url,
            models: self.models,
            has_api_key: self.has_api_key,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

/// The tenant's model providers and its default model.
#[utoipa::path(
    get,
    path = "/api/models/providers",
    tag = "models",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The providers, by name, and the default model", body = ModelProviderList),
        (status = 403, description = "Missing models:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<axum::Json<ModelProviderList>, Problem> {
    caller.require(READ)?;
    let response = state
        .agents()
        .list_model_providers(state.request_as(&caller, v1::ListModelProvidersRequest {})?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ModelProviderList {
        providers: response.providers.into_iter().map(Rest::rest).collect(),
        default_model: Some(response.default_model).filter(|model| !model.is_empty()),
    }))
}

/// Adds a model provider, or replaces the one of that name (keeping its stored key when
/// `api_key` is absent). The key is encrypted at rest and never answered.
#[utoipa::path(
    put,
    path = "/api/models/providers/{name}",
    tag = "models",
    params(("name" = String, Path, description = "The provider's name: 1 to 63 of [a-z0-9_-], starting with a letter or digit")),
    request_body = PutModelProvider,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The provider, as stored", body = ModelProvider),
        (status = 400, description = "Invalid input, naming the field (`name`, `base_url`, `api_key`, `models[i]`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing models:admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The tenant has 20 providers already, or a key is given and no envelope key is configured", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn put(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<PutModelProvider>,
) -> Result<axum::Json<ModelProvider>, Problem> {
    caller.require(ADMIN)?;
    let protocol = match body.protocol {
        ModelProtocol::Openai => v1::ModelProtocol::Openai,
        ModelProtocol::Anthropic => v1::ModelProtocol::Anthropic,
    };
    let request = v1::PutModelProviderRequest {
        name,
        protocol: protocol.into(),
        base_url: body.base_url,
        api_key: body.api_key,
        models: body.models,
    };
    let provider = state
        .agents()
        .put_model_provider(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(provider.rest()))
}

/// Deletes a model provider, and the default model when it names it.
#[utoipa::path(
    delete,
    path = "/api/models/providers/{name}",
    tag = "models",
    params(("name" = String, Path, description = "The provider's name")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Missing models:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(ADMIN)?;
    state
        .agents()
        .delete_model_provider(state.request_as(&caller, v1::DeleteModelProviderRequest { name })?)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the provider a one-word question with its stored key. A provider that fails answers
/// 200 with `ok` false and why (its status or the network's error; never its body nor the key).
#[utoipa::path(
    post,
    path = "/api/models/providers/{name}/test",
    tag = "models",
    params(("name" = String, Path, description = "The provider's name")),
    request_body(content = TestModelProvider, description = "The model to ask; the provider's first when absent"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "What the provider answered", body = ModelProviderTest),
        (status = 400, description = "A model the provider does not list", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing models:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The provider's key cannot be opened (the envelope key is not configured)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn test(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<TestModelProvider>,
) -> Result<axum::Json<ModelProviderTest>, Problem> {
    caller.require(ADMIN)?;
    let request = v1::TestModelProviderRequest {
        name,
        model: body.model.unwrap_or_default(),
    };
    let mut request = state.request_as(&caller, request)?;
    // The provider's own timeout and retries bound the call, not the usual RPC deadline.
    request.set_timeout(PROVIDER_TEST_TIMEOUT);
    let answer = state
        .agents()
        .test_model_provider(request)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ModelProviderTest {
        ok: answer.ok,
        model: answer.model,
        latency_ms: answer.latency_ms,
        error: Some(answer.error).filter(|error| !error.is_empty()),
    }))
}

/// The longest a connection test may take: three attempts of agent-runner's LLM timeout (30 s
/// by default) and their backoff.
const PROVIDER_TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(100);

/// Sets the tenant's default model, or clears it with `null`.
#[utoipa::path(
    put,
    path = "/api/models/default",
    tag = "models",
    request_body = DefaultModel,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The default model, as set", body = DefaultModel),
        (status = 400, description = "Not `provider/model`, or a model the provider does not list", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing models:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn set_default(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<DefaultModel>,
) -> Result<axum::Json<DefaultModel>, Problem> {
    caller.require(ADMIN)?;
    let request = v1::SetDefaultModelRequest {
        model: body.model.unwrap_or_default(),
    };
    let answer = state
        .agents()
        .set_default_model(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(DefaultModel {
        model: Some(answer.default_model).filter(|model| !model.is_empty()),
    }))
}
