//! The test builders: test_suite writes pytest unit tests of the generated pure-Python modules
//! (validation, security, roles, email, payments, markdown), which need nothing but pytest;
//! integration_test writes API tests that drive the FastAPI app on an in-memory SQLite
//! database, skipped (by `pytest.importorskip`) where FastAPI, SQLAlchemy or httpx is absent.
//!
//! Both write tests only for what the workspace holds ([`Context::exists`]): a module another
//! builder did not write (a feature not asked for, a builder not run) gets no test importing it.
//! The tests' text is in their templates (`templates/fullstack/backend/tests/`, see
//! [`super::templates`]); what they cover is decided here.

use serde_json::{Value, json};

use super::backend::finish;
use super::project::{Entity, Project};
use super::templates::file;
use super::{AgentError, Context};

/// The tests in `files`: every test is a top-level `def test_...`, so counting them counts
/// what pytest will collect.
fn count_tests(files: &[(String, String)]) -> usize {
    files
        .iter()
        .map(|(_, text)| {
            text.lines()
                .filter(|line| line.starts_with("def test_"))
                .count()
        })
        .sum()
}

/// The module each feature's unit tests import, and the test file they go in.
const FEATURE_MODULES: &[(&str, &str)] = &[
    ("auth", "security"),
    ("roles", "roles"),
    ("email", "email"),
    ("payments", "payments"),
    ("markdown", "markdown"),
];

pub fn unit(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let present = |module: &str| ctx.exists(&format!("backend/app/{module}.py"));
    let tested: Vec<&str> = FEATURE_MODULES
        .iter()
        .filter(|(_, module)| present(module))
        .map(|(feature, _)| *feature)
        .collect();
    let validated = present("validation");
    // The roles' tests ask about the first entity's table, or any table when there is none.
    let table = p.entities.first().map_or("items", |e| e.table.as_str());
    let context = json!({"p": p, "table": table});
    let mut files = vec![file("backend/tests/conftest.py", &context)?];
    if validated {
        files.push(file("backend/tests/test_validation.py", &context)?);
    }
    for (feature, module) in FEATURE_MODULES {
        if tested.contains(feature) {
            files.push(file(&format!("backend/tests/test_{module}.py"), &context)?);
        }
    }
    let count = count_tests(&files);
    let summary = format!("{count} pytest unit test(s) that need only pytest");
    finish(
        ctx,
        "test_suite",
        files,
        summary,
        json!({"tests": count, "tested_features": tested, "tested_entities": if validated { p.entities.len() } else { 0 }, "run": "cd backend && python -m pytest"}),
    )
}

/// Entities in an order that creates every row a required reference needs before it: the
/// input refuses circles of required references, so one always comes next.
fn creation_order(entities: Vec<&Entity>) -> Vec<&Entity> {
    let mut created: Vec<&Entity> = Vec::new();
    let mut pending = entities;
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|e| {
                e.fields.iter().filter(|f| f.required).all(|f| {
                    f.references
                        .as_ref()
                        .is_none_or(|t| created.iter().any(|c| &c.table == t))
                })
            })
            .unwrap_or(0);
        created.push(pending.remove(ready));
    }
    created
}

pub fn integration(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let mut files = vec![file("backend/tests/conftest.py", json!({"p": p}))?];
    if !ctx.exists("backend/app/main.py") {
        return finish(
            ctx,
            "integration_test",
            files,
            "no API tests: the workspace has no backend/app/main.py".to_owned(),
            json!({"tests": 0, "tested_entities": 0}),
        );
    }
    let served: Vec<&Entity> = p
        .entities
        .iter()
        .filter(|e| ctx.exists(&format!("backend/app/routers/{}.py", e.table)))
        .collect();
    let first_table = served.first().map(|e| e.table.clone());
    let created = creation_order(served);
    // The references create_all fills, with the id of a row it made earlier: not a
    // self-reference, nor one to an entity without a router (those stay empty).
    let rows: Vec<Value> = created
        .iter()
        .map(|entity| {
            let refs: Vec<Value> = entity
                .fields
                .iter()
                .filter_map(|f| {
                    let target = f.references.as_ref()?;
                    (target != &entity.table && created.iter().any(|c| &c.table == target))
                        .then(|| json!({"target": target, "column": f.column}))
                })
                .collect();
            json!({"entity": entity, "refs": refs})
        })
        .collect();
    let tests = file(
        "backend/tests/test_api.py",
        json!({
            "created": rows,
            "first_table": first_table,
            "auth": ctx.exists("backend/app/routers/auth.py"),
            "payments": ctx.exists("backend/app/routers/payments.py"),
        }),
    )?;
    files.push(tests);
    let count = count_tests(&files);
    let entities = created.len();
    finish(
        ctx,
        "integration_test",
        files,
        format!("{count} API test(s) for {entities} entit(ies) over FastAPI's test client"),
        json!({"tests": count, "tested_entities": entities, "needs": ["fastapi", "sqlalchemy", "httpx", "pytest"]}),
    )
}
