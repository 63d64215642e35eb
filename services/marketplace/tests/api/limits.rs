//! Every size and count a request controls is bounded, and a bound exceeded is
//! INVALID_ARGUMENT naming the field, changing nothing; answers stay under what a gRPC client
//! accepts.

use prost::Message;
use sankalpa_proto::v1 as pb;
use sqlx::PgPool;
use tonic::Code;

use crate::{authed, by_id, chain_item, start, start_with};

fn violated_field(status: &tonic::Status) -> String {
    sankalpa_kit::problem::field_violations(status)
        .first()
        .map(|violation| violation.field.clone())
        .unwrap_or_default()
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_page_token_deeper_than_lists_go_is_refused_naming_it(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    let deep = |page_token: &str| {
        Some(pb::PageRequest {
            page_size: 200,
            page_token: page_token.to_owned(),
        })
    };

    for token in ["10001", &i64::MAX.to_string()] {
        for query in ["", "hello"] {
            let search = app
                .market
                .search(authed(
                    pb::SearchRequest {
                        query: query.into(),
                        page: deep(token),
                        ..Default::default()
                    },
                    &ada.token,
                ))
                .await
                .unwrap_err();
            assert_eq!(search.code(), Code::InvalidArgument, "{token}: {search:?}");
            assert_eq!(violated_field(&search), "page.page_token");
        }
        let reviews = app
            .market
            .list_reviews(authed(
                pb::ListReviewsRequest {
                    item: Some(by_id(&item.id)),
                    page: deep(token),
                },
                &ada.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(violated_field(&reviews), "page.page_token");
    }
    // The deepest page there is answers.
    let deepest = app
        .market
        .search(authed(
            pb::SearchRequest {
                page: deep("10000"),
                ..Default::default()
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deepest.items.is_empty());
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_version_longer_than_the_bound_is_refused_and_nothing_is_stored(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;

    let long = format!("1.0.0-{}", "a".repeat(100_000));
    let refused = app
        .publish(&ada, chain_item("hello", "Hello", &long))
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert_eq!(violated_field(&refused), "version");
    assert!(app.stored_packages().is_empty());
    let found = app
        .search(&ada, pb::SearchRequest::default())
        .await
        .unwrap();
    assert!(found.is_empty());
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn pages_stop_at_the_byte_budget_and_hold_every_version_once(pool: PgPool) {
    let budget = 30_000;
    let mut app = start_with(pool, |config| config.max_page_bytes = budget).await;
    let ada = app.sign_up().await;
    let mut item_id = String::new();
    let published: Vec<String> = (1..=5).map(|minor| format!("1.{minor}.0")).collect();
    for version in &published {
        let mut request = chain_item("hello", "Hello", version);
        request.release_notes = "n".repeat(10_000);
        item_id = app.publish(&ada, request).await.unwrap().item.unwrap().id;
    }

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut page_token = String::new();
    loop {
        let page = app
            .market
            .list_versions(authed(
                pb::ListVersionsRequest {
                    item: Some(by_id(&item_id)),
                    page: Some(pb::PageRequest {
                        page_size: 200,
                        page_token,
                    }),
                },
                &ada.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!page.versions.is_empty(), "every page makes progress");
        assert!(
            page.encoded_len() <= budget,
            "a page of {} bytes",
            page.encoded_len()
        );
        pages += 1;
        seen.extend(page.versions.into_iter().map(|version| version.version));
        page_token = page.page.unwrap().next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    seen.reverse();
    assert_eq!(seen, published, "every version once, highest first");
    assert!(pages > 1 && pages < 5, "{pages} pages");
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn an_item_holds_at_most_the_bound_of_versions_yanked_ones_included(pool: PgPool) {
    let mut app = start_with(pool, |config| config.max_versions_per_item = 2).await;
    let ada = app.sign_up().await;
    let mut item_id = String::new();
    for version in ["1.0.0", "1.1.0"] {
        item_id = app
            .publish(&ada, chain_item("hello", "Hello", version))
            .await
            .unwrap()
            .item
            .unwrap()
            .id;
    }
    app.market
        .yank_version(authed(
            pb::YankVersionRequest {
                item: Some(by_id(&item_id)),
                version: "1.0.0".into(),
                reason: "superseded".into(),
                unyank: false,
            },
            &ada.token,
        ))
        .await
        .unwrap();

    let refused = app
        .publish(&ada, chain_item("hello", "Hello", "1.2.0"))
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("2 versions"), "{refused:?}");
    assert_eq!(app.stored_packages().len(), 2);
    assert_eq!(
        app.get_item(&ada, &item_id).await.unwrap().latest_version,
        "1.1.0"
    );
    // Another item has room of its own.
    app.publish(&ada, chain_item("other", "Other", "1.2.0"))
        .await
        .unwrap();
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_package_bound_set_above_four_mib_is_the_one_a_client_meets(pool: PgPool) {
    let bound = 4 * 1024 * 1024;
    let mut app = start_with(pool, |config| config.max_package_bytes = bound).await;
    let ada = app.sign_up().await;
    let mut request = chain_item("hello", "Hello", "1.0.0");
    // Over gRPC's default 4 MiB message limit, which would refuse it without naming a field.
    request.package_json = format!("\"{}\"", "x".repeat(bound + 10_000));

    let refused = app.publish(&ada, request).await.unwrap_err();

    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert_eq!(violated_field(&refused), "package_json");
    assert!(app.stored_packages().is_empty());
}
