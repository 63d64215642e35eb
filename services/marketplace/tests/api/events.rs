use sankalpa_proto::v1 as pb;
use sankalpa_testkit::Events;
use sqlx::PgPool;

use crate::{authed, by_id, chain_item, start};

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn publishes_installs_and_reviews_are_announced_in_the_acting_tenant(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let mut events = Events::read(&app.infra, "market.>").await;

    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    app.install(&bob, &item.id, None).await.unwrap();
    app.market
        .review(authed(
            pb::ReviewRequest {
                item: Some(by_id(&item.id)),
                rating: 4,
                comment: "works".into(),
            },
            &bob.token,
        ))
        .await
        .unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let (subject, event) = events.next().await;
        assert_eq!(event.data["item_id"], item.id);
        seen.push(subject);
    }
    let prefix = &app.infra.subject_prefix;
    assert_eq!(
        seen,
        [
            format!("{prefix}market.{}.{}.published", ada.tenant_id, item.id),
            format!("{prefix}market.{}.{}.installed", bob.tenant_id, item.id),
            format!("{prefix}market.{}.{}.reviewed", bob.tenant_id, item.id),
        ]
    );
}
