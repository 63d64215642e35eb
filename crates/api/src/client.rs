//! A typed client of the REST API: one method per route, sending and reading the very types the
//! gateway serves. An error answered by the API comes back as [`Error::Problem`] with the
//! problem document, so a caller can name the field or tell a 404 from a 409.
//!
//! The client holds one credential ([`Credential`]): an access token (`Authorization: Bearer`)
//! or an API key (`X-API-Key`); or a login ([`Client::with_login`]), whose access token it
//! renews by itself when the API refuses it: once per call, with the login's refresh token,
//! handing the new pair to the caller, who knows where its login is kept.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Request, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::agents::{self, Agent, AgentList, AgentRun, ExecuteAgent};
use crate::chains::{
    self, Chain, ChainList, ChainRun, ChainValidation, CreateChain, ExecuteChain, RunList,
    RunsQuery, StepDecision, UpdateChain, ValidateChain, VersionQuery,
};
use crate::events::{CloudEvent, RunEventsQuery};
use crate::inbound::{
    CreateInboundTrigger, CreatedInboundTrigger, InboundTrigger, InboundTriggerList,
    UpdateInboundTrigger,
};
use crate::keys::{ApiKey, ApiKeyList, CreateApiKey, CreatedApiKey};
use crate::marketplace::{
    InstallItem, InstallList, Installed, InstallsQuery, Item, ItemList, ItemVersion, PublishItem,
    Published, Review, ReviewItem, ReviewList, SearchQuery, VersionList, YankVersion,
};
use crate::memory::{
    AllQuery, BackupList, BackupsQuery, CreateBackup, DeleteKeyQuery, DeletedKey, DeletedSession,
    Entry, EntryList, LoadEntry, MemoryBackup, Restore, Restored, SaveEntry, SessionList,
};
use crate::models::{
    DefaultModel, ModelProvider, ModelProviderList, ModelProviderTest, ModelUsage,
    PutModelProvider, TestModelProvider, UsageQuery,
};
use crate::nlp::{ProcessCommand, ProcessedCommand};
use crate::paging::Page;
use crate::problem::{self, Problem};
use crate::schedules::{CreateSchedule, Schedule, ScheduleList, UpdateSchedule};
use crate::sessions::{Login, RefreshToken, Register, Registered, TokenPair};
use crate::status::Status;
use crate::users::{CreateUser, Principal, SetRoles, User, UserList};
use crate::webhooks::{
    CreateEndpoint, CreatedEndpoint, DeliveriesQuery, Delivery, DeliveryDetail, DeliveryList,
    EndpointList, Replay, Replayed, RotateSecret, UpdateEndpoint, WebhookEndpoint,
};

/// How long a connection may take to open: the gateway is a loopback or LAN hop away.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a call can end in besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused or failed the call and said why.
    #[error("{0}")]
    Problem(Box<Problem>),
    /// The gateway could not be reached, or the connection broke.
    #[error("could not reach the gateway at {base}: {source}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is neither the expected JSON nor a problem document (a proxy's error page,
    /// a gateway of another version).
    #[error("the gateway answered {status} with something unexpected: {detail}")]
    Unexpected { status: u16, detail: String },
}

impl Error {
    /// The HTTP status of a problem, if the API answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem(problem) => Some(problem.status),
            Self::Unexpected { status, .. } => Some(*status),
            Self::Unreachable { .. } => None,
        }
    }
}

/// Who the client calls as.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token from a login.
    Bearer(String),
    /// An API key (`sk_...`).
    ApiKey(String),
}

/// A client of one gateway, cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    credential: Option<Credential>,
    /// A login calls with its access token instead of `credential`. Shared by the clones, so
    /// that a renewal serves them all.
    login: Option<Arc<LoginTokens>>,
}

/// The tokens of a login, replaced together when the access token is renewed.
struct LoginTokens {
    tokens: Mutex<Tokens>,
    /// Held across a renewal: calls refused at once renew once between them, since a refresh
    /// token used twice ends its login.
    renewing: tokio::sync::Mutex<()>,
    /// What the caller does with a new pair (keeps it, as the login it saved).
    renewed: Box<dyn Fn(&TokenPair) + Send + Sync>,
}

struct Tokens {
    access_token: String,
    refresh_token: String,
}

impl std::fmt::Debug for LoginTokens {
    /// Without the tokens: they are secrets.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LoginTokens")
            .finish_non_exhaustive()
    }
}

impl LoginTokens {
    fn access_token(&self) -> String {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.access_token.clone()
    }

    /// The `Authorization` a call refused with `used` goes again with: the access token of a
    /// new pair, or the one another call renewed meanwhile. `None` when the login cannot be
    /// renewed (its refresh token expired or revoked, the gateway unreachable).
    async fn renew(&self, client: &Client, used: Option<&HeaderValue>) -> Option<HeaderValue> {
        let _alone = self.renewing.lock().await;
        let refresh_token = {
            let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
            let current = bearer(&tokens.access_token)?;
            if used != Some(&current) {
                return Some(current);
            }
            tokens.refresh_token.clone()
        };
        let anonymous = Client {
            credential: None,
            login: None,
            ..client.clone()
        };
        // Boxed: the refresh is itself a call, and a call may come here.
        let pair = Box::pin(anonymous.refresh(&RefreshToken { refresh_token }))
            .await
            .ok()?;
        let authorization = bearer(&pair.access_token)?;
        *self.tokens.lock().unwrap_or_else(PoisonError::into_inner) = Tokens {
            access_token: pair.access_token.clone(),
            refresh_token: pair.refresh_token.clone(),
        };
        (self.renewed)(&pair);
        Some(authorization)
    }
}

/// The `Authorization` value of an access token; `None` for one no header can carry.
fn bearer(access_token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {access_token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The name of a path segment, percent-encoded so that any agent name, key or id stays one
/// segment.
fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl Client {
    /// A client of the gateway at `base` (`http://127.0.0.1:8080`), calling anonymously until
    /// [`Client::with_credential`].
    pub fn new(base: &str) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("sankalpa-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Unreachable {
                base: base.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credential: None,
            login: None,
        })
    }

    /// The same client calling as `credential`.
    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self.login = None;
        self
    }

    /// The same client calling with a login's access token, which it renews by itself: when
    /// the API answers a call 401, the client trades `refresh_token` for a new pair, hands it
    /// to `renewed` and sends the call again with the new access token, once. The answer to
    /// that second try is the call's, 401 included; so is the first 401 when the login cannot
    /// be renewed.
    pub fn with_login(
        mut self,
        access_token: String,
        refresh_token: String,
        renewed: impl Fn(&TokenPair) + Send + Sync + 'static,
    ) -> Self {
        self.credential = None;
        self.login = Some(Arc::new(LoginTokens {
            tokens: Mutex::new(Tokens {
                access_token,
                refresh_token,
            }),
            renewing: tokio::sync::Mutex::new(()),
            renewed: Box::new(renewed),
        }));
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match (&self.login, &self.credential) {
            (Some(login), _) => request.bearer_auth(login.access_token()),
            (None, Some(Credential::Bearer(token))) => request.bearer_auth(token),
            (None, Some(Credential::ApiKey(key))) => request.header("x-api-key", key),
            (None, None) => request,
        }
    }

    /// Sends the call; a login's call refused 401 goes again once, after a renewal.
    async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let request = request.build().map_err(|source| self.unreachable(source))?;
        // Every body this client sends is bytes, which clone.
        let again = self.login.as_ref().and_then(|_| request.try_clone());
        let response = self.execute(request).await?;
        let (Some(login), Some(mut again)) = (&self.login, again) else {
            return self.answered(response).await;
        };
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.answered(response).await;
        }
        let Some(authorization) = login.renew(self, again.headers().get(AUTHORIZATION)).await
        else {
            return self.answered(response).await;
        };
        again.headers_mut().insert(AUTHORIZATION, authorization);
        let response = self.execute(again).await?;
        self.answered(response).await
    }

    async fn execute(&self, request: Request) -> Result<Response, Error> {
        self.http
            .execute(request)
            .await
            .map_err(|source| self.unreachable(source))
    }

    /// The response of a call that succeeded; the problem of one that did not.
    async fn answered(&self, response: Response) -> Result<Response, Error> {
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.failure(response).await)
    }

    fn unreachable(&self, source: reqwest::Error) -> Error {
        Error::Unreachable {
            base: self.base.clone(),
            source,
        }
    }

    /// The problem document of a failed call, or what stood in its place.
    async fn failure(&self, response: Response) -> Error {
        let status = response.status().as_u16();
        let is_problem = response.headers().get(CONTENT_TYPE).is_some_and(|value| {
            value
                .as_bytes()
                .starts_with(problem::CONTENT_TYPE.as_bytes())
        });
        let body = match response.text().await {
            Ok(body) => body,
            Err(source) => return self.unreachable(source),
        };
        match serde_json::from_str::<Problem>(&body) {
            Ok(problem) if is_problem => Error::Problem(Box::new(problem)),
            _ => Error::Unexpected {
                status,
                detail: body.chars().take(200).collect(),
            },
        }
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Error> {
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|source| self.unreachable(source))?;
        serde_json::from_slice(&body).map_err(|err| Error::Unexpected {
            status,
            detail: err.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.json(self.request(Method::GET, path)).await
    }

    async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl Serialize,
    ) -> Result<T, Error> {
        self.json(self.request(Method::GET, path).query(query))
            .await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.json(self.request(Method::PUT, path).json(body)).await
    }

    async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.json(self.request(Method::PATCH, path).json(body))
            .await
    }

    async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.json(self.request(Method::DELETE, path)).await
    }

    // Sessions and users.

    pub async fn register(&self, body: &Register) -> Result<Registered, Error> {
        self.post("/api/users/register", body).await
    }

    pub async fn login(&self, body: &Login) -> Result<TokenPair, Error> {
        self.post("/api/users/login", body).await
    }

    pub async fn refresh(&self, body: &RefreshToken) -> Result<TokenPair, Error> {
        self.post("/api/users/refresh", body).await
    }

    pub async fn logout(&self, body: &RefreshToken) -> Result<(), Error> {
        self.send(self.request(Method::POST, "/api/users/logout").json(body))
            .await
            .map(drop)
    }

    pub async fn me(&self) -> Result<User, Error> {
        self.get("/api/users/me").await
    }

    /// Who the credential acts as: a user or an API key.
    pub async fn principal(&self) -> Result<Principal, Error> {
        self.get("/api/principal").await
    }

    pub async fn users(&self, page: &Page) -> Result<UserList, Error> {
        self.get_query("/api/users", page).await
    }

    pub async fn create_user(&self, body: &CreateUser) -> Result<User, Error> {
        self.post("/api/users", body).await
    }

    pub async fn set_roles(&self, id: &str, body: &SetRoles) -> Result<User, Error> {
        self.put(&format!("/api/users/{}/roles", segment(id)), body)
            .await
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), Error> {
        let path = format!("/api/users/{}", segment(id));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    // API keys.

    pub async fn create_key(&self, body: &CreateApiKey) -> Result<CreatedApiKey, Error> {
        self.post("/api/keys", body).await
    }

    pub async fn keys(&self, page: &Page) -> Result<ApiKeyList, Error> {
        self.get_query("/api/keys", page).await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey, Error> {
        self.delete(&format!("/api/keys/{}", segment(id))).await
    }

    // The fleet.

    pub async fn status(&self) -> Result<Status, Error> {
        self.get("/api/status").await
    }

    // Agents.

    pub async fn agents(&self, query: &agents::ListQuery) -> Result<AgentList, Error> {
        self.get_query("/api/agents", query).await
    }

    pub async fn agent(&self, name: &str) -> Result<Agent, Error> {
        self.get(&format!("/api/agents/{}", segment(name))).await
    }

    pub async fn execute_agent(&self, body: &ExecuteAgent) -> Result<AgentRun, Error> {
        self.post("/api/agents/execute", body).await
    }

    /// The files of an agent run or a chain run, as the .tar.gz the gateway streams.
    pub async fn artifacts(&self, run_id: &str) -> Result<Vec<u8>, Error> {
        let path = format!("/api/artifacts/{}", segment(run_id));
        let response = self.send(self.request(Method::GET, &path)).await?;
        let body = response
            .bytes()
            .await
            .map_err(|source| self.unreachable(source))?;
        Ok(body.to_vec())
    }

    // Chains and their runs.

    pub async fn chains(&self, query: &chains::ListQuery) -> Result<ChainList, Error> {
        self.get_query("/api/chains", query).await
    }

    /// A stored chain by id, or a template by name.
    pub async fn chain(&self, id: &str, query: &VersionQuery) -> Result<Chain, Error> {
        self.get_query(&format!("/api/chains/{}", segment(id)), query)
            .await
    }

    pub async fn create_chain(&self, body: &CreateChain) -> Result<Chain, Error> {
        self.post("/api/chains", body).await
    }

    pub async fn update_chain(&self, id: &str, body: &UpdateChain) -> Result<Chain, Error> {
        self.put(&format!("/api/chains/{}", segment(id)), body)
            .await
    }

    pub async fn validate_chain(&self, body: &ValidateChain) -> Result<ChainValidation, Error> {
        self.post("/api/chains/validate", body).await
    }

    /// The chain that builds a project described in words, with its input and analysis.
    pub async fn process_command(&self, body: &ProcessCommand) -> Result<ProcessedCommand, Error> {
        self.post("/api/nlp/process", body).await
    }

    /// Starts a run; with `wait`, answers once it has finished (or its wait ran out). A repeated
    /// `idempotency_key` answers with the run that key started.
    pub async fn execute_chain(
        &self,
        body: &ExecuteChain,
        idempotency_key: Option<&str>,
    ) -> Result<ChainRun, Error> {
        let mut request = self.request(Method::POST, "/api/chains/execute").json(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        self.json(request).await
    }

    pub async fn runs(&self, query: &RunsQuery) -> Result<RunList, Error> {
        self.get_query("/api/chains/runs", query).await
    }

    pub async fn run(&self, id: &str) -> Result<ChainRun, Error> {
        self.get(&format!("/api/chains/runs/{}", segment(id))).await
    }

    pub async fn cancel_run(&self, id: &str) -> Result<ChainRun, Error> {
        let path = format!("/api/chains/runs/{}/cancel", segment(id));
        self.json(self.request(Method::POST, &path)).await
    }

    /// Approves a waiting approval step.
    pub async fn approve_step(
        &self,
        run: &str,
        step: &str,
        decision: &StepDecision,
    ) -> Result<ChainRun, Error> {
        self.decide(run, step, "approve", decision).await
    }

    /// Rejects a waiting approval step: it fails, and so does the run.
    pub async fn reject_step(
        &self,
        run: &str,
        step: &str,
        decision: &StepDecision,
    ) -> Result<ChainRun, Error> {
        self.decide(run, step, "reject", decision).await
    }

    async fn decide(
        &self,
        run: &str,
        step: &str,
        verb: &str,
        decision: &StepDecision,
    ) -> Result<ChainRun, Error> {
        let path = format!(
            "/api/chains/runs/{}/steps/{}/{verb}",
            segment(run),
            segment(step)
        );
        self.post(&path, decision).await
    }

    /// A run's events as they are published, from the first (or after `query.after_sequence`);
    /// the stream ends after the run's last event. A login's stream the gateway ends for its
    /// expired access token (401, checked every 30 s) is opened again after the last event read,
    /// with a renewed token, so a run can be followed for longer than a token lives.
    pub async fn run_events(&self, id: &str, query: &RunEventsQuery) -> Result<EventStream, Error> {
        let path = format!("/api/chains/runs/{}/events", segment(id));
        let response = self.open_events(&path, query).await?;
        Ok(EventStream {
            client: self.clone(),
            path,
            query: query.clone(),
            response,
            buffer: String::new(),
            reopened: false,
        })
    }

    /// The tenant's events on `subjects` (NATS patterns, comma-separated, the tenant token the
    /// caller's), live from now.
    pub async fn events(&self, subjects: &str) -> Result<EventStream, Error> {
        let path = format!("/api/events?subjects={}", segment(subjects));
        let query = RunEventsQuery::default();
        let response = self.open_events(&path, &query).await?;
        Ok(EventStream {
            client: self.clone(),
            path,
            query,
            response,
            buffer: String::new(),
            reopened: false,
        })
    }

    async fn open_events(&self, path: &str, query: &RunEventsQuery) -> Result<Response, Error> {
        let request = self
            .request(Method::GET, path)
            .header(ACCEPT, "text/event-stream")
            .query(query);
        self.send(request).await
    }

    // The marketplace.

    pub async fn search(&self, query: &SearchQuery) -> Result<ItemList, Error> {
        self.get_query("/api/marketplace", query).await
    }

    pub async fn publish(&self, body: &PublishItem) -> Result<Published, Error> {
        self.post("/api/marketplace", body).await
    }

    pub async fn item(&self, id: &str) -> Result<Item, Error> {
        self.get(&format!("/api/marketplace/items/{}", segment(id)))
            .await
    }

    pub async fn versions(&self, id: &str) -> Result<VersionList, Error> {
        self.get(&format!("/api/marketplace/items/{}/versions", segment(id)))
            .await
    }

    pub async fn yank(
        &self,
        id: &str,
        version: &str,
        body: &YankVersion,
    ) -> Result<ItemVersion, Error> {
        let path = format!(
            "/api/marketplace/items/{}/versions/{}/yank",
            segment(id),
            segment(version)
        );
        self.post(&path, body).await
    }

    pub async fn review(&self, id: &str, body: &ReviewItem) -> Result<Review, Error> {
        self.post(
            &format!("/api/marketplace/items/{}/reviews", segment(id)),
            body,
        )
        .await
    }

    pub async fn reviews(&self, id: &str) -> Result<ReviewList, Error> {
        self.get(&format!("/api/marketplace/items/{}/reviews", segment(id)))
            .await
    }

    pub async fn install(&self, id: &str, body: &InstallItem) -> Result<Installed, Error> {
        self.post(
            &format!("/api/marketplace/items/{}/install", segment(id)),
            body,
        )
        .await
    }

    pub async fn installs(&self, query: &InstallsQuery) -> Result<InstallList, Error> {
        self.get_query("/api/marketplace/installs", query).await
    }

    // Model providers.

    pub async fn model_providers(&self) -> Result<ModelProviderList, Error> {
        self.get("/api/models/providers").await
    }

    pub async fn put_model_provider(
        &self,
        name: &str,
        body: &PutModelProvider,
    ) -> Result<ModelProvider, Error> {
        self.put(&format!("/api/models/providers/{}", segment(name)), body)
            .await
    }

    pub async fn delete_model_provider(&self, name: &str) -> Result<(), Error> {
        let path = format!("/api/models/providers/{}", segment(name));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    pub async fn test_model_provider(
        &self,
        name: &str,
        body: &TestModelProvider,
    ) -> Result<ModelProviderTest, Error> {
        self.post(
            &format!("/api/models/providers/{}/test", segment(name)),
            body,
        )
        .await
    }

    pub async fn set_default_model(&self, body: &DefaultModel) -> Result<DefaultModel, Error> {
        self.put("/api/models/default", body).await
    }

    pub async fn model_usage(&self, query: &UsageQuery) -> Result<ModelUsage, Error> {
        self.get_query("/api/models/usage", query).await
    }

    // Schedules.

    pub async fn create_schedule(&self, body: &CreateSchedule) -> Result<Schedule, Error> {
        self.post("/api/schedules", body).await
    }

    pub async fn schedules(&self, page: &Page) -> Result<ScheduleList, Error> {
        self.get_query("/api/schedules", page).await
    }

    pub async fn schedule(&self, id: &str) -> Result<Schedule, Error> {
        self.get(&format!("/api/schedules/{}", segment(id))).await
    }

    pub async fn update_schedule(
        &self,
        id: &str,
        body: &UpdateSchedule,
    ) -> Result<Schedule, Error> {
        self.patch(&format!("/api/schedules/{}", segment(id)), body)
            .await
    }

    pub async fn delete_schedule(&self, id: &str) -> Result<(), Error> {
        let path = format!("/api/schedules/{}", segment(id));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    // Webhooks.

    pub async fn create_endpoint(&self, body: &CreateEndpoint) -> Result<CreatedEndpoint, Error> {
        self.post("/api/webhooks/endpoints", body).await
    }

    pub async fn endpoints(&self, page: &Page) -> Result<EndpointList, Error> {
        self.get_query("/api/webhooks/endpoints", page).await
    }

    pub async fn endpoint(&self, id: &str) -> Result<WebhookEndpoint, Error> {
        self.get(&format!("/api/webhooks/endpoints/{}", segment(id)))
            .await
    }

    pub async fn update_endpoint(
        &self,
        id: &str,
        body: &UpdateEndpoint,
    ) -> Result<WebhookEndpoint, Error> {
        self.patch(&format!("/api/webhooks/endpoints/{}", segment(id)), body)
            .await
    }

    pub async fn delete_endpoint(&self, id: &str) -> Result<(), Error> {
        let path = format!("/api/webhooks/endpoints/{}", segment(id));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    pub async fn rotate_secret(
        &self,
        id: &str,
        body: &RotateSecret,
    ) -> Result<CreatedEndpoint, Error> {
        let path = format!("/api/webhooks/endpoints/{}/rotate-secret", segment(id));
        self.post(&path, body).await
    }

    pub async fn deliveries(
        &self,
        id: &str,
        query: &DeliveriesQuery,
    ) -> Result<DeliveryList, Error> {
        let path = format!("/api/webhooks/endpoints/{}/deliveries", segment(id));
        self.get_query(&path, query).await
    }

    pub async fn delivery(&self, id: &str, delivery: &str) -> Result<DeliveryDetail, Error> {
        self.get(&format!(
            "/api/webhooks/endpoints/{}/deliveries/{}",
            segment(id),
            segment(delivery)
        ))
        .await
    }

    pub async fn replay(&self, id: &str, body: &Replay) -> Result<Replayed, Error> {
        let path = format!("/api/webhooks/endpoints/{}/replay", segment(id));
        self.post(&path, body).await
    }

    pub async fn send_test(&self, id: &str) -> Result<Delivery, Error> {
        let path = format!("/api/webhooks/endpoints/{}/test", segment(id));
        self.json(self.request(Method::POST, &path)).await
    }

    // Inbound webhook triggers.

    pub async fn create_trigger(
        &self,
        body: &CreateInboundTrigger,
    ) -> Result<CreatedInboundTrigger, Error> {
        self.post("/api/webhooks/triggers", body).await
    }

    pub async fn triggers(&self, page: &Page) -> Result<InboundTriggerList, Error> {
        self.get_query("/api/webhooks/triggers", page).await
    }

    pub async fn trigger(&self, id: &str) -> Result<InboundTrigger, Error> {
        self.get(&format!("/api/webhooks/triggers/{}", segment(id)))
            .await
    }

    pub async fn update_trigger(
        &self,
        id: &str,
        body: &UpdateInboundTrigger,
    ) -> Result<InboundTrigger, Error> {
        self.patch(&format!("/api/webhooks/triggers/{}", segment(id)), body)
            .await
    }

    pub async fn delete_trigger(&self, id: &str) -> Result<(), Error> {
        let path = format!("/api/webhooks/triggers/{}", segment(id));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    // Memory.

    pub async fn save(&self, body: &SaveEntry) -> Result<Entry, Error> {
        self.post("/api/memory/save", body).await
    }

    pub async fn load(&self, body: &LoadEntry) -> Result<Entry, Error> {
        self.post("/api/memory/load", body).await
    }

    pub async fn entries(&self, query: &AllQuery) -> Result<EntryList, Error> {
        self.get_query("/api/memory/all", query).await
    }

    pub async fn memory_sessions(&self, page: &Page) -> Result<SessionList, Error> {
        self.get_query("/api/memory/sessions", page).await
    }

    pub async fn delete_key(
        &self,
        session: &str,
        key: &str,
        query: &DeleteKeyQuery,
    ) -> Result<DeletedKey, Error> {
        let path = format!(
            "/api/memory/sessions/{}/keys/{}",
            segment(session),
            segment(key)
        );
        self.json(self.request(Method::DELETE, &path).query(query))
            .await
    }

    pub async fn delete_session(&self, session: &str) -> Result<DeletedSession, Error> {
        self.delete(&format!("/api/memory/sessions/{}", segment(session)))
            .await
    }

    pub async fn backup(&self, body: &CreateBackup) -> Result<MemoryBackup, Error> {
        self.post("/api/memory/backup", body).await
    }

    pub async fn backups(&self, query: &BackupsQuery) -> Result<BackupList, Error> {
        self.get_query("/api/memory/backups", query).await
    }

    pub async fn restore(&self, body: &Restore) -> Result<Restored, Error> {
        self.post("/api/memory/restore", body).await
    }
}

/// The longest event the stream buffers before refusing it: events are a few KiB, step outputs
/// are not in them.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// An event stream (Server-Sent Events: a run's, or the tenant's), read one CloudEvent at a
/// time.
pub struct EventStream {
    client: Client,
    path: String,
    /// Where the stream starts; `after_sequence` moves on with each event read.
    query: RunEventsQuery,
    response: Response,
    buffer: String,
    /// Whether the stream was opened again since the last event: a login's stream refused
    /// again before any event is not opened a third time.
    reopened: bool,
}

impl EventStream {
    /// The next event; `None` once the stream ended. An `error` event (the stream failed, or
    /// the caller lost its access) is [`Error::Problem`].
    pub async fn next(&mut self) -> Option<Result<CloudEvent, Error>> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                match parse_event(&block) {
                    Some(Ok(event)) => {
                        self.query.after_sequence = Some(event.sequence);
                        self.reopened = false;
                        return Some(Ok(event));
                    }
                    Some(Err(Error::Problem(problem)))
                        if problem.status == 401
                            && self.client.login.is_some()
                            && !self.reopened =>
                    {
                        self.reopened = true;
                        self.buffer.clear();
                        match self.client.open_events(&self.path, &self.query).await {
                            Ok(response) => self.response = response,
                            Err(error) => return Some(Err(error)),
                        }
                        continue;
                    }
                    Some(Err(error)) => return Some(Err(error)),
                    None => continue,
                }
            }
            if self.buffer.len() > MAX_EVENT_BYTES {
                return Some(Err(Error::Unexpected {
                    status: StatusCode::OK.as_u16(),
                    detail: format!("an event longer than {MAX_EVENT_BYTES} bytes"),
                }));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    // Lines end in \n, \r\n or \r (the SSE spec); one form is enough to split on.
                    let text = String::from_utf8_lossy(&chunk).replace("\r\n", "\n");
                    self.buffer.push_str(&text.replace('\r', "\n"));
                }
                Ok(None) => return None,
                Err(source) => return Some(Err(self.client.unreachable(source))),
            }
        }
    }
}

/// One SSE block as an event; `None` for a comment (keep-alive) or a block without data.
fn parse_event(block: &str) -> Option<Result<CloudEvent, Error>> {
    let mut kind = "message";
    let mut data = String::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value,
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    let unexpected = |err: serde_json::Error| Error::Unexpected {
        status: StatusCode::OK.as_u16(),
        detail: format!("an event that is not what the API sends: {err}"),
    };
    Some(if kind == "error" {
        match serde_json::from_str::<Problem>(&data) {
            Ok(problem) => Err(Error::Problem(Box::new(problem))),
            Err(err) => Err(unexpected(err)),
        }
    } else {
        serde_json::from_str(&data).map_err(unexpected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sse_block_is_its_cloud_event_and_an_error_block_its_problem() {
        let event = parse_event(
            "id: 3\nevent: sankalpa.chains.run.completed\ndata: {\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":\"sankalpa.chains.run.completed\",\"subject\":\"x\",\"time\":null,\"datacontenttype\":\"application/json\",\"tenantid\":\"t\",\"sequence\":3,\"data\":{}}\n\n",
        );
        let event = event.expect("a block with data").expect("a CloudEvent");
        assert_eq!(event.sequence, 3);
        assert_eq!(event.kind, "sankalpa.chains.run.completed");

        let error = parse_event(
            "event: error\ndata: {\"type\":\"/problems/unauthorized\",\"title\":\"Unauthorized\",\"status\":401}\n\n",
        );
        match error {
            Some(Err(Error::Problem(problem))) => assert_eq!(problem.status, 401),
            other => panic!("expected a problem, got {other:?}"),
        }
        assert!(parse_event(":keep-alive\n\n").is_none());
    }

    #[test]
    fn a_path_segment_stays_one_segment() {
        assert_eq!(segment("plan/v1 ü"), "plan%2Fv1%20%C3%BC");
        assert_eq!(segment("hello_world"), "hello_world");
    }
}
