//! The fleet's contract as clients that are not ours see it: each gRPC server's reflection and
//! health, asked by Python's grpcio, and the REST API checked against its OpenAPI document by
//! schemathesis. Both tools come from the venv `scripts/contract-venv.sh` installs (`make setup`).

use std::process::Command;

use serde_json::Value;
use sqlx::PgPool;

use sankalpa_testkit::{Leftovers, Running};

/// Every service, and a gateway in front of them.
struct Fleet {
    gateway: Running,
    /// Each backend with the services it implements.
    backends: Vec<(&'static [&'static str], Running)>,
    _leftovers: Leftovers,
}

async fn fleet(pool: PgPool) -> Fleet {
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let leftovers = Leftovers::new(&infra, vec![objects.clone()]);
    let objects_url = objects.to_string_lossy().into_owned();
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let memory_objects = objects.join("memory").to_string_lossy().into_owned();
    let memory =
        sankalpa_testkit::spawn_memory(pool.clone(), infra.clone(), &auth.grpc_url(), |config| {
            config.object_store_url = memory_objects;
        })
        .await
        .unwrap();
    let runner = sankalpa_testkit::spawn_agent_runner(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        &objects_url,
        |_| {},
    )
    .await
    .unwrap();
    let orchestrator = sankalpa_testkit::spawn_chain_orchestrator(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        &runner.grpc_url(),
        |_| {},
    )
    .await
    .unwrap();
    let market = sankalpa_testkit::spawn_marketplace(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        &orchestrator.grpc_url(),
        &runner.grpc_url(),
        &objects.join("marketplace").to_string_lossy(),
        |_| {},
    )
    .await
    .unwrap();
    let chains_url = orchestrator.grpc_url();
    let triggers =
        sankalpa_testkit::spawn_triggers(pool, infra.clone(), &auth.grpc_url(), |config| {
            config.chains_url = chains_url;
        })
        .await
        .unwrap();
    let urls = [
        auth.grpc_url(),
        memory.grpc_url(),
        runner.grpc_url(),
        orchestrator.grpc_url(),
        market.grpc_url(),
        triggers.grpc_url(),
    ];
    let gateway = sankalpa_testkit::spawn_gateway(infra, move |config| {
        let [auth, memory, agents, chains, market, triggers] = urls;
        config.auth_url = auth;
        config.memory_url = memory;
        config.agents_url = agents;
        config.chains_url = chains;
        config.marketplace_url = market;
        config.triggers_url = triggers;
        // Schemathesis sends thousands of requests a minute; the limits have tests of their own.
        config.rate_limit.anonymous = 1_000_000;
        config.rate_limit.authenticated = 1_000_000;
        config.rate_limit.login = 1_000_000;
        config.rate_limit.login_account = 1_000_000;
        config.rate_limit.trigger = 1_000_000;
    })
    .await
    .unwrap();
    Fleet {
        gateway,
        backends: vec![
            (&["sankalpa.v1.AuthService"], auth),
            (&["sankalpa.v1.MemoryService"], memory),
            (&["sankalpa.v1.AgentService"], runner),
            (&["sankalpa.v1.ChainService"], orchestrator),
            (&["sankalpa.v1.MarketplaceService"], market),
            (
                &[
                    "sankalpa.v1.WebhookService",
                    "sankalpa.v1.ScheduleService",
                    "sankalpa.v1.InboundTriggerService",
                    "sankalpa.v1.WebhookReceiverService",
                ],
                triggers,
            ),
        ],
        _leftovers: leftovers,
    }
}

#[sqlx::test(migrations = false)]
async fn each_grpc_server_reflects_only_what_it_serves_in_v1_and_v1alpha(pool: PgPool) {
    let Some(python) = sankalpa_testkit::venv_tool("python") else {
        return;
    };
    let fleet = fleet(pool).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reflect.py");

    for (services, running) in &fleet.backends {
        let address = running.grpc_url().trim_start_matches("http://").to_owned();
        let output = tokio::task::spawn_blocking({
            let python = python.clone();
            let mut args = vec![script.to_owned(), address];
            args.extend(services.iter().map(|service| (*service).to_owned()));
            args.push(String::new());
            move || Command::new(python).args(args).output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "{services:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();

        let mut expected = vec![
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ];
        expected.extend_from_slice(services);
        expected.sort_unstable();
        for version in ["v1", "v1alpha"] {
            assert_eq!(
                report[version]["services"],
                serde_json::json!(expected),
                "{services:?} {version}"
            );
            for name in &expected {
                assert_eq!(
                    report[version]["resolves"][name], true,
                    "{services:?} {version}: the file of {name} does not resolve"
                );
            }
        }
        for service in *services {
            assert_eq!(report["health"][service], "SERVING", "{report}");
        }
        assert_eq!(report["health"][""], "SERVING", "{report}");
    }
}

/// Schemathesis over every operation of `/openapi.json` (but the streams, see
/// `tests/schemathesis.toml`), every check, the stateful phase on, as a fresh tenant's admin
/// holding an API key too: a fixed seed, then a random one printed for replay
/// (`SANKALPA_SCHEMATHESIS_SEED` replays it).
#[sqlx::test(migrations = false)]
async fn the_rest_api_keeps_its_openapi_contract_under_schemathesis(pool: PgPool) {
    let Some(python) = sankalpa_testkit::venv_tool("python") else {
        return;
    };
    let fleet = fleet(pool).await;
    let base = fleet.gateway.http_url();
    let random: u64 = std::env::var("SANKALPA_SCHEMATHESIS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| u64::from(uuid::Uuid::new_v4().as_fields().0));
    println!("schemathesis seeds: 17 and {random} (SANKALPA_SCHEMATHESIS_SEED={random} replays)");

    for seed in [17, random] {
        // Each run as a new tenant's admin: a run may revoke what it was given (a role change
        // of its own user ends its tokens).
        let (token, key) = admin_with_key(&fleet).await;
        let st = std::path::Path::new(&python).with_file_name("schemathesis");
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
        let args = [
            "--no-color".to_owned(),
            "--config-file".to_owned(),
            config.to_owned(),
            "run".to_owned(),
            format!("{base}/openapi.json"),
            "--phases=examples,coverage,fuzzing,stateful".to_owned(),
            format!("--max-examples={SCHEMATHESIS_EXAMPLES}"),
            format!("--seed={seed}"),
            // One worker: Python 3.11's parser is not thread-safe where hypothesis describes its
            // strategies ("AST constructor recursion depth mismatch"), and one is reproducible.
            "--workers=1".to_owned(),
            "--request-timeout=10".to_owned(),
            format!("--header=Authorization: Bearer {token}"),
            format!("--header=X-API-Key: {key}"),
        ];
        // Schemathesis keeps a cache in its working directory: a temporary one, not the tree.
        let workdir = std::env::temp_dir();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(st).args(args).current_dir(workdir).output()
        })
        .await
        .unwrap()
        .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis (seed {seed}) found failures:\n{report}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Test cases per operation and phase: enough to try every bound, few enough for CI's two cores.
const SCHEMATHESIS_EXAMPLES: u32 = 10;

/// A new tenant's admin: its access token, and an API key it made through the gateway.
async fn admin_with_key(fleet: &Fleet) -> (String, String) {
    let mut auth = sankalpa_proto::v1::auth_service_client::AuthServiceClient::connect(
        fleet.backends[0].1.grpc_url(),
    )
    .await
    .unwrap();
    let admin = sankalpa_testkit::sign_up(&mut auth, "schemathesis").await;
    let created = reqwest::Client::new()
        .post(format!("{}/api/keys", fleet.gateway.http_url()))
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({"name": "schemathesis"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let key: Value = created.json().await.unwrap();
    (admin.token, key["secret"].as_str().unwrap().to_owned())
}
