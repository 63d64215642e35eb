//! Chain runs through a `kill -9` of the chain orchestrator, then of agent-runner, then of
//! memory, each a child process restarted a second later on the same addresses, as a rolling
//! upgrade or a lost node would do it: every run completes with every step's output saved in
//! memory, no step's agent runs twice, every run event is published once, and runs submitted
//! while agent-runner is down are accepted.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use sankalpa_testkit::process::{Ports, ServiceProcess, binary, infra_env};
use sankalpa_testkit::{Events, infra, sign_up, unique_name};
use serde_json::json;
use tonic::transport::Channel;

const RUNS_BEFORE: usize = 60;
const RUNS_DURING: usize = 10;
const STEPS: usize = 3;

/// Submits `count` runs of a chain of three hello_world steps, all at once.
async fn submit(chains: &ChainServiceClient<Channel>, token: &str, count: usize) -> Vec<String> {
    let definition = json!({"agents": vec!["hello_world"; STEPS]}).to_string();
    let submissions = (0..count).map(|n| {
        let mut chains = chains.clone();
        let request = sankalpa_kit::auth::with_bearer(
            pb::ExecuteChainRequest {
                target: Some(pb::execute_chain_request::Target::DefinitionJson(
                    definition.clone(),
                )),
                input_json: json!({"name": format!("run {n}")}).to_string(),
                ..Default::default()
            },
            token,
        )
        .expect("a token is metadata");
        async move {
            chains
                .execute_chain(request)
                .await
                .expect("the run is accepted")
                .into_inner()
                .id
        }
    });
    futures::future::join_all(submissions).await
}

#[sqlx::test(migrations = false)]
async fn chain_runs_go_through_their_services_killed_and_restarted(pool: sqlx::PgPool) {
    let name = unique_name();
    let infra = infra(&name);
    let objects = std::env::temp_dir().join(&name);
    // Declared before the services, so dropped after they are killed.
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);
    let common: Vec<(String, String)> = infra_env(&infra, &pool)
        .into_iter()
        .chain([(
            "SANKALPA_OBJECT_STORE_URL".to_owned(),
            objects.to_string_lossy().into_owned(),
        )])
        .collect();
    let with = |extra: Vec<(String, String)>| common.iter().cloned().chain(extra).collect();

    let auth_ports = Ports::new();
    let _auth = ServiceProcess::start(
        binary("sankalpa-auth"),
        with(auth_ports.env("AUTH")),
        auth_ports.ready_url(),
    )
    .await;
    let auth_url = ("SANKALPA_AUTH_URL".to_owned(), auth_ports.grpc_url());
    let memory_ports = Ports::new();
    let mut memory = ServiceProcess::start(
        binary("sankalpa-memory"),
        with(
            [
                memory_ports.env("MEMORY"),
                vec![
                    auth_url.clone(),
                    (
                        "SANKALPA_REDIS_KEY_PREFIX".to_owned(),
                        format!("test:{name}:"),
                    ),
                ],
            ]
            .concat(),
        ),
        memory_ports.ready_url(),
    )
    .await;
    let memory_url = ("SANKALPA_MEMORY_URL".to_owned(), memory_ports.grpc_url());
    let agents_ports = Ports::new();
    let mut runner = ServiceProcess::start(
        binary("sankalpa-agent-runner"),
        with(
            [
                agents_ports.env("AGENTS"),
                vec![auth_url.clone(), memory_url.clone()],
            ]
            .concat(),
        ),
        agents_ports.ready_url(),
    )
    .await;
    let chains_ports = Ports::new();
    let mut orchestrator = ServiceProcess::start(
        binary("sankalpa-chain-orchestrator"),
        with(
            [
                chains_ports.env("CHAINS"),
                vec![
                    auth_url,
                    memory_url,
                    ("SANKALPA_AGENTS_URL".to_owned(), agents_ports.grpc_url()),
                    ("SANKALPA_CHAINS_LEASE_MS".to_owned(), "1500".to_owned()),
                    (
                        "SANKALPA_CHAINS_CLAIM_INTERVAL_MS".to_owned(),
                        "100".to_owned(),
                    ),
                    (
                        "SANKALPA_CHAINS_CATALOG".to_owned(),
                        concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog/chains").to_owned(),
                    ),
                ],
            ]
            .concat(),
        ),
        chains_ports.ready_url(),
    )
    .await;

    let mut auth = AuthServiceClient::connect(auth_ports.grpc_url())
        .await
        .expect("auth accepts connections");
    let signed_in = sign_up(&mut auth, "Ada").await;
    let token = signed_in.token;
    let chains = ChainServiceClient::connect(chains_ports.grpc_url())
        .await
        .expect("the orchestrator accepts connections");
    let mut runs = submit(&chains, &token, RUNS_BEFORE).await;

    // Halfway: most of the runs are still going.
    orchestrator.kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    orchestrator.restart().await;
    runner.kill().await;
    // While agent-runner is down, the restarted orchestrator still accepts runs.
    let mut chains = ChainServiceClient::connect(chains_ports.grpc_url())
        .await
        .expect("the restarted orchestrator accepts connections");
    runs.extend(submit(&chains, &token, RUNS_DURING).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    runner.restart().await;
    // Then memory, while steps complete and save their outputs.
    memory.kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    memory.restart().await;

    // Every run completes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for id in &runs {
        loop {
            let request =
                sankalpa_kit::auth::with_bearer(pb::GetRunRequest { id: id.clone() }, &token)
                    .expect("a token is metadata");
            let run = chains
                .get_run(request)
                .await
                .expect("the run can be read")
                .into_inner();
            match run.status() {
                pb::ChainRunStatus::Completed => {
                    // No step needed a second attempt, and every output reached memory: the
                    // outages were waited out.
                    for step in &run.steps {
                        assert_eq!(step.attempts, 1, "run {id}, step {}", step.id);
                        assert_eq!(step.warning, "", "run {id}, step {}", step.id);
                    }
                    break;
                }
                pb::ChainRunStatus::Failed | pb::ChainRunStatus::Cancelled => {
                    panic!("run {id} ended {:?}: {:?}", run.status(), run.error)
                }
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} did not complete: {run:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // agent-runner stored each step's run under the id of its first attempt and no other (an
    // outcome is stored after its answer is sent, so a kill -9 in between may leave one out).
    let stored: Vec<String> = sqlx::query_scalar("SELECT run_id FROM agents.runs")
        .fetch_all(&pool)
        .await
        .expect("agent-runner's stored runs can be read");
    let expected: HashSet<String> = runs
        .iter()
        .flat_map(|run| {
            // The short form's step ids: the agent's name, then `_2`, `_3` for its repeats.
            (1..=STEPS).map(move |step| match step {
                1 => format!("{run}-hello_world-1"),
                _ => format!("{run}-hello_world_{step}-1"),
            })
        })
        .collect();
    let unexpected: Vec<&String> = stored.iter().filter(|id| !expected.contains(*id)).collect();
    assert!(
        unexpected.is_empty(),
        "agent runs nobody asked for: {unexpected:?}"
    );
    assert!(
        stored.len() + 2 >= expected.len(),
        "{} of {} step runs stored",
        stored.len(),
        expected.len()
    );

    // Every event of every run was published once.
    let mut events = Events::read(&infra, "chains.>").await;
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    while let Some((_, event)) = events.next_within(Duration::from_secs(2)).await {
        let run = event.data["run_id"].as_str().unwrap_or_default().to_owned();
        let step = event.data["step_id"].as_str().unwrap_or_default();
        *seen
            .entry((run, format!("{} {step}", event.kind)))
            .or_default() += 1;
    }
    for run in &runs {
        for (action, count) in seen.range((run.clone(), String::new())..) {
            if &action.0 != run {
                break;
            }
            let waiting = action.1.starts_with("sankalpa.chains.step.waiting");
            assert!(
                *count == 1 || waiting,
                "run {run}: {} published {count} times",
                action.1
            );
            assert!(
                !action.1.contains("failed"),
                "run {run}: {} was published",
                action.1
            );
        }
        let per_run = |kind: &str| {
            seen.iter()
                .filter(|((id, action), _)| id == run && action.starts_with(kind))
                .count()
        };
        assert_eq!(per_run("sankalpa.chains.run.completed"), 1, "run {run}");
        assert_eq!(per_run("sankalpa.chains.step.started"), STEPS, "run {run}");
        assert_eq!(
            per_run("sankalpa.chains.step.completed"),
            STEPS,
            "run {run}"
        );
    }
}
