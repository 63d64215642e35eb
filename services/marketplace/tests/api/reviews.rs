use sankalpa_proto::v1 as pb;
use sqlx::PgPool;

use crate::{Caller, authed, by_id, chain_item, start};

fn review(item_id: &str, rating: u32, comment: &str) -> pb::ReviewRequest {
    pb::ReviewRequest {
        item: Some(by_id(item_id)),
        rating,
        comment: comment.to_owned(),
    }
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn concurrent_reviews_keep_the_rating_exact(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    let mut reviewers: Vec<Caller> = Vec::new();
    for _ in 0..20 {
        reviewers.push(app.sign_up().await);
    }

    let writes = reviewers.iter().enumerate().map(|(index, reviewer)| {
        let mut market = app.market.clone();
        let request = authed(
            review(&item.id, (index % 5 + 1) as u32, "nice"),
            &reviewer.token,
        );
        async move { market.review(request).await }
    });
    for written in futures::future::join_all(writes).await {
        written.expect("every review is accepted");
    }

    let rated = app.get_item(&ada, &item.id).await.unwrap();
    assert_eq!(rated.rating_count, 20);
    // Four of each rating 1..=5: (1+2+3+4+5) * 4 / 20.
    assert!((rated.rating_average - 3.0).abs() < 1e-9, "{rated:?}");

    // Editing replaces: the first reviewer's 1 becomes a 5.
    let mut market = app.market.clone();
    market
        .review(authed(
            review(&item.id, 5, "better now"),
            &reviewers[0].token,
        ))
        .await
        .unwrap();
    let rated = app.get_item(&ada, &item.id).await.unwrap();
    assert_eq!(rated.rating_count, 20);
    assert!(
        (rated.rating_average - 64.0 / 20.0).abs() < 1e-9,
        "{rated:?}"
    );

    let listed = market
        .list_reviews(authed(
            pb::ListReviewsRequest {
                item: Some(by_id(&item.id)),
                page: Some(pb::PageRequest {
                    page_size: 5,
                    page_token: String::new(),
                }),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.reviews.len(), 5);
    assert_eq!(listed.reviews[0].comment, "better now", "newest first");
    assert_eq!(listed.page.unwrap().next_page_token, "5");
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_publisher_cannot_review_its_own_item_and_ratings_are_one_to_five(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();

    let own = app
        .market
        .review(authed(review(&item.id, 5, "mine is great"), &ada.token))
        .await
        .unwrap_err();
    assert_eq!(own.code(), tonic::Code::FailedPrecondition);

    let zero = app
        .market
        .review(authed(review(&item.id, 0, ""), &bob.token))
        .await
        .unwrap_err();
    assert_eq!(zero.code(), tonic::Code::InvalidArgument);
    let six = app
        .market
        .review(authed(review(&item.id, 6, ""), &bob.token))
        .await
        .unwrap_err();
    assert_eq!(six.code(), tonic::Code::InvalidArgument);

    let rated = app.get_item(&bob, &item.id).await.unwrap();
    assert_eq!((rated.rating_count, rated.rating_average), (0, 0.0));
}
