//! What the tests of the node clients share: the web console's browser scenarios
//! (`tests/console.rs`) and the VS Code extension's suite (`tests/vscode.rs`) each start a fleet
//! with the limits a scripted user meets opened, check that node and the client's
//! `node_modules` are there, and run a node script against the gateway.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::{Fleet, FleetOptions, Leftovers};

/// `clients/<name>` of the repository.
pub fn client_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../clients")
        .join(name)
}

/// Whether everything `checks` names (with node itself) is there: the first missing thing is
/// said through [`crate::missing_tool`] (failing under CI).
pub fn tools_present(checks: &[(bool, &str)]) -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok();
    let missing = std::iter::once((node, "node is not installed (make setup installs it)"))
        .chain(checks.iter().copied())
        .find(|(present, _)| !present);
    match missing {
        Some((_, message)) => {
            crate::missing_tool(message);
            false
        }
        None => true,
    }
}

/// Opens the gateway's limits a scripted client meets: every scenario registers and signs in
/// from 127.0.0.1 (the limits have their own tests), and a slow Redis answer on two busy cores
/// must not pause sign-in (503) in the middle of one.
pub fn open_limits(gateway: &mut sankalpa_gateway::Config) {
    gateway.rate_limit.anonymous = 1_000_000;
    gateway.rate_limit.authenticated = 1_000_000;
    gateway.rate_limit.login = 1_000_000;
    gateway.rate_limit.login_account = 1_000_000;
    gateway.rate_limit.redis_timeout = Duration::from_secs(2);
}

/// A fleet of its own (prefixes, object folder) for a client's scenarios, with what to clean
/// up after it.
pub async fn start_fleet(
    pool: PgPool,
    options: FleetOptions<
        impl FnOnce(&mut sankalpa_auth::Config),
        impl FnOnce(&mut sankalpa_gateway::Config),
    >,
) -> (Fleet, Leftovers) {
    let name = crate::unique_name();
    let infra = crate::infra(&name);
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let leftovers = Leftovers::new(&infra, vec![objects.clone()]);
    let fleet = Fleet::start_with(pool, &infra, &objects.to_string_lossy(), options)
        .await
        .expect("the fleet starts");
    (fleet, leftovers)
}

/// Runs `node args` in `dir` with `env`, off the test's runtime threads (the fleet keeps
/// serving while it waits), printing what it wrote and how long it took; killed if the test
/// ends first.
pub async fn run_node(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    println!(
        "node {}: {:.1} s, {}",
        args.join(" "),
        started.elapsed().as_secs_f64(),
        output.status
    );
    output
}
