//! Memory through REST: values are JSON both ways, conflicts are 409s a client can act on, and
//! the wall between tenants and the read-only role hold.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, Session, TestApp, problem, spawn_app_with_memory, unique_email};

async fn save(app: &TestApp, who: &Session, body: Value) -> reqwest::Response {
    app.post_as("/api/memory/save", &who.access_token, &body)
        .await
}

async fn load(app: &TestApp, who: &Session, session: &str, key: &str) -> reqwest::Response {
    app.post_as(
        "/api/memory/load",
        &who.access_token,
        &json!({ "session_id": session, "key": key }),
    )
    .await
}

/// The session's entries as {key: value}.
async fn contents(app: &TestApp, who: &Session, session: &str) -> Value {
    let all = app
        .get_as(
            &format!("/api/memory/all?session_id={session}"),
            &who.access_token,
        )
        .await;
    assert_eq!(all.status(), StatusCode::OK);
    let all: Value = all.json().await.unwrap();
    all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["key"].as_str().unwrap().to_owned(),
                entry["value"].clone(),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[sqlx::test(migrations = false)]
async fn a_saved_value_loads_back_as_the_same_json_with_its_version(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let ada = app.admin().await;
    let value = json!({ "plan": ["schema", "api"], "done": false, "n": 12345678901234_u64 });

    let saved = save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "plan", "value": value }),
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["value"], value);

    let loaded = load(&app, &ada, "s1", "plan").await;
    assert_eq!(loaded.status(), StatusCode::OK);
    let loaded: Value = loaded.json().await.unwrap();
    assert_eq!(loaded["key"], "plan");
    assert_eq!(loaded["value"], value);
    assert_eq!(loaded["version"], 1);
    assert!(loaded["expires_at"].is_null());

    let sessions: Value = app
        .get_as("/api/memory/sessions", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["sessions"][0]["id"], "s1");
    assert_eq!(sessions["sessions"][0]["entry_count"], 1);

    let deleted = app
        .client
        .delete(app.url("/api/memory/sessions/s1/keys/plan"))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(deleted.json::<Value>().await.unwrap()["deleted"], true);
    problem(load(&app, &ada, "s1", "plan").await, StatusCode::NOT_FOUND).await;
}

#[sqlx::test(migrations = false)]
async fn a_save_with_a_stale_version_is_a_409_carrying_the_current_version(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let ada = app.admin().await;
    for value in [1, 2] {
        let saved = save(
            &app,
            &ada,
            json!({ "session_id": "s1", "key": "k", "value": value }),
        )
        .await;
        assert_eq!(saved.status(), StatusCode::OK);
    }

    let stale = save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "k", "value": 3, "expected_version": 1 }),
    )
    .await;

    let body = problem(stale, StatusCode::CONFLICT).await;
    assert_eq!(body["current_version"], 2, "{body}");
    let loaded: Value = load(&app, &ada, "s1", "k").await.json().await.unwrap();
    assert_eq!(loaded["value"], 2);

    let retried = save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "k", "value": 3, "expected_version": 2 }),
    )
    .await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(retried.json::<Value>().await.unwrap()["version"], 3);
}

#[sqlx::test(migrations = false)]
async fn a_transaction_whose_check_fails_is_a_409_naming_the_key_and_applies_nothing(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let ada = app.admin().await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "a", "value": "old" }),
    )
    .await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "guard", "value": 1 }),
    )
    .await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "guard", "value": 2 }),
    )
    .await;
    let before = contents(&app, &ada, "s1").await;

    let refused = app
        .post_as(
            "/api/memory/transaction",
            &ada.access_token,
            &json!({ "session_id": "s1", "ops": [
                { "op": "set", "key": "a", "value": "new" },
                { "op": "delete", "key": "guard" },
                { "op": "set", "key": "b", "value": null },
                { "op": "check_version", "key": "guard", "version": 1 },
            ]}),
        )
        .await;

    let body = problem(refused, StatusCode::CONFLICT).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("\"guard\""), "{body}");
    assert!(detail.contains("ops[3]"), "{body}");
    assert_eq!(body["current_version"], 2, "{body}");
    assert_eq!(contents(&app, &ada, "s1").await, before);

    let committed = app
        .post_as(
            "/api/memory/transaction",
            &ada.access_token,
            &json!({ "session_id": "s1", "ops": [
                { "op": "set", "key": "a", "value": "new" },
                { "op": "set", "key": "b", "value": null },
                { "op": "check_version", "key": "guard", "version": 2 },
            ]}),
        )
        .await;
    assert_eq!(committed.status(), StatusCode::OK);
    assert_eq!(
        contents(&app, &ada, "s1").await,
        json!({ "a": "new", "b": null, "guard": 2 })
    );
}

/// The published schema of one op kind: `TransactionOp`'s discriminator names it.
fn published_op_schema(kind: &str) -> sankalpa_kit::schema::Schema {
    let document = serde_json::to_value(sankalpa_gateway::docs::openapi()).unwrap();
    let schemas = &document["components"]["schemas"];
    let target = schemas["TransactionOp"]["discriminator"]["mapping"][kind]
        .as_str()
        .unwrap_or_else(|| panic!("no op kind {kind} in the discriminator"));
    let name = target.trim_start_matches("#/components/schemas/");
    sankalpa_kit::schema::Schema::compile(&schemas[name], name).unwrap()
}

#[sqlx::test(migrations = false)]
async fn each_op_takes_the_members_of_its_kind_only_as_the_schema_says(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let ada = app.admin().await;
    let transact = |ops: Value| {
        let (app, token) = (&app, &ada.access_token);
        async move {
            app.post_as(
                "/api/memory/transaction",
                token,
                &json!({ "session_id": "s1", "ops": ops }),
            )
            .await
        }
    };

    for (field, op) in [
        (
            "ops[0].value",
            json!({"op": "delete", "key": "k", "value": 1}),
        ),
        ("ops[0].value", json!({"op": "set", "key": "k"})),
        (
            "ops[0].version",
            json!({"op": "set", "key": "k", "value": 1, "version": 1}),
        ),
        ("ops[0].version", json!({"op": "check_version", "key": "k"})),
        (
            "ops[0].ttl_seconds",
            json!({"op": "check_version", "key": "k", "version": 0, "ttl_seconds": 5}),
        ),
    ] {
        let schema = published_op_schema(op["op"].as_str().unwrap());
        assert!(
            !schema.validate(&op, "op").is_empty(),
            "the schema accepts {op}"
        );
        let body = problem(transact(json!([op])).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["errors"][0]["field"], field, "{op}: {body}");
    }
    // A member no kind has: refused by serde, which names it.
    let unknown = json!({"op": "delete", "key": "k", "ttl": 5});
    assert!(
        !published_op_schema("delete")
            .validate(&unknown, "op")
            .is_empty()
    );
    let body = problem(transact(json!([unknown])).await, StatusCode::BAD_REQUEST).await;
    assert!(body["detail"].as_str().unwrap().contains("`ttl`"), "{body}");
    problem(load(&app, &ada, "s1", "k").await, StatusCode::NOT_FOUND).await;
    // Only a set creates a session: checks and deletes alone need one to exist.
    let no_session = transact(json!([{"op": "delete", "key": "b"}])).await;
    problem(no_session, StatusCode::NOT_FOUND).await;

    let accepted = [
        json!({"op": "set", "key": "a", "value": null, "ttl_seconds": null}),
        json!({"op": "delete", "key": "b"}),
        json!({"op": "check_version", "key": "c", "version": 0}),
    ];
    for op in &accepted {
        let schema = published_op_schema(op["op"].as_str().unwrap());
        let found = schema.validate(op, "op");
        assert!(found.is_empty(), "{op}: {found:?}");
    }
    let committed = transact(json!(accepted)).await;
    assert_eq!(committed.status(), StatusCode::OK);
    assert_eq!(contents(&app, &ada, "s1").await, json!({ "a": null }));
}

#[sqlx::test(migrations = false)]
async fn another_tenants_session_is_not_found(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let ada = app.admin().await;
    let eve = app.admin().await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "secret", "value": "ada's" }),
    )
    .await;

    problem(
        load(&app, &eve, "s1", "secret").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get_as("/api/memory/all?session_id=s1", &eve.access_token)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let listed: Value = app
        .get_as("/api/memory/sessions", &eve.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"], json!([]));
}

#[sqlx::test(migrations = false)]
async fn a_viewer_may_load_but_gets_403_on_save(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let admin = app.admin().await;
    save(
        &app,
        &admin,
        json!({ "session_id": "s1", "key": "k", "value": 1 }),
    )
    .await;
    let email = unique_email();
    let created = app
        .post_as(
            "/api/users",
            &admin.access_token,
            &json!({ "email": email, "password": PASSWORD, "roles": ["viewer"] }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let viewer = app.session(&email, PASSWORD).await;

    assert_eq!(
        load(&app, &viewer, "s1", "k").await.status(),
        StatusCode::OK
    );
    let body = problem(
        save(
            &app,
            &viewer,
            json!({ "session_id": "s1", "key": "k", "value": 2 }),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("memory:write"),
        "{body}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_value_over_the_limit_is_a_400_naming_value(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |memory| memory.max_value_bytes = 64).await;
    let ada = app.admin().await;

    let refused = save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "k", "value": "x".repeat(100) }),
    )
    .await;

    let body = problem(refused, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "value", "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("value:"),
        "{body}"
    );
    let in_a_transaction = app
        .post_as(
            "/api/memory/transaction",
            &ada.access_token,
            &json!({ "session_id": "s1", "ops": [
                { "op": "set", "key": "k", "value": "x".repeat(100) },
            ]}),
        )
        .await;
    let body = problem(in_a_transaction, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "ops[0].value", "{body}");
    problem(load(&app, &ada, "s1", "k").await, StatusCode::NOT_FOUND).await;
}

#[sqlx::test(migrations = false)]
async fn backup_change_restore_gives_back_the_backed_up_state(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let ada = app.admin().await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "a", "value": { "v": 1 } }),
    )
    .await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "b", "value": [1, 2] }),
    )
    .await;
    let backed_up = contents(&app, &ada, "s1").await;

    let made = app
        .post_as(
            "/api/memory/backup",
            &ada.access_token,
            &json!({ "session_id": "s1", "label": "before" }),
        )
        .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    assert_eq!(made["entry_count"], 2);
    let listed: Value = app
        .get_as("/api/memory/backups?session_id=s1", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["backups"][0]["id"], made["id"]);

    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "a", "value": "changed" }),
    )
    .await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "c", "value": true }),
    )
    .await;
    assert_ne!(contents(&app, &ada, "s1").await, backed_up);

    let restored = app
        .post_as(
            "/api/memory/restore",
            &ada.access_token,
            &json!({ "backup_id": made["id"] }),
        )
        .await;
    assert_eq!(restored.status(), StatusCode::OK);
    let restored: Value = restored.json().await.unwrap();
    assert_eq!(restored["restored_entries"], 2);
    assert_eq!(contents(&app, &ada, "s1").await, backed_up);

    let copied = app
        .post_as(
            "/api/memory/restore",
            &ada.access_token,
            &json!({ "backup_id": made["id"], "target_session_id": "s2" }),
        )
        .await;
    assert_eq!(copied.status(), StatusCode::OK);
    assert_eq!(contents(&app, &ada, "s2").await, backed_up);
}

#[sqlx::test(migrations = false)]
async fn restoring_a_damaged_backup_is_a_data_loss_problem_and_changes_nothing(pool: PgPool) {
    let app = spawn_app_with_memory(pool, |_| {}).await;
    let ada = app.admin().await;
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "k", "value": { "v": "one" } }),
    )
    .await;
    let made: Value = app
        .post_as(
            "/api/memory/backup",
            &ada.access_token,
            &json!({ "session_id": "s1" }),
        )
        .await
        .json()
        .await
        .unwrap();
    save(
        &app,
        &ada,
        json!({ "session_id": "s1", "key": "k", "value": { "v": "two" } }),
    )
    .await;
    let document = app
        .objects()
        .join("memory")
        .join(&ada.tenant_id)
        .join("backups")
        .join(format!("{}.json", made["id"].as_str().unwrap()));
    let stored = std::fs::read_to_string(&document).expect("the backup is a file");
    // A string, as the backup holds values the way Postgres writes them out.
    assert!(stored.contains(r#""one""#), "{stored}");
    std::fs::write(&document, stored.replace(r#""one""#, r#""six""#)).unwrap();

    let refused = app
        .post_as(
            "/api/memory/restore",
            &ada.access_token,
            &json!({ "backup_id": made["id"] }),
        )
        .await;

    let body = problem(refused, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(body["type"], "/problems/data-loss");
    assert!(
        body["detail"].as_str().unwrap().contains("damaged"),
        "{body}"
    );
    assert_eq!(
        contents(&app, &ada, "s1").await,
        json!({ "k": { "v": "two" } })
    );
}
