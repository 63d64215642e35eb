//! The web console in a real browser against the real fleet: the Playwright scenarios of
//! `clients/web/e2e` (playwright-core driving Debian's Chromium, axe on every page) run as a
//! child process against a gateway serving the built console, and must all pass. The access
//! token lives 10 seconds here, so every scenario also crosses renewals. Screenshots of every
//! page land in `<target>/debug/console-e2e`. The chat's scenario with a model runs against a
//! second fleet whose agent-runner asks the testkit's local streaming LLM (its screenshots in
//! `console-e2e-llm`): the first fleet has no LLM, as the other scenarios expect.
//!
//! Needs node, `clients/web/node_modules` and a built `clients/web/dist` (`make test` builds
//! it) and Chromium (`make setup`); without them the test says SKIPPED, and under CI fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sankalpa_testkit::clients;

use sqlx::PgPool;

const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(10);
/// The operators' admin auth creates at start: the one user who may read the dashboard.
const OPERATOR: &str = "operator@example.com";
const OPERATOR_PASSWORD: &str = "operator password";

/// What the suite needs, or `None` (said, and failing under CI) when something is missing.
fn tools() -> Option<PathBuf> {
    let web = clients::client_dir("web");
    let chromium =
        std::env::var("SANKALPA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    clients::tools_present(&[
        (
            web.join("node_modules/playwright-core").exists(),
            "clients/web/node_modules is missing (make setup runs npm ci there)",
        ),
        (
            web.join("dist/index.html").exists(),
            "clients/web/dist is not built (make test builds it: npm run build)",
        ),
        (
            Path::new(&chromium).exists(),
            "chromium is not installed (make setup installs it)",
        ),
    ])
    .then_some(web)
}

/// Beside the test binaries (`<target>/debug/<folder>`), never in the repository.
fn artifacts_dir(folder: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.ancestors()
        .nth(2)
        .expect("the test binary lives in <target>/<profile>/deps")
        .join(folder)
}

/// The fleet's warnings in the test's output while the guard lives: the services run on this
/// thread, and when a scenario fails in CI these lines say what a service refused or could not
/// do.
fn print_warnings() -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_test_writer()
            .finish(),
    )
}

/// The scenarios' fleet, serving the console, with `llm` for agent-runner.
async fn start_fleet(
    pool: PgPool,
    web: &Path,
    llm: Option<sankalpa_agent_runner::llm::LlmConfig>,
) -> (sankalpa_testkit::Fleet, sankalpa_testkit::Leftovers) {
    let dist = web.join("dist");
    clients::start_fleet(
        pool,
        sankalpa_testkit::FleetOptions {
            configure_auth: |auth: &mut sankalpa_auth::Config| {
                auth.access_token_ttl = ACCESS_TOKEN_TTL;
                auth.bootstrap_admin = Some(sankalpa_auth::BootstrapAdmin {
                    email: OPERATOR.into(),
                    password: OPERATOR_PASSWORD.into(),
                    tenant_name: "platform".into(),
                });
            },
            configure_gateway: move |gateway: &mut sankalpa_gateway::Config| {
                gateway.console_dir = Some(dist);
                // Points every second, so the dashboard's charts fill within the scenario.
                gateway.dashboard_sample = Duration::from_secs(1);
                clients::open_limits(gateway);
            },
            marketplace: true,
            // The webhooks page's scenario delivers to a receiver on 127.0.0.1: the triggers
            // service's test defaults allow http to the loopback.
            triggers: true,
            llm,
        },
    )
    .await
}

/// Runs `e2e/run.mjs` against `fleet` with `env` added, its screenshots in `folder`; passes
/// when every scenario does.
async fn run_scenarios(
    web: &Path,
    fleet: &sankalpa_testkit::Fleet,
    folder: &str,
    env: &[(&str, &str)],
) {
    let artifacts = artifacts_dir(folder);
    let ttl = ACCESS_TOKEN_TTL.as_secs().to_string();
    let url = fleet.gateway.http_url();
    let mut vars = vec![
        ("SANKALPA_CONSOLE_URL", url.as_str()),
        (
            "SANKALPA_E2E_ARTIFACTS",
            artifacts.to_str().expect("a UTF-8 path"),
        ),
        ("SANKALPA_E2E_ACCESS_TTL_SECONDS", ttl.as_str()),
        ("SANKALPA_E2E_OPERATOR_EMAIL", OPERATOR),
        ("SANKALPA_E2E_OPERATOR_PASSWORD", OPERATOR_PASSWORD),
    ];
    vars.extend_from_slice(env);
    let output = clients::run_node(web, &["e2e/run.mjs"], &vars).await;
    println!("console e2e: screenshots in {}", artifacts.display());
    assert!(
        output.status.success(),
        "the console's browser scenarios failed ({})",
        output.status
    );
    let shots = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "png"))
        })
        .count();
    assert!(
        shots > 0,
        "no screenshot was saved in {}",
        artifacts.display()
    );
}

#[sqlx::test(migrations = false)]
async fn the_console_passes_its_browser_scenarios_against_the_fleet(pool: PgPool) {
    let Some(web) = tools() else { return };
    let _warnings = print_warnings();
    let (fleet, _leftovers) = start_fleet(pool, &web, None).await;
    run_scenarios(&web, &fleet, "console-e2e", &[]).await;
}

/// The words the model writes, a piece every [`LLM_PAUSE`]: long enough to be seen growing.
const LLM_REPLY: &str = "I will build your shop backend: a database schema for products, \
    orders and customers, a backend with its API, and tests. Confirm to run the plan.";
const LLM_PAUSE: Duration = Duration::from_millis(120);

/// The chat's scenario with a model: a fleet whose agent-runner has a local streaming LLM, and
/// only the scenarios that need one (`SANKALPA_E2E_LLM`).
#[sqlx::test(migrations = false)]
async fn the_chat_streams_a_models_reply_into_the_page(pool: PgPool) {
    let Some(web) = tools() else { return };
    let _warnings = print_warnings();
    let pieces = LLM_REPLY.split_inclusive(' ').map(str::to_owned).collect();
    let llm = sankalpa_testkit::llm::StreamingLlm::start(pieces, LLM_PAUSE)
        .await
        .unwrap();
    let (fleet, _leftovers) = start_fleet(pool, &web, Some(llm.config())).await;
    run_scenarios(
        &web,
        &fleet,
        "console-e2e-llm",
        &[
            ("SANKALPA_E2E_LLM_REPLY", LLM_REPLY),
            ("SANKALPA_E2E_ONLY", "with a streaming model"),
        ],
    )
    .await;
}
