//! Every write of MarketplaceService to another tenant's item answers NOT_FOUND and changes
//! nothing, read back as its owner.

use sankalpa_proto::v1 as pb;
use sqlx::PgPool;
use tonic::Code;

use crate::{Caller, Stack, authed, by_id, chain_item, start};

/// What the owner sees of an item: the item, its versions and its reviews.
async fn as_owner(
    app: &mut Stack,
    owner: &Caller,
    item_id: &str,
) -> (pb::Item, Vec<pb::ItemVersion>, Vec<pb::ItemReview>) {
    let item = app.get_item(owner, item_id).await.unwrap();
    let versions = app
        .market
        .list_versions(authed(
            pb::ListVersionsRequest {
                item: Some(by_id(item_id)),
                page: None,
            },
            &owner.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .versions;
    let reviews = app
        .market
        .list_reviews(authed(
            pb::ListReviewsRequest {
                item: Some(by_id(item_id)),
                page: None,
            },
            &owner.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .reviews;
    (item, versions, reviews)
}

fn by_slug(publisher: &Caller, slug: &str) -> pb::ItemRef {
    pb::ItemRef {
        by: Some(pb::item_ref::By::Slug(pb::ItemSlug {
            publisher_tenant_id: publisher.tenant_id.clone(),
            slug: slug.to_owned(),
        })),
    }
}

fn assert_not_found<T: std::fmt::Debug>(answer: Result<T, tonic::Status>, what: &str) {
    match answer {
        Ok(done) => panic!("{what} answered {done:?}"),
        Err(status) => assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}"),
    }
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn every_write_to_another_tenants_item_is_not_found_and_changes_nothing(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let public = app
        .publish(&ada, chain_item("greeter", "Greeter", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    let mut private = chain_item("secret", "Secret", "1.0.0");
    private.visibility = pb::Visibility::Private as i32;
    let private = app.publish(&ada, private).await.unwrap().item.unwrap();
    let public_before = as_owner(&mut app, &ada, &public.id).await;
    let private_before = as_owner(&mut app, &ada, &private.id).await;
    let packages_before = app.stored_packages();

    for (item, what) in [
        (by_id(&public.id), "the public item by id"),
        (by_slug(&ada, "greeter"), "the public item by slug"),
        (by_id(&private.id), "the private item"),
    ] {
        for unyank in [false, true] {
            let yank = app
                .market
                .yank_version(authed(
                    pb::YankVersionRequest {
                        item: Some(item.clone()),
                        version: "1.0.0".into(),
                        reason: "not yours".into(),
                        unyank,
                    },
                    &bob.token,
                ))
                .await;
            assert_not_found(yank, &format!("a yank (undone: {unyank}) of {what}"));
        }
    }
    for item in [by_id(&private.id), by_slug(&ada, "secret")] {
        let install = app
            .market
            .install(authed(
                pb::InstallRequest {
                    item: Some(item.clone()),
                    version: Some("1.0.0".into()),
                },
                &bob.token,
            ))
            .await;
        assert_not_found(install, "an install of the private item");
        let review = app
            .market
            .review(authed(
                pb::ReviewRequest {
                    item: Some(item),
                    rating: 1,
                    comment: "mine now".into(),
                },
                &bob.token,
            ))
            .await;
        assert_not_found(review, "a review of the private item");
    }
    // A publish names a slug of the caller's own tenant: the same slug is bob's own item.
    let bobs = app
        .publish(&bob, chain_item("greeter", "Bob's greeter", "2.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    assert_ne!(bobs.id, public.id);
    assert_eq!(bobs.publisher_tenant_id, bob.tenant_id);

    assert_eq!(as_owner(&mut app, &ada, &public.id).await, public_before);
    assert_eq!(as_owner(&mut app, &ada, &private.id).await, private_before);
    assert_eq!(app.stored_packages().len(), packages_before.len() + 1);
    let bobs_installs = app
        .market
        .list_installs(authed(
            pb::ListInstallsRequest {
                item: None,
                page: None,
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .installs;
    assert!(bobs_installs.is_empty());
}
