use sankalpa_proto::v1 as pb;
use serde_json::json;
use sqlx::PgPool;

use crate::{chain_item, start};

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_package_failing_validation_is_refused_and_nothing_is_stored(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let mut request = chain_item("broken", "Broken", "1.0.0");
    request.package_json = json!({
        "name": "broken",
        "steps": [{"id": "one", "agent": "no_such_agent"}]
    })
    .to_string();

    let status = app.publish(&ada, request).await.unwrap_err();

    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let violations = sankalpa_kit::problem::field_violations(&status);
    assert!(
        violations
            .iter()
            .any(|v| v.field.starts_with("package_json") && v.message.contains("no_such_agent")),
        "{violations:?}"
    );
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM marketplace.items")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM marketplace.item_versions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((items, versions), (0, 0));
    assert!(
        app.stored_packages().is_empty(),
        "{:?}",
        app.stored_packages()
    );
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_bad_agent_definition_is_refused_naming_its_field(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let mut request = chain_item("bad-agent", "Bad agent", "1.0.0");
    request.kind = pb::ItemKind::Agent as i32;
    request.package_json = json!({"name": "bad agent name", "category": "custom"}).to_string();

    let status = app.publish(&ada, request).await.unwrap_err();

    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(app.stored_packages().is_empty());
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_published_version_is_immutable_and_only_its_publisher_adds_versions(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let published = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap();
    let item = published.item.unwrap();
    let version = published.version.unwrap();
    assert_eq!(item.latest_version, "1.0.0");
    assert_eq!(item.author_name, "Ada");
    assert_eq!(version.sha256.len(), 64);
    assert_eq!(app.stored_packages().len(), 1);

    let again = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::AlreadyExists, "{again:?}");

    let mut as_agent = chain_item("hello", "Hello", "2.0.0");
    as_agent.kind = pb::ItemKind::Agent as i32;
    let other_kind = app.publish(&ada, as_agent).await.unwrap_err();
    assert_eq!(other_kind.code(), tonic::Code::FailedPrecondition);

    // Bob's own "hello" is another item: slugs are unique per publisher tenant.
    let bobs = app
        .publish(&bob, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    assert_ne!(bobs.id, item.id);

    let yank_by_bob = app
        .market
        .yank_version(crate::authed(
            pb::YankVersionRequest {
                item: Some(crate::by_id(&item.id)),
                version: "1.0.0".into(),
                reason: "mine now".into(),
                unyank: false,
            },
            &bob.token,
        ))
        .await
        .unwrap_err();
    // Another tenant's item is not found to any write, public or not.
    assert_eq!(yank_by_bob.code(), tonic::Code::NotFound);

    let bad_version = app
        .publish(&ada, chain_item("hello", "Hello", "1.0"))
        .await
        .unwrap_err();
    assert_eq!(
        sankalpa_kit::problem::field_violations(&bad_version)[0].field,
        "version"
    );
}
