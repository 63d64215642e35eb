//! The VS Code extension (`clients/vscode`) against the real fleet: its node:test suites run as
//! a child process with the gateway's URL in `SANKALPA_GATEWAY_URL`, the logic modules (sign-in
//! and refresh, an API key, an agent on a selection, security_scanner's SARIF as ranges, a
//! generated project written into a folder, a run's events, cancel, approve) and the editor
//! layer on a stand-in `vscode` module (VS Code itself cannot be downloaded here). Access tokens
//! live 10 seconds, so sessions cross renewals. Every test must pass and none may be skipped.
//!
//! Needs node and `clients/vscode/node_modules` (`make setup`); without them the test says
//! SKIPPED, and under CI fails.

use std::time::Duration;

use sankalpa_testkit::clients;
use sqlx::PgPool;

/// Short, so that the suites cross renewals of the access token.
const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(10);

#[sqlx::test(migrations = false)]
async fn the_extension_passes_its_suites_against_the_fleet(pool: PgPool) {
    let dir = clients::client_dir("vscode");
    if !clients::tools_present(&[(
        dir.join("node_modules/esbuild").exists(),
        "clients/vscode/node_modules is missing (make setup runs npm ci there)",
    )]) {
        return;
    }
    let build = clients::run_node(&dir, &["scripts/build.mjs", "--tests"], &[]).await;
    assert!(build.status.success(), "the tests do not build");

    let (fleet, _leftovers) = clients::start_fleet(
        pool,
        sankalpa_testkit::FleetOptions {
            configure_auth: |auth: &mut sankalpa_auth::Config| {
                auth.access_token_ttl = ACCESS_TOKEN_TTL;
            },
            configure_gateway: clients::open_limits,
            marketplace: false,
            triggers: false,
            llm: None,
        },
    )
    .await;
    let url = fleet.gateway.http_url();
    let ttl = ACCESS_TOKEN_TTL.as_secs().to_string();
    let output = clients::run_node(
        &dir,
        &["--test", "--test-reporter=tap", "dist-test/"],
        &[
            ("SANKALPA_GATEWAY_URL", url.as_str()),
            ("SANKALPA_ACCESS_TTL_SECONDS", ttl.as_str()),
        ],
    )
    .await;
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the extension's suites failed");
    assert!(!report.contains("# SKIP"), "a suite was skipped");
    let passed = report
        .lines()
        .filter(|line| line.trim_start().starts_with("ok "))
        .count();
    // 6 without the fleet, 11 of the logic modules and 11 of the editor layer with it, and the
    // two suites that hold those.
    assert!(passed >= 30, "only {passed} tests passed");
}
