//! The LLM's answers kept per tenant for `SANKALPA_LLM_CACHE_TTL_MS` (0, the default: off), in
//! `agents.llm_answers`, shared by every replica.
//!
//! An answer is kept under the SHA-256 of the provider's URL and the whole request body (model,
//! messages, temperature: [`LlmClient::request_key`]), so only the very same question to the
//! same model hits, and only within its tenant. Every ask of an agent is at temperature 0,
//! where the same question gets the same answer; the chat's streamed replies are never kept. A
//! hit costs no tokens and does not touch the tenant's daily token quota. A cache that cannot be
//! read or written is a miss, never a failure.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::llm::Completion;

/// Answers longer than this are not kept (a model's answer to an agent is a few KiB).
pub const MAX_KEPT_ANSWER_BYTES: usize = 64 * 1024;
/// Expired answers one sweep statement deletes.
const SWEEP_BATCH: i64 = 1000;

pub struct AnswerCache {
    pool: PgPool,
    ttl: Duration,
}

/// A kept answer.
pub struct Kept {
    pub text: String,
    pub model: String,
}

impl AnswerCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The answer kept for `tenant` under `key` (the question's [`LlmClient::request_key`]),
    /// while it is kept.
    ///
    /// [`LlmClient::request_key`]: crate::llm::LlmClient::request_key
    pub async fn get(&self, tenant: Uuid, key: &[u8; 32]) -> Option<Kept> {
        let found: Result<Option<(String, String)>, _> = sqlx::query_as(
            "SELECT text, model FROM agents.llm_answers
             WHERE tenant_id = $1 AND key = $2 AND expires_at > now()",
        )
        .bind(tenant)
        .bind(key.as_slice())
        .fetch_optional(&self.pool)
        .await;
        let found = found.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "could not read the LLM answer cache");
            None
        });
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("llm_cache_lookups_total", "result" => result).increment(1);
        found.map(|(text, model)| Kept { text, model })
    }

    /// Keeps `completion` for `tenant` under `key`.
    pub async fn put(&self, tenant: Uuid, key: &[u8; 32], completion: &Completion) {
        if completion.text.len() > MAX_KEPT_ANSWER_BYTES {
            return;
        }
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let kept = sqlx::query(
            "INSERT INTO agents.llm_answers (tenant_id, key, text, model, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, key)
             DO UPDATE SET text = $3, model = $4, expires_at = $5",
        )
        .bind(tenant)
        .bind(key.as_slice())
        .bind(&completion.text)
        .bind(&completion.model)
        .bind(expires_at)
        .execute(&self.pool)
        .await;
        if let Err(err) = kept {
            tracing::warn!(error = %err, "could not keep an LLM answer");
        }
    }

    /// Deletes expired answers, a batch at a time. Housekeeping over every tenant at once: it
    /// reads nothing out.
    pub async fn sweep_once(&self) -> sqlx::Result<u64> {
        let mut deleted = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM agents.llm_answers WHERE ctid IN (
                     SELECT ctid FROM agents.llm_answers WHERE expires_at <= now() LIMIT $1)",
            )
            .bind(SWEEP_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += done;
            if done < SWEEP_BATCH as u64 {
                return Ok(deleted);
            }
        }
    }
}

/// A run's view of the cache: its tenant's answers.
pub struct RunCache {
    pub cache: std::sync::Arc<AnswerCache>,
    pub tenant: Uuid,
}

pub fn describe_metrics() {
    metrics::describe_counter!(
        "llm_cache_lookups_total",
        "Lookups of the LLM answer cache (SANKALPA_LLM_CACHE_TTL_MS), by result (hit, miss)."
    );
    for result in ["hit", "miss"] {
        metrics::counter!("llm_cache_lookups_total", "result" => result).increment(0);
    }
}
