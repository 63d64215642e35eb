//! The memory session a run may share with other agents, read and written through the memory
//! service on the caller's behalf: the caller's own token goes with every call, so memory checks
//! the caller's memory:read / memory:write permissions and tenant itself.

use std::time::Duration;

use sankalpa_kit::grpc::{TracedChannel, connection_lost};
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use serde_json::Value;
use tonic::Code;

use crate::error::AgentError;

/// How long one memory call may take; a run's deadline bounds the whole run anyway.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a session a run reads, in bytes of its keys and values as JSON: what it reads it
/// holds, parsed (several times larger), for the rest of the run.
pub const MAX_SESSION_READ_BYTES: usize = 4 * 1024 * 1024;

pub struct SessionMemory {
    pub client: MemoryServiceClient<TracedChannel>,
    /// The caller's `authorization` value.
    pub bearer: String,
    pub session: String,
}

pub struct Remembered {
    pub key: String,
    pub value: Value,
    pub version: u64,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a refusal of the memory service means for the run: a service that cannot be asked now
/// (down, restarting, too slow) is worth a retry; anything else (no memory:write, a value too
/// large) is the run's failure.
fn failure(status: tonic::Status) -> AgentError {
    let message = format!(
        "the memory service answered {:?}: {}",
        status.code(),
        status.message()
    );
    if connection_lost(status.code()) || status.code() == Code::DeadlineExceeded {
        AgentError::Unavailable(message)
    } else {
        AgentError::Failed(message)
    }
}

impl SessionMemory {
    fn request<T>(&self, message: T) -> Result<tonic::Request<T>, AgentError> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(CALL_TIMEOUT);
        let value = self
            .bearer
            .parse()
            .map_err(|_| AgentError::Failed("the caller's token cannot be forwarded".to_owned()))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }

    /// Every entry of the session; none when the session does not exist yet. A session past
    /// [`MAX_SESSION_READ_BYTES`] fails the run.
    pub async fn entries(&self) -> Result<Vec<Remembered>, AgentError> {
        let mut found = Vec::new();
        let mut read = 0usize;
        let mut token = String::new();
        loop {
            let request = self.request(pb::GetAllRequest {
                session_id: self.session.clone(),
                key_prefix: String::new(),
                page: Some(pb::PageRequest {
                    page_size: 200,
                    page_token: token.clone(),
                }),
            })?;
            let page = match self.client.clone().get_all(request).await {
                Ok(page) => page.into_inner(),
                Err(status) if status.code() == Code::NotFound => return Ok(found),
                Err(status) => return Err(failure(status)),
            };
            for entry in page.entries {
                read += entry.key.len() + entry.value_json.len();
                if read > MAX_SESSION_READ_BYTES {
                    return Err(AgentError::Failed(format!(
                        "the session {} holds more than the {MAX_SESSION_READ_BYTES} bytes a run \
                         reads of it",
                        self.session
                    )));
                }
                found.push(Remembered {
                    value: serde_json::from_str(&entry.value_json)
                        .unwrap_or(Value::String(entry.value_json)),
                    key: entry.key,
                    version: entry.version,
                    updated_at: entry.updated_at.and_then(|t| {
                        chrono::DateTime::from_timestamp(
                            t.seconds,
                            u32::try_from(t.nanos).unwrap_or(0),
                        )
                    }),
                });
            }
            token = page.page.map(|p| p.next_page_token).unwrap_or_default();
            if token.is_empty() {
                return Ok(found);
            }
        }
    }

    pub async fn save(&self, key: &str, value: &Value) -> Result<(), AgentError> {
        let request = self.request(pb::SaveRequest {
            session_id: self.session.clone(),
            key: key.to_owned(),
            value_json: value.to_string(),
            expected_version: None,
            ttl_seconds: 0,
        })?;
        self.client.clone().save(request).await.map_err(failure)?;
        Ok(())
    }
}
