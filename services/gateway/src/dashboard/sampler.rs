//! The embedded source of the dashboard's series: every `SANKALPA_DASHBOARD_SAMPLE_MS` the
//! gateway scrapes each service's `/metrics` (its own in-process), derives the values of
//! [`FAMILIES`] from each service's last two scrapes, and keeps them in a ring holding the last
//! hour. What it shows is what this replica saw of the replica of each service its target
//! address reached: with replicas, Prometheus (`SANKALPA_PROMETHEUS_URL`) sees them all.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use super::series::{FAMILIES, GATEWAY, Interval, derive, wanted};
use super::{MAX_POINTS, MAX_SERIES, RETAINED, Series};
use sankalpa_kit::exposition::{Labels, Samples};

/// The longest a scrape may take; a slower service leaves a gap.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// A service whose `/metrics` is sampled.
#[derive(Debug, Clone)]
pub struct Target {
    pub service: String,
    /// Its `/metrics` URL; `None` for this gateway, read in-process.
    pub url: Option<String>,
}

pub struct Sampler {
    targets: Vec<Target>,
    every: Duration,
    http: reqwest::Client,
    ring: RwLock<Ring>,
}

/// A series by its family (an index into [`FAMILIES`]) and labels.
type SeriesKey = (usize, Labels);

struct Ring {
    /// Ticks kept: an hour's worth.
    capacity: usize,
    keys: Vec<SeriesKey>,
    ids: HashMap<SeriesKey, u32>,
    ticks: VecDeque<Tick>,
    /// Whether a series was refused for [`MAX_SERIES`], said once in the log.
    full_reported: bool,
}

struct Tick {
    /// On the sampling grid (a multiple of the interval), so that ticks fall one per step.
    at_ms: i64,
    /// By series id, ascending; a series without a value at this tick is absent.
    values: Vec<(u32, f32)>,
}

impl Sampler {
    /// Samples `targets` every `every` (the configuration keeps it from 1 s to 1 min; a zero
    /// is taken as a millisecond rather than dividing by it).
    pub fn new(targets: Vec<Target>, every: Duration) -> anyhow::Result<Self> {
        let every = every.max(Duration::from_millis(1));
        let capacity = usize::try_from(RETAINED.as_millis() / every.as_millis())
            .unwrap_or(usize::MAX)
            .max(1);
        Ok(Self {
            targets,
            every,
            http: reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build()?,
            ring: RwLock::new(Ring {
                capacity,
                keys: Vec::new(),
                ids: HashMap::new(),
                ticks: VecDeque::with_capacity(capacity),
                full_reported: false,
            }),
        })
    }

    pub fn every(&self) -> Duration {
        self.every
    }

    /// Samples until `stop` is cancelled.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut previous: HashMap<String, (Instant, Samples)> = HashMap::new();
        let mut ticker = tokio::time::interval(self.every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let step = i64::try_from(self.every.as_millis()).unwrap_or(i64::MAX);
            let at_ms = (chrono::Utc::now().timestamp_millis() + step / 2) / step * step;
            let scrapes = join_all(self.targets.iter().map(|target| self.scrape(target))).await;
            let current: HashMap<String, (Instant, Samples)> = self
                .targets
                .iter()
                .zip(scrapes)
                .filter_map(|(target, scrape)| Some((target.service.clone(), scrape?)))
                .collect();
            let intervals: Vec<(&str, Interval<'_>)> = current
                .iter()
                .filter_map(|(service, (at, after))| {
                    let (before_at, before) = previous.get(service)?;
                    Some((
                        service.as_str(),
                        Interval {
                            before,
                            after,
                            seconds: at.duration_since(*before_at).as_secs_f64().max(1e-3),
                        },
                    ))
                })
                .collect();
            let mut values = Vec::new();
            for (index, family) in FAMILIES.iter().enumerate() {
                for (labels, value) in derive(family, &intervals) {
                    if let Some(value) = value.filter(|value| value.is_finite()) {
                        values.push(((index, labels), value));
                    }
                }
            }
            self.record(at_ms, values);
            previous = current;
        }
    }

    /// One scrape of `target`, parsed; `None` when it failed (logged at debug: a service that is
    /// down shows as a gap, and /api/status says why).
    async fn scrape(&self, target: &Target) -> Option<(Instant, Samples)> {
        let Some(url) = &target.url else {
            sankalpa_kit::metrics::observe_process();
            let text = sankalpa_kit::metrics::render();
            return Some((Instant::now(), Samples::parse(&text, wanted)));
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let text = match response {
            Ok(response) => response.text().await,
            Err(err) => Err(err),
        };
        match text {
            Ok(text) => Some((Instant::now(), Samples::parse(&text, wanted))),
            Err(err) => {
                tracing::debug!(service = %target.service, error = %err, "could not scrape");
                None
            }
        }
    }

    fn record(&self, at_ms: i64, values: Vec<(SeriesKey, f64)>) {
        let mut ring = self
            .ring
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut tick = Tick {
            at_ms,
            values: Vec::with_capacity(values.len()),
        };
        for (key, value) in values {
            let id = match ring.ids.get(&key) {
                Some(id) => *id,
                None if ring.keys.len() < MAX_SERIES => {
                    let id = u32::try_from(ring.keys.len()).expect("MAX_SERIES fits in a u32");
                    ring.keys.push(key.clone());
                    ring.ids.insert(key, id);
                    id
                }
                None => {
                    if !ring.full_reported {
                        ring.full_reported = true;
                        tracing::warn!(
                            max = MAX_SERIES,
                            "the dashboard holds as many series as it may; new ones are left out"
                        );
                    }
                    continue;
                }
            };
            // f32 keeps 7 digits, more than a chart shows, in half the memory.
            tick.values.push((id, value as f32));
        }
        tick.values.sort_unstable_by_key(|(id, _)| *id);
        if ring.ticks.len() == ring.capacity {
            ring.ticks.pop_front();
        }
        ring.ticks.push_back(tick);
    }

    /// The series over the last `range` up to `now_ms`, in steps of `step_ms` (a multiple of the
    /// sampling interval): each point the mean of the samples in its step, null without one.
    /// Series without any value in the range are left out.
    pub fn series(&self, range: Duration, step_ms: i64, now_ms: i64) -> Vec<Series> {
        let range_ms = i64::try_from(range.as_millis()).unwrap_or(i64::MAX);
        let first = (now_ms - range_ms).div_euclid(step_ms) * step_ms;
        let last = now_ms.div_euclid(step_ms) * step_ms;
        let buckets = usize::try_from((last - first) / step_ms + 1)
            .unwrap_or(1)
            .min(MAX_POINTS + 1);
        let ring = self
            .ring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut sums: HashMap<u32, Vec<(f64, u32)>> = HashMap::new();
        for tick in &ring.ticks {
            if tick.at_ms < now_ms - range_ms || tick.at_ms > now_ms {
                continue;
            }
            let Ok(bucket) =
                usize::try_from((tick.at_ms.div_euclid(step_ms) * step_ms - first) / step_ms)
            else {
                continue;
            };
            if bucket >= buckets {
                continue;
            }
            for (id, value) in &tick.values {
                let slots = sums.entry(*id).or_insert_with(|| vec![(0.0, 0); buckets]);
                slots[bucket].0 += f64::from(*value);
                slots[bucket].1 += 1;
            }
        }
        let mut ids: Vec<u32> = sums.keys().copied().collect();
        ids.sort_unstable_by(|a, b| {
            let (family_a, labels_a) = &ring.keys[*a as usize];
            let (family_b, labels_b) = &ring.keys[*b as usize];
            family_a.cmp(family_b).then_with(|| labels_a.cmp(labels_b))
        });
        ids.into_iter()
            .map(|id| {
                let (family, labels) = &ring.keys[id as usize];
                let family = &FAMILIES[*family];
                let points = sums[&id]
                    .iter()
                    .enumerate()
                    .map(|(bucket, (sum, count))| {
                        let at = first + step_ms * bucket as i64;
                        (at, (*count > 0).then(|| sum / f64::from(*count)))
                    })
                    .collect();
                Series {
                    name: family.name,
                    labels: labels.iter().cloned().collect(),
                    unit: family.unit,
                    points,
                }
            })
            .collect()
    }
}

/// The targets of `SANKALPA_DASHBOARD_TARGETS` (`name=base URL`), with this gateway first.
pub fn targets(configured: &[(String, String)]) -> Vec<Target> {
    let mut targets = vec![Target {
        service: GATEWAY.to_owned(),
        url: None,
    }];
    targets.extend(configured.iter().map(|(service, base)| Target {
        service: service.clone(),
        url: Some(format!("{}/metrics", base.trim_end_matches('/'))),
    }));
    targets
}
