//! What the gateway's `/metrics` exports besides its own: the standard process metrics every
//! service shares (the kit's ops module).

use sqlx::PgPool;

use crate::helpers::spawn_app;

/// The value of the unlabelled sample `name` in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} is exported:\n{text}"))
        .trim()
        .parse()
        .unwrap_or_else(|err| panic!("{name} is a number: {err}"))
}

#[sqlx::test(migrations = false)]
async fn metrics_export_the_standard_process_metrics_with_plausible_values(pool: PgPool) {
    let app = spawn_app(pool).await;

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let resident = sample(&text, "process_resident_memory_bytes");
    let virtual_memory = sample(&text, "process_virtual_memory_bytes");
    assert!(resident > 1_000_000.0, "{resident}");
    assert!(virtual_memory >= resident, "{virtual_memory} < {resident}");
    assert!(sample(&text, "process_cpu_seconds_total") > 0.0);
    let open = sample(&text, "process_open_fds");
    assert!(open > 3.0, "{open}");
    assert!(sample(&text, "process_max_fds") >= open);
    assert!(sample(&text, "process_threads") >= 1.0);
    let started = sample(&text, "process_start_time_seconds");
    // With its fraction: a process started within this very second reports a start after the
    // whole second.
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    // The test process started before this test, within the last day.
    assert!(
        started <= now && started > now - 86_400.0,
        "{started} vs {now}"
    );
}
