//! Each built-in agent, run over gRPC with a realistic input, its output checked for substance.

use serde_json::json;

use crate::start;

#[sqlx::test(migrations = false)]
async fn the_small_custom_agents_do_their_work(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;

    let out = app
        .output(
            &token,
            "custom_calculator",
            json!({"expression": "price * (1 + vat) - -discount / 2", "variables": {"price": 100, "vat": 0.2, "discount": 10}}),
        )
        .await;
    assert_eq!(out["result"], json!(125));

    let out = app
        .output(
            &token,
            "date_formatter",
            json!({"date": "2024-12-25T18:00:00Z", "timezone": "Asia/Kolkata", "output_format": "%d %b %Y, %H:%M"}),
        )
        .await;
    assert_eq!(out["formatted"], "25 Dec 2024, 23:30");
    assert_eq!(out["weekday"], "Wednesday");

    let out = app
        .output(
            &token,
            "text_translator",
            json!({"text": "Good morning, my friend!", "target_language": "fr"}),
        )
        .await;
    assert_eq!(out["translated_text"], "Bon matin, mon ami!");
    assert_eq!(out["method"], "glossary");
    assert_eq!(out["coverage"], 1.0);
}

const SERVICE: &str = r#"import sqlite3


def connect(path):
    """Opens the database."""
    return sqlite3.connect(path)


def totals(rows, threshold, mode):
    result = {}
    for row in rows:
        if row.amount > threshold and mode == "strict":
            result[row.key] = result.get(row.key, 0) + row.amount
        elif row.amount < 0:
            continue
    return result
"#;

#[sqlx::test(migrations = false)]
async fn code_is_measured_reviewed_and_scanned(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;

    let out = app
        .output(&token, "code_summarizer", json!({"code": SERVICE}))
        .await;
    assert_eq!(out["language"], "python");
    assert_eq!(out["method"], "static");
    assert_eq!(out["metrics"]["functions"], 2);
    assert_eq!(out["imports"], json!(["sqlite3"]));
    assert_eq!(out["functions"][1]["name"], "totals");
    assert_eq!(out["functions"][1]["complexity"], 5);
    assert!(out["summary"].as_str().unwrap().contains("totals"));

    let out = app
        .output(
            &token,
            "critic",
            json!({"code": SERVICE, "max_function_lines": 5, "max_complexity": 4}),
        )
        .await;
    let rules: Vec<(&str, u64)> = out["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["rule"].as_str().unwrap(), i["line"].as_u64().unwrap()))
        .collect();
    assert!(rules.contains(&("long_function", 9)), "{rules:?}");
    assert!(rules.contains(&("high_complexity", 9)), "{rules:?}");
    assert!(rules.contains(&("missing_docstring", 9)), "{rules:?}");
    assert!(out["score"].as_f64().unwrap() < 100.0);

    let planted = "const password = \"s3cr3t-value\";\nconst q = \"SELECT * FROM t WHERE id = \" + id;\neval(userInput);\nconst h = crypto.createHash('md5');\n";
    let out = app
        .output(
            &token,
            "security_scanner",
            json!({"code": planted, "filename": "app.js"}),
        )
        .await;
    let found: Vec<(&str, u64)> = out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            ("hardcoded_secret", 1),
            ("sql_injection", 2),
            ("code_injection", 3),
            ("weak_hash", 4)
        ]
    );
    let out = app
        .output(&token, "security_scanner", json!({"code": SERVICE}))
        .await;
    assert_eq!(out["clean"], true, "{out}");
}

#[sqlx::test(migrations = false)]
async fn the_marketing_agents_write_copy_within_limits(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;

    let page = "<html><head><title>Tasks</title></head><body><h1>Team tasks</h1><h1>Again</h1><img src=a.png><p>Plan tasks with your team. Tasks stay in sync.</p></body></html>";
    let out = app
        .output(&token, "seo_optimizer", json!({"content": page, "url": "https://tasks.example.com/features", "keywords": ["tasks", "kanban"]}))
        .await;
    let rules: Vec<&str> = out["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["rule"].as_str().unwrap())
        .collect();
    for expected in [
        "title_length",
        "missing_description",
        "h1_count",
        "image_alt",
        "thin_content",
        "keyword_missing",
        "keyword_stuffing",
    ] {
        assert!(rules.contains(&expected), "{expected} not in {rules:?}");
    }
    assert_eq!(out["keyword_density"]["tasks"]["count"], 4);
    assert!(out["score"].as_u64().unwrap() < 50);

    let out = app
        .output(&token, "product_hunt_copywriter", json!({
            "product_name": "Sankalpa",
            "description": "Self-hostable platform that runs AI agents and composes them into workflows that build software. Open source.",
            "features": ["36 built-in agents", "chains with retries", "self-hosted on Kubernetes"],
            "pricing": "free and open source"
        }))
        .await;
    assert_eq!(out["method"], "template", "no LLM here");
    assert!(out["tagline"].as_str().unwrap().chars().count() <= 60);
    assert!(out["short_description"].as_str().unwrap().chars().count() <= 260);
    assert!(
        out["first_comment"]
            .as_str()
            .unwrap()
            .contains("• chains with retries")
    );
    let topics = out["topics"].as_array().unwrap();
    assert!(
        topics.contains(&json!("Artificial Intelligence"))
            && topics.contains(&json!("Open Source")),
        "{topics:?}"
    );

    let run = app
        .execute(&token, "pitch_deck_generator", json!({"company": "Acme", "problem": "Teams lose work.", "solution": "Acme keeps it.", "team": ["Ada, CEO"]}))
        .await
        .unwrap();
    let out = crate::json(&run.output_json);
    assert_eq!(out["method"], "template", "no LLM here");
    assert_eq!(out["slides"].as_array().unwrap().len(), 10);
    assert_eq!(
        out["gaps"],
        json!(["market", "business_model", "traction", "competition", "ask"])
    );
    assert_eq!(run.artifacts[0].path, "pitch/deck.md");
}

#[sqlx::test(migrations = false)]
async fn the_enhanced_agents_produce_checked_artifacts(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;

    let out = app
        .output(&token, "copilot", json!({"code": "def parse_user_input(text):\n    # TODO: handle empty text\n    try:\n        return int(text)\n    except:\n        return None\n"}))
        .await;
    assert_eq!(out["method"], "static");
    let kinds: Vec<(&str, u64)> = out["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("docstring", 1), ("todo", 2), ("fix", 5)]);
    assert_eq!(
        out["suggestions"][0]["insert"],
        "    \"\"\"Parse user input.\"\"\""
    );

    let mut examples: Vec<serde_json::Value> = (0..20)
        .map(|i| json!({"messages": [{"role": "user", "content": format!("What is {i} + 1?")}, {"role": "assistant", "content": format!("{}", i + 1)}]}))
        .collect();
    examples.push(json!({"prompt": "Capital of France?", "completion": "Paris"}));
    examples.push(examples[0].clone());
    examples.push(json!({"messages": [{"role": "user", "content": "no answer"}]}));
    examples.push(json!({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}));
    let run = app
        .execute(
            &token,
            "finetuner",
            json!({"examples": examples, "validation_split": 0.2}),
        )
        .await
        .unwrap();
    let out = crate::json(&run.output_json);
    assert_eq!(
        (out["valid"].as_u64(), out["duplicates"].as_u64()),
        (Some(21), Some(1))
    );
    assert_eq!(
        out["invalid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [22, 23]
    );
    assert_eq!(
        out["train_examples"].as_u64().unwrap() + out["validation_examples"].as_u64().unwrap(),
        21
    );
    assert_eq!(out["submitted"], false);
    assert!(
        run.artifacts
            .iter()
            .any(|a| a.path == "finetune/train.jsonl")
    );

    let out = app
        .output(&token, "vs_code_extension", json!({"name": "sankalpa-agents", "display_name": "Sankalpa", "commands": [{"id": "runAgent", "title": "Run an agent"}]}))
        .await;
    assert_eq!(out["commands"][0]["command"], "sankalpa-agents.runAgent");

    let run = app
        .execute(&token, "cli_runner", json!({"name": "tasks", "commands": [{"name": "add", "help": "Add a task", "arguments": [{"name": "title", "required": true}, {"name": "hours", "type": "integer"}, {"name": "urgent", "type": "boolean"}]}]}))
        .await
        .unwrap();
    let out = crate::json(&run.output_json);
    assert_eq!(
        out["usage"],
        json!(["tasks add --title <title> [--hours] [--urgent]"])
    );
    assert_eq!(out["executed"], false);
}

#[sqlx::test(migrations = false)]
async fn the_orchestration_and_meta_agents_reason_about_plans_and_history(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;

    let out = app
        .output(
            &token,
            "planner",
            json!({"goal": "Build a SaaS app with Stripe billing and deploy it to Kubernetes"}),
        )
        .await;
    let agents: Vec<&str> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents.first(), Some(&"project_architect"));
    assert!(
        agents.contains(&"stripe_payment") && agents.contains(&"deploy_executor"),
        "{agents:?}"
    );
    let payments = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["agent"] == "stripe_payment")
        .unwrap();
    assert_eq!(payments["needs"], json!(["backend_builder"]));
    assert_eq!(out["project_name"], "saas-app");
    assert_eq!(out["input"]["features"], json!(["payments"]));
    assert_eq!(out["analysis"]["chain_type"], "dag");
    assert_eq!(
        out["analysis"]["agent_count"],
        out["chain"]["steps"].as_array().unwrap().len()
    );

    let out = app
        .output(
            &token,
            "execution_manager",
            json!({"steps": [
                {"id": "plan", "duration_ms": 10},
                {"id": "api", "needs": ["plan"], "duration_ms": 50},
                {"id": "ui", "needs": ["plan"], "duration_ms": 30},
                {"id": "tests", "needs": ["api", "ui"], "duration_ms": 20}
            ]}),
        )
        .await;
    assert_eq!(out["waves"], json!([["plan"], ["api", "ui"], ["tests"]]));
    assert_eq!(out["critical_path"], json!(["plan", "api", "tests"]));
    assert_eq!(out["estimated_ms"], 80);
    let out = app
        .output(&token, "execution_manager", json!({"steps": [{"id": "a", "needs": ["b"]}, {"id": "b", "needs": ["a"]}, {"id": "c", "needs": ["z"]}]}))
        .await;
    assert_eq!(out["valid"], false);
    assert!(out["problems"][0].as_str().unwrap().contains("\"z\""));

    let out = app
        .output(&token, "session_replayer", json!({"events": [
            {"type": "sankalpa.agents.completed", "time": "2024-05-01T10:00:02.500Z", "data": {"run_id": "r1", "agent": "db_schema", "status": "completed"}},
            {"type": "sankalpa.agents.started", "time": "2024-05-01T10:00:00Z", "data": {"run_id": "r1", "agent": "db_schema"}},
            {"type": "sankalpa.agents.started", "time": "2024-05-01T10:00:03Z", "data": {"run_id": "r2", "agent": "api_builder"}},
            {"type": "sankalpa.agents.failed", "time": "2024-05-01T10:00:04Z", "data": {"run_id": "r2", "agent": "api_builder", "status": "failed", "error": {"code": "agent_failed"}}}
        ]}))
        .await;
    assert_eq!(out["outcome"], "failed");
    assert_eq!(out["duration_ms"], 4000);
    assert_eq!(out["runs"][0]["duration_ms"], 2500);
    assert_eq!(out["runs"][1]["error"]["code"], "agent_failed");

    let out = app
        .output(&token, "multi_agent_memory_manager", json!({"entries": [
            {"agent": "planner", "key": "stack", "value": "fastapi", "time": "2024-05-01T10:00:00Z"},
            {"agent": "architect", "key": "stack", "value": "django", "time": "2024-05-01T11:00:00Z"},
            {"agent": "planner", "key": "name", "value": "Tasks"}
        ]}))
        .await;
    assert_eq!(out["merged"], json!({"name": "Tasks", "stack": "django"}));
    assert_eq!(out["conflicts"][0]["chosen_from"], "architect");

    let out = app
        .output(&token, "version_tracker", json!({"current_version": "1.4.2", "changes": ["feat(api): add tags", "fix: crash on empty title", "docs: typo"]}))
        .await;
    assert_eq!(
        (out["next"].as_str(), out["bump"].as_str()),
        (Some("1.5.0"), Some("minor"))
    );
    assert!(
        out["changelog"]
            .as_str()
            .unwrap()
            .contains("### Features\n\n- add tags")
    );
    let out = app
        .output(
            &token,
            "version_tracker",
            json!({"current_version": "1.4.2", "changes": ["feat!: drop v1 API"]}),
        )
        .await;
    assert_eq!(out["next"], "2.0.0");
}

#[sqlx::test(migrations = false)]
async fn deployment_agents_prepare_everything_and_change_nothing(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;
    let out = app
        .output(&token, "domain_linker", json!({"domain": "Tasks.Example.com", "target": "203.0.113.7", "subdomains": ["api"], "email_provider": "google"}))
        .await;
    assert_eq!(out["applied"], false);
    let records: Vec<(&str, &str)> = out["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["type"].as_str().unwrap()))
        .collect();
    for expected in [
        ("@", "A"),
        ("www", "CNAME"),
        ("api", "A"),
        ("@", "CAA"),
        ("_sankalpa-verification", "TXT"),
        ("@", "MX"),
        ("_dmarc", "TXT"),
    ] {
        assert!(
            records.contains(&expected),
            "{expected:?} not in {records:?}"
        );
    }
    let run = app
        .execute(
            &token,
            "domain_linker",
            json!({"domain": "not a domain", "target": "1.2.3.4"}),
        )
        .await
        .unwrap();
    assert_eq!(run.error.unwrap().code, "invalid_input");

    let out = app
        .output(&token, "deploy_executor", json!({"project_name": "Team Tasks", "entities": [{"name": "Task", "fields": []}], "deploy": {"domain": "tasks.example.com", "replicas": 3}}))
        .await;
    assert!(
        out["files"]
            .as_array()
            .unwrap()
            .contains(&json!("deploy/kubernetes.yaml"))
    );
    assert!(
        out["commands"][3]
            .as_str()
            .unwrap()
            .starts_with("kubectl apply")
    );
    assert_eq!(out["deployed"], false);
}
