//! The report: one JSON line per scenario and concurrency, with its keys in a documented order,
//! judged against the floor measured in the same run ([`Floors`]), and kept with a description
//! of the machine in a results file ([`Results`]).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::load::Report;

/// One line of the report. Written by hand rather than with `json!` to keep the documented key
/// order (serde_json's map sorts keys unless a workspace-wide feature is turned on).
pub struct Line {
    fields: Vec<(&'static str, Value)>,
}

impl Line {
    /// `scenario, concurrency, requests, errors, throughput_rps, p50_us, p99_us`.
    pub fn new(scenario: &str, concurrency: usize, report: &Report) -> Self {
        Self {
            fields: vec![
                ("scenario", Value::from(scenario)),
                ("concurrency", Value::from(concurrency)),
                ("requests", Value::from(report.latency_us.len())),
                ("errors", Value::from(report.errors)),
                (
                    "throughput_rps",
                    Value::from(rounded(report.throughput(), 1)),
                ),
                ("p50_us", Value::from(report.p50_us())),
                ("p99_us", Value::from(report.p99_us())),
            ],
        }
    }

    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value)
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    fn to_value(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
        )
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, (key, value)) in self.fields.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{value}", Value::from(*key))?;
        }
        f.write_str("}")
    }
}

pub fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The floors measured so far, by name and concurrency: what a scenario's ratios divide by.
#[derive(Default)]
pub struct Floors(HashMap<(&'static str, u64), (f64, f64)>);

impl Floors {
    pub fn record(&mut self, floor: &'static str, line: &Line) {
        if let (Some(concurrency), Some(throughput), Some(p50)) = (
            line.get("concurrency").and_then(Value::as_u64),
            line.number("throughput_rps"),
            line.number("p50_us"),
        ) {
            self.0.insert((floor, concurrency), (throughput, p50));
        }
    }

    /// `line` with `floor` and `ratio` (its throughput over the floor's at the same
    /// concurrency) and, at concurrency 1, `p50_ratio` (its p50 over the floor's), when that
    /// floor was measured at that concurrency.
    pub fn judge(&self, line: Line, floor: &'static str) -> Line {
        let Some(concurrency) = line.get("concurrency").and_then(Value::as_u64) else {
            return line;
        };
        let Some(&(floor_throughput, floor_p50)) = self.0.get(&(floor, concurrency)) else {
            return line;
        };
        let throughput = line.number("throughput_rps").unwrap_or(0.0);
        let p50 = line.number("p50_us").unwrap_or(0.0);
        let mut line = line
            .with("floor", floor)
            .with("ratio", rounded(throughput / floor_throughput, 3));
        if concurrency == 1 {
            line = line.with("p50_ratio", rounded(p50 / floor_p50, 2));
        }
        line
    }
}

/// Every line of one run, written at the end with the machine's description to
/// `<SANKALPA_BENCH_RESULTS>/<time>-<revision>.json` (default `bench-results/`, which git
/// ignores), for `make bench-compare` and later reading.
pub struct Results {
    started_at: chrono::DateTime<chrono::Utc>,
    lines: Vec<Value>,
    /// Where the services exported spans and metrics: None when nowhere.
    collector: Option<String>,
}

impl Results {
    pub fn new() -> Self {
        Self {
            started_at: chrono::Utc::now(),
            lines: Vec::new(),
            collector: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok(),
        }
    }

    /// Notes the collector the services exported to.
    pub fn collector(&mut self, endpoint: &str) {
        self.collector = Some(format!("{endpoint} (live)"));
    }

    /// Prints `line` on stdout and keeps it.
    pub fn print(&mut self, line: &Line) {
        println!("{line}");
        self.lines.push(line.to_value());
    }

    pub fn write(&self) -> Result<PathBuf> {
        let folder = PathBuf::from(crate::env_or("SANKALPA_BENCH_RESULTS", "bench-results"));
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("Failed to create {}", folder.display()))?;
        let revision = crate::env_or("SANKALPA_BENCH_REVISION", "unknown");
        let path = folder.join(format!(
            "{}-{revision}.json",
            self.started_at.format("%Y%m%dT%H%M%SZ")
        ));
        let document = json!({
            "revision": revision,
            "started_at": self.started_at.to_rfc3339(),
            "machine": machine(),
            "collector": self.collector,
            "lines": self.lines,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&document)?)
            .with_context(|| format!("Failed to write {}", path.display()))?;
        Ok(path)
    }
}

/// What the figures were measured on: cores, CPU model, kernel, memory (Linux's /proc; absent
/// keys elsewhere).
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned());
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|release| release.trim().to_owned());
    json!({
        "cores": std::thread::available_parallelism().map(usize::from).ok(),
        "cpu_model": cpu_model,
        "kernel": kernel,
        "memory_bytes": memory_kib.map(|kib| kib * 1024),
    })
}

#[cfg(test)]
mod tests {
    use super::{Floors, Line};
    use crate::load::Report;

    fn line(concurrency: usize, requests: u64, p50_us: u64) -> Line {
        let mut report = Report::new();
        for _ in 0..requests {
            report.record(std::time::Duration::from_micros(p50_us), Ok(()));
        }
        report.elapsed = std::time::Duration::from_secs(1);
        Line::new("scenario", concurrency, &report)
    }

    #[test]
    fn a_line_is_judged_by_the_floor_at_its_own_concurrency() {
        let mut floors = Floors::default();
        floors.record("floor", &line(1, 1000, 100));
        floors.record("floor", &line(64, 4000, 100));

        let judged = floors.judge(line(1, 500, 400), "floor").to_string();
        assert!(
            judged.ends_with(r#""floor":"floor","ratio":0.5,"p50_ratio":4.0}"#),
            "{judged}"
        );
        let judged = floors.judge(line(64, 1000, 400), "floor").to_string();
        assert!(
            judged.ends_with(r#""floor":"floor","ratio":0.25}"#),
            "{judged}"
        );
        // No floor at that concurrency: the line stands alone.
        let judged = floors.judge(line(16, 1000, 400), "floor").to_string();
        assert!(!judged.contains("ratio"), "{judged}");
    }
}
