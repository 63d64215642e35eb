//! The console's dashboard data: `GET /api/dashboard/series?range=15m`, recent series of the
//! whole fleet (request rate, latency and errors per route, agent and chain runs, agent run
//! durations, the memory cache's hit ratio, event lag, CPU and memory per service).
//!
//! They come from one of two sources, chosen at start: the in-process [`sampler`] (the
//! default), which scrapes every service's `/metrics` itself and keeps an hour, or Prometheus
//! ([`prometheus`], when `SANKALPA_PROMETHEUS_URL` is set), asked with `query_range`. Which
//! series there are, and how each is derived, is declared once in [`series`].
//!
//! The series are the fleet's, not a tenant's (route labels, agent names of every tenant), so
//! reading them needs `fleet:read`, a platform permission: only the operators' tenant's admins
//! hold it, and no tenant admin's `*:*` grants it.

pub mod prometheus;
pub mod sampler;
pub mod series;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use sankalpa_kit::problem::Problem;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;

use self::prometheus::Prometheus;
use self::sampler::Sampler;

/// The permission the dashboard needs.
pub const FLEET_READ: &str = "fleet:read";
/// How much the sampler keeps, and the longest range asked.
pub const RETAINED: Duration = Duration::from_secs(3600);
/// The shortest range asked.
const MIN_RANGE: Duration = Duration::from_secs(60);
/// The most points a series is answered with: past it, steps widen (a point is then the mean
/// of several samples).
pub const MAX_POINTS: usize = 360;
/// The most series the sampler keeps (each is a family and a label set: a route, an agent and
/// outcome, ...); more are left out, said once in the log.
pub const MAX_SERIES: usize = 2000;
/// The range when none is asked.
const DEFAULT_RANGE: &str = "15m";

/// Where the series come from.
pub enum Source {
    Sampler(Arc<Sampler>),
    Prometheus(Prometheus),
}

pub struct Dashboard {
    pub source: Source,
    /// The sampling interval, and the finest step answered.
    pub every: Duration,
}

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(series))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// How far back: a whole number of seconds, minutes or hours (`90s`, `15m`, `1h`), from 1
    /// minute to 1 hour; 15 minutes when absent.
    #[param(pattern = r"^[0-9]{1,4}[smh]$", example = "15m")]
    pub range: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesList {
    /// Milliseconds between points: the sampling interval, or a multiple of it so that no
    /// series has more than 360 points.
    pub step_ms: i64,
    pub series: Vec<Series>,
}

/// One series: a quantity over time for one label set.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "http_request_rate", "labels": {"method": "GET", "route": "/api/agents"}, "unit": "requests/s", "points": [[1764892800000_i64, 1.5], [1764892805000_i64, null]]}))]
pub struct Series {
    /// http_request_rate, http_error_ratio, http_request_duration_p50 (p95, p99),
    /// agent_run_rate, agent_run_duration_p50 (p95), chain_run_rate, chain_step_rate,
    /// memory_cache_hit_ratio, event_publish_lag_p95, event_consume_lag_p95,
    /// process_cpu_usage, process_resident_memory_bytes.
    #[schema(value_type = String)]
    pub name: &'static str,
    /// What the series is of: `method` and `route`; `agent` and `outcome`; `status`; `schema`;
    /// `channel`; `service`.
    pub labels: BTreeMap<String, String>,
    /// requests/s, runs/s, steps/s, ratio, seconds, cores, bytes.
    #[schema(value_type = String)]
    pub unit: &'static str,
    /// `[unix milliseconds, value]` (described in [`points_schema`], which the document takes).
    #[schema(schema_with = points_schema)]
    pub points: Vec<(i64, Option<f64>)>,
}

fn points_schema() -> impl Into<RefOr<Schema>> {
    let point = ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::Null])))
        .min_items(Some(2))
        .max_items(Some(2));
    ArrayBuilder::new().items(point).description(Some(
        "`[unix milliseconds, value]`, oldest first, one per step; the value is null where there \
        was nothing to measure (no sample, no request for a ratio or a quantile).",
    ))
}

/// Recent series of the fleet's metrics, for the console's dashboard.
#[utoipa::path(
    get,
    path = "/api/dashboard/series",
    tag = "dashboard",
    params(RangeQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The series over the range", body = SeriesList),
        (status = 400, description = "`range` is not a duration from 1m to 1h", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing fleet:read (the operators' admins hold it)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Prometheus refused the query", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn series(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<RangeQuery>,
) -> Result<axum::Json<SeriesList>, Problem> {
    caller.require(FLEET_READ)?;
    let range = parse_range(query.range.as_deref().unwrap_or(DEFAULT_RANGE))?;
    let dashboard = &state.dashboard;
    let step_ms = step_ms(range, dashboard.every);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let series = match &dashboard.source {
        Source::Sampler(sampler) => sampler.series(range, step_ms, now_ms),
        Source::Prometheus(prometheus) => prometheus.series(range, step_ms, now_ms).await?,
    };
    Ok(axum::Json(SeriesList { step_ms, series }))
}

fn parse_range(text: &str) -> Result<Duration, Problem> {
    let invalid = || {
        Problem::invalid(
            "range",
            "must be a duration from 1m to 1h: a whole number of s, m or h, such as 90s, 15m or 1h",
        )
    };
    let split = text.len().checked_sub(1).ok_or_else(invalid)?;
    let (number, unit) = text.split_at_checked(split).ok_or_else(invalid)?;
    if number.is_empty() || number.len() > 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(invalid()),
    };
    let range = Duration::from_secs(seconds);
    if range < MIN_RANGE || range > RETAINED {
        return Err(invalid());
    }
    Ok(range)
}

/// The step of an answer over `range`: the sampling interval, widened by whole multiples until
/// a series has at most [`MAX_POINTS`] points.
fn step_ms(range: Duration, every: Duration) -> i64 {
    let every_ms = every.as_millis().max(1);
    let per_point = range
        .as_millis()
        .div_ceil(every_ms * MAX_POINTS as u128)
        .max(1);
    i64::try_from(every_ms * per_point).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_a_whole_number_of_seconds_minutes_or_hours_within_bounds() {
        assert_eq!(parse_range("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_range("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_range("1h").unwrap(), Duration::from_secs(3600));
        for bad in [
            "", "m", "59s", "2h", "61m", "1.5m", "-1m", "15", "15d", "99999s", "１m",
        ] {
            let problem = parse_range(bad).unwrap_err();
            assert_eq!(problem.errors[0].field, "range", "{bad}");
        }
    }

    #[test]
    fn steps_widen_to_keep_a_series_within_its_points() {
        let five = Duration::from_secs(5);
        assert_eq!(step_ms(Duration::from_secs(900), five), 5_000);
        assert_eq!(step_ms(Duration::from_secs(1800), five), 5_000);
        assert_eq!(step_ms(Duration::from_secs(3600), five), 10_000);
        assert_eq!(
            step_ms(Duration::from_secs(3600), Duration::from_secs(1)),
            10_000
        );
    }
}
