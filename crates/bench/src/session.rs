//! The bench's user: registered and logged in once, with the memory entry the load scenario
//! reads; and what every scenario's requests are built from.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use reqwest::Client;
use serde_json::{Value, json};

use crate::load::HttpTarget;
use crate::market::SearchMix;

/// The memory session every memory scenario uses, and the key the load scenario reads.
pub const CACHED_KEY: &str = "cached";

/// What every request of every scenario may use: the gateway, a logged-in user and its memory
/// session.
pub struct Session {
    pub client: Client,
    base: String,
    /// The gateway, which the scenario workers connect to.
    pub gateway: Arc<HttpTarget>,
    pub credentials: Value,
    pub access_token: String,
    pub memory_session: String,
    /// Saves sent so far, to pick each save's key.
    pub saves: AtomicU64,
    /// Searches sent so far, to pick each search's query.
    pub searches: AtomicU64,
    pub search_mix: SearchMix,
}

impl Session {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Registers a fresh user and logs it in.
pub async fn log_in(client: Client, base: String) -> Result<Session> {
    let id = uuid::Uuid::new_v4().simple();
    let credentials = json!({
        "email": format!("bench-{id}@example.com"),
        "password": format!("bench-password-{id}"),
    });
    let mut register = credentials.clone();
    register["display_name"] = json!("Bench User");
    let response = client
        .post(format!("{base}/api/users/register"))
        .json(&register)
        .send()
        .await
        .context("Failed to register the bench user")?;
    expect_success(response, "register").await?;

    let response = client
        .post(format!("{base}/api/users/login"))
        .json(&credentials)
        .send()
        .await
        .context("Failed to log in the bench user")?;
    let body: Value = expect_success(response, "login").await?.json().await?;
    let access_token = body["access_token"]
        .as_str()
        .context("login response has no access_token")?
        .to_owned();
    let url = reqwest::Url::parse(&base).with_context(|| format!("{base} is not a URL"))?;
    if url.scheme() != "http" {
        bail!("the bench drives plain HTTP, not {base}");
    }
    let address = format!(
        "{}:{}",
        url.host_str().context("the gateway URL has no host")?,
        url.port_or_known_default().unwrap_or(80)
    );
    Ok(Session {
        client,
        base,
        gateway: Arc::new(HttpTarget::new(address)?),
        credentials,
        access_token,
        memory_session: format!("bench-{id}"),
        saves: AtomicU64::new(0),
        searches: AtomicU64::new(0),
        search_mix: SearchMix::new(),
    })
}

/// Saves the entry the load scenario reads and reads it once, which puts it in memory's cache.
pub async fn seed_memory(session: &Session) -> Result<()> {
    let response = session
        .client
        .post(session.url("/api/memory/save"))
        .bearer_auth(&session.access_token)
        .json(&json!({
            "session_id": session.memory_session,
            "key": CACHED_KEY,
            "value": { "plan": ["schema", "backend", "frontend"], "done": false },
        }))
        .send()
        .await
        .context("Failed to save the bench's memory entry")?;
    expect_success(response, "memory save").await?;
    let response = session
        .client
        .post(session.url("/api/memory/load"))
        .bearer_auth(&session.access_token)
        .json(&json!({ "session_id": session.memory_session, "key": CACHED_KEY }))
        .send()
        .await
        .context("Failed to load the bench's memory entry")?;
    expect_success(response, "memory load").await?;
    Ok(())
}
pub async fn expect_success(response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    bail!("{what} answered {status}: {body}")
}
