//! The console's chat (`/api/chat/conversations`): conversations about what to build, each kept
//! in a memory session of its own (`chat-<id>`), whose assistant answers with the planner's plan
//! and says it, streamed as Server-Sent Events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::nlp::ProcessedCommand;

/// The longest message a person sends, in characters once trimmed.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// The most messages a conversation holds, the person's and the assistant's together.
pub const MAX_MESSAGES: usize = 100;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 80;
/// The most conversations a page lists.
pub const MAX_PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"title": "A shop backend"}))]
pub struct NewConversation {
    /// 1 to 80 characters; without it, the first message's beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 80)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    /// A UUID.
    pub id: String,
    /// Empty until given or until the first message names it.
    pub title: String,
    /// The person's and the assistant's messages.
    pub message_count: u32,
    pub created_at: Option<DateTime<Utc>>,
    /// The last message's time (or the creation's).
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationsQuery {
    /// At most 50; 20 when absent or 0.
    #[param(maximum = 50)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page; absent for the first.
    #[param(
        pattern = r"^[0-9]{1,16}\.chat-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    /// Newest (by creation) first.
    pub conversations: Vec<Conversation>,
    /// Absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// A UUID.
    pub id: String,
    pub role: ChatRole,
    /// Markdown (the assistant's), or the person's words.
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// The assistant's: the plan made of the message it answers, when one could be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ProcessedCommand>,
    /// The assistant's: the run of its plan, once started and linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The assistant's: true when the reply was stopped before its end (the text is what had
    /// been written).
    #[serde(default)]
    pub stopped: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"text": "A shop backend with products, orders and customers"}))]
pub struct SendMessage {
    /// 1 to 4,000 characters once trimmed.
    #[schema(min_length = 1, max_length = 4000)]
    pub text: String,
    /// Answer again: the conversation's last message of the person and what followed it are
    /// replaced by this one and its new reply.
    #[serde(default)]
    pub regenerate: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"run_id": "0193a5d2-7c1e-7d40-9a51-3f5c2b1e8a10"}))]
pub struct LinkRun {
    /// The run started from the message's plan (`POST /api/chains/execute`).
    #[schema(min_length = 1, max_length = 128)]
    pub run_id: String,
}

/// `event: delta`: text to append to the reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatDelta {
    pub text: String,
}

/// The LLM's part in a reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatUsage {
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// `event: done`: the reply is complete and saved.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatDone {
    /// The person's message, saved.
    pub user_message_id: String,
    /// The assistant's reply, saved.
    pub message_id: String,
    /// Present when the LLM wrote the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
}

/// One Server-Sent Event of `POST /api/chat/conversations/{id}/messages`, as it travels: `plan`
/// (at most one, first), `delta`s (in order), then `done`, or `error` instead.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatStreamEvent {
    pub event: ChatEventName,
    /// JSON text: a `ProcessedCommand` (`plan`), a `ChatDelta` (`delta`), a `ChatDone`
    /// (`done`) or a `Problem` (`error`).
    pub data: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatEventName {
    Plan,
    Delta,
    Done,
    Error,
}

/// What a [`ChatStreamEvent`] carries, by its name.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ChatEvent {
    Plan(Box<ProcessedCommand>),
    Delta(ChatDelta),
    Done(ChatDone),
    Error(Problem),
}

impl ChatEvent {
    /// The event as it travels.
    pub fn to_stream_event(&self) -> ChatStreamEvent {
        let event = match self {
            Self::Plan(_) => ChatEventName::Plan,
            Self::Delta(_) => ChatEventName::Delta,
            Self::Done(_) => ChatEventName::Done,
            Self::Error(_) => ChatEventName::Error,
        };
        ChatStreamEvent {
            event,
            data: serde_json::to_string(self).expect("chat events serialise"),
        }
    }
}

impl ChatEventName {
    /// The SSE `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Delta => "delta",
            Self::Done => "done",
            Self::Error => "error",
        }
    }
}
