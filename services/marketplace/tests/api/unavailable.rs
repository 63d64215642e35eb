//! A dependency that cannot be asked (the database, the object store, the service that owns a
//! package) answers UNAVAILABLE naming it, which a client retries (the gateway's 503 with
//! Retry-After), never INTERNAL or the transport's own words.

use sqlx::PgPool;
use tonic::Code;

use crate::{chain_item, start};

/// The versions and installs recorded.
async fn recorded(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM marketplace.item_versions), \
                (SELECT count(*) FROM marketplace.installs)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_database_that_cannot_be_asked_answers_unavailable(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();

    // Closing the pool the service shares with the test is the database going away.
    app.pool.close().await;

    let read = app.get_item(&ada, &item.id).await.unwrap_err();
    assert_eq!(read.code(), Code::Unavailable, "{read:?}");
    assert!(read.message().contains("database"), "{read:?}");
    let search = app
        .search(&ada, sankalpa_proto::v1::SearchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(search.code(), Code::Unavailable, "{search:?}");
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn an_owning_service_that_is_down_answers_unavailable_naming_it(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();

    app.stop_orchestrator().await;

    let publish = app
        .publish(&ada, chain_item("hello", "Hello", "1.1.0"))
        .await
        .unwrap_err();
    assert_eq!(publish.code(), Code::Unavailable, "{publish:?}");
    assert!(
        publish.message().contains("chain orchestrator"),
        "the message names what is down: {publish:?}"
    );
    let install = app.install(&bob, &item.id, None).await.unwrap_err();
    assert_eq!(install.code(), Code::Unavailable, "{install:?}");
    assert!(
        install.message().contains("chain orchestrator"),
        "{install:?}"
    );

    assert_eq!(recorded(&app.pool).await, (1, 0));
    assert_eq!(app.get_item(&ada, &item.id).await.unwrap().downloads, 0);
    assert_eq!(app.stored_packages().len(), 1);
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn an_object_store_that_cannot_be_reached_answers_unavailable_and_records_nothing(
    pool: PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();

    // A file where the marketplace's folder was: every read and write under it fails, as with
    // a store that cannot be reached.
    let folder = app.packages.join("marketplace");
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"in the way").unwrap();

    let publish = app
        .publish(&ada, chain_item("hello", "Hello", "1.1.0"))
        .await
        .unwrap_err();
    assert_eq!(publish.code(), Code::Unavailable, "{publish:?}");
    assert!(publish.message().contains("object store"), "{publish:?}");
    let install = app.install(&bob, &item.id, None).await.unwrap_err();
    assert_eq!(install.code(), Code::Unavailable, "{install:?}");

    assert_eq!(recorded(&app.pool).await, (1, 0));
    assert_eq!(
        app.get_item(&ada, &item.id).await.unwrap().latest_version,
        "1.0.0"
    );
}
