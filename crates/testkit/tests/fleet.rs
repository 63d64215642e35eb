//! The fleet as a whole: properties no single service shows alone.

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn one_trace_runs_from_the_gateway_through_grpc_to_the_nats_event(pool: PgPool) {
    sankalpa_testkit::init_tracing();
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let memory = sankalpa_testkit::spawn_memory(pool, infra.clone(), &auth.grpc_url(), |config| {
        config.object_store_url = objects.to_string_lossy().into_owned();
    })
    .await
    .unwrap();
    let gateway = sankalpa_testkit::spawn_gateway(infra.clone(), |config| {
        config.auth_url = auth.grpc_url();
        config.memory_url = memory.grpc_url();
    })
    .await
    .unwrap();
    let base = gateway.http_url();
    let http = reqwest::Client::new();
    let token = &sankalpa_testkit::sign_up_through_gateway(&base, "ada@example.com").await;

    let mut events = sankalpa_testkit::Events::read(&infra, "memory.>").await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let saved = http
        .post(format!("{base}/api/memory/save"))
        .bearer_auth(token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"session_id": "traced", "key": "plan", "value": [1, 2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);

    let event = events.next_message().await;
    let traceparent = event
        .headers
        .as_ref()
        .and_then(|headers| headers.get("traceparent"))
        .map(|value| value.as_str().to_owned())
        .expect("the event carries trace context");
    // The caller's trace id, carried by the gateway over gRPC to memory and by memory onto NATS;
    // the span id is memory's own.
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
}

/// The scale-out proof, on one machine: two gateways, two agent-runners and two
/// orchestrators on one Postgres, Redis and NATS; 200 chains submitted through both gateways;
/// one orchestrator killed halfway.
#[sqlx::test(migrations = false)]
async fn a_fleet_of_two_of_each_finishes_every_run_exactly_once_when_an_orchestrator_dies(
    pool: PgPool,
) {
    const RUNS: usize = 200;
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let replica = |instance: &str| {
        let mut infra = infra.clone();
        infra.instance = instance.to_owned();
        infra
    };
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);
    let objects_url = objects.to_string_lossy().into_owned();
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let mut runners = Vec::new();
    for instance in ["runner-a", "runner-b"] {
        runners.push(
            sankalpa_testkit::spawn_agent_runner(
                pool.clone(),
                replica(instance),
                &auth.grpc_url(),
                &objects_url,
                |_| {},
            )
            .await
            .unwrap(),
        );
    }
    let runners_url = format!("{},{}", runners[0].grpc_url(), runners[1].grpc_url());
    let mut orchestrators = Vec::new();
    for instance in ["orchestrator-a", "orchestrator-b"] {
        orchestrators.push(
            sankalpa_testkit::spawn_chain_orchestrator(
                pool.clone(),
                replica(instance),
                &auth.grpc_url(),
                &runners_url,
                // Submissions are answered once committed, faster than runs finish: all of
                // them may be unfinished at once, and the tenant's quota is not under test.
                |config| config.max_concurrent_runs_per_tenant = RUNS as u64,
            )
            .await
            .unwrap(),
        );
    }
    // Each gateway talks to its own orchestrator; both share the rate-limit counters in Redis.
    let redis_key_prefix = format!("test:{name}:");
    let mut gateways = Vec::new();
    for orchestrator in &orchestrators {
        let (auth_url, agents_url, chains_url) = (
            auth.grpc_url(),
            runners_url.clone(),
            orchestrator.grpc_url(),
        );
        let prefix = redis_key_prefix.clone();
        gateways.push(
            sankalpa_testkit::spawn_gateway(infra.clone(), move |config| {
                config.auth_url = auth_url;
                config.agents_url = agents_url;
                config.chains_url = chains_url;
                config.redis_key_prefix = prefix;
                config.rate_limit.anonymous = 10;
                config.rate_limit.authenticated = 100_000;
            })
            .await
            .unwrap(),
        );
    }
    let urls: Vec<String> = gateways.iter().map(|gateway| gateway.http_url()).collect();
    let http = reqwest::Client::new();

    // The anonymous limit is 10 per window for the fleet, not per gateway.
    let mut anonymous = Vec::new();
    for attempt in 0..12 {
        let status = http
            .get(format!("{}/api/status", urls[attempt % 2]))
            .send()
            .await
            .unwrap()
            .status();
        anonymous.push(status.as_u16());
    }
    assert_eq!(
        anonymous.iter().filter(|status| **status == 429).count(),
        2,
        "12 anonymous calls spread over both gateways: {anonymous:?}"
    );

    let token = sankalpa_testkit::sign_up_through_gateway(&urls[1], "ops@example.com").await;
    // Read from the stream, as a JetStream consumer would: a completion re-sent by the relay of
    // the orchestrator that takes over (the killed one published it but could not delete its
    // outbox row) carries the same Nats-Msg-Id and is stored once; a core subscription would
    // see both copies.
    let mut completions = sankalpa_testkit::Events::read(&infra, "chains.*.*.run.completed").await;
    let mut agent_runs =
        sankalpa_testkit::Events::read(&infra, "agents.*.hello_world.completed").await;

    let chain = json!({"steps": [
        {"id": "greet", "agent": "hello_world", "input": {"name": "${input.name}"}},
        {"id": "again", "agent": "hello_world", "needs": ["greet"], "input": {"name": "${input.name}"}},
        {"id": "last", "agent": "hello_world", "needs": ["again"], "input": {"name": "${input.name}"}},
    ]});
    let submissions = (0..RUNS).map(|index| {
        let (http, url, token, chain) = (&http, &urls[index % 2], &token, &chain);
        async move {
            let response = http
                .post(format!("{url}/api/chains/execute"))
                .bearer_auth(token)
                .json(&json!({"definition": chain, "input": {"name": format!("run {index}")}}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
            let run: Value = response.json().await.unwrap();
            run["id"].as_str().unwrap().to_owned()
        }
    });
    let run_ids: Vec<String> = futures::stream::iter(submissions)
        .buffer_unordered(16)
        .collect()
        .await;

    // Halfway, the first orchestrator dies; the second takes its runs over once their leases
    // lapse.
    wait_for_completed(&pool, RUNS / 2).await;
    let through_first: Vec<uuid::Uuid> = run_ids
        .iter()
        .step_by(2)
        .map(|id| id.parse().unwrap())
        .collect();
    orchestrators.remove(0).kill().await;
    let orphaned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chains.chain_runs WHERE id = ANY($1) AND status <> 'completed'",
    )
    .bind(&through_first)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        orphaned > 0,
        "the kill left runs of the first orchestrator unfinished"
    );
    wait_for_completed(&pool, RUNS).await;

    let mut completed_once = std::collections::HashMap::new();
    let run_of = |subject: &str| subject.split('.').nth(3).unwrap().to_owned();
    while completed_once.len() < RUNS {
        let (subject, _) = completions
            .next_within(std::time::Duration::from_secs(10))
            .await
            .expect("every run announced its completion");
        *completed_once.entry(run_of(&subject)).or_insert(0) += 1;
    }
    // Late duplicates would arrive right behind the others.
    while let Some((subject, _)) = completions
        .next_within(std::time::Duration::from_millis(500))
        .await
    {
        *completed_once.entry(run_of(&subject)).or_insert(0) += 1;
    }
    let client = sankalpa_api::client::Client::new(&urls[1])
        .unwrap()
        .with_credential(sankalpa_api::client::Credential::Bearer(token.clone()));
    for run_id in &run_ids {
        assert_eq!(completed_once.get(run_id), Some(&1), "run {run_id}");
        let run = client.run(run_id).await.unwrap();
        assert_eq!(run.status, "completed", "{run:?}");
    }

    let mut runs_by_runner = std::collections::HashMap::<String, usize>::new();
    while let Some((_, event)) = agent_runs
        .next_within(std::time::Duration::from_millis(200))
        .await
    {
        *runs_by_runner.entry(event.source).or_default() += 1;
    }
    assert_eq!(runs_by_runner.len(), 2, "{runs_by_runner:?}");
    assert!(
        runs_by_runner.values().all(|runs| *runs >= RUNS / 4),
        "both agent-runners carried a share of the steps: {runs_by_runner:?}"
    );
}

/// Waits until `count` runs are completed, as Postgres records them.
async fn wait_for_completed(pool: &PgPool, count: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let completed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM chains.chain_runs WHERE status = 'completed'")
                .fetch_one(pool)
                .await
                .unwrap();
        if usize::try_from(completed).unwrap() >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {completed} of {count} runs completed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Metrics the dashboard reads that no Sankalpa service exports: Prometheus's own and the
/// kubelet's (cAdvisor) container metrics.
const SCRAPED_FROM_ELSEWHERE: &[&str] = &[
    "up",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
];

#[sqlx::test(migrations = false)]
async fn every_metric_the_dashboard_reads_is_exported_after_a_smoke_workload(pool: PgPool) {
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);
    let objects_url = objects.to_string_lossy().into_owned();
    let fleet = sankalpa_testkit::Fleet::start(pool.clone(), &infra, &objects_url, |_| {})
        .await
        .unwrap();
    let base = fleet.gateway.http_url();
    let http = reqwest::Client::new();

    // The bench's mix, small: sign-up, memory, a chain with its event stream, a refusal.
    let token = sankalpa_testkit::sign_up_through_gateway(&base, "smoke@example.com").await;
    let refused = http
        .get(format!("{base}/api/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    for path in ["save", "load"] {
        let response = http
            .post(format!("{base}/api/memory/{path}"))
            .bearer_auth(&token)
            .json(&json!({"session_id": "smoke", "key": "k", "value": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let chain =
        json!({"steps": [{"id": "greet", "agent": "hello_world", "input": {"name": "smoke"}}]});
    let run: Value = http
        .post(format!("{base}/api/chains/execute"))
        .bearer_auth(&token)
        .json(&json!({"definition": chain, "input": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = run["id"].as_str().unwrap();
    wait_for_completed(&pool, 1).await;
    let replay = sankalpa_testkit::replay_run_events(&http, &base, &token, run_id).await;
    assert_eq!(
        replay.last().map(|event| &event["type"]),
        Some(&json!("sankalpa.chains.run.completed")),
        "{replay:?}"
    );

    let exported = fleet.metrics().await;
    let dashboard: Value = serde_json::from_str(include_str!(
        "../../../deploy/grafana/sankalpa-dashboard.json"
    ))
    .unwrap();
    let queried = dashboard_metrics(&dashboard);
    assert!(queried.len() > 20, "{queried:?}");
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| !SCRAPED_FROM_ELSEWHERE.contains(&name.as_str()))
        .filter(|name| {
            !exported.lines().any(|line| {
                line.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard reads {missing:?}, which no service exports"
    );
}

/// The metric names the dashboard's queries select (each written `name{labels}`).
fn dashboard_metrics(dashboard: &Value) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for target in panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
    {
        let expr = target["expr"].as_str().unwrap();
        for (index, _) in expr.match_indices('{') {
            let name: String = expr[..index]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}
