//! The series the dashboard shows, declared once: what each is called, its unit, how the
//! in-process sampler derives it from two scrapes of the fleet's `/metrics`, and the PromQL that
//! gives it when Prometheus is asked instead. A series' labels are its group's (route and
//! method, agent and outcome, status, ...) and, for the process series, `service`.

use std::collections::HashMap;

use sankalpa_kit::exposition::{Labels, Samples};

/// The services the gateway knows by name, for series read from one of them.
pub const GATEWAY: &str = "gateway";
const AGENT_RUNNER: &str = "agent-runner";
const CHAIN_ORCHESTRATOR: &str = "chain-orchestrator";
const MEMORY: &str = "memory";

/// Where a family's samples come from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The service that records the metric.
    Service(&'static str),
    /// Every service, summed: metrics the kit records wherever events flow.
    Summed,
    /// Every service on its own, labelled `service`.
    EachService,
}

/// How a family's value is derived from the previous and the current scrape.
#[derive(Debug, Clone, Copy)]
pub enum Derive {
    /// Per second: a counter's increase over the interval, summed by `by`.
    Rate {
        metric: &'static str,
        by: &'static [&'static str],
    },
    /// The share of a counter's increase whose `label` passes `part`, by `by`; none without
    /// any increase.
    Ratio {
        metric: &'static str,
        by: &'static [&'static str],
        label: &'static str,
        part: fn(&str) -> bool,
    },
    /// A quantile of a histogram's observations over the interval, by `by`, interpolated
    /// within the bucket as Prometheus's `histogram_quantile` does; none without observations.
    Quantile {
        histogram: &'static str,
        by: &'static [&'static str],
        q: f64,
    },
    /// The current value of a gauge.
    Level { metric: &'static str },
}

/// One kind of series.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub unit: &'static str,
    pub source: Source,
    pub derive: Derive,
    /// The PromQL that gives the same series; `{range}` stands for the rate window. Its result
    /// labels are the series' (`job` is renamed `service`).
    pub promql: &'static str,
}

const ROUTE: &[&str] = &["method", "route"];

/// Every series of the dashboard, in the order they are answered.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "http_request_rate",
        unit: "requests/s",
        source: Source::Service(GATEWAY),
        derive: Derive::Rate {
            metric: "http_requests_total",
            by: ROUTE,
        },
        promql: "sum by (method, route) (rate(http_requests_total[{range}]))",
    },
    Family {
        name: "http_error_ratio",
        unit: "ratio",
        source: Source::Service(GATEWAY),
        derive: Derive::Ratio {
            metric: "http_requests_total",
            by: ROUTE,
            label: "status",
            part: |status| status.starts_with('5'),
        },
        promql: "sum by (method, route) (rate(http_requests_total{status=~\"5..\"}[{range}])) \
            / sum by (method, route) (rate(http_requests_total[{range}]))",
    },
    Family {
        name: "http_request_duration_p50",
        unit: "seconds",
        source: Source::Service(GATEWAY),
        derive: Derive::Quantile {
            histogram: "http_request_duration_seconds",
            by: ROUTE,
            q: 0.5,
        },
        promql: "histogram_quantile(0.5, sum by (le, method, route) \
            (rate(http_request_duration_seconds_bucket[{range}])))",
    },
    Family {
        name: "http_request_duration_p95",
        unit: "seconds",
        source: Source::Service(GATEWAY),
        derive: Derive::Quantile {
            histogram: "http_request_duration_seconds",
            by: ROUTE,
            q: 0.95,
        },
        promql: "histogram_quantile(0.95, sum by (le, method, route) \
            (rate(http_request_duration_seconds_bucket[{range}])))",
    },
    Family {
        name: "http_request_duration_p99",
        unit: "seconds",
        source: Source::Service(GATEWAY),
        derive: Derive::Quantile {
            histogram: "http_request_duration_seconds",
            by: ROUTE,
            q: 0.99,
        },
        promql: "histogram_quantile(0.99, sum by (le, method, route) \
            (rate(http_request_duration_seconds_bucket[{range}])))",
    },
    Family {
        name: "agent_run_rate",
        unit: "runs/s",
        source: Source::Service(AGENT_RUNNER),
        derive: Derive::Rate {
            metric: "agent_runs_total",
            by: &["agent", "outcome"],
        },
        promql: "sum by (agent, outcome) (rate(agent_runs_total[{range}]))",
    },
    Family {
        name: "agent_run_duration_p50",
        unit: "seconds",
        source: Source::Service(AGENT_RUNNER),
        derive: Derive::Quantile {
            histogram: "agent_run_duration_seconds",
            by: &["agent"],
            q: 0.5,
        },
        promql: "histogram_quantile(0.5, sum by (le, agent) \
            (rate(agent_run_duration_seconds_bucket[{range}])))",
    },
    Family {
        name: "agent_run_duration_p95",
        unit: "seconds",
        source: Source::Service(AGENT_RUNNER),
        derive: Derive::Quantile {
            histogram: "agent_run_duration_seconds",
            by: &["agent"],
            q: 0.95,
        },
        promql: "histogram_quantile(0.95, sum by (le, agent) \
            (rate(agent_run_duration_seconds_bucket[{range}])))",
    },
    Family {
        name: "chain_run_rate",
        unit: "runs/s",
        source: Source::Service(CHAIN_ORCHESTRATOR),
        derive: Derive::Rate {
            metric: "chains_runs_total",
            by: &["status"],
        },
        promql: "sum by (status) (rate(chains_runs_total[{range}]))",
    },
    Family {
        name: "chain_step_rate",
        unit: "steps/s",
        source: Source::Service(CHAIN_ORCHESTRATOR),
        derive: Derive::Rate {
            metric: "chains_steps_total",
            by: &["status"],
        },
        promql: "sum by (status) (rate(chains_steps_total[{range}]))",
    },
    Family {
        name: "memory_cache_hit_ratio",
        unit: "ratio",
        source: Source::Service(MEMORY),
        derive: Derive::Ratio {
            metric: "memory_cache_lookups_total",
            by: &[],
            label: "result",
            part: |result| result != "miss",
        },
        promql: "sum(rate(memory_cache_lookups_total{result!=\"miss\"}[{range}])) \
            / sum(rate(memory_cache_lookups_total[{range}]))",
    },
    Family {
        name: "event_publish_lag_p95",
        unit: "seconds",
        source: Source::Summed,
        derive: Derive::Quantile {
            histogram: "events_publish_lag_seconds",
            by: &["schema"],
            q: 0.95,
        },
        promql: "histogram_quantile(0.95, sum by (le, schema) \
            (rate(events_publish_lag_seconds_bucket[{range}])))",
    },
    Family {
        name: "event_consume_lag_p95",
        unit: "seconds",
        source: Source::Summed,
        derive: Derive::Quantile {
            histogram: "events_consume_lag_seconds",
            by: &["channel"],
            q: 0.95,
        },
        promql: "histogram_quantile(0.95, sum by (le, channel) \
            (rate(events_consume_lag_seconds_bucket[{range}])))",
    },
    Family {
        name: "process_cpu_usage",
        unit: "cores",
        source: Source::EachService,
        derive: Derive::Rate {
            metric: "process_cpu_seconds_total",
            by: &[],
        },
        promql: "sum by (job) (rate(process_cpu_seconds_total[{range}]))",
    },
    Family {
        name: "process_resident_memory_bytes",
        unit: "bytes",
        source: Source::EachService,
        derive: Derive::Level {
            metric: "process_resident_memory_bytes",
        },
        promql: "sum by (job) (process_resident_memory_bytes)",
    },
];

/// Whether a scrape needs the samples named `name`: it belongs to a metric some family reads.
pub fn wanted(name: &str) -> bool {
    FAMILIES.iter().any(|family| match family.derive {
        Derive::Rate { metric, .. } | Derive::Ratio { metric, .. } | Derive::Level { metric } => {
            name == metric
        }
        Derive::Quantile { histogram, .. } => name
            .strip_prefix(histogram)
            .is_some_and(|suffix| suffix == "_bucket"),
    })
}

/// Two scrapes of one service, `seconds` apart.
pub struct Interval<'a> {
    pub before: &'a Samples,
    pub after: &'a Samples,
    pub seconds: f64,
}

/// The values of `family` over `intervals` (the services it reads, with their names), by label
/// set; `None` where the interval gives no value (a ratio or quantile of nothing).
pub fn derive(family: &Family, intervals: &[(&str, Interval<'_>)]) -> Vec<(Labels, Option<f64>)> {
    let mut derived = Vec::new();
    match family.source {
        Source::Service(owner) => {
            let of_owner: Vec<&Interval<'_>> = intervals
                .iter()
                .filter(|(service, _)| *service == owner)
                .map(|(_, interval)| interval)
                .collect();
            derived.extend(derive_over(family.derive, &of_owner));
        }
        Source::Summed => {
            let all: Vec<&Interval<'_>> = intervals.iter().map(|(_, interval)| interval).collect();
            derived.extend(derive_over(family.derive, &all));
        }
        Source::EachService => {
            for (service, interval) in intervals {
                for (mut labels, value) in derive_over(family.derive, &[interval]) {
                    labels.push(("service".to_owned(), (*service).to_owned()));
                    labels.sort();
                    derived.push((labels, value));
                }
            }
        }
    }
    derived
}

fn derive_over(derive: Derive, intervals: &[&Interval<'_>]) -> Vec<(Labels, Option<f64>)> {
    if intervals.is_empty() {
        return Vec::new();
    }
    match derive {
        Derive::Rate { metric, by } => {
            let seconds = intervals[0].seconds;
            increases(intervals, metric, by, |_| true)
                .into_iter()
                .map(|(labels, increase)| (labels, Some(increase / seconds)))
                .collect()
        }
        Derive::Ratio {
            metric,
            by,
            label,
            part,
        } => {
            let all = increases(intervals, metric, by, |_| true);
            let parts = increases(intervals, metric, by, |labels| {
                labels
                    .iter()
                    .any(|(name, value)| name == label && part(value))
            });
            all.into_iter()
                .map(|(labels, total)| {
                    let value =
                        (total > 0.0).then(|| parts.get(&labels).copied().unwrap_or(0.0) / total);
                    (labels, value)
                })
                .collect()
        }
        Derive::Quantile { histogram, by, q } => {
            let bucket = format!("{histogram}_bucket");
            let mut with_le: Vec<&str> = by.to_vec();
            with_le.push("le");
            let mut groups: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
            for (labels, increase) in increases(intervals, &bucket, &with_le, |_| true) {
                let Some(le) = labels
                    .iter()
                    .find(|(name, _)| name == "le")
                    .and_then(|(_, le)| le.parse::<f64>().ok())
                else {
                    continue;
                };
                let group: Labels = labels
                    .into_iter()
                    .filter(|(name, _)| name != "le")
                    .collect();
                groups.entry(group).or_default().push((le, increase));
            }
            groups
                .into_iter()
                .map(|(labels, mut buckets)| {
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (labels, quantile(q, &buckets))
                })
                .collect()
        }
        Derive::Level { metric } => {
            let mut levels: HashMap<Labels, f64> = HashMap::new();
            for interval in intervals {
                for (labels, value) in interval.after.of(metric) {
                    *levels.entry(labels.clone()).or_default() += value;
                }
            }
            levels
                .into_iter()
                .map(|(labels, value)| (labels, Some(value)))
                .collect()
        }
    }
}

/// How much each label set of `metric` that `keep` accepts grew between the scrapes, summed by
/// the labels `by`. A series new since the first scrape grew from 0; one that went down was
/// reset (its process restarted) and grew from 0 to what it is.
fn increases(
    intervals: &[&Interval<'_>],
    metric: &str,
    by: &[&str],
    keep: impl Fn(&Labels) -> bool,
) -> HashMap<Labels, f64> {
    let mut grown: HashMap<Labels, f64> = HashMap::new();
    for interval in intervals {
        for (labels, now) in interval.after.of(metric) {
            if !keep(labels) {
                continue;
            }
            let before = interval.before.get(metric, labels).unwrap_or(0.0);
            let increase = if now >= before { now - before } else { now };
            let group: Labels = labels
                .iter()
                .filter(|(name, _)| by.contains(&name.as_str()))
                .cloned()
                .collect();
            *grown.entry(group).or_default() += increase;
        }
    }
    grown
}

/// The `q` quantile of cumulative `buckets` (upper bound, count), sorted by bound with `+Inf`
/// last: linear within the bucket it falls in, from the previous bound (0 for the first); in
/// the `+Inf` bucket, the highest finite bound. None without observations.
fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            let fraction = if within > 0.0 {
                (rank - lower.1) / within
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(text: &str) -> Samples {
        Samples::parse(text, wanted)
    }

    fn one(derived: Vec<(Labels, Option<f64>)>, label: (&str, &str)) -> Option<f64> {
        derived
            .into_iter()
            .find(|(labels, _)| {
                labels
                    .iter()
                    .any(|(name, value)| name == label.0 && value == label.1)
            })
            .unwrap_or_else(|| panic!("a series labelled {label:?}"))
            .1
    }

    fn family(name: &str) -> &'static Family {
        FAMILIES.iter().find(|family| family.name == name).unwrap()
    }

    #[test]
    fn a_rate_sums_the_counters_increase_by_route_and_a_reset_counts_from_zero() {
        let before = samples(
            "http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 10\n\
             http_requests_total{method=\"GET\",route=\"/a\",status=\"500\"} 5\n\
             http_requests_total{method=\"GET\",route=\"/b\",status=\"200\"} 100\n",
        );
        let after = samples(
            "http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 16\n\
             http_requests_total{method=\"GET\",route=\"/a\",status=\"500\"} 7\n\
             http_requests_total{method=\"GET\",route=\"/b\",status=\"200\"} 4\n\
             http_requests_total{method=\"GET\",route=\"/c\",status=\"200\"} 2\n",
        );
        let intervals = [(
            GATEWAY,
            Interval {
                before: &before,
                after: &after,
                seconds: 2.0,
            },
        )];

        let rates = derive(family("http_request_rate"), &intervals);
        assert_eq!(one(rates.clone(), ("route", "/a")), Some(4.0));
        assert_eq!(one(rates.clone(), ("route", "/b")), Some(2.0));
        assert_eq!(one(rates, ("route", "/c")), Some(1.0));
        let errors = derive(family("http_error_ratio"), &intervals);
        assert_eq!(one(errors.clone(), ("route", "/a")), Some(0.25));
        assert_eq!(one(errors, ("route", "/b")), Some(0.0));
        // Another service's scrape is not the gateway's.
        let elsewhere = [(
            MEMORY,
            Interval {
                before: &before,
                after: &after,
                seconds: 2.0,
            },
        )];
        assert!(derive(family("http_request_rate"), &elsewhere).is_empty());
    }

    #[test]
    fn a_quantile_interpolates_within_its_bucket_over_the_intervals_observations() {
        let before = samples(
            "agent_run_duration_seconds_bucket{agent=\"x\",le=\"0.1\"} 5\n\
             agent_run_duration_seconds_bucket{agent=\"x\",le=\"1\"} 5\n\
             agent_run_duration_seconds_bucket{agent=\"x\",le=\"+Inf\"} 5\n\
             agent_run_duration_seconds_bucket{agent=\"idle\",le=\"+Inf\"} 3\n",
        );
        let after = samples(
            "agent_run_duration_seconds_bucket{agent=\"x\",le=\"0.1\"} 15\n\
             agent_run_duration_seconds_bucket{agent=\"x\",le=\"1\"} 25\n\
             agent_run_duration_seconds_bucket{agent=\"x\",le=\"+Inf\"} 25\n\
             agent_run_duration_seconds_bucket{agent=\"idle\",le=\"+Inf\"} 3\n",
        );
        let intervals = [(
            AGENT_RUNNER,
            Interval {
                before: &before,
                after: &after,
                seconds: 5.0,
            },
        )];

        let p50 = derive(family("agent_run_duration_p50"), &intervals);
        // 20 observations: 10 up to 0.1 s, 10 in (0.1, 1]; the median is the bucket's start.
        let median = one(p50.clone(), ("agent", "x")).unwrap();
        assert!((median - 0.1).abs() < 1e-9, "{median}");
        assert_eq!(one(p50, ("agent", "idle")), None);
        let p95 = one(
            derive(family("agent_run_duration_p95"), &intervals),
            ("agent", "x"),
        );
        assert!((p95.unwrap() - 0.91).abs() < 1e-9, "{p95:?}");
    }

    #[test]
    fn process_series_are_labelled_by_service() {
        let before = samples("process_cpu_seconds_total 10\nprocess_resident_memory_bytes 5\n");
        let after = samples("process_cpu_seconds_total 11\nprocess_resident_memory_bytes 7\n");
        let intervals = [
            (
                GATEWAY,
                Interval {
                    before: &before,
                    after: &after,
                    seconds: 4.0,
                },
            ),
            (
                MEMORY,
                Interval {
                    before: &before,
                    after: &before,
                    seconds: 4.0,
                },
            ),
        ];

        let cpu = derive(family("process_cpu_usage"), &intervals);
        assert_eq!(one(cpu.clone(), ("service", GATEWAY)), Some(0.25));
        assert_eq!(one(cpu, ("service", MEMORY)), Some(0.0));
        let rss = derive(family("process_resident_memory_bytes"), &intervals);
        assert_eq!(one(rss.clone(), ("service", GATEWAY)), Some(7.0));
        assert_eq!(one(rss, ("service", MEMORY)), Some(5.0));
    }
}
