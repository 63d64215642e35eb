//! The dashboard's series read from Prometheus (`SANKALPA_PROMETHEUS_URL`) instead of the
//! in-process sampler: one `query_range` per family, with the family's PromQL, at the answer's
//! step. Prometheus scrapes every replica, so the series cover the whole fleet.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::try_join_all;
use sankalpa_kit::problem::Problem;
use serde::Deserialize;

use super::Series;
use super::series::{FAMILIES, Family};

pub struct Prometheus {
    /// The API's base, e.g. `http://prometheus:9090`.
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Matrix>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Matrix {
    result: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    metric: BTreeMap<String, String>,
    /// `[unix seconds, "value"]`.
    values: Vec<(f64, String)>,
}

impl Prometheus {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }

    /// Every family's series over the last `range` up to `now_ms`, at `step_ms`.
    pub async fn series(
        &self,
        range: Duration,
        step_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Series>, Problem> {
        let range_ms = i64::try_from(range.as_millis()).unwrap_or(i64::MAX);
        let first = (now_ms - range_ms).div_euclid(step_ms) * step_ms;
        let last = now_ms.div_euclid(step_ms) * step_ms;
        // A rate needs two scrapes in its window: at least a minute, and two steps.
        let window = format!("{}s", (2 * step_ms / 1000).max(60));
        let answers = try_join_all(
            FAMILIES
                .iter()
                .map(|family| self.family(family, &window, first, last, step_ms)),
        )
        .await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn family(
        &self,
        family: &Family,
        window: &str,
        first: i64,
        last: i64,
        step_ms: i64,
    ) -> Result<Vec<Series>, Problem> {
        let query = family.promql.replace("{range}", window);
        let seconds = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
        let response = self
            .http
            .get(format!("{}/api/v1/query_range", self.base))
            .query(&[
                ("query", query.as_str()),
                ("start", &seconds(first)),
                ("end", &seconds(last)),
                ("step", &seconds(step_ms)),
            ])
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        let answer: Answer = response.json().await.map_err(|err| unavailable(&err))?;
        if answer.status != "success" {
            tracing::warn!(family = family.name, error = ?answer.error, "Prometheus refused a query");
            return Err(Problem::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "Prometheus refused the dashboard's query",
            ));
        }
        let buckets = usize::try_from((last - first) / step_ms + 1).unwrap_or(1);
        Ok(answer
            .data
            .map(|matrix| matrix.result)
            .unwrap_or_default()
            .into_iter()
            .map(|row| {
                let mut points: Vec<(i64, Option<f64>)> = (0..buckets)
                    .map(|bucket| (first + step_ms * bucket as i64, None))
                    .collect();
                for (at, value) in row.values {
                    let at_ms = (at * 1000.0).round() as i64;
                    let Ok(bucket) = usize::try_from((at_ms - first) / step_ms) else {
                        continue;
                    };
                    if let Some(point) = points.get_mut(bucket) {
                        point.1 = value.parse::<f64>().ok().filter(|value| value.is_finite());
                    }
                }
                let labels = row
                    .metric
                    .into_iter()
                    .filter(|(name, _)| name != "__name__")
                    .map(|(name, value)| {
                        // Prometheus names the scraped service `job`; the sampler `service`.
                        let name = if name == "job" {
                            "service".to_owned()
                        } else {
                            name
                        };
                        (name, value)
                    })
                    .collect();
                Series {
                    name: family.name,
                    labels,
                    unit: family.unit,
                    points,
                }
            })
            .filter(|series| series.points.iter().any(|(_, value)| value.is_some()))
            .collect())
    }
}

fn unavailable(err: &reqwest::Error) -> Problem {
    tracing::warn!(error = %err, "Prometheus did not answer the dashboard");
    Problem::unavailable("Prometheus did not answer")
}
