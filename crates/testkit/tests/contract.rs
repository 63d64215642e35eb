//! The fleet's contract as clients that are not ours see it: each gRPC server's reflection and
//! health, asked by Python's grpcio from the venv `scripts/contract-venv.sh` installs (`make
//! setup`).

use std::process::Command;

use serde_json::Value;
use sqlx::PgPool;

use sankalpa_testkit::{Leftovers, Running};

/// Every service that serves gRPC.
struct Fleet {
    /// Each backend with the service it implements.
    backends: Vec<(&'static str, Running)>,
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
        pool,
        infra,
        &auth.grpc_url(),
        &orchestrator.grpc_url(),
        &runner.grpc_url(),
        &objects.join("marketplace").to_string_lossy(),
        |_| {},
    )
    .await
    .unwrap();
    Fleet {
        backends: vec![
            ("sankalpa.v1.AuthService", auth),
            ("sankalpa.v1.MemoryService", memory),
            ("sankalpa.v1.AgentService", runner),
            ("sankalpa.v1.ChainService", orchestrator),
            ("sankalpa.v1.MarketplaceService", market),
        ],
        _leftovers: leftovers,
    }
}

/// The venv's python, or `None` (said, and failing under CI) when it is not installed.
fn contract_python() -> Option<String> {
    let venv = std::env::var("SANKALPA_CONTRACT_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sankalpa-contract-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{venv}/bin/python");
    if std::path::Path::new(&python).exists() {
        Some(python)
    } else {
        sankalpa_testkit::missing_tool(&format!(
            "{python} is missing (make setup runs scripts/contract-venv.sh)"
        ));
        None
    }
}

#[sqlx::test(migrations = false)]
async fn each_grpc_server_reflects_only_what_it_serves_in_v1_and_v1alpha(pool: PgPool) {
    let Some(python) = contract_python() else {
        return;
    };
    let fleet = fleet(pool).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reflect.py");

    for (service, running) in &fleet.backends {
        let address = running.grpc_url().trim_start_matches("http://").to_owned();
        let output = tokio::task::spawn_blocking({
            let (python, service) = (python.clone(), service.to_string());
            move || {
                Command::new(python)
                    .args([script, &address, &service, ""])
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "{service}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();

        let mut expected = vec![
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            service,
        ];
        expected.sort_unstable();
        for version in ["v1", "v1alpha"] {
            assert_eq!(
                report[version]["services"],
                serde_json::json!(expected),
                "{service} {version}"
            );
            for name in &expected {
                assert_eq!(
                    report[version]["resolves"][name], true,
                    "{service} {version}: the file of {name} does not resolve"
                );
            }
        }
        assert_eq!(report["health"][service], "SERVING", "{report}");
        assert_eq!(report["health"][""], "SERVING", "{report}");
    }
}
