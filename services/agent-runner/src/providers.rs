//! Each tenant's model providers (`agents.model_providers`) and default model
//! (`agents.model_defaults`), and the choice of the LLM a run asks.
//!
//! A provider is a name, a protocol (OpenAI-compatible or Anthropic Messages), a base URL, the
//! models runs may name as `provider/model`, and an API key sealed by the [`Keyring`] (bound to
//! the tenant and the provider's name). The key is opened only to build the client of a call:
//! it is never answered, logged, nor put in an event; [`Provider`] does not hold it.
//!
//! A run asks, in order: the model it names, the tenant's default model, the fleet's LLM
//! (`SANKALPA_LLM_*`, the operators' default). Every bound is a constant here, listed in
//! docs/limits.md.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::egress::Guard;
use sankalpa_kit::problem::FieldViolation;
use sqlx::PgPool;
use uuid::Uuid;

use crate::envelope::{Keyring, Sealed};
use crate::error::{Result, RunnerError};
use crate::llm::{LlmClient, LlmConfig, Protocol};

/// The most providers one tenant may have.
pub const MAX_PROVIDERS_PER_TENANT: i64 = 20;
/// The longest provider name.
pub const MAX_NAME_BYTES: usize = 63;
/// The longest base URL.
pub const MAX_BASE_URL_BYTES: usize = 2048;
/// The longest API key.
pub const MAX_API_KEY_BYTES: usize = 4096;
/// The most models one provider may list.
pub const MAX_MODELS: usize = 50;
/// The longest model name.
pub const MAX_MODEL_BYTES: usize = 200;

/// How a provider's calls behave: the fleet's LLM settings (timeout, retries, backoff).
#[derive(Debug, Clone)]
pub struct CallSettings {
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff: Duration,
}

/// A provider as it is shown: never its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    pub models: Vec<String>,
    pub has_api_key: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What to do with a provider's stored key when it is written.
#[derive(Debug)]
pub enum KeyChange {
    Keep,
    Remove,
    Set(String),
}

/// A provider to write, its fields checked.
#[derive(Debug)]
pub struct ProviderInput {
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    pub key: KeyChange,
    pub models: Vec<String>,
}

impl ProviderInput {
    /// Checks every field, naming each that is wrong; the base URL against `guard`.
    pub fn new(
        guard: &Guard,
        name: String,
        protocol: Option<Protocol>,
        base_url: String,
        api_key: Option<String>,
        models: Vec<String>,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(FieldViolation {
                field: field.to_owned(),
                message,
            })
        };
        if !valid_name(&name) {
            problem(
                "name",
                format!(
                    "must be 1 to {MAX_NAME_BYTES} of [a-z0-9_-], starting with a letter or digit"
                ),
            );
        }
        if protocol.is_none() {
            problem("protocol", "must be openai or anthropic".to_owned());
        }
        if let Err(reason) = check_base_url(&base_url, guard) {
            problem("base_url", reason);
        }
        let key = match api_key {
            None => KeyChange::Keep,
            Some(key) if key.is_empty() => KeyChange::Remove,
            Some(key) => {
                if key.len() > MAX_API_KEY_BYTES {
                    problem(
                        "api_key",
                        format!("must be at most {MAX_API_KEY_BYTES} bytes"),
                    );
                } else if key.chars().any(char::is_control) {
                    // It travels in a header, where these do not go.
                    problem("api_key", "must not hold control characters".to_owned());
                }
                KeyChange::Set(key)
            }
        };
        if models.is_empty() || models.len() > MAX_MODELS {
            problem("models", format!("must list 1 to {MAX_MODELS} models"));
        }
        for (i, model) in models.iter().enumerate() {
            if let Err(reason) = check_model(model) {
                problem(&format!("models[{i}]"), reason);
            } else if models[..i].contains(model) {
                problem(&format!("models[{i}]"), "is listed twice".to_owned());
            }
        }
        if !problems.is_empty() {
            return Err(RunnerError::Invalid(problems));
        }
        Ok(Self {
            name,
            protocol: protocol.expect("checked above"),
            base_url,
            key,
            models,
        })
    }
}

/// Whether `name` may name a provider (it is the part of `provider/model` before the slash).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !name.starts_with(['_', '-'])
}

/// The base URL's own bounds, then the operator's on destinations (https, no loopback, private
/// or metadata address unless allowed; a name is checked again each time it is resolved).
fn check_base_url(base_url: &str, guard: &Guard) -> std::result::Result<(), String> {
    if base_url.len() > MAX_BASE_URL_BYTES {
        return Err(format!("must be at most {MAX_BASE_URL_BYTES} bytes"));
    }
    if base_url.chars().any(char::is_control) {
        return Err("must not hold control characters".to_owned());
    }
    guard.check_url(base_url).map(|_| ())
}

fn check_model(model: &str) -> std::result::Result<(), String> {
    if model.is_empty() || model.len() > MAX_MODEL_BYTES {
        return Err(format!("must be 1 to {MAX_MODEL_BYTES} bytes"));
    }
    if model.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not hold spaces or control characters".to_owned());
    }
    Ok(())
}

/// `provider/model` split at its first slash (a model's own name may hold more), or why it
/// is not one.
pub fn split_model(text: &str) -> std::result::Result<(&str, &str), String> {
    let shape = || "must be provider/model".to_owned();
    let (provider, model) = text.split_once('/').ok_or_else(shape)?;
    if !valid_name(provider) {
        return Err(shape());
    }
    check_model(model)?;
    Ok((provider, model))
}

fn protocol_of(name: &str) -> Result<Protocol> {
    match name {
        "openai" => Ok(Protocol::OpenAi),
        "anthropic" => Ok(Protocol::Anthropic),
        other => Err(RunnerError::Internal(anyhow::anyhow!(
            "a stored provider has the protocol {other:?}"
        ))),
    }
}

/// What a key is sealed for: its tenant and provider.
fn key_context(tenant: Uuid, name: &str) -> String {
    format!("{tenant}/{name}")
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    protocol: String,
    base_url: String,
    models: Vec<String>,
    key_id: Option<String>,
    key_nonce: Option<Vec<u8>>,
    key_ciphertext: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn shown(self) -> Result<Provider> {
        Ok(Provider {
            protocol: protocol_of(&self.protocol)?,
            has_api_key: self.key_id.is_some(),
            name: self.name,
            base_url: self.base_url,
            models: self.models,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }

    fn sealed(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.key_id.clone()?,
            nonce: self.key_nonce.clone()?,
            ciphertext: self.key_ciphertext.clone()?,
        })
    }
}

/// The tenants' providers, and the clients built from them.
pub struct Providers {
    pool: PgPool,
    keyring: Option<Keyring>,
    guard: Arc<Guard>,
    /// One connection pool for every provider's calls: names resolved through the guard, no
    /// redirect followed (one could lead past the guard's check of an address in a URL).
    http: reqwest::Client,
    calls: CallSettings,
}

impl Providers {
    pub fn new(
        pool: PgPool,
        keyring: Option<Keyring>,
        guard: Guard,
        calls: CallSettings,
    ) -> Result<Self> {
        let guard = Arc::new(guard);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(guard.resolver())
            .build()
            .map_err(|err| RunnerError::Internal(err.into()))?;
        Ok(Self {
            pool,
            keyring,
            guard,
            http,
            calls,
        })
    }

    /// The operator's settings on where providers may be.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The tenant's providers by name, and its default model.
    pub async fn list(&self, tenant: Uuid) -> Result<(Vec<Provider>, Option<String>)> {
        let rows: Vec<Row> = sqlx::query_as("SELECT name, protocol, base_url, models, key_id, key_nonce, key_ciphertext, created_at, updated_at FROM agents.model_providers WHERE tenant_id = $1 ORDER BY name")
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        let providers = rows.into_iter().map(Row::shown).collect::<Result<_>>()?;
        Ok((providers, self.default_model(tenant).await?))
    }

    async fn default_model(&self, tenant: Uuid) -> Result<Option<String>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT provider, model FROM agents.model_defaults WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(provider, model)| format!("{provider}/{model}")))
    }

    /// Adds or replaces a provider. The tenant's row lock (its advisory lock) makes the count
    /// check and the insert one step, so concurrent adds cannot pass the bound together.
    pub async fn put(&self, tenant: Uuid, input: ProviderInput) -> Result<Provider> {
        let sealed = match &input.key {
            KeyChange::Set(key) => {
                let keyring = self.keyring.as_ref().ok_or_else(|| {
                    RunnerError::Precondition(
                        "no envelope key is configured (SANKALPA_MODEL_KEYS): an API key cannot \
                         be stored"
                            .to_owned(),
                    )
                })?;
                Some(keyring.seal(key.as_bytes(), &key_context(tenant, &input.name)))
            }
            KeyChange::Keep | KeyChange::Remove => None,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('model_providers:' || $1, 0))")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM agents.model_providers WHERE tenant_id = $1 AND name = $2)",
        )
        .bind(tenant)
        .bind(&input.name)
        .fetch_one(&mut *tx)
        .await?;
        if !exists {
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM agents.model_providers WHERE tenant_id = $1",
            )
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
            if count >= MAX_PROVIDERS_PER_TENANT {
                return Err(RunnerError::Precondition(format!(
                    "a tenant may have at most {MAX_PROVIDERS_PER_TENANT} model providers"
                )));
            }
        }
        let keep_key = matches!(input.key, KeyChange::Keep);
        let row: Row = sqlx::query_as("INSERT INTO agents.model_providers AS p
                 (tenant_id, name, protocol, base_url, models, key_id, key_nonce, key_ciphertext)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, name) DO UPDATE SET
                 protocol = EXCLUDED.protocol,
                 base_url = EXCLUDED.base_url,
                 models = EXCLUDED.models,
                 key_id = CASE WHEN $9 THEN p.key_id ELSE EXCLUDED.key_id END,
                 key_nonce = CASE WHEN $9 THEN p.key_nonce ELSE EXCLUDED.key_nonce END,
                 key_ciphertext = CASE WHEN $9 THEN p.key_ciphertext ELSE EXCLUDED.key_ciphertext END,
                 updated_at = now()
             RETURNING name, protocol, base_url, models, key_id, key_nonce, key_ciphertext, created_at, updated_at")
        .bind(tenant)
        .bind(&input.name)
        .bind(input.protocol.as_str())
        .bind(&input.base_url)
        .bind(&input.models)
        .bind(sealed.as_ref().map(|s| &s.key_id))
        .bind(sealed.as_ref().map(|s| &s.nonce))
        .bind(sealed.as_ref().map(|s| &s.ciphertext))
        .bind(keep_key)
        .fetch_one(&mut *tx)
        .await?;
        // A default naming a model the provider no longer lists would fail every run: cleared.
        sqlx::query(
            "DELETE FROM agents.model_defaults
             WHERE tenant_id = $1 AND provider = $2 AND NOT (model = ANY($3))",
        )
        .bind(tenant)
        .bind(&input.name)
        .bind(&input.models)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        row.shown()
    }

    /// Deletes a provider (its default with it); NOT_FOUND when the tenant has none so named.
    pub async fn delete(&self, tenant: Uuid, name: &str) -> Result<()> {
        let deleted =
            sqlx::query("DELETE FROM agents.model_providers WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected();
        if deleted == 0 {
            return Err(not_found(name));
        }
        Ok(())
    }

    /// Sets (`provider/model`) or clears (empty) the tenant's default model.
    pub async fn set_default(&self, tenant: Uuid, model: &str) -> Result<Option<String>> {
        if model.is_empty() {
            sqlx::query("DELETE FROM agents.model_defaults WHERE tenant_id = $1")
                .bind(tenant)
                .execute(&self.pool)
                .await?;
            return Ok(None);
        }
        let (provider, model) =
            split_model(model).map_err(|reason| RunnerError::invalid("model", reason))?;
        self.row(tenant, provider, model).await?;
        // The provider may go between the check and this write: the foreign key then refuses.
        sqlx::query(
            "INSERT INTO agents.model_defaults (tenant_id, provider, model) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET provider = EXCLUDED.provider, model = EXCLUDED.model",
        )
        .bind(tenant)
        .bind(provider)
        .bind(model)
        .execute(&self.pool)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => not_found(provider),
            _ => err.into(),
        })?;
        Ok(Some(format!("{provider}/{model}")))
    }

    /// The tenant's provider `name`, checking it lists `model`.
    async fn row(&self, tenant: Uuid, name: &str, model: &str) -> Result<Row> {
        let row: Option<Row> = sqlx::query_as("SELECT name, protocol, base_url, models, key_id, key_nonce, key_ciphertext, created_at, updated_at FROM agents.model_providers WHERE tenant_id = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let row = row.ok_or_else(|| not_found(name))?;
        if !row.models.iter().any(|listed| listed == model) {
            return Err(RunnerError::invalid(
                "model",
                format!("the provider {name:?} does not list the model {model:?}"),
            ));
        }
        Ok(row)
    }

    /// A client of the tenant's provider `name` asking `model` (its first when empty).
    pub async fn client(&self, tenant: Uuid, name: &str, model: &str) -> Result<LlmClient> {
        if !valid_name(name) {
            return Err(not_found(name));
        }
        let row = if model.is_empty() {
            let row: Option<Row> = sqlx::query_as("SELECT name, protocol, base_url, models, key_id, key_nonce, key_ciphertext, created_at, updated_at FROM agents.model_providers WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
            row.ok_or_else(|| not_found(name))?
        } else {
            self.row(tenant, name, model).await?
        };
        let model = if model.is_empty() {
            row.models.first().cloned().unwrap_or_default()
        } else {
            model.to_owned()
        };
        self.build(tenant, row, model)
    }

    fn build(&self, tenant: Uuid, row: Row, model: String) -> Result<LlmClient> {
        // The operator may have narrowed the allowed destinations since the URL was stored.
        if let Err(why) = self.guard.check_url(&row.base_url) {
            return Err(RunnerError::Precondition(format!(
                "the base_url of the model provider {:?} is refused: {why}",
                row.name
            )));
        }
        let api_key = match row.sealed() {
            None => None,
            Some(sealed) => {
                let keyring = self.keyring.as_ref().ok_or_else(|| {
                    RunnerError::Precondition(format!(
                        "the API key of the model provider {:?} cannot be opened: no envelope \
                         key is configured",
                        row.name
                    ))
                })?;
                let plain = keyring
                    .open(&sealed, &key_context(tenant, &row.name))
                    .map_err(|err| {
                        tracing::error!(provider = %row.name, error = %err, "a provider's key does not open");
                        RunnerError::Precondition(format!(
                            "the API key of the model provider {:?} cannot be opened: {err}",
                            row.name
                        ))
                    })?;
                Some(String::from_utf8(plain).map_err(|_| {
                    RunnerError::Internal(anyhow::anyhow!("a stored API key is not UTF-8"))
                })?)
            }
        };
        let config = LlmConfig {
            protocol: protocol_of(&row.protocol)?,
            base_url: row.base_url,
            api_key,
            model,
            timeout: self.calls.timeout,
            max_retries: self.calls.max_retries,
            backoff: self.calls.backoff,
        };
        Ok(LlmClient::for_tenant_provider(self.http.clone(), config))
    }

    /// The client a run of `tenant` asks: the model it names (`provider/model`), else the
    /// tenant's default; `None` leaves the fleet's LLM.
    pub async fn resolve(&self, tenant: Uuid, named: Option<&str>) -> Result<Option<LlmClient>> {
        if let Some(named) = named {
            let (provider, model) =
                split_model(named).map_err(|reason| RunnerError::invalid("model", reason))?;
            return self.client(tenant, provider, model).await.map(Some);
        }
        let default: Option<(String, String)> = sqlx::query_as(
            "SELECT provider, model FROM agents.model_defaults WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        match default {
            Some((provider, model)) => self.client(tenant, &provider, &model).await.map(Some),
            None => Ok(None),
        }
    }
}

fn not_found(name: &str) -> RunnerError {
    RunnerError::NotFound(format!("model provider {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_is_split_at_its_first_slash() {
        assert_eq!(
            split_model("local/meta-llama/Llama-3-8B"),
            Ok(("local", "meta-llama/Llama-3-8B"))
        );
        assert!(split_model("no-slash").is_err());
        assert!(split_model("Bad/model").is_err());
        assert!(split_model("ok/").is_err());
        assert!(split_model("ok/has space").is_err());
    }

    #[test]
    fn a_base_url_is_checked_against_the_operator_s_guard() {
        let strict = Guard::default();
        for refused in [
            "http://api.example.com/v1",
            "https://127.0.0.1/v1",
            "https://169.254.169.254/latest",
            "https://[::1]/v1",
            "https://10.0.0.7/v1",
            "https://user:pass@api.example.com/v1",
        ] {
            assert!(check_base_url(refused, &strict).is_err(), "{refused}");
        }
        assert!(check_base_url("https://api.example.com/v1", &strict).is_ok());
        let local = Guard {
            allow_http: true,
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(check_base_url("http://127.0.0.1:11434/v1", &local).is_ok());
        assert!(check_base_url("http://169.254.169.254/", &local).is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let Err(RunnerError::Invalid(problems)) = ProviderInput::new(
            &Guard::default(),
            "-x".into(),
            None,
            "ftp://host".into(),
            Some("a\0b".into()),
            vec!["m".into(), "m".into()],
        ) else {
            panic!("refused");
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["name", "protocol", "base_url", "api_key", "models[1]"]
        );
        assert!(problems.iter().all(|p| !p.message.contains("a\0b")));
    }
}
