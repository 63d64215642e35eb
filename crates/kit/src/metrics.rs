//! Prometheus metrics: one recorder per process, rendered by every service's `/metrics`.
//!
//! Code records with the `metrics` macros; names follow Prometheus conventions
//! (`*_total`, `*_seconds`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often recorded histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use. Several services started in one test process
/// share it, as they share the process.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .expect("the latency buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness): then ours only renders.
        let _ = metrics::set_global_recorder(recorder);
        describe_common();
        // A recorder built this way keeps every histogram sample until a render or an upkeep
        // drains it: unscraped, memory would grow with every request served.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for metrics upkeep can be started");
        handle
    })
}

/// Describes what every process has (and registers its counters at zero): process, runtime,
/// pool and trace-export metrics.
fn describe_common() {
    use metrics::{Unit, describe_gauge};
    metrics::describe_counter!(
        "otel_spans_exported_total",
        "Spans the OTLP exporter delivered to the collector."
    );
    metrics::describe_counter!(
        "otel_span_export_failures_total",
        "Spans the OTLP exporter could not deliver (collector down, refused or too slow)."
    );
    metrics::counter!("otel_spans_exported_total").increment(0);
    metrics::counter!("otel_span_export_failures_total").increment(0);
    metrics::describe_counter!(
        "otel_metric_exports_total",
        "Exports of the process's metrics the OTLP collector took (metrics_export.rs)."
    );
    metrics::describe_counter!(
        "otel_metric_export_failures_total",
        "Exports of the process's metrics that failed (collector down, refused or too slow)."
    );
    metrics::counter!("otel_metric_exports_total").increment(0);
    metrics::counter!("otel_metric_export_failures_total").increment(0);
    describe_gauge!(
        "process_cpu_seconds_total",
        Unit::Seconds,
        "CPU time the process has used, user and system."
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory (VmRSS)."
    );
    describe_gauge!(
        "process_virtual_memory_bytes",
        Unit::Bytes,
        "Virtual memory size (VmSize)."
    );
    describe_gauge!(
        "process_start_time_seconds",
        Unit::Seconds,
        "When the process started, in seconds since the Unix epoch."
    );
    describe_gauge!("process_threads", "Threads of the process.");
    describe_gauge!("process_open_fds", "Open file descriptors.");
    describe_gauge!("process_max_fds", "The open file descriptor limit.");
    describe_gauge!("tokio_workers", "Worker threads of the Tokio runtime.");
    describe_gauge!("tokio_alive_tasks", "Tasks alive on the Tokio runtime.");
    describe_gauge!(
        "tokio_global_queue_depth",
        "Tasks waiting in the runtime's global queue: a backlog grows here first."
    );
    describe_gauge!(
        "tokio_worker_busy_seconds_total",
        Unit::Seconds,
        "Time the runtime's workers spent running tasks, summed over workers."
    );
    metrics::describe_counter!(
        "tokio_worker_parks_total",
        "Times the runtime's workers parked for lack of work, summed over workers."
    );
    describe_gauge!(
        "db_pool_connections",
        "Postgres pool connections, by state (idle, in_use)."
    );
    describe_gauge!("db_pool_max_connections", "The Postgres pool's bound.");
}

/// The text exposition of every metric.
pub fn render() -> String {
    handle().render()
}

/// Sets the process and runtime levels, read when scraped: CPU, resident and virtual memory,
/// file descriptors, threads and the start time from `/proc/self` (names as Prometheus's own clients give them),
/// and the Tokio runtime's stable metrics. Off Linux, only the runtime's are there. Seconds
/// that only grow are gauges all the same: the `metrics` crate's counters count whole numbers.
pub fn observe_process() {
    if let Some(process) = Process::read() {
        metrics::gauge!("process_cpu_seconds_total").set(process.cpu_ticks as f64 / USER_HZ);
        metrics::gauge!("process_resident_memory_bytes").set(process.resident_bytes as f64);
        metrics::gauge!("process_virtual_memory_bytes").set(process.virtual_bytes as f64);
        if let Some(started) = process.start_time_seconds {
            metrics::gauge!("process_start_time_seconds").set(started);
        }
        metrics::gauge!("process_threads").set(process.threads as f64);
        metrics::gauge!("process_open_fds").set(process.open_fds as f64);
        if let Some(max_fds) = process.max_fds {
            metrics::gauge!("process_max_fds").set(max_fds as f64);
        }
    }
    let runtime = tokio::runtime::Handle::current().metrics();
    let workers = runtime.num_workers();
    metrics::gauge!("tokio_workers").set(workers as f64);
    metrics::gauge!("tokio_alive_tasks").set(runtime.num_alive_tasks() as f64);
    metrics::gauge!("tokio_global_queue_depth").set(runtime.global_queue_depth() as f64);
    let busy: Duration = (0..workers)
        .map(|worker| runtime.worker_total_busy_duration(worker))
        .sum();
    let parks: u64 = (0..workers)
        .map(|worker| runtime.worker_park_count(worker))
        .sum();
    metrics::gauge!("tokio_worker_busy_seconds_total").set(busy.as_secs_f64());
    metrics::counter!("tokio_worker_parks_total").absolute(parks);
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times: fixed at 100 by the kernel's ABI.
const USER_HZ: f64 = 100.0;

struct Process {
    cpu_ticks: u64,
    resident_bytes: u64,
    virtual_bytes: u64,
    /// Absent when `/proc/stat` gives no boot time.
    start_time_seconds: Option<f64>,
    threads: u64,
    open_fds: u64,
    max_fds: Option<u64>,
}

impl Process {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name, in parentheses, may hold spaces: fields are counted after it.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
        let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
        let cpu_ticks = ticks(11)? + ticks(12)?;
        // starttime, the 22nd field: ticks from the boot to the process's start.
        let start_time_seconds = boot_time_seconds()
            .zip(ticks(19))
            .map(|(boot, started)| boot as f64 + started as f64 / USER_HZ);
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let status_value = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        };
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        let max_fds = limits.as_deref().and_then(|limits| {
            limits
                .lines()
                .find_map(|line| line.strip_prefix("Max open files"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        Some(Self {
            cpu_ticks,
            resident_bytes: status_value("VmRSS:")? * 1024,
            virtual_bytes: status_value("VmSize:")? * 1024,
            start_time_seconds,
            threads: status_value("Threads:")?,
            open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as u64,
            max_fds,
        })
    }
}

/// When the machine booted, in seconds since the Unix epoch (`btime` of `/proc/stat`): read once,
/// as it does not change while the process runs.
fn boot_time_seconds() -> Option<u64> {
    static BOOT_TIME: OnceLock<Option<u64>> = OnceLock::new();
    *BOOT_TIME.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    })
}
