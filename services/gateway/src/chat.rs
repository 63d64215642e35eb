//! The console's chat (`/api/chat/conversations`): a conversation about what to build, whose
//! assistant answers each message with the planner's plan of it (the same path as
//! `/api/nlp/process`, [`crate::nlp::plan_command`]) and a reply that says it, written by
//! agent-runner's `Converse` (the LLM token by token when one is configured, else the
//! deterministic summary) and relayed as Server-Sent Events: `plan`, `delta`s, then `done` (or
//! `error`).
//!
//! A conversation is the memory session `chat-<uuid>` of the caller's tenant: its `meta` entry
//! (the title) and one entry per message, `message:<position>` (four digits, so key order is
//! the conversation's), holding the [`ChatMessage`] as the API shows it. The person's message is
//! saved before the reply starts; the reply is saved when it ends, or when its reader goes away
//! (the client's Stop: the gRPC stream is dropped, which stops agent-runner writing) with what
//! had been written and `stopped`. The reply is written on a task of its own so that the stop
//! is seen and saved; it reaches the response through a bounded channel.
//!
//! Bounds (docs/limits.md): a message is 1 to [`MAX_MESSAGE_CHARS`] characters, a conversation
//! holds [`MAX_MESSAGES`] messages (409 past it), the assistant is given the latest
//! [`MAX_TURNS`] of them within [`MAX_TURNS_CHARS`] characters, and a page lists at most
//! [`MAX_PAGE_SIZE`] conversations.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::Utc;
use futures::StreamExt;
use sankalpa_api::chat::{
    ChatDelta, ChatDone, ChatEvent, ChatMessage, ChatRole, ChatStreamEvent, ChatUsage,
    Conversation, ConversationDetail, ConversationList, ConversationsQuery, LinkRun,
    MAX_MESSAGE_CHARS, MAX_MESSAGES, MAX_PAGE_SIZE, MAX_TITLE_CHARS, NewConversation, SendMessage,
};
use sankalpa_api::nlp::ProcessedCommand;
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, timestamp};

const SESSION_PREFIX: &str = "chat-";
const META: &str = "meta";
const MESSAGE_PREFIX: &str = "message:";
/// The most turns of the conversation the assistant is given (the latest): agent-runner's
/// bound.
const MAX_TURNS: usize = 50;
/// The longest turn agent-runner takes, in characters: a longer reply is given cut.
const MAX_TURN_CHARS: usize = 8000;
/// The most characters of turns agent-runner takes together.
const MAX_TURNS_CHARS: usize = 100_000;
/// Events of a reply waiting for a slow reader before the writing waits too.
const PENDING_EVENTS: usize = 32;
/// The default page of conversations.
const DEFAULT_PAGE_SIZE: u32 = 20;
/// The longest run id a message is linked to (the orchestrator's ids are UUIDs).
const MAX_RUN_ID_CHARS: usize = 128;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, delete))
        .routes(routes!(send))
        .routes(routes!(link_run))
}

/// The `meta` entry of a conversation.
#[derive(Default, Serialize, Deserialize)]
struct Meta {
    title: String,
}

/// The session of conversation `id`; a path that is no UUID names no conversation.
fn session_of(id: &str) -> Result<String, Problem> {
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    Ok(format!("{SESSION_PREFIX}{id}"))
}

fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such conversation in the caller's tenant",
    )
}

/// A memory NOT_FOUND is the conversation's absence; anything else is memory's problem.
fn from_memory(status: tonic::Status) -> Problem {
    if status.code() == tonic::Code::NotFound {
        not_found()
    } else {
        Problem::from(status)
    }
}

fn message_key(position: usize) -> String {
    format!("{MESSAGE_PREFIX}{position:04}")
}

fn title_of(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= MAX_TITLE_CHARS {
        return text;
    }
    let cut: String = text.chars().take(MAX_TITLE_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

fn set(key: String, value: &impl Serialize) -> v1::TransactOp {
    v1::TransactOp {
        key,
        op: Some(v1::transact_op::Op::Set(v1::SetOp {
            value_json: serde_json::to_string(value).expect("chat entries serialise"),
            ttl_seconds: 0,
        })),
    }
}

fn delete_op(key: String) -> v1::TransactOp {
    v1::TransactOp {
        key,
        op: Some(v1::transact_op::Op::Delete(v1::DeleteOp {})),
    }
}

/// A conversation as it is stored.
struct Stored {
    conversation: Conversation,
    messages: Vec<ChatMessage>,
}

/// Reads conversation `id` whole: its meta entry and its messages, by key order.
async fn read(state: &AppState, caller: &Caller, id: &str) -> Result<Stored, Problem> {
    let session_id = session_of(id)?;
    let mut meta = Meta::default();
    let mut messages = Vec::new();
    let (mut created_at, mut updated_at) = (None, None);
    let mut page_token = String::new();
    loop {
        let page = state
            .memory()
            .get_all(state.request_as(
                caller,
                v1::GetAllRequest {
                    session_id: session_id.clone(),
                    key_prefix: String::new(),
                    page: Some(v1::PageRequest {
                        page_size: 200,
                        page_token,
                    }),
                },
            )?)
            .await
            .map_err(from_memory)?
            .into_inner();
        for entry in page.entries {
            let written = timestamp(entry.updated_at);
            updated_at = updated_at.max(written);
            if entry.key == META {
                created_at = timestamp(entry.created_at);
                meta = serde_json::from_str(&entry.value_json).unwrap_or_default();
            } else if entry.key.starts_with(MESSAGE_PREFIX) {
                match serde_json::from_str(&entry.value_json) {
                    Ok(message) => messages.push(message),
                    Err(err) => {
                        tracing::warn!(key = %entry.key, error = %err, "a chat message that does not read")
                    }
                }
            }
        }
        page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            break;
        }
    }
    Ok(Stored {
        conversation: Conversation {
            id: id.to_owned(),
            title: meta.title,
            message_count: u32::try_from(messages.len()).unwrap_or(u32::MAX),
            created_at,
            updated_at,
        },
        messages,
    })
}

async fn transact(
    state: &AppState,
    caller: &Caller,
    session_id: &str,
    ops: Vec<v1::TransactOp>,
) -> Result<(), Problem> {
    state
        .memory()
        .transact(state.request_as(
            caller,
            v1::TransactRequest {
                session_id: session_id.to_owned(),
                ops,
            },
        )?)
        .await
        .map_err(from_memory)?;
    Ok(())
}

/// Whether `token` is one memory gave for the list of conversations (`<micros>.chat-<uuid>`).
fn valid_page_token(token: &str) -> bool {
    let Some((micros, session)) = token.split_once('.') else {
        return false;
    };
    (1..=16).contains(&micros.len())
        && micros.bytes().all(|b| b.is_ascii_digit())
        && session
            .strip_prefix(SESSION_PREFIX)
            .is_some_and(|id| id.len() == 36 && Uuid::parse_str(id).is_ok())
}

/// The caller's conversations, newest first.
#[utoipa::path(
    get,
    path = "/api/chat/conversations",
    tag = "chat",
    params(ConversationsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of the tenant's conversations", body = ConversationList),
        (status = 403, description = "Missing memory:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ConversationsQuery>,
) -> Result<axum::Json<ConversationList>, Problem> {
    caller.require("memory:read")?;
    let page_size = match query.page_size.unwrap_or(0) {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            return Err(Problem::invalid(
                "page_size",
                format!("must be at most {MAX_PAGE_SIZE}"),
            ));
        }
        n => n,
    };
    let page_token = match query.page_token {
        None => String::new(),
        Some(token) if valid_page_token(&token) => token,
        Some(_) => {
            return Err(Problem::invalid(
                "page_token",
                "is not a token this list gave",
            ));
        }
    };
    let page = state
        .memory()
        .list_sessions(state.request_as(
            &caller,
            v1::ListSessionsRequest {
                page: Some(v1::PageRequest {
                    page_size,
                    page_token,
                }),
                id_prefix: SESSION_PREFIX.to_owned(),
            },
        )?)
        .await
        .map_err(|status| crate::json::renamed(status, |field| field.replace("page.", "")))?
        .into_inner();
    // Titles are each conversation's meta entry: read side by side, a page at most.
    let titles = futures::future::join_all(page.sessions.iter().map(|session| {
        let request = state.request_as(
            &caller,
            v1::LoadRequest {
                session_id: session.id.clone(),
                key: META.to_owned(),
            },
        );
        let mut memory = state.memory();
        async move {
            let entry = memory.load(request.ok()?).await.ok()?.into_inner();
            serde_json::from_str::<Meta>(&entry.value_json).ok()
        }
    }))
    .await;
    let conversations = page
        .sessions
        .into_iter()
        .zip(titles)
        .map(|(session, meta)| Conversation {
            id: session
                .id
                .strip_prefix(SESSION_PREFIX)
                .unwrap_or(&session.id)
                .to_owned(),
            title: meta.unwrap_or_default().title,
            message_count: u32::try_from(session.entry_count.saturating_sub(1)).unwrap_or(u32::MAX),
            created_at: timestamp(session.created_at),
            updated_at: timestamp(session.updated_at),
        })
        .collect();
    Ok(axum::Json(ConversationList {
        conversations,
        next_page_token: crate::json::next_page(page.page),
    }))
}

/// Starts a conversation (its first message may also name it).
#[utoipa::path(
    post,
    path = "/api/chat/conversations",
    tag = "chat",
    request_body = NewConversation,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The new conversation", body = Conversation),
        (status = 400, description = "`title` is not 1 to 80 characters", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    // A map first: serde would read a struct whose members all have defaults from `[]` too.
    Body(body): Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<(StatusCode, axum::Json<Conversation>), Problem> {
    let body: NewConversation = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|err| Problem::invalid("title", err.to_string()))?;
    caller.require("memory:write")?;
    let title = match body.title.as_deref().map(str::trim) {
        None => String::new(),
        Some(title) if (1..=MAX_TITLE_CHARS).contains(&title.chars().count()) => title.to_owned(),
        Some(_) => {
            return Err(Problem::invalid(
                "title",
                format!("must be 1 to {MAX_TITLE_CHARS} characters once trimmed"),
            ));
        }
    };
    let id = Uuid::new_v4().to_string();
    let entry = state
        .memory()
        .save(
            state.request_as(
                &caller,
                v1::SaveRequest {
                    session_id: session_of(&id)?,
                    key: META.to_owned(),
                    value_json: serde_json::to_string(&Meta {
                        title: title.clone(),
                    })
                    .expect("a title serialises"),
                    expected_version: Some(0),
                    ttl_seconds: 0,
                },
            )?,
        )
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        axum::Json(Conversation {
            id,
            title,
            message_count: 0,
            created_at: timestamp(entry.created_at),
            updated_at: timestamp(entry.updated_at),
        }),
    ))
}

/// A conversation with its messages, oldest first.
#[utoipa::path(
    get,
    path = "/api/chat/conversations/{id}",
    tag = "chat",
    params(("id" = String, Path, description = "The conversation's id (a UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The conversation and its messages", body = ConversationDetail),
        (status = 403, description = "Missing memory:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn detail(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationDetail>, Problem> {
    caller.require("memory:read")?;
    let stored = read(&state, &caller, &id).await?;
    Ok(axum::Json(ConversationDetail {
        conversation: stored.conversation,
        messages: stored.messages,
    }))
}

/// Deletes a conversation and its messages.
#[utoipa::path(
    delete,
    path = "/api/chat/conversations/{id}",
    tag = "chat",
    params(("id" = String, Path, description = "The conversation's id (a UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require("memory:write")?;
    state
        .memory()
        .delete_session(state.request_as(
            &caller,
            v1::DeleteSessionRequest {
                session_id: session_of(&id)?,
            },
        )?)
        .await
        .map_err(from_memory)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Links the run started from an assistant message's plan to that message, so the conversation
/// shows it when reopened.
#[utoipa::path(
    put,
    path = "/api/chat/conversations/{id}/messages/{message_id}/run",
    tag = "chat",
    request_body = LinkRun,
    params(
        ("id" = String, Path, description = "The conversation's id (a UUID)"),
        ("message_id" = String, Path, description = "The assistant message whose plan ran"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The message, linked", body = ChatMessage),
        (status = 400, description = "`run_id` is not 1 to 128 characters, or the message has no plan", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation or message in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn link_run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, message_id)): Path<(String, String)>,
    Body(body): Body<LinkRun>,
) -> Result<axum::Json<ChatMessage>, Problem> {
    caller.require("memory:write")?;
    let run_id = body.run_id.trim();
    if !(1..=MAX_RUN_ID_CHARS).contains(&run_id.chars().count()) {
        return Err(Problem::invalid(
            "run_id",
            format!("must be 1 to {MAX_RUN_ID_CHARS} characters"),
        ));
    }
    let stored = read(&state, &caller, &id).await?;
    let (position, message) = stored
        .messages
        .into_iter()
        .enumerate()
        .find(|(_, message)| message.id == message_id)
        .ok_or_else(|| {
            Problem::new(StatusCode::NOT_FOUND, "no such message in the conversation")
        })?;
    if message.plan.is_none() {
        return Err(Problem::invalid(
            "message_id",
            "the message has no plan to run",
        ));
    }
    let linked = ChatMessage {
        run_id: Some(run_id.to_owned()),
        ..message
    };
    let session_id = session_of(&id)?;
    transact(
        &state,
        &caller,
        &session_id,
        vec![set(message_key(position), &linked)],
    )
    .await?;
    Ok(axum::Json(linked))
}

/// Sends a message; the answer streams back as Server-Sent Events.
#[utoipa::path(
    post,
    path = "/api/chat/conversations/{id}/messages",
    tag = "chat",
    request_body = SendMessage,
    params(("id" = String, Path, description = "The conversation's id (a UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "`text/event-stream`: `plan` (the planner's plan of the message, when it makes one), `delta` ({text}, in order), then `done` ({user_message_id, message_id, usage}), or `error` (a problem) instead. Aborting the request stops the reply, which is saved as far as it got, `stopped`.", body = ChatStreamEvent, content_type = "text/event-stream"),
        (status = 400, description = "`text` is not 1 to 4,000 characters once trimmed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing memory:read, memory:write, agents:execute or chains:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The conversation holds its 100 messages: start another", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn send(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<SendMessage>,
) -> Result<Response, Problem> {
    for permission in [
        "memory:read",
        "memory:write",
        "agents:execute",
        "chains:read",
    ] {
        caller.require(permission)?;
    }
    let text = body.text.trim();
    if !(1..=MAX_MESSAGE_CHARS).contains(&text.chars().count()) {
        return Err(Problem::invalid(
            "text",
            format!("must be 1 to {MAX_MESSAGE_CHARS} characters once trimmed"),
        ));
    }
    let session_id = session_of(&id)?;
    let Stored {
        conversation,
        mut messages,
    } = read(&state, &caller, &id).await?;
    // Regenerating replaces the person's last message and all that followed it.
    let kept = if body.regenerate {
        messages
            .iter()
            .rposition(|message| message.role == ChatRole::User)
            .unwrap_or(messages.len())
    } else {
        messages.len()
    };
    if kept + 2 > MAX_MESSAGES {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("the conversation holds its {MAX_MESSAGES} messages: start another"),
        ));
    }
    let mut ops: Vec<_> = (kept..messages.len())
        .map(|position| delete_op(message_key(position)))
        .collect();
    messages.truncate(kept);
    let asked = ChatMessage {
        id: Uuid::new_v4().to_string(),
        role: ChatRole::User,
        text: text.to_owned(),
        created_at: Utc::now(),
        plan: None,
        run_id: None,
        stopped: false,
    };
    // A delete and a set of one key cannot share a transaction: the new message's key is set,
    // not deleted.
    ops.retain(|op| op.key != message_key(kept));
    ops.push(set(message_key(kept), &asked));
    if conversation.title.is_empty() {
        ops.push(set(
            META.to_owned(),
            &Meta {
                title: title_of(text),
            },
        ));
    }
    transact(&state, &caller, &session_id, ops).await?;
    messages.push(asked);

    let (events, pending) = mpsc::channel(PENDING_EVENTS);
    let reply = Reply {
        state: state.clone(),
        caller,
        session_id,
        position: kept + 1,
        events,
    };
    // The gateway's end closes the stream, which stops the reply; shutdown waits for what it
    // got so far to be saved.
    state.background.spawn(reply.write(messages));
    let stream = futures::stream::unfold(pending, |mut pending| async move {
        let event = pending.recv().await?;
        Some((Ok::<_, Infallible>(event), pending))
    })
    .take_until(state.streams_end.clone().cancelled_owned());
    Ok(crate::events::no_buffering(
        Sse::new(stream).keep_alive(KeepAlive::default()),
    ))
}

/// The assistant's reply being written: where it goes and where it is saved.
struct Reply {
    state: Arc<AppState>,
    caller: Caller,
    session_id: String,
    /// Its message's position in the conversation.
    position: usize,
    events: mpsc::Sender<SseEvent>,
}

impl Reply {
    /// Plans, asks agent-runner for the reply, relays it, saves it.
    async fn write(self, messages: Vec<ChatMessage>) {
        let asked = messages.last().expect("the person's message is there");
        let user_message_id = asked.id.clone();
        let (plan, note) = match crate::nlp::plan_command(
            &self.state,
            &self.caller,
            &asked.text,
            None,
            v1::LlmMode::Off,
        )
        .await
        {
            Ok(plan) => (Some(plan), String::new()),
            // The planner's refusal is what the reply explains.
            Err(problem) if problem.status == 400 => {
                let note = problem
                    .errors
                    .first()
                    .map(|violation| violation.message.clone())
                    .unwrap_or_else(|| problem.to_string());
                (None, note)
            }
            Err(problem) => return self.fail(&problem).await,
        };
        if let Some(planned) = &plan
            && !self.send(ChatEvent::Plan(Box::new(planned.clone()))).await
        {
            self.save(String::new(), plan, true).await;
            return;
        }
        let request = v1::ConverseRequest {
            turns: turns(&messages),
            plan_json: plan
                .as_ref()
                .map(|plan| serde_json::to_string(plan).expect("a plan serialises"))
                .unwrap_or_default(),
            plan_note: note,
            llm: v1::LlmMode::Unspecified.into(),
        };
        let stream = match sankalpa_kit::auth::with_bearer(request, &self.caller.token) {
            Ok(request) => self.state.agents().converse(request).await,
            Err(status) => Err(status),
        };
        let mut stream = match stream {
            Ok(stream) => stream.into_inner(),
            Err(status) => return self.fail(&Problem::from(status)).await,
        };
        let mut text = String::new();
        let mut usage = None;
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                // The reader went away (Stop): dropping the stream cancels the call upstream.
                () = self.events.closed() => {
                    drop(stream);
                    self.save(text, plan, true).await;
                    return;
                }
            };
            match message {
                Ok(Some(v1::ConverseEvent {
                    event: Some(v1::converse_event::Event::Delta(delta)),
                })) => {
                    text.push_str(&delta.text);
                    if !self
                        .send(ChatEvent::Delta(ChatDelta { text: delta.text }))
                        .await
                    {
                        drop(stream);
                        self.save(text, plan, true).await;
                        return;
                    }
                }
                Ok(Some(v1::ConverseEvent {
                    event: Some(v1::converse_event::Event::Done(done)),
                })) => {
                    usage = done.llm_used.then_some(ChatUsage {
                        model: done.llm_model,
                        prompt_tokens: done.prompt_tokens,
                        completion_tokens: done.completion_tokens,
                    });
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(status) => {
                    let problem = Problem::from(status);
                    if !text.is_empty() {
                        self.save(text, plan, true).await;
                    }
                    return self.fail(&problem).await;
                }
            }
        }
        let Some(message_id) = self.save(text, plan, false).await else {
            return;
        };
        self.send(ChatEvent::Done(ChatDone {
            user_message_id,
            message_id,
            usage,
        }))
        .await;
    }

    /// Sends one event; false when the reader has gone.
    async fn send(&self, event: ChatEvent) -> bool {
        let sent = event.to_stream_event();
        self.events
            .send(
                SseEvent::default()
                    .event(sent.event.as_str())
                    .data(sent.data),
            )
            .await
            .is_ok()
    }

    async fn fail(&self, problem: &Problem) {
        tracing::warn!(status = problem.status, detail = ?problem.detail, "a chat reply failed");
        self.send(ChatEvent::Error(problem.document.clone())).await;
    }

    /// Saves the reply; its id, or `None` (said to the reader) when it could not be saved.
    async fn save(
        &self,
        text: String,
        plan: Option<ProcessedCommand>,
        stopped: bool,
    ) -> Option<String> {
        let message = ChatMessage {
            id: Uuid::new_v4().to_string(),
            role: ChatRole::Assistant,
            text,
            created_at: Utc::now(),
            plan,
            run_id: None,
            stopped,
        };
        let saved = transact(
            &self.state,
            &self.caller,
            &self.session_id,
            vec![set(message_key(self.position), &message)],
        )
        .await;
        match saved {
            Ok(()) => Some(message.id),
            Err(problem) => {
                self.fail(&problem).await;
                None
            }
        }
    }
}

/// The turns agent-runner is given: the latest messages within its bounds, each cut to its
/// longest turn, ending with the person's message.
fn turns(messages: &[ChatMessage]) -> Vec<v1::ChatTurn> {
    let mut turns = Vec::new();
    let mut total = 0;
    for message in messages.iter().rev() {
        let text: String = message.text.chars().take(MAX_TURN_CHARS).collect();
        let chars = text.chars().count();
        if chars == 0 {
            continue;
        }
        if turns.len() == MAX_TURNS || total + chars > MAX_TURNS_CHARS {
            break;
        }
        total += chars;
        let role = match message.role {
            ChatRole::User => v1::ChatRole::User,
            ChatRole::Assistant => v1::ChatRole::Assistant,
        };
        turns.push(v1::ChatTurn {
            role: role.into(),
            text,
        });
    }
    turns.reverse();
    turns
}
