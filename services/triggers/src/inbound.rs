//! Inbound webhook triggers: a tenant's chain started by a request to
//! `/api/webhooks/in/{trigger_id}`, authenticated by its signature (Standard Webhooks, or
//! GitHub's `X-Hub-Signature-256`), with an input mapped from the request. The store's
//! statements are scoped by the tenant, but for [`find`], which a request without a token uses:
//! the trigger's id and a valid signature are what it proves.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::PgPool;
use sqlx::types::Json;
use std::collections::HashMap;
use uuid::Uuid;

use crate::credentials::Issued;
use crate::error::{Result, TriggersError};
use crate::schedules::Target;

/// How far a Standard Webhooks timestamp may be from now: the specification's tolerance, which
/// bounds how long a captured request can be replayed.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;
/// The longest webhook id taken as part of an idempotency key.
pub const MAX_WEBHOOK_ID_BYTES: usize = 200;

/// How a trigger's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Standard,
    GitHub,
}

impl Signature {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::GitHub => "github",
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct Trigger {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub chain_id: Option<Uuid>,
    pub template: Option<String>,
    pub input_mapping: Json<Value>,
    signature: String,
    pub signing_secret: String,
    pub enabled: bool,
    pub secret: String,
    pub key_expires_at: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, tenant_id, name, chain_id, template, input_mapping, signature, \
     signing_secret, enabled, secret, key_expires_at, created_by, created_at, updated_at";

impl Trigger {
    pub fn signature(&self) -> Signature {
        match self.signature.as_str() {
            "github" => Signature::GitHub,
            _ => Signature::Standard,
        }
    }

    pub fn target(&self) -> Target {
        match (self.chain_id, &self.template) {
            (Some(id), _) => Target::Chain(id),
            (None, template) => Target::Template(template.clone().unwrap_or_default()),
        }
    }
}

pub struct NewTrigger {
    pub name: String,
    pub target: Target,
    pub input_mapping: Value,
    pub signature: Signature,
    /// The secret requests are signed with.
    pub signing_secret: String,
}

pub async fn count(pool: &PgPool, tenant: Uuid) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM triggers.inbound_triggers WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(pool)
            .await?,
    )
}

pub fn exhausted(count: i64) -> TriggersError {
    TriggersError::Exhausted(format!(
        "the tenant has {count} inbound triggers, the most it may have; delete one first"
    ))
}

/// Stores trigger `id` with its key, unless the tenant has `max_per_tenant`.
pub async fn create(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    created_by: &str,
    new: NewTrigger,
    key: &Issued,
    max_per_tenant: i64,
) -> Result<Trigger> {
    let mut tx = pool.begin().await?;
    // Counted under a lock of the tenant, so two creations at once cannot both pass the bound.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('triggers.inbound:' || $1::text))")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM triggers.inbound_triggers WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
    if count >= max_per_tenant {
        return Err(exhausted(count));
    }
    let (chain_id, template) = match &new.target {
        Target::Chain(id) => (Some(*id), None),
        Target::Template(name) => (None, Some(name.as_str())),
    };
    let trigger = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO triggers.inbound_triggers
             (id, tenant_id, name, chain_id, template, input_mapping, signature, signing_secret,
              key_id, secret, key_expires_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant)
    .bind(&new.name)
    .bind(chain_id)
    .bind(template)
    .bind(Json(&new.input_mapping))
    .bind(new.signature.as_str())
    .bind(&new.signing_secret)
    .bind(&key.key_id)
    .bind(&key.secret)
    .bind(key.expires_at)
    .bind(created_by)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(trigger)
}

pub async fn get(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<Trigger> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triggers.inbound_triggers WHERE id = $1 AND tenant_id = $2"
    )))
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    .ok_or(TriggersError::NotFound("trigger"))
}

/// An enabled trigger by id alone, for a request that carries no token.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Trigger> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triggers.inbound_triggers WHERE id = $1 AND enabled"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(TriggersError::NotFound("trigger"))
}

/// A page of the tenant's triggers, newest first, after the trigger `after`; one more than
/// `size` when more follow.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<Trigger>> {
    crate::listing::newest_first(
        pool,
        "triggers.inbound_triggers",
        "t",
        COLUMNS,
        tenant,
        size,
        after,
    )
    .await
}

pub async fn update(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    name: Option<String>,
    input_mapping: Option<Value>,
    enabled: Option<bool>,
) -> Result<Trigger> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE triggers.inbound_triggers SET
             name = coalesce($3, name),
             input_mapping = coalesce($4, input_mapping),
             enabled = coalesce($5, enabled),
             updated_at = now()
         WHERE id = $1 AND tenant_id = $2
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant)
    .bind(name)
    .bind(input_mapping.map(Json))
    .bind(enabled)
    .fetch_optional(pool)
    .await?
    .ok_or(TriggersError::NotFound("trigger"))
}

/// Removes a trigger; answers its key's id and secret, to revoke.
pub async fn delete(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<(String, String)> {
    sqlx::query_as(
        "DELETE FROM triggers.inbound_triggers WHERE id = $1 AND tenant_id = $2
         RETURNING key_id, secret",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    .ok_or(TriggersError::NotFound("trigger"))
}

/// Why a request's signature was refused: said to the sender, who holds the secret.
fn refused(why: &str) -> TriggersError {
    TriggersError::Unauthenticated(why.to_owned())
}

fn header<'a>(headers: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Checks a request's signature with `secret`; answers its webhook id, the idempotency of the
/// run it starts.
pub fn verify(
    signature: Signature,
    secret: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<String> {
    let id = match signature {
        Signature::Standard => verify_standard(secret, headers, body, now)?,
        Signature::GitHub => verify_github(secret, headers, body)?,
    };
    if id.len() > MAX_WEBHOOK_ID_BYTES {
        return Err(refused("the webhook id is longer than 200 bytes"));
    }
    Ok(id)
}

fn verify_standard(
    secret: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<String> {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header(headers, "webhook-id"),
        header(headers, "webhook-timestamp"),
        header(headers, "webhook-signature"),
    ) else {
        return Err(refused(
            "webhook-id, webhook-timestamp and webhook-signature are required",
        ));
    };
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| refused("webhook-timestamp must be whole seconds"))?;
    if (now.timestamp() - seconds).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(refused("webhook-timestamp is more than 5 minutes from now"));
    }
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|key| STANDARD.decode(key).ok())
        .ok_or_else(|| {
            TriggersError::Internal(anyhow::anyhow!("a stored secret does not decode"))
        })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures
        .split(' ')
        .filter_map(|one| one.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|given| mac.clone().verify_slice(&given).is_ok());
    if !matches {
        return Err(refused("no webhook-signature matches the trigger's secret"));
    }
    Ok(id.to_owned())
}

fn verify_github(secret: &str, headers: &HashMap<String, String>, body: &[u8]) -> Result<String> {
    let (Some(id), Some(signature)) = (
        header(headers, "x-github-delivery"),
        header(headers, "x-hub-signature-256"),
    ) else {
        return Err(refused(
            "X-GitHub-Delivery and X-Hub-Signature-256 are required",
        ));
    };
    let given = signature
        .strip_prefix("sha256=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or_else(|| refused("X-Hub-Signature-256 must be sha256=<hex>"))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| refused("X-Hub-Signature-256 does not match the trigger's secret"))?;
    Ok(id.to_owned())
}

/// What a mapping reads: the body (JSON, or its text when it is not JSON), headers, query.
pub struct Request<'a> {
    pub body: Value,
    pub headers: &'a HashMap<String, String>,
    pub query: &'a HashMap<String, String>,
}

impl Request<'_> {
    /// The value `path` names (`body`, `body.a.0.b`, `headers.x-name`, `query.q`); null when
    /// there is none.
    fn lookup(&self, path: &str) -> Value {
        let (root, rest) = path.split_once('.').unwrap_or((path, ""));
        match root {
            "body" => {
                let mut at = &self.body;
                for token in rest.split('.').filter(|token| !token.is_empty()) {
                    let next = match at {
                        Value::Object(fields) => fields.get(token),
                        Value::Array(items) => {
                            token.parse::<usize>().ok().and_then(|i| items.get(i))
                        }
                        _ => None,
                    };
                    match next {
                        Some(next) => at = next,
                        None => return Value::Null,
                    }
                }
                at.clone()
            }
            "headers" => self
                .headers
                .get(&rest.to_ascii_lowercase())
                .map_or(Value::Null, |value| Value::String(value.clone())),
            "query" => self
                .query
                .get(rest)
                .map_or(Value::Null, |value| Value::String(value.clone())),
            _ => Value::Null,
        }
    }

    /// `mapping` with its references replaced.
    pub fn map(&self, mapping: &Value) -> Value {
        match mapping {
            Value::String(text) => self.interpolate(text),
            Value::Array(items) => Value::Array(items.iter().map(|item| self.map(item)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, value)| (name.clone(), self.map(value)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn interpolate(&self, text: &str) -> Value {
        if let Some(path) = text
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            && !path.contains("${")
            && !path.contains('}')
        {
            return self.lookup(path.trim());
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return Value::String(out);
            };
            match self.lookup(after[..end].trim()) {
                Value::String(text) => out.push_str(&text),
                Value::Null => {}
                other => out.push_str(&other.to_string()),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Value::String(out)
    }
}

/// A mapping as given: a JSON object of at most `max_bytes`.
pub fn check_mapping(raw: &str, max_bytes: usize) -> Result<Value> {
    if raw.trim().is_empty() {
        return Ok(serde_json::json!({"body": "${body}"}));
    }
    if raw.len() > max_bytes {
        return Err(TriggersError::invalid(
            "input_mapping_json",
            format!("must be at most {max_bytes} bytes"),
        ));
    }
    match serde_json::from_str(raw) {
        Ok(value @ Value::Object(_)) if sankalpa_kit::bounded_json::holds_nul(&value) => {
            Err(TriggersError::invalid(
                "input_mapping_json",
                sankalpa_kit::bounded_json::NUL_REFUSED,
            ))
        }
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(TriggersError::invalid(
            "input_mapping_json",
            "must be a JSON object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign_standard(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
        crate::signing::signature(&[secret.to_owned()], id, timestamp, body)
    }

    #[test]
    fn a_mapping_holding_nul_is_refused_naming_its_field() {
        for raw in [
            r#"{"a\u0000": "${body}"}"#,
            r#"{"a": ["${body}", "\u0000"]}"#,
        ] {
            let refused = check_mapping(raw, 1024).unwrap_err().to_string();
            assert!(
                refused.contains(sankalpa_kit::bounded_json::NUL_REFUSED),
                "{raw}: {refused}"
            );
        }
        assert!(check_mapping(r#"{"a": "${body.x}"}"#, 1024).is_ok());
    }

    #[test]
    fn a_standard_signature_verifies_within_the_tolerance_only() {
        let secret = crate::signing::new_secret();
        let now = Utc::now();
        let body = r#"{"a": 1}"#;
        let mut headers = HashMap::from([
            ("webhook-id".to_owned(), "msg_1".to_owned()),
            ("webhook-timestamp".to_owned(), now.timestamp().to_string()),
            (
                "webhook-signature".to_owned(),
                sign_standard(&secret, "msg_1", now.timestamp(), body),
            ),
        ]);
        let id = verify(Signature::Standard, &secret, &headers, body.as_bytes(), now);
        assert_eq!(id.expect("a good signature"), "msg_1");
        assert!(verify(Signature::Standard, &secret, &headers, b"{}", now).is_err());
        let other = crate::signing::new_secret();
        assert!(verify(Signature::Standard, &other, &headers, body.as_bytes(), now).is_err());
        let later = now + chrono::Duration::minutes(6);
        assert!(
            verify(
                Signature::Standard,
                &secret,
                &headers,
                body.as_bytes(),
                later
            )
            .is_err()
        );
        headers.remove("webhook-signature");
        assert!(verify(Signature::Standard, &secret, &headers, body.as_bytes(), now).is_err());
    }

    #[test]
    fn references_take_values_whole_or_as_text() {
        let headers = HashMap::from([("x-event".to_owned(), "push".to_owned())]);
        let query = HashMap::from([("ref".to_owned(), "main".to_owned())]);
        let request = Request {
            body: json!({"repo": {"name": "sankalpa", "stars": 3}, "list": [10, 20]}),
            headers: &headers,
            query: &query,
        };
        let mapped = request.map(&json!({
            "repo": "${body.repo}",
            "second": "${body.list.1}",
            "title": "${headers.X-Event} to ${body.repo.name} (${body.repo.stars}) on ${query.ref}",
            "missing": "${body.nope}",
            "kept": [1, "plain"],
        }));
        assert_eq!(
            mapped,
            json!({
                "repo": {"name": "sankalpa", "stars": 3},
                "second": 20,
                "title": "push to sankalpa (3) on main",
                "missing": null,
                "kept": [1, "plain"],
            })
        );
    }
}
