//! What the orchestrator knows of agent-runner's agents, so that accepting a run needs only
//! Postgres.
//!
//! Two kinds of agents are remembered, each for `agent_catalog_ttl`: the built-ins, one list for
//! every tenant (agent-runner's ListAgents, origin BUILTIN), and the other agents a tenant's
//! definitions named that agent-runner confirmed (GetAgent: its custom agents), per tenant and
//! name, at most [`MAX_REMEMBERED_AGENTS`] of them. A definition whose agents are all
//! remembered is checked without a call. Anything else is asked of agent-runner, with the
//! caller's token: an agent it does not know (NOT_FOUND) is definitely unknown, and refused; when
//! it cannot be asked (UNAVAILABLE, a deadline, a connection refused), the answer is
//! [`Lookup::Unverified`]: ExecuteChain accepts the run and the engine checks its agents when
//! the run starts (engine), while ValidateChain, CreateChain and UpdateChain answer
//! UNAVAILABLE, since what they answer or store claims the agents exist.
//!
//! Only existence is remembered, never an absence: an agent created a moment ago is found by the
//! next lookup. An agent deleted after it was remembered is still taken for up to the TTL; a run
//! of it then fails when its step executes, as it would had the agent been deleted after the
//! run was accepted.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use sankalpa_kit::auth::{Principal, with_bearer};
use sankalpa_kit::grpc::connection_lost;
use sankalpa_kit::ttl_cache::TtlCache;
use sankalpa_proto::v1 as pb;
use tonic::Code;
use uuid::Uuid;

use crate::agents::Client;
use crate::error::{ChainError, Result};

/// The most (tenant, agent) pairs remembered besides the built-ins, about 100 bytes each; past
/// it the cache sweeps (kit::ttl_cache), costing only lookups.
pub const MAX_REMEMBERED_AGENTS: usize = 10_000;
/// How long one call to agent-runner about agents may take. Short: a submission waits for it,
/// and when it is up agent-runner answers from memory (built-ins) or one indexed row.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Pages of built-ins read at most (200 agents each); the catalog holds a few dozen.
const MAX_BUILTIN_PAGES: usize = 20;
const PAGE_SIZE: u32 = 200;

/// What agent-runner knows of a definition's agents.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Every agent exists.
    Known,
    /// These agents do not exist: agent-runner said so.
    Unknown(BTreeSet<String>),
    /// Nothing says an agent is missing, but agent-runner could not be asked about some.
    Unverified,
}

pub struct Catalog {
    ttl: Duration,
    builtins: Mutex<Option<(Arc<HashSet<String>>, Instant)>>,
    /// Agents agent-runner confirmed for a tenant, by (tenant, name).
    confirmed: TtlCache<(Uuid, String), ()>,
}

impl Catalog {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            builtins: Mutex::new(None),
            confirmed: TtlCache::new(MAX_REMEMBERED_AGENTS),
        }
    }

    /// Whether `agents` exist for `caller`'s tenant, asking agent-runner (with `token`, the
    /// caller's) only about those not remembered. The caller must hold agents:read, as agent-runner
    /// would require of the lookups: checked here, since a remembered agent asks nothing.
    pub async fn lookup(
        &self,
        client: &Client,
        caller: &Principal,
        token: &str,
        agents: BTreeSet<String>,
    ) -> Result<Lookup> {
        caller
            .require("agents:read")
            .map_err(|_| ChainError::Forbidden("agents:read".to_owned()))?;
        let tenant = caller.tenant()?;
        self.lookup_for(client, tenant, token, agents).await
    }

    /// [`lookup`](Self::lookup) for a tenant whose token is already known to be one of its own
    /// (a run's credential).
    pub async fn lookup_for(
        &self,
        client: &Client,
        tenant: Uuid,
        token: &str,
        agents: BTreeSet<String>,
    ) -> Result<Lookup> {
        let mut unsure = self.unremembered(tenant, agents);
        if unsure.is_empty() {
            return Ok(Lookup::Known);
        }
        if self.fresh_builtins().is_none() {
            match list_builtins(client, token).await? {
                Some(builtins) => {
                    unsure.retain(|agent| !builtins.contains(agent));
                    self.remember_builtins(builtins);
                }
                None => return Ok(Lookup::Unverified),
            }
        }
        if unsure.is_empty() {
            return Ok(Lookup::Known);
        }
        let answers = join_all(unsure.into_iter().map(|agent| async move {
            let found = get_agent(client, token, &agent).await;
            (agent, found)
        }))
        .await;
        let mut unknown = BTreeSet::new();
        let mut unverified = false;
        for (agent, found) in answers {
            match found? {
                Some(true) => self.confirmed.insert((tenant, agent), (), self.ttl),
                Some(false) => {
                    unknown.insert(agent);
                }
                None => unverified = true,
            }
        }
        Ok(if !unknown.is_empty() {
            Lookup::Unknown(unknown)
        } else if unverified {
            Lookup::Unverified
        } else {
            Lookup::Known
        })
    }

    /// Those of `agents` neither a remembered built-in nor remembered for `tenant`.
    fn unremembered(&self, tenant: Uuid, agents: BTreeSet<String>) -> BTreeSet<String> {
        let builtins = self.fresh_builtins();
        agents
            .into_iter()
            .filter(|agent| !builtins.as_ref().is_some_and(|known| known.contains(agent)))
            .filter(|agent| self.confirmed.get(&(tenant, agent.clone())).is_none())
            .collect()
    }

    fn fresh_builtins(&self) -> Option<Arc<HashSet<String>>> {
        let builtins = self.builtins.lock().expect("built-ins poisoned");
        builtins
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(names, _)| names.clone())
    }

    fn remember_builtins(&self, names: HashSet<String>) {
        if self.ttl.is_zero() {
            return;
        }
        *self.builtins.lock().expect("built-ins poisoned") =
            Some((Arc::new(names), Instant::now() + self.ttl));
    }
}

/// Whether agent-runner's answer says it could not be asked, rather than anything about agents.
fn is_unreachable(status: &tonic::Status) -> bool {
    connection_lost(status.code()) || status.code() == Code::DeadlineExceeded
}

/// Any other failure of a lookup: agents:read refused, or agent-runner erring.
fn lookup_failed(what: &str, status: &tonic::Status) -> ChainError {
    if status.code() == Code::PermissionDenied {
        ChainError::Forbidden("agents:read".to_owned())
    } else {
        ChainError::Unavailable(format!("could not look up {what}: {}", status.message()))
    }
}

/// The names of agent-runner's built-in agents; None when it cannot be asked.
async fn list_builtins(client: &Client, token: &str) -> Result<Option<HashSet<String>>> {
    let mut names = HashSet::new();
    let mut page_token = String::new();
    for _ in 0..MAX_BUILTIN_PAGES {
        let mut request = with_bearer(
            pb::ListAgentsRequest {
                category: String::new(),
                origin: pb::AgentOrigin::Builtin.into(),
                page: Some(pb::PageRequest {
                    page_size: PAGE_SIZE,
                    page_token: page_token.clone(),
                }),
            },
            token,
        )
        .map_err(|status| ChainError::Precondition(status.message().to_owned()))?;
        request.set_timeout(LOOKUP_TIMEOUT);
        let page = match client.clone().list_agents(request).await {
            Ok(page) => page.into_inner(),
            Err(status) if is_unreachable(&status) => return Ok(None),
            Err(status) => return Err(lookup_failed("the built-in agents", &status)),
        };
        names.extend(
            page.agents
                .into_iter()
                .filter(|agent| agent.origin() == pb::AgentOrigin::Builtin)
                .map(|agent| agent.name),
        );
        page_token = page
            .page
            .map(|page| page.next_page_token)
            .unwrap_or_default();
        if page_token.is_empty() {
            break;
        }
    }
    Ok(Some(names))
}

/// Whether agent-runner knows `agent` for the token's tenant; None when it cannot be asked.
async fn get_agent(client: &Client, token: &str, agent: &str) -> Result<Option<bool>> {
    let mut request = with_bearer(
        pb::GetAgentRequest {
            name: agent.to_owned(),
        },
        token,
    )
    .map_err(|status| ChainError::Precondition(status.message().to_owned()))?;
    request.set_timeout(LOOKUP_TIMEOUT);
    match client.clone().get_agent(request).await {
        Ok(_) => Ok(Some(true)),
        Err(status) if status.code() == Code::NotFound => Ok(Some(false)),
        Err(status) if is_unreachable(&status) => Ok(None),
        Err(status) => Err(lookup_failed(&format!("agent {agent}"), &status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_lost_under_a_lookup_is_unreachable_not_a_failure() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Unknown,
            Code::Cancelled,
        ] {
            assert!(
                is_unreachable(&tonic::Status::new(code, "gone")),
                "{code:?}"
            );
        }
        for code in [Code::PermissionDenied, Code::Internal, Code::NotFound] {
            assert!(
                !is_unreachable(&tonic::Status::new(code, "said")),
                "{code:?}"
            );
        }
    }
}
