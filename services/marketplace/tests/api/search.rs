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

/// A one-term search reads ranks and sort keys kept per term (item_terms); in every order it
/// must give what sorting every match gives, page after page, and follow an item's changes.
/// The reference here sorts item_search's rows directly, as the search does for any other
/// query.
#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_one_term_search_pages_through_what_sorting_every_match_gives(pool: PgPool) {
    let mut app = start(pool.clone()).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let items = [
        ("exact", "Deploy", &["ops"][..], "Ships it."),
        ("named", "Deploy Helper", &["ops"][..], "Helps."),
        ("tagged", "Shipper", &["deploy", "ops"][..], "Moves builds."),
        (
            "wordy",
            "Builder",
            &["build"][..],
            "Deploy, deploy and deploy again.",
        ),
        ("once", "Quiet", &["build"][..], "Can deploy once."),
        ("twin-a", "Twin", &["build"][..], "Can deploy once."),
        ("twin-b", "Twin", &["build"][..], "Can deploy once."),
        (
            "hidden",
            "Secret Deployer",
            &["ops"][..],
            "Deploys in private.",
        ),
        ("unrelated", "Unrelated", &["misc"][..], "Nothing to see."),
    ];
    let mut ids = std::collections::HashMap::new();
    for (slug, name, tags, description) in items {
        let mut request = chain_item(slug, name, "1.0.0");
        request.tags = tags.iter().map(|tag| tag.to_string()).collect();
        request.description = description.into();
        if slug == "hidden" {
            request.visibility = pb::Visibility::Private as i32;
        }
        let item = app.publish(&ada, request).await.unwrap().item.unwrap();
        ids.insert(slug, item.id);
    }
    // Downloads and ratings that order the matches differently from their rank.
    for slug in ["twin-b", "once"] {
        app.install(&bob, &ids[slug], None).await.unwrap();
    }
    for (slug, rating) in [("twin-a", 5), ("once", 2), ("named", 5)] {
        app.market
            .review(authed(
                pb::ReviewRequest {
                    item: Some(crate::by_id(&ids[slug])),
                    rating,
                    comment: String::new(),
                },
                &bob.token,
            ))
            .await
            .unwrap();
    }

    let orders = [
        (
            pb::SearchSort::Relevance,
            "lower(s.name) = lower($1) DESC, ts_rank(s.search, q) DESC",
        ),
        (pb::SearchSort::Downloads, "s.downloads DESC"),
        (
            pb::SearchSort::Rating,
            "s.rating_average DESC, s.rating_count DESC",
        ),
        (pb::SearchSort::Newest, "s.created_at DESC"),
    ];
    let check = async |app: &mut crate::Stack, caller: &crate::Caller, query: &str, tag: &str| {
        let mut counts = Vec::new();
        for (sort, order) in orders {
            // `order` is one of the constants above.
            let expected: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT i.slug FROM marketplace.item_search s
                 JOIN marketplace.items i ON i.id = s.id, websearch_to_tsquery('english', $1) AS q
                 WHERE s.search @@ q
                   AND (s.visibility = 'public' OR s.publisher_tenant_id = $2)
                   AND ($3 = '' OR s.tags @> ARRAY[$3])
                 ORDER BY {order}, s.created_at DESC, s.id DESC"
            )))
            .bind(query)
            .bind(caller.tenant_id.parse::<uuid::Uuid>().unwrap())
            .bind(tag)
            .fetch_all(&pool)
            .await
            .unwrap();
            let mut paged = Vec::new();
            let mut page_token = String::new();
            loop {
                let answer = app
                    .market
                    .search(authed(
                        pb::SearchRequest {
                            query: query.into(),
                            tag: tag.into(),
                            sort: sort as i32,
                            page: Some(pb::PageRequest {
                                page_size: 2,
                                page_token,
                            }),
                            ..Default::default()
                        },
                        &caller.token,
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                paged.extend(answer.items.into_iter().map(|item| item.slug));
                page_token = answer.page.unwrap().next_page_token;
                if page_token.is_empty() {
                    break;
                }
            }
            assert_eq!(paged, expected, "{query:?} tagged {tag:?} by {sort:?}");
            counts.push(expected);
        }
        counts
    };

    let for_bob = check(&mut app, &bob, "deploy", "").await;
    let [relevance, downloads, rating, newest] = &for_bob[..] else {
        unreachable!()
    };
    assert_eq!(relevance.len(), 7, "{relevance:?}");
    assert_eq!(relevance[0], "exact");
    assert_eq!(downloads[..2], ["twin-b", "once"]);
    assert_eq!(rating[..3], ["twin-a", "named", "once"]);
    assert_eq!(newest[0], "twin-b");
    assert_eq!(check(&mut app, &ada, "DEPLOYING", "").await[0].len(), 8);
    assert_eq!(check(&mut app, &bob, "deploy", "ops").await[0].len(), 3);
    // Two terms take the other branch, which every order must sort alike.
    assert_eq!(check(&mut app, &bob, "deploy build", "").await[0].len(), 5);

    // A new version's words, and its visibility, reach the per-term rows.
    let mut changed = chain_item("tagged", "Shipper", "1.1.0");
    changed.tags = vec!["ops".into()];
    changed.description = "Moves builds.".into();
    app.publish(&ada, changed).await.unwrap();
    let mut hidden = chain_item("once", "Quiet", "1.1.0");
    hidden.tags = vec!["build".into()];
    hidden.description = "Can deploy once.".into();
    hidden.visibility = pb::Visibility::Private as i32;
    app.publish(&ada, hidden).await.unwrap();
    let after = &check(&mut app, &bob, "deploy", "").await[0];
    assert!(
        !after.iter().any(|slug| slug == "tagged" || slug == "once"),
        "{after:?}"
    );
    assert_eq!(after.len(), 5);
}
