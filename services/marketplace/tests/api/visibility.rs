use sankalpa_proto::v1 as pb;
use sqlx::PgPool;

use crate::{authed, by_id, chain_item, start};

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_private_item_is_invisible_to_other_tenants(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let mut request = chain_item("secret-greeter", "Secret greeter", "1.0.0");
    request.visibility = pb::Visibility::Private as i32;
    let item = app.publish(&ada, request).await.unwrap().item.unwrap();

    assert_eq!(app.get_item(&ada, &item.id).await.unwrap().id, item.id);
    let search = pb::SearchRequest {
        query: "secret greeter".into(),
        ..Default::default()
    };
    assert_eq!(app.search(&ada, search.clone()).await.unwrap().len(), 1);

    assert_eq!(
        app.get_item(&bob, &item.id).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert!(app.search(&bob, search).await.unwrap().is_empty());
    assert!(
        app.search(&bob, pb::SearchRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.install(&bob, &item.id, None).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let review = app
        .market
        .review(authed(
            pb::ReviewRequest {
                item: Some(by_id(&item.id)),
                rating: 1,
                comment: String::new(),
            },
            &bob.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(review.code(), tonic::Code::NotFound);
    let versions = app
        .market
        .list_versions(authed(
            pb::ListVersionsRequest {
                item: Some(by_id(&item.id)),
                page: None,
            },
            &bob.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(versions.code(), tonic::Code::NotFound);
}
