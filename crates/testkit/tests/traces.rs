//! Traces and metrics leave the fleet as an operator collects them: over OTLP/gRPC, to a
//! receiver built on the collector's own service definitions. A test binary of its own: it installs this
//! process's telemetry, exporting to its receiver, as each service's `main` does.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use sankalpa_kit::metrics_export::MetricsExporting;
use sankalpa_kit::telemetry::{self, Exporting, Protocol};
use sankalpa_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use serde_json::{Value, json};
use sqlx::PgPool;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const LLM_TRACE_ID: &str = "5cf92f3577b34da6a3ce929d0e0e4737";
// OTLP span kinds.
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

#[sqlx::test(migrations = false)]
async fn a_chain_run_reaches_the_collector_as_one_trace_and_a_dead_collector_slows_nothing(
    pool: PgPool,
) {
    let receiver = OtlpReceiver::start().await;
    let exporting = Exporting {
        endpoint: receiver.endpoint(),
        protocol: Protocol::Grpc,
    };
    let telemetry = telemetry::install(
        "fleet",
        Some(exporting.clone()),
        Some(MetricsExporting {
            target: exporting,
            // Exported when flushed, below.
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
            headers: vec![("x-sankalpa-test".to_owned(), "metrics".to_owned())],
        }),
        false,
    )
    .expect("the first telemetry of this process");

    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);
    let objects_url = objects.to_string_lossy().into_owned();
    let fleet = sankalpa_testkit::Fleet::start(pool, &infra, &objects_url, |config| {
        config.rate_limit.authenticated = 100_000;
    })
    .await
    .unwrap();
    let base = fleet.gateway.http_url();
    let http = reqwest::Client::new();
    let token = sankalpa_testkit::sign_up_through_gateway(&base, "tracer@example.com").await;

    let chain = json!({"steps": [
        {"id": "greet", "agent": "hello_world", "input": {"name": "${input.name}"}},
        {"id": "again", "agent": "hello_world", "needs": ["greet"], "input": {"name": "${input.name}"}},
    ]});
    let started = http
        .post(format!("{base}/api/chains/execute"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({"definition": chain, "input": {"name": "Ada"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let run: Value = started.json().await.unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    wait_until_completed(&http, &base, &token, &run_id).await;
    // The run's events, replayed to a client: the orchestrator relays them from JetStream.
    let replay = sankalpa_testkit::replay_run_events(&http, &base, &token, &run_id).await;
    let completed_event = replay
        .iter()
        .find(|event| event["type"] == "sankalpa.chains.run.completed")
        .unwrap_or_else(|| panic!("the replay ends with the run's completion: {replay:?}"));
    let completed_id = completed_event["id"].as_str().unwrap().to_owned();

    telemetry.flush().await.unwrap();
    let spans = receiver
        .trace(TRACE_ID, Duration::from_secs(15), |spans| {
            named(spans, "POST /api/chains/execute").is_some()
                && spans
                    .iter()
                    .filter(|span| span.name == "chain.step")
                    .count()
                    == 2
                && spans.iter().filter(|span| span.name == "agent_run").count() == 2
                && named(spans, "process sankalpa.chains.run.completed").is_some()
        })
        .await;

    // The gateway continued the caller's trace; the orchestrator's RPC is its child.
    let edge = named(&spans, "POST /api/chains/execute").unwrap();
    assert_eq!(edge.parent_span_id, CALLER_SPAN);
    assert_eq!(edge.service, "fleet");
    assert_eq!(edge.attribute("http.route"), Some("/api/chains/execute"));
    assert_eq!(edge.attribute("http.response.status_code"), Some("202"));
    let execute = spans
        .iter()
        .find(|span| span.name == "sankalpa.v1.ChainService/ExecuteChain" && span.kind == SERVER)
        .unwrap();
    assert_eq!(execute.attribute("rpc.system"), Some("grpc"));
    assert_eq!(execute.attribute("rpc.method"), Some("ExecuteChain"));
    assert!(
        is_descendant(&spans, execute, edge),
        "the RPC's span descends from the gateway's: {spans:#?}"
    );

    // Each step of the run, under the RPC that started it, is the parent of agent-runner's run
    // and of the save of its output in memory.
    let run_span = named(&spans, "chain.run").unwrap();
    assert!(is_descendant(&spans, run_span, execute));
    let steps: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.name == "chain.step")
        .collect();
    let mut step_ids: Vec<&str> = steps
        .iter()
        .map(|step| step.attribute("step_id").unwrap())
        .collect();
    step_ids.sort_unstable();
    assert_eq!(step_ids, ["again", "greet"]);
    for step in steps {
        assert_eq!(step.parent_span_id, run_span.span_id);
        let under_step = |name: &str, kind: i32| {
            spans
                .iter()
                .filter(|span| span.name == name && span.kind == kind)
                .filter(|span| is_descendant(&spans, span, step))
                .count()
        };
        assert_eq!(
            under_step("sankalpa.v1.AgentService/ExecuteAgent", CLIENT),
            1
        );
        assert_eq!(
            under_step("sankalpa.v1.AgentService/ExecuteAgent", SERVER),
            1
        );
        assert_eq!(under_step("agent_run", INTERNAL), 1);
        // Each step's save is alone in its batch here, so the call is in the step's trace.
        assert_eq!(under_step("sankalpa.v1.MemoryService/SaveMany", SERVER), 1);
        let agent_run = spans
            .iter()
            .find(|span| span.name == "agent_run" && is_descendant(&spans, span, step))
            .unwrap();
        let agent_server = spans
            .iter()
            .find(|span| span.span_id == agent_run.parent_span_id)
            .unwrap();
        assert_eq!(agent_server.name, "sankalpa.v1.AgentService/ExecuteAgent");
        assert_eq!(agent_server.kind, SERVER);
    }

    // The run's statements (its submission's, under the RPC; a step's agent asks Postgres for
    // nothing of its own on a first ask, and outcomes and transitions are written in batches),
    // by the database conventions, without their parameters.
    let statements: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.attribute("db.system.name") == Some("postgresql"))
        .filter(|span| is_descendant(&spans, span, execute))
        .collect();
    assert!(
        statements
            .iter()
            .any(|span| span.attribute("db.query.text").unwrap().contains("$1")),
        "no statement with a parameter under {execute:?}"
    );
    for statement in statements {
        assert_eq!(statement.kind, CLIENT);
        let text = statement.attribute("db.query.text").unwrap();
        assert!(!text.contains("Ada"), "a parameter's value is in {text}");
        assert_eq!(
            Some(statement.name.as_str()),
            statement.attribute("db.operation.name")
        );
    }

    // The completion event's relay to the client joins the trace under the event's own span.
    let process = named(&spans, "process sankalpa.chains.run.completed").unwrap();
    assert_eq!(process.kind, CONSUMER);
    assert_eq!(
        process.attribute("messaging.message.id"),
        Some(completed_id.as_str())
    );
    let create = spans
        .iter()
        .find(|span| span.span_id == process.parent_span_id)
        .expect("the consumer's parent is in the trace");
    assert_eq!(create.name, "create sankalpa.chains.run.completed");
    assert_eq!(create.kind, PRODUCER);
    assert_eq!(
        create.attribute("messaging.message.id"),
        Some(completed_id.as_str())
    );
    assert!(is_descendant(&spans, create, run_span));

    // The metrics went to the collector too, as `/metrics` has them.
    let exports = receiver.metric_exports();
    let last = exports.last().expect("the flush exported the metrics");
    assert_eq!(
        last.metadata.get("x-sankalpa-test").map(String::as_str),
        Some("metrics")
    );
    let resource_metrics = &last.request.resource_metrics[0];
    let service = resource_metrics
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|pair| pair.key == "service.name")
        .and_then(|pair| pair.value.as_ref()?.value.clone());
    assert_eq!(
        service,
        Some(
            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                "fleet".to_owned()
            )
        )
    );
    let exported: Vec<&Metric> = resource_metrics
        .scope_metrics
        .iter()
        .flat_map(|scope| &scope.metrics)
        .collect();
    let metric = |name: &str| {
        exported
            .iter()
            .find(|metric| metric.name == name)
            .unwrap_or_else(|| panic!("{name} is exported"))
    };
    let Some(metric::Data::Sum(requests)) = &metric("grpc_server_requests_total").data else {
        panic!("a counter is a sum");
    };
    assert!(requests.is_monotonic);
    let executes: f64 = requests
        .data_points
        .iter()
        .filter(|point| {
            point
                .attributes
                .iter()
                .any(|pair| format!("{:?}", pair.value).contains("ExecuteChain"))
        })
        .filter_map(|point| match point.value {
            Some(number_data_point::Value::AsDouble(value)) => Some(value),
            _ => None,
        })
        .sum();
    assert!(executes >= 1.0, "ExecuteChain was served: {requests:?}");
    let Some(metric::Data::Histogram(durations)) =
        &metric("grpc_server_request_duration_seconds").data
    else {
        panic!("a latency is a histogram");
    };
    assert!(durations.data_points.iter().any(|point| point.count > 0
        && point.bucket_counts.iter().sum::<u64>() == point.count
        && point.bucket_counts.len() == point.explicit_bounds.len() + 1));
    let Some(metric::Data::Gauge(resident)) = &metric("process_resident_memory_bytes").data else {
        panic!("a level is a gauge");
    };
    assert!(matches!(
        resident.data_points[0].value,
        Some(number_data_point::Value::AsDouble(bytes)) if bytes > 0.0
    ));
    // Registered at zero, before anything counted it.
    assert!(matches!(
        metric("otel_metric_export_failures_total").data,
        Some(metric::Data::Sum(_))
    ));

    // A call of a model is a client span under the agent's run, by the GenAI conventions: the
    // model asked and answered and the tokens, never the text.
    let llm = sankalpa_testkit::llm::StreamingLlm::start(vec!["hola".to_owned()], Duration::ZERO)
        .await
        .unwrap();
    let provider = json!({"protocol": "openai", "base_url": llm.base_url, "models": ["m1"]});
    let put = http
        .put(format!("{base}/api/models/providers/acme"))
        .bearer_auth(&token)
        .json(&provider)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let translated = http
        .post(format!("{base}/api/agents/execute"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{LLM_TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({"agent": "text_translator", "model": "acme/m1",
            "input": {"text": "a secret sentence", "target_language": "es"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(translated.status(), 200);
    telemetry.flush().await.unwrap();
    let spans = receiver
        .trace(LLM_TRACE_ID, Duration::from_secs(15), |spans| {
            named(spans, "chat m1").is_some()
        })
        .await;
    let chat = named(&spans, "chat m1").unwrap();
    assert_eq!(chat.kind, CLIENT);
    assert!(is_descendant(
        &spans,
        chat,
        named(&spans, "agent_run").unwrap()
    ));
    assert_eq!(chat.attribute("gen_ai.system"), Some("openai"));
    assert_eq!(chat.attribute("gen_ai.request.model"), Some("m1"));
    assert_eq!(
        chat.attribute("gen_ai.response.model"),
        Some(sankalpa_testkit::llm::MODEL)
    );
    let usage = sankalpa_testkit::llm::USAGE;
    assert_eq!(
        chat.attribute("gen_ai.usage.input_tokens"),
        Some(usage.0.to_string().as_str())
    );
    assert_eq!(
        chat.attribute("gen_ai.usage.output_tokens"),
        Some(usage.1.to_string().as_str())
    );
    assert_eq!(chat.attribute("sankalpa.llm.source"), Some("tenant"));
    assert!(
        !format!("{spans:?}").contains("a secret sentence"),
        "the text asked is in no span"
    );

    // The collector goes away: requests go on as fast as before, the failures are counted.
    let up = latencies(&http, &base, &token, &run_id).await;
    receiver.stop().await;
    let down = latencies(&http, &base, &token, &run_id).await;
    // A flush exports at once: the failure is there to count without waiting for the batch.
    let _ = telemetry.flush().await;
    let (p99_up, p99_down) = (percentile(&up, 0.99), percentile(&down, 0.99));
    eprintln!("p99 of a run read: {p99_up:?} with the collector up, {p99_down:?} with it down");
    // An exporter on the request path would add its connect attempt or export timeout
    // (seconds) to requests; noise on a shared machine stays well under both bounds.
    assert!(
        p99_down <= p99_up * 3 + Duration::from_millis(50),
        "p99 {p99_down:?} with the collector down, {p99_up:?} with it up"
    );
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures = metric_value(&metrics, "otel_span_export_failures_total");
    assert!(failures > 0.0, "{metrics}");
    assert!(metric_value(&metrics, "otel_metric_export_failures_total") > 0.0);
    assert!(metric_value(&metrics, "otel_metric_exports_total") > 0.0);
    assert!(metric_value(&metrics, "otel_spans_exported_total") > 0.0);
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|span| span.name == name)
}

/// Whether `ancestor` is `span`'s parent, or its parent's, and so on.
fn is_descendant(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut current = span;
    loop {
        if current.parent_span_id == ancestor.span_id {
            return true;
        }
        match spans
            .iter()
            .find(|parent| parent.span_id == current.parent_span_id)
        {
            Some(parent) => current = parent,
            None => return false,
        }
    }
}

async fn wait_until_completed(http: &reqwest::Client, base: &str, token: &str, run_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run: Value = http
            .get(format!("{base}/api/chains/runs/{run_id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["status"] == "completed" {
            return;
        }
        assert!(Instant::now() < deadline, "the run did not complete: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The latency of 200 reads of a run through the gateway, each a gRPC call to the orchestrator.
async fn latencies(http: &reqwest::Client, base: &str, token: &str, run_id: &str) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let response = http
            .get(format!("{base}/api/chains/runs/{run_id}"))
            .bearer_auth(token)
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        latencies.push(started.elapsed());
    }
    latencies
}

fn percentile(latencies: &[Duration], quantile: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[index]
}

/// The sum of every series of `name` in a Prometheus text exposition.
fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
