use std::num::NonZeroUsize;
use std::time::Duration;

use sankalpa_proto::v1 as pb;
use sqlx::PgPool;

use crate::{authed, chain_item, start, start_with};

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn an_exact_name_match_ranks_first(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    // Its text mentions "code review" far more, but its name is not the query.
    let mut wordy = chain_item("wordy", "Review of code review tools", "1.0.0");
    wordy.description = "Code review, code review, code review: every code review.".into();
    wordy.tags = vec!["code".into(), "review".into()];
    app.publish(&ada, wordy).await.unwrap();
    let exact = app
        .publish(&ada, chain_item("code-review", "Code Review", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    let mut other = chain_item("unrelated", "Unrelated", "1.0.0");
    other.description = "Nothing to see.".into();
    other.tags = vec!["misc".into()];
    app.publish(&ada, other).await.unwrap();

    let found = app
        .search(
            &bob,
            pb::SearchRequest {
                query: "code review".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let slugs: Vec<&str> = found.iter().map(|item| item.slug.as_str()).collect();
    assert_eq!(slugs, ["code-review", "wordy"]);
    assert_eq!(found[0].id, exact.id);
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn search_filters_by_kind_and_tag_sorts_and_pages(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    for (slug, tag) in [("one", "alpha"), ("two", "beta"), ("three", "alpha")] {
        let mut request = chain_item(slug, slug, "1.0.0");
        request.tags = vec![tag.into()];
        app.publish(&ada, request).await.unwrap();
    }
    let popular = app
        .search(
            &bob,
            pb::SearchRequest {
                tag: "beta".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(popular.len(), 1);
    app.install(&bob, &popular[0].id, None).await.unwrap();

    let by_downloads = app
        .search(
            &bob,
            pb::SearchRequest {
                sort: pb::SearchSort::Downloads as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_downloads[0].slug, "two");

    let newest: Vec<String> = app
        .search(&bob, pb::SearchRequest::default())
        .await
        .unwrap()
        .into_iter()
        .map(|item| item.slug)
        .collect();
    assert_eq!(newest, ["three", "two", "one"]);

    let agents = app
        .search(
            &bob,
            pb::SearchRequest {
                kind: pb::ItemKind::Agent as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(agents.is_empty());

    let first_page = app
        .market
        .search(crate::authed(
            pb::SearchRequest {
                tag: "alpha".into(),
                page: Some(pb::PageRequest {
                    page_size: 1,
                    page_token: String::new(),
                }),
                ..Default::default()
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.items[0].slug, "three");
    let token = first_page.page.unwrap().next_page_token;
    let second = app
        .market
        .search(crate::authed(
            pb::SearchRequest {
                tag: "alpha".into(),
                page: Some(pb::PageRequest {
                    page_size: 1,
                    page_token: token,
                }),
                ..Default::default()
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.items[0].slug, "one");
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_new_version_is_found_by_its_own_words_and_no_longer_by_the_old_ones(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let search = async |app: &mut crate::Stack, query: &str| {
        app.search(
            &bob,
            pb::SearchRequest {
                query: query.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len()
    };
    app.publish(&ada, chain_item("greeter", "Greeter", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(search(&mut app, "politely").await, 1);
    assert_eq!(search(&mut app, "farewell").await, 0);

    let mut next = chain_item("greeter", "Greeter", "1.1.0");
    next.description = "Waves farewell to whoever is named.".into();
    app.publish(&ada, next).await.unwrap();

    assert_eq!(search(&mut app, "farewell").await, 1);
    assert_eq!(search(&mut app, "politely").await, 0);
}

/// Searches past the configured number wait in the service, not in Postgres: with one turn,
/// four searches asked at once reach the database one at a time, and all are answered.
#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn searches_past_the_limit_wait_their_turn(pool: PgPool) {
    let mut app = start_with(pool.clone(), |config| {
        config.search_concurrency = NonZeroUsize::MIN;
    })
    .await;
    let ada = app.sign_up().await;
    app.publish(&ada, chain_item("queued", "Queued Search", "1.0.0"))
        .await
        .unwrap();
    // Held while the searches are counted: each one that reaches Postgres waits on it.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE marketplace.item_search IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let searches: Vec<_> = (0..4)
        .map(|_| {
            let mut market = app.market.clone();
            let request = pb::SearchRequest {
                query: "queued".into(),
                ..Default::default()
            };
            let token = ada.token.clone();
            tokio::spawn(async move { market.search(authed(request, &token)).await })
        })
        .collect();
    let in_postgres = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE '%item_search%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    for _ in 0..100 {
        if in_postgres().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for the other three to arrive, were they let through.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(in_postgres().await, 1);

    blocker.rollback().await.unwrap();
    for search in searches {
        let found = search.await.unwrap().unwrap().into_inner().items;
        let slugs: Vec<&str> = found.iter().map(|item| item.slug.as_str()).collect();
        assert_eq!(slugs, ["queued"]);
    }
}
