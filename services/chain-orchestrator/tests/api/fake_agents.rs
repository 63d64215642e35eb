//! An agent-runner whose agents behave exactly as a test says, served over real gRPC: the
//! orchestration tests are about ordering, overlap, retries, timeouts and resumption, which must
//! not depend on what the real agents happen to do or how fast they are.
//!
//! Agents: `add_one` (`{"n": n + 1}`), `work` (sleeps `sleep_ms`, honouring the deadline; fails
//! its first `fail_times` calls per `tag`; answers its first `unavailable_times` calls per `tag`
//! with UNAVAILABLE, as an agent-runner that is going down; answers `{"tag", "done": true}`, plus
//! `"pad"`, a string of `pad_bytes` bytes, when asked) and `fail` (always fails, with a message
//! of `error_bytes` bytes when asked). Every call is recorded with its tag, chain run (the
//! workspace), agent run id and timings, and lookups (ListAgents, GetAgent) are counted. Tokens
//! are checked against auth's keys and revocations, as agent-runner does. It can be stopped and
//! restarted on its address. CancelAgentRun records the agent run ids it is asked to stop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sankalpa_kit::auth::TokenVerifier;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// `deleted` is known to lookups but gone when executed, as an agent deleted after its run
/// was accepted.
pub const AGENTS: &[&str] = &["add_one", "work", "fail", "deleted"];

#[derive(Debug, Clone)]
pub struct Call {
    pub agent: String,
    pub tag: String,
    pub workspace: String,
    pub run_id: String,
    pub started: Instant,
    /// Unset while running, and for calls that were dropped (cancelled).
    pub finished: Option<Instant>,
    pub token_kind: String,
    /// Whether the caller said no request named its run id before.
    pub first_ask: bool,
}

#[derive(Default)]
pub struct Record {
    pub calls: Mutex<Vec<Call>>,
    failures_left: Mutex<HashMap<String, u64>>,
    outages_left: Mutex<HashMap<String, u64>>,
    /// ListAgents and GetAgent calls answered.
    lookups: AtomicUsize,
    /// The agent run ids CancelAgentRun was asked for.
    cancelled: Mutex<Vec<String>>,
}

/// Takes one from the count left under `key` (starting at `initial`); true while any was left.
fn take_one(counts: &Mutex<HashMap<String, u64>>, key: String, initial: u64) -> bool {
    let mut counts = counts.lock().unwrap();
    let left = counts.entry(key).or_insert(initial);
    if *left > 0 {
        *left -= 1;
        true
    } else {
        false
    }
}

impl Record {
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    pub fn cancelled(&self) -> Vec<String> {
        self.cancelled.lock().unwrap().clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn tagged(&self, tag: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.tag == tag)
            .collect()
    }
}

struct Fake {
    record: Arc<Record>,
    verifier: Arc<TokenVerifier>,
}

pub struct FakeAgentRunner {
    pub record: Arc<Record>,
    pub addr: SocketAddr,
    verifier: Arc<TokenVerifier>,
    task: JoinHandle<()>,
    shutdown: CancellationToken,
}

impl FakeAgentRunner {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving, as an agent-runner that went down: its connections are closed (a
    /// connection's task outlives an aborted server task) and new ones are refused.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.task).await;
    }

    /// Changes as each revocation of auth's reaches the fake (main.rs follows them).
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.verifier.revocations()
    }

    /// Serves again on the same address, keeping the record, as an agent-runner back from a
    /// restart.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let (task, shutdown) = serve(listener, self.record.clone(), self.verifier.clone());
        self.task = task;
        self.shutdown = shutdown;
    }
}

impl Drop for FakeAgentRunner {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

pub async fn start(verifier: Arc<TokenVerifier>) -> FakeAgentRunner {
    let record = Arc::new(Record::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (task, shutdown) = serve(listener, record.clone(), verifier.clone());
    FakeAgentRunner {
        record,
        addr,
        verifier,
        task,
        shutdown,
    }
}

fn serve(
    listener: tokio::net::TcpListener,
    record: Arc<Record>,
    verifier: Arc<TokenVerifier>,
) -> (JoinHandle<()>, CancellationToken) {
    let service = AgentServiceServer::new(Fake { record, verifier });
    let shutdown = CancellationToken::new();
    let stopped = shutdown.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stopped,
            )
            .await
            .unwrap();
    });
    (task, shutdown)
}

fn agent(name: &str) -> pb::Agent {
    pb::Agent {
        name: name.to_owned(),
        category: "custom".to_owned(),
        origin: pb::AgentOrigin::Builtin.into(),
        ..Default::default()
    }
}

impl Fake {
    fn caller<T>(&self, request: &Request<T>, permission: &str) -> Result<String, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| Status::unauthenticated("no token"))?;
        let principal = self.verifier.verify_bearer(header)?;
        principal.require(permission)?;
        Ok(principal.kind)
    }
}

fn finished(
    run_id: &str,
    agent: &str,
    status: pb::AgentRunStatus,
    output: Value,
    error: Option<(&str, &str)>,
) -> pb::AgentRun {
    pb::AgentRun {
        run_id: run_id.to_owned(),
        agent: agent.to_owned(),
        status: status.into(),
        output_json: if status == pb::AgentRunStatus::Completed {
            output.to_string()
        } else {
            String::new()
        },
        error: error.map(|(code, message)| pb::RunError {
            code: code.to_owned(),
            message: message.to_owned(),
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl AgentService for Fake {
    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        self.caller(&request, "agents:read")?;
        self.record.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(pb::ListAgentsResponse {
            agents: AGENTS.iter().map(|name| agent(name)).collect(),
            page: None,
        }))
    }

    async fn get_agent(
        &self,
        request: Request<pb::GetAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        self.caller(&request, "agents:read")?;
        self.record.lookups.fetch_add(1, Ordering::SeqCst);
        let name = &request.get_ref().name;
        if AGENTS.contains(&name.as_str()) {
            Ok(Response::new(agent(name)))
        } else {
            Err(Status::not_found(format!("agent {name} not found")))
        }
    }

    async fn execute_agent(
        &self,
        request: Request<pb::ExecuteAgentRequest>,
    ) -> Result<Response<pb::AgentRun>, Status> {
        let token_kind = self.caller(&request, "agents:execute")?;
        let message = request.into_inner();
        let input: Value = serde_json::from_str(&message.input_json)
            .map_err(|_| Status::invalid_argument("input_json"))?;
        let tag = input["tag"].as_str().unwrap_or_default().to_owned();
        let run_id = message.run_id.clone().unwrap_or_default();
        let index = {
            let mut calls = self.record.calls.lock().unwrap();
            calls.push(Call {
                agent: message.agent.clone(),
                tag: tag.clone(),
                workspace: message.workspace_id.clone().unwrap_or_default(),
                run_id: run_id.clone(),
                started: Instant::now(),
                finished: None,
                token_kind,
                first_ask: message.first_ask,
            });
            calls.len() - 1
        };
        let workspace = message.workspace_id.clone().unwrap_or_default();
        if take_one(
            &self.record.outages_left,
            format!("{workspace}/{tag}"),
            input["unavailable_times"].as_u64().unwrap_or(0),
        ) {
            return Err(Status::unavailable("going down, on purpose"));
        }
        let answer = match message.agent.as_str() {
            "add_one" => {
                let n = input["n"].as_i64().unwrap_or(0);
                finished(
                    &run_id,
                    "add_one",
                    pb::AgentRunStatus::Completed,
                    json!({ "n": n + 1 }),
                    None,
                )
            }
            "work" => {
                let sleep = Duration::from_millis(input["sleep_ms"].as_u64().unwrap_or(0));
                let deadline = Duration::from_millis(message.deadline_ms);
                if message.deadline_ms > 0 && sleep > deadline {
                    tokio::time::sleep(deadline).await;
                    finished(
                        &run_id,
                        "work",
                        pb::AgentRunStatus::Failed,
                        Value::Null,
                        Some(("deadline_exceeded", "ran past its deadline")),
                    )
                } else {
                    tokio::time::sleep(sleep).await;
                    if take_one(
                        &self.record.failures_left,
                        format!("{workspace}/{tag}"),
                        input["fail_times"].as_u64().unwrap_or(0),
                    ) {
                        finished(
                            &run_id,
                            "work",
                            pb::AgentRunStatus::Failed,
                            Value::Null,
                            Some(("agent_failed", "failed on purpose")),
                        )
                    } else {
                        let mut output = json!({ "tag": tag, "done": true });
                        if let Some(bytes) = input["pad_bytes"].as_u64() {
                            output["pad"] = json!("x".repeat(bytes as usize));
                        }
                        finished(&run_id, "work", pb::AgentRunStatus::Completed, output, None)
                    }
                }
            }
            "fail" => {
                let message = match input["error_bytes"].as_u64() {
                    Some(bytes) => "e".repeat(bytes as usize),
                    None => "always fails".to_owned(),
                };
                finished(
                    &run_id,
                    "fail",
                    pb::AgentRunStatus::Failed,
                    Value::Null,
                    Some(("agent_failed", &message)),
                )
            }
            other => return Err(Status::not_found(format!("agent {other} not found"))),
        };
        self.record.calls.lock().unwrap()[index].finished = Some(Instant::now());
        Ok(Response::new(answer))
    }

    async fn cancel_agent_run(
        &self,
        request: Request<pb::CancelAgentRunRequest>,
    ) -> Result<Response<pb::CancelAgentRunResponse>, Status> {
        self.caller(&request, "agents:execute")?;
        let run_id = request.into_inner().run_id;
        self.record.cancelled.lock().unwrap().push(run_id);
        Ok(Response::new(pb::CancelAgentRunResponse {}))
    }

    async fn create_custom_agent(
        &self,
        _: Request<pb::CreateCustomAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn update_custom_agent(
        &self,
        _: Request<pb::UpdateCustomAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn delete_custom_agent(
        &self,
        _: Request<pb::DeleteCustomAgentRequest>,
    ) -> Result<Response<pb::DeleteCustomAgentResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn validate_agent_definition(
        &self,
        _: Request<pb::ValidateAgentDefinitionRequest>,
    ) -> Result<Response<pb::ValidateAgentDefinitionResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    type GetArtifactsStream = futures::stream::Empty<Result<pb::ArtifactChunk, Status>>;

    async fn get_artifacts(
        &self,
        _: Request<pb::GetArtifactsRequest>,
    ) -> Result<Response<Self::GetArtifactsStream>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    type ConverseStream = futures::stream::Empty<Result<pb::ConverseEvent, Status>>;

    async fn converse(
        &self,
        _: Request<pb::ConverseRequest>,
    ) -> Result<Response<Self::ConverseStream>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn list_model_providers(
        &self,
        _: Request<pb::ListModelProvidersRequest>,
    ) -> Result<Response<pb::ListModelProvidersResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn put_model_provider(
        &self,
        _: Request<pb::PutModelProviderRequest>,
    ) -> Result<Response<pb::ModelProvider>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn delete_model_provider(
        &self,
        _: Request<pb::DeleteModelProviderRequest>,
    ) -> Result<Response<pb::DeleteModelProviderResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn test_model_provider(
        &self,
        _: Request<pb::TestModelProviderRequest>,
    ) -> Result<Response<pb::TestModelProviderResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn set_default_model(
        &self,
        _: Request<pb::SetDefaultModelRequest>,
    ) -> Result<Response<pb::SetDefaultModelResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn get_model_usage(
        &self,
        _: Request<pb::GetModelUsageRequest>,
    ) -> Result<Response<pb::GetModelUsageResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}
