//! The LLM tokens a tenant may use per UTC day (`SANKALPA_LLM_TOKENS_PER_TENANT_PER_DAY`),
//! counted across replicas in `agents.llm_usage`.
//!
//! A run that would use the LLM is refused before it starts when its tenant has used its tokens
//! of the day (RESOURCE_EXHAUSTED carrying the quota, reset at the next UTC midnight); a run
//! asking the LLM more than once is checked again before each later call. After each call the
//! tokens the provider reports are added to the day's row. Checks and additions are not one
//! transaction: runs of one tenant in flight at the same moment can each pass the check and
//! together go past the quota by what they use, which bounds the overshoot by the tenant's
//! concurrent runs.

use chrono::{DateTime, NaiveTime, Utc};
use sankalpa_kit::problem::Quota;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{Result, RunnerError};

pub struct TokenQuota {
    pool: PgPool,
    /// 0: no limit, and nothing counted.
    per_day: u64,
}

impl TokenQuota {
    pub fn new(pool: PgPool, per_day: u64) -> Self {
        Self { pool, per_day }
    }

    /// RESOURCE_EXHAUSTED carrying the quota if `tenant` has used its tokens of today.
    pub async fn check(&self, tenant: Uuid) -> Result<()> {
        if self.per_day == 0 {
            return Ok(());
        }
        let now = Utc::now();
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT tokens FROM agents.llm_usage WHERE tenant_id = $1 AND day = $2",
        )
        .bind(tenant)
        .bind(now.date_naive())
        .fetch_optional(&self.pool)
        .await?;
        let used = used.map_or(0, |tokens| u64::try_from(tokens).unwrap_or(0));
        if used < self.per_day {
            return Ok(());
        }
        Err(RunnerError::QuotaExceeded {
            quota: Quota {
                limit: self.per_day,
                remaining: 0,
                reset: seconds_to_midnight(now),
            },
            message: format!(
                "the tenant has used its {} LLM tokens of today (UTC) \
                 (SANKALPA_LLM_TOKENS_PER_TENANT_PER_DAY)",
                self.per_day
            ),
        })
    }

    /// Adds `tokens` to what `tenant` has used today.
    pub async fn record(&self, tenant: Uuid, tokens: u64) -> Result<()> {
        if self.per_day == 0 || tokens == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO agents.llm_usage (tenant_id, day, tokens) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, day) DO UPDATE SET tokens = agents.llm_usage.tokens + EXCLUDED.tokens",
        )
        .bind(tenant)
        .bind(Utc::now().date_naive())
        .bind(i64::try_from(tokens).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Seconds from `now` to the next UTC midnight, at least 1.
fn seconds_to_midnight(now: DateTime<Utc>) -> u64 {
    let tomorrow = now
        .date_naive()
        .succ_opt()
        .expect("today is not the last day chrono knows");
    let midnight = tomorrow.and_time(NaiveTime::MIN).and_utc();
    let left = (midnight - now).num_milliseconds();
    // Rounded up: a client waiting this long finds the new day begun.
    u64::try_from((left + 999) / 1000).unwrap_or(1).max(1)
}

/// A run's view of its tenant's quota, for the calls its agent makes.
pub struct RunTokens {
    pub quota: std::sync::Arc<TokenQuota>,
    pub tenant: Uuid,
    /// Whether the next call is covered by a check already made (the one before the run).
    pub checked: bool,
}

impl RunTokens {
    /// Checks the quota before a call, unless the last check covers it.
    pub async fn before_call(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.checked, false) {
            return Ok(());
        }
        self.quota.check(self.tenant).await
    }

    /// Counts what a call used; a count that cannot be written is logged, as the call happened.
    pub async fn after_call(&self, tokens: u64) {
        if let Err(err) = self.quota.record(self.tenant, tokens).await {
            metrics::counter!("llm_usage_unrecorded_total").increment(1);
            tracing::warn!(error = %err, tokens, "could not count the LLM tokens a call used");
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_quota_resets_at_the_next_utc_midnight() {
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 12, 3, h, m, s).unwrap();
        assert_eq!(seconds_to_midnight(at(0, 0, 0)), 86_400);
        assert_eq!(seconds_to_midnight(at(23, 59, 59)), 1);
        assert_eq!(seconds_to_midnight(at(12, 0, 0)), 43_200);
    }
}
