use sankalpa_proto::v1 as pb;
use sqlx::PgPool;

use crate::{authed, by_id, chain_item, start};

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn versions_order_by_semver_and_yanked_ones_leave_latest_but_stay_installable(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    for version in ["1.9.0", "1.10.0", "1.2.0", "1.10.0-rc.1"] {
        app.publish(&ada, chain_item("hello", "Hello", version))
            .await
            .unwrap();
    }
    let item = app
        .market
        .get_item(authed(
            pb::GetItemRequest {
                item: Some(pb::ItemRef {
                    by: Some(pb::item_ref::By::Slug(pb::ItemSlug {
                        publisher_tenant_id: ada.tenant_id.clone(),
                        slug: "hello".into(),
                    })),
                }),
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(item.latest_version, "1.10.0");

    let listed = app
        .market
        .list_versions(authed(
            pb::ListVersionsRequest {
                item: Some(by_id(&item.id)),
                page: None,
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .versions;
    let order: Vec<&str> = listed.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(order, ["1.10.0", "1.10.0-rc.1", "1.9.0", "1.2.0"]);

    let yanked = app
        .market
        .yank_version(authed(
            pb::YankVersionRequest {
                item: Some(by_id(&item.id)),
                version: "1.10.0".into(),
                reason: "broken".into(),
                unyank: false,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(yanked.yanked);
    assert_eq!(yanked.yank_reason, "broken");
    assert_eq!(
        app.get_item(&bob, &item.id).await.unwrap().latest_version,
        "1.10.0-rc.1"
    );

    let latest = app.install(&bob, &item.id, None).await.unwrap();
    assert_eq!(latest.install.unwrap().version, "1.10.0-rc.1");
    let exact = app
        .install(&bob, &item.id, Some("1.10.0"))
        .await
        .unwrap()
        .install
        .unwrap();
    assert_eq!(exact.version, "1.10.0");
    // The second version updated the chain the first made rather than making another.
    let chains = app
        .chains
        .list_chains(authed(pb::ListChainsRequest::default(), &bob.token))
        .await
        .unwrap()
        .into_inner()
        .chains;
    let stored: Vec<_> = chains.iter().filter(|chain| !chain.id.is_empty()).collect();
    assert_eq!(stored.len(), 1, "{chains:?}");
    assert_eq!(stored[0].id, exact.target);
    assert_eq!(stored[0].latest_version, 2);
    assert_eq!(app.get_item(&bob, &item.id).await.unwrap().downloads, 2);

    app.market
        .yank_version(authed(
            pb::YankVersionRequest {
                item: Some(by_id(&item.id)),
                version: "1.10.0".into(),
                reason: String::new(),
                unyank: true,
            },
            &ada.token,
        ))
        .await
        .unwrap();
    assert_eq!(
        app.get_item(&bob, &item.id).await.unwrap().latest_version,
        "1.10.0"
    );
}
