//! A rolling restart of the whole fleet under load fails nothing. Two replicas of every service
//! run as child processes, each client given both of its peers' addresses (as a headless
//! Service's name would give them) and the load spread over both gateways, skipping one whose
//! `/readyz` says it is leaving, as a Kubernetes Service does. Both replicas of agent-runner and
//! of memory carry a fair share of their calls. While the load runs, one replica
//! of each service in turn gets SIGTERM and a new one starts in its place: no request fails and
//! every chain run completes. Then one replica of each backend service is killed with SIGKILL
//! and restarted: only what was in flight on it may fail, and every chain run still completes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sankalpa_kit::exposition::Samples;
use sankalpa_testkit::process::{Ports, ServiceProcess, binary, free_port, infra_env};
use sankalpa_testkit::{infra, sign_up_through_gateway, unique_name};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Requests in flight at once, spread over both gateways.
const CONCURRENCY: usize = 6;

/// Two replicas of one backend service.
struct Pair {
    variable: &'static str,
    ports: [Ports; 2],
    processes: Vec<ServiceProcess>,
}

impl Pair {
    fn new(variable: &'static str) -> Self {
        Self {
            variable,
            ports: [Ports::new(), Ports::new()],
            processes: Vec::new(),
        }
    }

    /// Both replicas' gRPC addresses: what a peer is told.
    fn url(&self) -> String {
        format!("{},{}", self.ports[0].grpc_url(), self.ports[1].grpc_url())
    }

    async fn start(&mut self, binary_name: &str, env: &[(String, String)]) {
        for ports in &self.ports {
            let env = env
                .iter()
                .cloned()
                .chain(ports.env(self.variable))
                .collect();
            self.processes
                .push(ServiceProcess::start(binary(binary_name), env, ports.ready_url()).await);
        }
    }
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    failures: Mutex<Vec<String>>,
    runs: Mutex<Vec<String>>,
}

/// Calls through whichever gateway is ready, round robin, until `stop`.
async fn load(
    http: reqwest::Client,
    gateways: Arc<[String; 2]>,
    ready: Arc<[AtomicBool; 2]>,
    token: String,
    worker: usize,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let mut turn = worker;
    while !stop.load(Ordering::SeqCst) {
        turn += 1;
        let Some(gateway) = (0..2)
            .map(|offset| (turn + offset) % 2)
            .find(|at| ready[*at].load(Ordering::SeqCst))
        else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let base = &gateways[gateway];
        let (path, body) = match turn % 4 {
            0 => (
                "/api/agents/execute",
                json!({"agent": "hello_world", "input": {"name": format!("w{worker}")}}),
            ),
            1 => (
                "/api/memory/save",
                json!({"session_id": format!("rolling-{worker}"), "key": "turn", "value": turn}),
            ),
            2 => (
                "/api/memory/load",
                json!({"session_id": format!("rolling-{worker}"), "key": "turn"}),
            ),
            _ => (
                "/api/chains/execute",
                json!({"definition": {"agents": ["hello_world", "hello_world"]}, "input": {"name": "roll"}}),
            ),
        };
        tally.requests.fetch_add(1, Ordering::SeqCst);
        let answer = http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() => {
                if path == "/api/chains/execute" {
                    let run: Value = answer.json().await.expect("a run is JSON");
                    let id = run["id"].as_str().expect("a run has an id").to_owned();
                    tally.runs.lock().await.push(id);
                }
            }
            // A load of a key not saved yet is a 404 of the API, not a failure.
            Ok(answer) if path == "/api/memory/load" && answer.status() == 404 => {}
            Ok(answer) => {
                let status = answer.status();
                let text = answer.text().await.unwrap_or_default();
                tally
                    .failures
                    .lock()
                    .await
                    .push(format!("{path} via gateway {gateway}: {status} {text}"));
            }
            Err(error) => tally
                .failures
                .lock()
                .await
                .push(format!("{path} via gateway {gateway}: {error}")),
        }
    }
}

/// Keeps `ready` current from each gateway's `/readyz`, as a Kubernetes Service's endpoints are.
async fn watch_readiness(
    http: reqwest::Client,
    gateways: Arc<[String; 2]>,
    ready: Arc<[AtomicBool; 2]>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        for (at, base) in gateways.iter().enumerate() {
            let up = http
                .get(format!("{base}/readyz"))
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .is_ok_and(|answer| answer.status().is_success());
            ready[at].store(up, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RPCs each replica of `pair` has served (its `grpc_server_requests_total`, every method of
/// `service`).
async fn served(http: &reqwest::Client, pair: &Pair, service: &str) -> [f64; 2] {
    let mut counts = [0.0; 2];
    for (count, ports) in counts.iter_mut().zip(&pair.ports) {
        let text = http
            .get(format!("http://127.0.0.1:{}/metrics", ports.http))
            .send()
            .await
            .expect("a replica serves its metrics")
            .text()
            .await
            .expect("metrics are text");
        let samples = Samples::parse(&text, |name| name == "grpc_server_requests_total");
        *count = samples
            .of("grpc_server_requests_total")
            .filter(|(labels, _)| {
                labels
                    .iter()
                    .any(|(key, value)| key == "rpc" && value.starts_with(service))
            })
            .map(|(_, value)| value)
            .sum();
    }
    counts
}

/// Waits until every run in `runs` has completed; fails on the first that ended otherwise.
async fn all_complete(http: &reqwest::Client, base: &str, token: &str, runs: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for id in runs {
        loop {
            let run: Value = http
                .get(format!("{base}/api/chains/runs/{id}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("the gateway answers")
                .json()
                .await
                .expect("a run is JSON");
            match run["status"].as_str() {
                Some("completed") => break,
                Some("failed" | "cancelled") => panic!("run {id} ended: {run:#}"),
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} did not complete: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[sqlx::test(migrations = false)]
async fn a_rolling_restart_of_every_service_fails_no_request(pool: sqlx::PgPool) {
    let name = unique_name();
    let infra = infra(&name);
    let objects = std::env::temp_dir().join(&name);
    // Declared before the services, so dropped after they are killed.
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);

    let mut auth = Pair::new("AUTH");
    let mut memory = Pair::new("MEMORY");
    let mut agents = Pair::new("AGENTS");
    let mut chains = Pair::new("CHAINS");
    let gateway_ports = [free_port(), free_port()];
    let gateways: Arc<[String; 2]> =
        Arc::new(gateway_ports.map(|port| format!("http://127.0.0.1:{port}")));
    let settings = [
        ("SANKALPA_REDIS_KEY_PREFIX", format!("test:{name}:")),
        (
            "SANKALPA_OBJECT_STORE_URL",
            objects.to_string_lossy().into_owned(),
        ),
        ("SANKALPA_AUTH_URL", auth.url()),
        ("SANKALPA_MEMORY_URL", memory.url()),
        ("SANKALPA_AGENTS_URL", agents.url()),
        ("SANKALPA_CHAINS_URL", chains.url()),
        // Shorter than the defaults, so that the test takes seconds: a leaving replica is out
        // of every client's rotation after two probes.
        ("SANKALPA_GRPC_PROBE_MS", "200".to_owned()),
        ("SANKALPA_GRPC_PROBE_TIMEOUT_MS", "500".to_owned()),
        ("SANKALPA_DRAIN_DELAY_MS", "1500".to_owned()),
        // Ten processes share Postgres's 100 connections with the tests running beside them.
        ("SANKALPA_DB_MAX_CONNECTIONS", "4".to_owned()),
        ("SANKALPA_CHAINS_LEASE_MS", "1500".to_owned()),
        ("SANKALPA_CHAINS_CLAIM_INTERVAL_MS", "100".to_owned()),
        (
            "SANKALPA_CHAINS_CATALOG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog/chains").to_owned(),
        ),
        // Generous: the gateway, its rate limit shared in Redis, must not refuse the load.
        ("SANKALPA_RATE_LIMIT_AUTHENTICATED", "1000000".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value));
    let env: Vec<(String, String)> = infra_env(&infra, &pool)
        .into_iter()
        .chain(settings)
        .collect();
    auth.start("sankalpa-auth", &env).await;
    memory.start("sankalpa-memory", &env).await;
    agents.start("sankalpa-agent-runner", &env).await;
    chains.start("sankalpa-chain-orchestrator", &env).await;
    let mut gateway = Vec::new();
    for port in gateway_ports {
        let env = env
            .iter()
            .cloned()
            .chain([(
                "SANKALPA_GATEWAY_ADDR".to_owned(),
                format!("127.0.0.1:{port}"),
            )])
            .collect();
        let ready = format!("http://127.0.0.1:{port}/readyz");
        gateway.push(ServiceProcess::start(binary("sankalpa-gateway"), env, ready).await);
    }

    let token = sign_up_through_gateway(&gateways[0], &format!("{name}@example.com")).await;
    let http = reqwest::Client::new();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new([AtomicBool::new(true), AtomicBool::new(true)]);
    let watcher = tokio::spawn(watch_readiness(
        http.clone(),
        gateways.clone(),
        ready.clone(),
        stop.clone(),
    ));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            tokio::spawn(load(
                http.clone(),
                gateways.clone(),
                ready.clone(),
                token.clone(),
                worker,
                tally.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let settle = || tokio::time::sleep(Duration::from_millis(500));

    // Each replica of a service carries a fair share of the calls made to it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (pair, service) in [
        (&agents, "/sankalpa.v1.AgentService/"),
        (&memory, "/sankalpa.v1.MemoryService/"),
    ] {
        let [first, second] = served(&http, pair, service).await;
        let share = first / (first + second);
        assert!(
            first + second >= 100.0 && (0.25..=0.75).contains(&share),
            "{service}: the replicas served {first} and {second} calls"
        );
    }

    // The rolling restart: each replica of each service in turn, as a Deployment with
    // maxUnavailable 1 does it.
    for pair in [&mut auth, &mut memory, &mut agents, &mut chains] {
        for replica in &mut pair.processes {
            replica.terminate().await;
            replica.restart().await;
            settle().await;
        }
    }
    for replica in &mut gateway {
        replica.terminate().await;
        replica.restart().await;
        settle().await;
    }
    let requests_rolling = tally.requests.load(Ordering::SeqCst);
    let failures_rolling = std::mem::take(&mut *tally.failures.lock().await);
    assert!(
        failures_rolling.is_empty(),
        "{} of {requests_rolling} requests failed during the rolling restart: {failures_rolling:#?}",
        failures_rolling.len()
    );
    assert!(
        requests_rolling > 200,
        "the load ran: {requests_rolling} requests"
    );

    // A lost replica of each backend service: only calls in flight on it may fail.
    for pair in [&mut auth, &mut memory, &mut agents, &mut chains] {
        let replica = &mut pair.processes[0];
        replica.kill().await;
        settle().await;
        replica.restart().await;
        settle().await;
    }
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a load worker ends");
    }
    watcher.await.expect("the readiness watcher ends");
    let failures_killed = tally.failures.lock().await.clone();
    assert!(
        failures_killed.len() <= 4 * CONCURRENCY,
        "more requests failed than were in flight on the killed replicas: {failures_killed:#?}"
    );

    let runs = tally.runs.lock().await.clone();
    assert!(runs.len() > 20, "chain runs were submitted: {}", runs.len());
    all_complete(&http, &gateways[0], &token, &runs).await;
}
