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
