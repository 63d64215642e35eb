//! The custom agents in Postgres (`agents.custom_agents`), by tenant and name, compiled once per
//! revision and kept ([`super::cache`]): every query names the tenant, so one tenant's agent is
//! another's "not found".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::CustomAgent;
use super::cache::{CompiledAgents, Stamp};
use super::compile::{Compiled, compile_apart};
use crate::error::{Result, RunnerError};

/// The longest `installed_from` (`<marketplace item id>@<version>`), in bytes: it is stored
/// and returned with the agent.
pub const MAX_INSTALLED_FROM_BYTES: usize = 256;

fn check_installed_from(installed_from: &str) -> Result<()> {
    if installed_from.len() > MAX_INSTALLED_FROM_BYTES {
        return Err(RunnerError::invalid(
            "installed_from",
            format!("must be at most {MAX_INSTALLED_FROM_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// What is stored beside a definition.
#[derive(sqlx::FromRow)]
struct Stored {
    revision: i64,
    created_by: String,
    installed_from: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A stored agent as a load finds it: its definition only when the cache does not hold the
/// agent at this revision.
#[derive(sqlx::FromRow)]
struct Found {
    name: String,
    definition: Option<Value>,
    #[sqlx(flatten)]
    stored: Stored,
}

impl Stored {
    fn stamp(&self) -> Stamp {
        Stamp {
            revision: u64::try_from(self.revision).unwrap_or(1),
            updated_at: self.updated_at,
        }
    }

    fn agent(self, compiled: Compiled) -> CustomAgent {
        CustomAgent {
            spec: compiled.spec,
            behaviour: compiled.behaviour,
            definition: compiled.definition,
            revision: self.stamp().revision,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            installed_from: self.installed_from,
        }
    }
}

/// The tenants' custom agents in Postgres, and the compiled ones kept in memory
/// ([`super::cache`]).
pub struct CustomAgents {
    pool: PgPool,
    compiled: CompiledAgents,
    /// The built-in agents' names, which no custom agent may take.
    builtin: HashSet<String>,
}

/// The store as one run sees it, for the built-in agents that define agents: the run's tenant,
/// and its caller, who is named as the author of what it stores.
pub struct TenantAgents {
    pub store: Arc<CustomAgents>,
    pub tenant: Uuid,
    pub caller: String,
}

impl CustomAgents {
    /// The store on `pool`, keeping compiled agents up to `cache_bytes` (see
    /// [`super::cache`]), beside the built-in agents named `builtin`.
    pub fn new(pool: PgPool, cache_bytes: usize, builtin: HashSet<String>) -> Self {
        Self {
            pool,
            compiled: CompiledAgents::new(cache_bytes),
            builtin,
        }
    }

    /// Whether `name` is a built-in agent's, which no custom agent may take.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(name)
    }

    /// The tenant's agents `names` as stored now, each with the definition unless the cache holds
    /// the agent at the stored revision (`stamps`, one per name, `None` where it holds nothing).
    async fn find(
        &self,
        tenant: Uuid,
        names: &[String],
        stamps: &[Option<Stamp>],
    ) -> Result<Vec<Found>> {
        let revisions: Vec<Option<i64>> = stamps
            .iter()
            .map(|stamp| stamp.and_then(|s| i64::try_from(s.revision).ok()))
            .collect();
        let written: Vec<Option<DateTime<Utc>>> = stamps
            .iter()
            .map(|stamp| stamp.map(|s| s.updated_at))
            .collect();
        let found = sqlx::query_as(
            "SELECT a.name, a.revision, a.created_by, a.installed_from, a.created_at, a.updated_at,
                    CASE WHEN a.revision = c.revision AND a.updated_at = c.updated_at
                         THEN NULL ELSE a.definition END AS definition
             FROM agents.custom_agents a
             JOIN unnest($2::text[], $3::bigint[], $4::timestamptz[]) AS c(name, revision, updated_at)
               ON a.name = c.name
             WHERE a.tenant_id = $1",
        )
        .bind(tenant)
        .bind(names)
        .bind(revisions)
        .bind(written)
        .fetch_all(&self.pool)
        .await?;
        Ok(found)
    }

    /// The tenant's stored agents among `names`, by name: compiled, from the cache where it holds
    /// the stored revision. A definition that no longer compiles (stored before a bound it breaks)
    /// is there as the reason it cannot be used.
    pub async fn load(
        &self,
        tenant: Uuid,
        names: &[String],
    ) -> Result<HashMap<String, std::result::Result<Arc<CustomAgent>, String>>> {
        let stamps: Vec<Option<Stamp>> = names
            .iter()
            .map(|name| self.compiled.stamp(tenant, name))
            .collect();
        let mut loaded = HashMap::new();
        let mut evicted = Vec::new();
        for found in self.find(tenant, names, &stamps).await? {
            let agent = match found.definition {
                Some(definition) => {
                    self.compile_stored(tenant, found.stored, definition)
                        .await?
                }
                None => match self.compiled.get(tenant, &found.name, found.stored.stamp()) {
                    Some(agent) => Ok(agent),
                    // Let go of since its stamp was read: asked again below, with its definition.
                    None => {
                        evicted.push(found.name);
                        continue;
                    }
                },
            };
            loaded.insert(found.name, agent);
        }
        if !evicted.is_empty() {
            let unknown = vec![None; evicted.len()];
            for found in self.find(tenant, &evicted, &unknown).await? {
                if let Some(definition) = found.definition {
                    let agent = self
                        .compile_stored(tenant, found.stored, definition)
                        .await?;
                    loaded.insert(found.name, agent);
                }
            }
        }
        Ok(loaded)
    }

    async fn compile_stored(
        &self,
        tenant: Uuid,
        stored: Stored,
        definition: Value,
    ) -> Result<std::result::Result<Arc<CustomAgent>, String>> {
        let (definition, compiled) = compile_apart(definition).await?;
        Ok(match compiled {
            Ok((spec, behaviour)) => {
                let agent = Arc::new(stored.agent(Compiled {
                    spec,
                    behaviour,
                    definition,
                }));
                self.compiled.insert(tenant, agent.clone());
                Ok(agent)
            }
            Err(problems) => {
                let first = problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                Err(format!(
                    "its stored definition no longer passes this service's checks ({first}); \
                     define it again"
                ))
            }
        })
    }

    /// The tenant's agent `name`, if it has one.
    pub async fn get(&self, tenant: Uuid, name: &str) -> Result<Option<Arc<CustomAgent>>> {
        match self.load(tenant, &[name.to_owned()]).await?.remove(name) {
            None => Ok(None),
            Some(Ok(agent)) => Ok(Some(agent)),
            Some(Err(reason)) => Err(RunnerError::Precondition(format!("{name}: {reason}"))),
        }
    }

    /// The (category, name) of every agent of the tenant: what a listing orders and pages before
    /// it loads the agents on its page.
    pub async fn listing(&self, tenant: Uuid) -> Result<Vec<(String, String)>> {
        let listed =
            sqlx::query_as("SELECT category, name FROM agents.custom_agents WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?;
        Ok(listed)
    }

    /// Whether the tenant has an agent named `name`.
    pub async fn exists(&self, tenant: Uuid, name: &str) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM agents.custom_agents WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Stores a new agent; ALREADY_EXISTS if the tenant has one of that name.
    pub async fn create(
        &self,
        tenant: Uuid,
        compiled: Compiled,
        created_by: &str,
        installed_from: &str,
    ) -> Result<Arc<CustomAgent>> {
        check_installed_from(installed_from)?;
        let stored: Option<Stored> = sqlx::query_as(
            "INSERT INTO agents.custom_agents (tenant_id, name, category, definition, created_by, installed_from)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO NOTHING
             RETURNING revision, created_by, installed_from, created_at, updated_at",
        )
        .bind(tenant)
        .bind(&compiled.spec.name)
        .bind(&compiled.spec.category)
        .bind(&compiled.definition)
        .bind(created_by)
        .bind(installed_from)
        .fetch_optional(&self.pool)
        .await?;
        let stored = stored.ok_or_else(|| {
            RunnerError::AlreadyExists(format!(
                "an agent named {} already exists",
                compiled.spec.name
            ))
        })?;
        let agent = Arc::new(stored.agent(compiled));
        self.compiled.insert(tenant, agent.clone());
        Ok(agent)
    }

    /// Replaces an agent's definition, if its revision is still `expected` (when given).
    pub async fn update(
        &self,
        tenant: Uuid,
        compiled: Compiled,
        expected: Option<u64>,
        installed_from: &str,
    ) -> Result<Arc<CustomAgent>> {
        check_installed_from(installed_from)?;
        let expected = expected.map(|r| i64::try_from(r).unwrap_or(i64::MAX));
        let name = compiled.spec.name.clone();
        let stored: Option<Stored> = sqlx::query_as(
            "UPDATE agents.custom_agents
             SET definition = $3, category = $4, installed_from = $5, revision = revision + 1, updated_at = now()
             WHERE tenant_id = $1 AND name = $2 AND ($6::bigint IS NULL OR revision = $6)
             RETURNING revision, created_by, installed_from, created_at, updated_at",
        )
        .bind(tenant)
        .bind(&name)
        .bind(&compiled.definition)
        .bind(&compiled.spec.category)
        .bind(installed_from)
        .bind(expected)
        .fetch_optional(&self.pool)
        .await?;
        match stored {
            Some(stored) => {
                let agent = Arc::new(stored.agent(compiled));
                self.compiled.insert(tenant, agent.clone());
                Ok(agent)
            }
            None if self.exists(tenant, &name).await? => Err(RunnerError::Aborted(format!(
                "{name} was changed since revision {}",
                expected.unwrap_or_default()
            ))),
            None => Err(RunnerError::NotFound(format!("custom agent {name:?}"))),
        }
    }

    pub async fn delete(&self, tenant: Uuid, name: &str) -> Result<()> {
        let deleted =
            sqlx::query("DELETE FROM agents.custom_agents WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected();
        if deleted == 0 {
            return Err(RunnerError::NotFound(format!("custom agent {name:?}")));
        }
        Ok(())
    }
}
