//! The marketplace through REST: publish, search, install into another tenant and run what was
//! installed; refused packages, private items, reviews, a tampered package, and the read-only
//! role.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::chains::execute;
use crate::helpers::{Session, TestApp, problem, spawn_app_with_marketplace, text};

/// A public chain item greeting `input.name`, at `version`.
fn greeter(slug: &str, version: &str) -> Value {
    json!({
        "slug": slug,
        "name": "Polite greeter",
        "description": "Greets whoever is named, politely.",
        "tags": ["greeting", "demo"],
        "kind": "chain",
        "visibility": "public",
        "version": version,
        "package": {
            "name": slug,
            "description": "Greets whoever is named.",
            "steps": [{ "id": "greet", "agent": "hello_world" }]
        },
        "release_notes": "First release."
    })
}

/// Publishes `body` as `who`, expecting it to be accepted; gives the item.
async fn publish(app: &TestApp, who: &Session, body: &Value) -> Value {
    let response = app
        .post_as("/api/marketplace", &who.access_token, body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let published: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/marketplace/items/{}", text(&published["item"]["id"]))
    );
    published["item"].clone()
}

async fn search(app: &TestApp, who: &Session, query: &str) -> Vec<Value> {
    let response = app
        .get_as(&format!("/api/marketplace?{query}"), &who.access_token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let found: Value = response.json().await.unwrap();
    found["items"].as_array().unwrap().clone()
}

#[sqlx::test(migrations = false)]
async fn a_published_chain_is_found_installed_by_another_tenant_and_runs_there(pool: PgPool) {
    let app = spawn_app_with_marketplace(pool).await;
    let ada = app.admin().await;
    let bob = app.admin().await;

    let item = publish(&app, &ada, &greeter("polite-greeter", "1.0.0")).await;
    assert_eq!(item["kind"], "chain");
    assert_eq!(item["visibility"], "public");
    assert_eq!(item["latest_version"], "1.0.0");

    let found = search(&app, &bob, "q=polite%20greeter").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], item["id"]);

    let path = format!("/api/marketplace/items/{}/install", text(&item["id"]));
    let response = app.post_as(&path, &bob.access_token, &json!({})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let installed: Value = response.json().await.unwrap();
    assert_eq!(installed["already_installed"], false);
    assert_eq!(installed["install"]["tenant_id"], bob.tenant_id.as_str());
    assert_eq!(installed["install"]["version"], "1.0.0");
    let chain_id = text(&installed["install"]["target"]);

    let again = app.post_as(&path, &bob.access_token, &json!({})).await;
    assert_eq!(again.status(), StatusCode::OK);
    let installs: Value = app
        .get_as("/api/marketplace/installs", &bob.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(installs["installs"].as_array().unwrap().len(), 1);
    let item_now: Value = app
        .get_as(
            &format!("/api/marketplace/items/{}", text(&item["id"])),
            &ada.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(item_now["downloads"], 1);

    let run = execute(
        &app,
        &bob,
        &json!({ "chain_id": chain_id, "input": { "name": "Bob" }, "wait": true }),
    )
    .await;
    assert_eq!(run.status(), StatusCode::OK);
    let run: Value = run.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert!(
        text(&run["output"]["greet"]["message"]).contains("Bob"),
        "{run}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_package_that_fails_validation_is_a_400_naming_its_field_and_nothing_is_listed(
    pool: PgPool,
) {
    let app = spawn_app_with_marketplace(pool).await;
    let ada = app.admin().await;
    let mut body = greeter("broken", "1.0.0");
    body["package"]["steps"][0]["agent"] = json!("no_such_agent");

    let refused = app
        .post_as("/api/marketplace", &ada.access_token, &body)
        .await;

    let refused = problem(refused, StatusCode::BAD_REQUEST).await;
    let errors = refused["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|error| {
            let field = text(&error["field"]);
            field.starts_with("package.") && text(&error["message"]).contains("no_such_agent")
        }),
        "{refused}"
    );
    assert!(!refused["detail"].as_str().unwrap().contains("package_json"));
    assert!(search(&app, &ada, "").await.is_empty());
    let missing = app
        .get_as("/api/marketplace?kind=chain&sort=newest", &ada.access_token)
        .await;
    let listed: Value = missing.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[sqlx::test(migrations = false)]
async fn a_private_item_is_not_found_for_another_tenant(pool: PgPool) {
    let app = spawn_app_with_marketplace(pool).await;
    let ada = app.admin().await;
    let bob = app.admin().await;
    let mut body = greeter("in-house", "1.0.0");
    body["visibility"] = json!("private");
    let item = publish(&app, &ada, &body).await;
    let id = text(&item["id"]);

    assert_eq!(search(&app, &ada, "q=greeter").await.len(), 1);
    assert!(search(&app, &bob, "q=greeter").await.is_empty());
    for path in [
        format!("/api/marketplace/items/{id}"),
        format!("/api/marketplace/items/{id}/versions"),
        format!("/api/marketplace/items/{id}/reviews"),
    ] {
        problem(
            app.get_as(&path, &bob.access_token).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let install = app
        .post_as(
            &format!("/api/marketplace/items/{id}/install"),
            &bob.access_token,
            &json!({}),
        )
        .await;
    problem(install, StatusCode::NOT_FOUND).await;
}

#[sqlx::test(migrations = false)]
async fn a_review_updates_the_items_rating(pool: PgPool) {
    let app = spawn_app_with_marketplace(pool).await;
    let ada = app.admin().await;
    let bob = app.admin().await;
    let carol = app.admin().await;
    let item = publish(&app, &ada, &greeter("rated", "1.0.0")).await;
    let reviews = format!("/api/marketplace/items/{}/reviews", text(&item["id"]));

    let first = app
        .post_as(
            &reviews,
            &bob.access_token,
            &json!({ "rating": 5, "comment": "Lovely" }),
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = app
        .post_as(&reviews, &carol.access_token, &json!({ "rating": 2 }))
        .await;
    assert_eq!(second.status(), StatusCode::OK);
    let own = app
        .post_as(&reviews, &ada.access_token, &json!({ "rating": 5 }))
        .await;
    problem(own, StatusCode::UNPROCESSABLE_ENTITY).await;
    let out_of_range = app
        .post_as(&reviews, &bob.access_token, &json!({ "rating": 9 }))
        .await;
    let out_of_range = problem(out_of_range, StatusCode::BAD_REQUEST).await;
    assert_eq!(out_of_range["errors"][0]["field"], "rating");

    let rated: Value = app
        .get_as(
            &format!("/api/marketplace/items/{}", text(&item["id"])),
            &bob.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rated["rating_count"], 2);
    assert_eq!(rated["rating_average"], 3.5);
    let listed: Value = app
        .get_as(&reviews, &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    let listed = listed["reviews"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["rating"], 2, "newest first");
    assert_eq!(listed[1]["comment"], "Lovely");
}

#[sqlx::test(migrations = false)]
async fn a_viewer_can_search_but_not_publish(pool: PgPool) {
    let app = spawn_app_with_marketplace(pool).await;
    let ada = app.admin().await;
    let viewer = app.viewer(&ada).await;

    let refused = app
        .post_as(
            "/api/marketplace",
            &viewer.access_token,
            &greeter("nope", "1.0.0"),
        )
        .await;

    let refused = problem(refused, StatusCode::FORBIDDEN).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("market:publish")
    );
    assert!(search(&app, &viewer, "").await.is_empty());
}

#[sqlx::test(migrations = false)]
async fn a_yanked_version_leaves_latest_and_a_tampered_package_is_refused_at_install(pool: PgPool) {
    let app = spawn_app_with_marketplace(pool).await;
    let ada = app.admin().await;
    let bob = app.admin().await;
    let item = publish(&app, &ada, &greeter("twice", "1.9.0")).await;
    let id = text(&item["id"]);
    publish(&app, &ada, &greeter("twice", "1.10.0")).await;

    let yanked = app
        .post_as(
            &format!("/api/marketplace/items/{id}/versions/1.10.0/yank"),
            &ada.access_token,
            &json!({ "reason": "broken" }),
        )
        .await;
    assert_eq!(yanked.status(), StatusCode::OK);
    let yanked: Value = yanked.json().await.unwrap();
    assert_eq!(yanked["yanked"], true);
    assert_eq!(yanked["yank_reason"], "broken");
    let versions: Value = app
        .get_as(
            &format!("/api/marketplace/items/{id}/versions"),
            &bob.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let versions: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.10.0", "1.9.0"]);
    let item: Value = app
        .get_as(&format!("/api/marketplace/items/{id}"), &bob.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(item["latest_version"], "1.9.0");

    let mut stored = Vec::new();
    let mut folders = vec![app.packages()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap().flatten() {
            if entry.path().is_dir() {
                folders.push(entry.path());
            } else {
                stored.push(entry.path());
            }
        }
    }
    assert_eq!(stored.len(), 2);
    for package in &stored {
        std::fs::write(package, r#"{"name":"evil","steps":[]}"#).unwrap();
    }

    let install = app
        .post_as(
            &format!("/api/marketplace/items/{id}/install"),
            &bob.access_token,
            &json!({ "version": "1.9.0" }),
        )
        .await;

    let damaged = problem(install, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert!(
        damaged["type"].as_str().unwrap().ends_with("data-loss"),
        "{damaged}"
    );
    let installs: Value = app
        .get_as("/api/marketplace/installs", &bob.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(installs["installs"], json!([]));
}
