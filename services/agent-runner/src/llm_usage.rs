//! The LLM tokens a tenant may use per UTC day (`SANKALPA_LLM_TOKENS_PER_TENANT_PER_DAY`),
//! counted across replicas in `agents.llm_usage`, with what they cost at the operator's prices
//! (`SANKALPA_LLM_PRICES`, [`Prices`]); the tenant reads both per day (`GetModelUsage`).
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
use crate::llm::Completion;

/// The most days of use [`TokenQuota::usage`] answers.
pub const MAX_USAGE_DAYS: u32 = 90;
/// The most models a price table holds.
pub const MAX_PRICED_MODELS: usize = 200;

/// The operator's prices of models, in US dollars per million tokens, prompt and completion:
/// `SANKALPA_LLM_PRICES=gpt-4o-mini=0.15:0.6,claude-3-5-haiku=0.8:4`. A model answered is priced
/// by its own name, else by the longest priced name it starts with (`gpt-4o-mini` prices
/// `gpt-4o-mini-2024-07-18`); a model without a price costs nothing here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    /// (model, prompt, completion), the longest names first.
    by_model: Vec<(String, f64, f64)>,
}

impl Prices {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut by_model = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (model, prices) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not model=prompt:completion"))?;
            let (prompt, completion) = prices
                .split_once(':')
                .ok_or_else(|| format!("{entry:?} is not model=prompt:completion"))?;
            let price = |text: &str| {
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| format!("{entry:?}: {text:?} is not a price of 0 or more"))
            };
            let model = model.trim();
            if model.is_empty() {
                return Err(format!("{entry:?} names no model"));
            }
            by_model.push((model.to_owned(), price(prompt)?, price(completion)?));
        }
        if by_model.len() > MAX_PRICED_MODELS {
            return Err(format!("more than {MAX_PRICED_MODELS} models"));
        }
        by_model.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(Self { by_model })
    }

    pub fn is_empty(&self) -> bool {
        self.by_model.is_empty()
    }

    /// What `prompt` and `completion` tokens of `model` cost, in US dollars; 0 unpriced.
    pub fn cost(&self, model: &str, prompt: u64, completion: u64) -> f64 {
        self.by_model
            .iter()
            .find(|(priced, ..)| model.starts_with(priced.as_str()))
            .map_or(0.0, |(_, per_prompt, per_completion)| {
                (prompt as f64 * per_prompt + completion as f64 * per_completion) / 1_000_000.0
            })
    }
}

/// One UTC day of a tenant's LLM use.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UsageDay {
    pub day: chrono::NaiveDate,
    pub tokens: i64,
    pub cost_usd: f64,
}

pub struct TokenQuota {
    pool: PgPool,
    /// 0: no limit.
    per_day: u64,
    prices: Prices,
}

impl TokenQuota {
    pub fn new(pool: PgPool, per_day: u64, prices: Prices) -> Self {
        Self {
            pool,
            per_day,
            prices,
        }
    }

    /// The tokens a tenant may use a day; 0: no limit.
    pub fn per_day(&self) -> u64 {
        self.per_day
    }

    /// Whether a price table is configured.
    pub fn priced(&self) -> bool {
        !self.prices.is_empty()
    }

    /// `tenant`'s use on each of the last `days` UTC days that had any, the latest first.
    pub async fn usage(&self, tenant: Uuid, days: u32) -> Result<Vec<UsageDay>> {
        let since = Utc::now().date_naive() - chrono::Days::new(u64::from(days.saturating_sub(1)));
        Ok(sqlx::query_as(
            "SELECT day, tokens, cost_usd FROM agents.llm_usage
             WHERE tenant_id = $1 AND day >= $2 ORDER BY day DESC",
        )
        .bind(tenant)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
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

    /// Adds what a call `used` (its tokens, as the model that answered counts them) to what
    /// `tenant` has used today, tokens and cost.
    pub async fn record(&self, tenant: Uuid, used: &Completion) -> Result<()> {
        let tokens = used.prompt_tokens.saturating_add(used.completion_tokens);
        if tokens == 0 {
            return Ok(());
        }
        let cost = self
            .prices
            .cost(&used.model, used.prompt_tokens, used.completion_tokens);
        sqlx::query(
            "INSERT INTO agents.llm_usage (tenant_id, day, tokens, cost_usd) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, day) DO UPDATE SET
                 tokens = agents.llm_usage.tokens + EXCLUDED.tokens,
                 cost_usd = agents.llm_usage.cost_usd + EXCLUDED.cost_usd",
        )
        .bind(tenant)
        .bind(Utc::now().date_naive())
        .bind(i64::try_from(tokens).unwrap_or(i64::MAX))
        .bind(cost)
        .execute(&self.pool)
        .await?;
        metrics::counter!("llm_cost_microdollars_total").increment((cost * 1e6).round() as u64);
        Ok(())
    }

    /// [`TokenQuota::record`], a failure logged and counted: the call happened all the same.
    pub async fn record_or_log(&self, tenant: Uuid, used: &Completion) {
        if let Err(err) = self.record(tenant, used).await {
            metrics::counter!("llm_usage_unrecorded_total").increment(1);
            tracing::warn!(error = %err, "could not count the LLM tokens a call used");
        }
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
    pub async fn after_call(&self, used: &Completion) {
        self.quota.record_or_log(self.tenant, used).await;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_model_is_priced_by_its_name_or_the_longest_priced_name_it_starts_with() {
        let prices = Prices::parse(" gpt-4o=2.5:10, gpt-4o-mini=0.15:0.6 ,claude=3:15").unwrap();
        let cost = |model| prices.cost(model, 1_000_000, 2_000_000);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(cost("gpt-4o-mini-2024-07-18"), 1.35));
        assert!(close(cost("gpt-4o"), 22.5));
        assert_eq!(cost("llama3"), 0.0);
        assert!(Prices::parse("").unwrap().is_empty());
        for bad in ["gpt-4o", "gpt-4o=1", "=1:2", "m=-1:2", "m=1:NaN", "m=x:1"] {
            assert!(Prices::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_quota_resets_at_the_next_utc_midnight() {
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 12, 3, h, m, s).unwrap();
        assert_eq!(seconds_to_midnight(at(0, 0, 0)), 86_400);
        assert_eq!(seconds_to_midnight(at(23, 59, 59)), 1);
        assert_eq!(seconds_to_midnight(at(12, 0, 0)), 43_200);
    }
}
