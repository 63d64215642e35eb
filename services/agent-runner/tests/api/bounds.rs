//! What one request can make agent-runner hold: custom agents whose templates multiply their
//! input, inputs failing a schema in every item, definitions and patterns of any size, and error
//! messages of any length are each stopped at a documented bound, with an answer naming it.
//!
//! agent-runner runs in the test's process, so the process's resident memory is the service's
//! (plus the test's and auth's, both small and steady).

use std::future::Future;

use sankalpa_proto::v1 as pb;
use sankalpa_testkit::Events;
use serde_json::{Map, Value, json};
use tonic::Code;

use crate::{TestRunner, authed, start, violated_fields};

/// How much a single request may grow agent-runner's resident memory in these tests.
const MAX_GROWTH_BYTES: u64 = 64 * 1024 * 1024;

/// The process's resident memory now and its peak so far (VmRSS, VmHWM), in bytes.
fn resident() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
    };
    (kib("VmRSS:") * 1024, kib("VmHWM:") * 1024)
}

/// What `work` gives, and how far the process's resident memory rose above where it was
/// before, at its peak while `work` ran.
async fn peak_growth<T>(work: impl Future<Output = T>) -> (T, u64) {
    // Writing 5 resets the peak (VmHWM) to the current size, so the peak read afterwards is
    // this work's and not the start's; where the kernel refuses, the earlier peak can only
    // make the growth look larger.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (before, _) = resident();
    let output = work.await;
    let (_, peak) = resident();
    (output, peak.saturating_sub(before))
}

fn definition(name: &str, input_schema: Value, template: Value) -> Value {
    json!({
        "name": name,
        "category": "custom",
        "description": "A test agent.",
        "version": "1.0.0",
        "input_schema": input_schema,
        "output_schema": {"type": "object"},
        "template": template,
    })
}

fn text_input() -> Value {
    json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}})
}

async fn create(
    app: &mut TestRunner,
    token: &str,
    definition: &Value,
) -> Result<pb::Agent, tonic::Status> {
    app.client
        .create_custom_agent(authed(
            pb::CreateCustomAgentRequest {
                definition_json: definition.to_string(),
                installed_from: String::new(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[sqlx::test(migrations = false)]
async fn templates_that_multiply_their_input_fail_at_the_output_bound(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let repeated = "{{ text }}".repeat(512);
    let by_field: Map<String, Value> = (0..512)
        .map(|i| (format!("f{i}"), json!("{{ text }}")))
        .collect();
    let agents = [
        (
            "one_long_field",
            json!({"output": {"echo": repeated}, "files": []}),
        ),
        ("many_fields", json!({"output": by_field, "files": []})),
        (
            "one_long_file",
            json!({"output": {}, "files": [{"path": "out.txt", "content": repeated}]}),
        ),
        (
            "json_filter",
            json!({"output": {"echo": "{{ text | json }}".repeat(512)}, "files": []}),
        ),
    ];
    for (name, template) in &agents {
        create(
            &mut app,
            &ada.token,
            &definition(name, text_input(), template.clone()),
        )
        .await
        .unwrap_or_else(|status| panic!("{name} is a valid definition: {status:?}"));
    }

    // 256 KiB of input, each agent asking for it 512 times: 128 MiB if nothing stopped it.
    let text = "x".repeat(256 * 1024);
    for (name, _) in &agents {
        let (run, growth) = peak_growth(app.execute(&ada.token, name, json!({"text": text}))).await;
        let run = run.unwrap_or_else(|status| panic!("{name} answers: {status:?}"));
        assert_eq!(run.status, pb::AgentRunStatus::Failed as i32, "{name}");
        let error = run.error.expect("a failed run says why");
        assert_eq!(error.code, "output_too_large", "{name}: {}", error.message);
        assert!(error.message.contains("1048576 bytes"), "{}", error.message);
        assert!(run.artifacts.is_empty(), "{name} wrote nothing");
        assert!(
            growth < MAX_GROWTH_BYTES,
            "{name} grew agent-runner by {} MiB",
            growth >> 20
        );
    }

    // Within the bound the same agents work.
    let run = app
        .output(&ada.token, "one_long_field", json!({"text": "ab"}))
        .await;
    assert_eq!(run["echo"], "ab".repeat(512));
}

fn picker(values: usize) -> Value {
    let allowed: Vec<String> = (0..values)
        .map(|i| format!("a-rather-long-allowed-value-{i:05}"))
        .collect();
    let input = json!({
        "type": "object",
        "properties": {"choices": {"type": "array", "items": {"enum": allowed}}}
    });
    definition("picker", input, json!({"output": {"n": "1"}}))
}

#[sqlx::test(migrations = false)]
async fn an_input_failing_every_item_gets_a_short_list_of_violations(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let status = create(&mut app, &ada.token, &picker(1_000))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["definition_json.input_schema.properties.choices.items.enum"]
    );
    create(&mut app, &ada.token, &picker(256)).await.unwrap();

    // 10,000 items, each failing an enum whose listing is 8 KiB long.
    let input = json!({"choices": vec!["nope"; 10_000]});
    let (answer, growth) = peak_growth(app.execute(&ada.token, "picker", input)).await;
    let status = answer.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = sankalpa_kit::problem::field_violations(&status);
    assert_eq!(violations.len(), 20, "the first 20 are listed");
    assert_eq!(violations[0].field, "input.choices[0]");
    for violation in &violations {
        assert!(violation.message.len() <= 160, "{}", violation.message);
        assert!(violation.message.starts_with("must be one of"));
    }
    assert!(status.message().len() <= 4096);
    assert!(
        growth < MAX_GROWTH_BYTES,
        "the violations grew agent-runner by {} MiB",
        growth >> 20
    );
}

#[sqlx::test(migrations = false)]
async fn definitions_past_their_size_bounds_are_refused_naming_the_field(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let template = json!({"output": {"n": "1"}});

    let mut large = definition("large", text_input(), template.clone());
    large["description"] = json!("d".repeat(70 * 1024));
    let mut deep = json!({"type": "string"});
    for _ in 0..40 {
        deep = json!({"type": "array", "items": deep});
    }
    let deep = definition(
        "deep",
        json!({"type": "object", "properties": {"nested": deep}}),
        template.clone(),
    );
    let properties: Map<String, Value> = (0..300)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    let wide = definition(
        "wide",
        json!({"type": "object", "properties": properties}),
        template.clone(),
    );
    for (document, field) in [
        (large, "definition_json"),
        (deep, "definition_json.input_schema.properties.nested"),
        (wide, "definition_json.input_schema.properties"),
    ] {
        let status = create(&mut app, &ada.token, &document).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let fields = violated_fields(&status);
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{field} not in {fields:?}"
        );
    }

    let status = app
        .client
        .create_custom_agent(authed(
            pb::CreateCustomAgentRequest {
                definition_json: definition("small", text_input(), template).to_string(),
                installed_from: "i".repeat(1024),
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["installed_from"]);
}

fn with_patterns(patterns: &[String]) -> Value {
    let properties: Map<String, Value> = patterns
        .iter()
        .enumerate()
        .map(|(i, pattern)| {
            (
                format!("p{i:02}"),
                json!({"type": "string", "pattern": pattern}),
            )
        })
        .collect();
    definition(
        "patterned",
        json!({"type": "object", "properties": properties}),
        json!({"output": {"n": "1"}}),
    )
}

#[sqlx::test(migrations = false)]
async fn patterns_past_their_bounds_are_refused_naming_the_field(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    // Too long to read, though small once compiled.
    let long = "a".repeat(2000);
    // Short, but 100 repetitions of every Unicode word character compile to megabytes.
    let huge = r"^\w{100}$".to_owned();
    for pattern in [long, huge] {
        let status = create(
            &mut app,
            &ada.token,
            &with_patterns(std::slice::from_ref(&pattern)),
        )
        .await
        .unwrap_err();
        assert_eq!(
            violated_fields(&status),
            ["definition_json.input_schema.properties.p00.pattern"],
            "{pattern:.20}"
        );
    }
    let many: Vec<String> = (0..17).map(|i| format!("^[a-z]{{{i}}}$")).collect();
    let status = create(&mut app, &ada.token, &with_patterns(&many))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["definition_json.input_schema.properties.p16.pattern"]
    );

    // What an ASCII class can say instead is accepted, and enforced.
    create(
        &mut app,
        &ada.token,
        &with_patterns(&["^[A-Za-z0-9_]{100}$".to_owned()]),
    )
    .await
    .unwrap();
    let status = app
        .execute(&ada.token, "patterned", json!({"p00": "short"}))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["input.p00"]);
}

#[sqlx::test(migrations = false)]
async fn a_multi_megabyte_agent_error_is_cut_in_the_answer_and_the_event(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let mut events = Events::read(
        &app.infra,
        &format!("agents.{}.critic.failed", ada.tenant_id),
    )
    .await;
    // critic quotes the language it does not know in its error.
    let language = "z".repeat(2 * 1024 * 1024);
    let run = app
        .execute(
            &ada.token,
            "critic",
            json!({"code": "def f():\n    return 1\n", "language": language}),
        )
        .await
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Failed as i32);
    let error = run.error.unwrap();
    assert_eq!(error.code, "invalid_input");
    assert!(error.message.starts_with("unsupported language \"zzz"));
    assert!(error.message.len() <= 4096, "{} bytes", error.message.len());

    let (_, failed) = events.next().await;
    assert_eq!(failed.data["run_id"], run.run_id);
    assert_eq!(failed.data["error"]["code"], "invalid_input");
    let message = failed.data["error"]["message"].as_str().unwrap();
    assert!(message.len() <= 4096, "{} bytes", message.len());
    let data = serde_json::to_vec(&failed.data).unwrap();
    assert!(data.len() <= 4096 + 1024, "{} bytes of data", data.len());
}

#[sqlx::test(migrations = false)]
async fn a_status_quoting_what_the_caller_sent_is_cut(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let name = "n".repeat(2 * 1024 * 1024);
    let status = app.execute(&ada.token, &name, json!({})).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        status.message().len() <= 4096,
        "{} bytes",
        status.message().len()
    );
}
