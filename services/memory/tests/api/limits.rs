use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::transact_op::Op;
use tonic::Code;

use crate::{authed, start, start_with, violated_field};

#[sqlx::test(migrations = false)]
async fn every_limit_is_a_clear_error_naming_its_field_and_changes_nothing(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| config.max_value_bytes = 1024).await;
    let ada = app.sign_up().await;

    let long_key = "k".repeat(257);
    let refused = app.save(&ada, "s1", &long_key, "1").await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&refused), "key");
    assert!(app.save(&ada, "s1", &"k".repeat(256), "1").await.is_ok());

    let big = format!("\"{}\"", "x".repeat(1024));
    let refused = app.save(&ada, "s1", "big", &big).await.unwrap_err();
    assert_eq!(violated_field(&refused), "value_json");
    assert!(refused.message().contains("1024"));

    for not_json in ["{", "hello", "", "{'a': 1}"] {
        let refused = app.save(&ada, "s1", "k", not_json).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{not_json:?}");
        assert_eq!(violated_field(&refused), "value_json");
    }

    for bad_session in ["", "has.dot", "has space", &"s".repeat(257)] {
        let refused = app.save(&ada, bad_session, "k", "1").await.unwrap_err();
        assert_eq!(violated_field(&refused), "session_id", "{bad_session:?}");
    }

    let set = |key: String| pb::TransactOp {
        key,
        op: Some(Op::Set(pb::SetOp {
            value_json: "1".into(),
            ttl_seconds: 0,
        })),
    };
    let transact = |ops| {
        authed(
            pb::TransactRequest {
                session_id: "s1".into(),
                ops,
            },
            &ada.token,
        )
    };
    let too_many = (0..1001).map(|i| set(format!("k{i}"))).collect();
    let refused = app.client.transact(transact(too_many)).await.unwrap_err();
    assert_eq!(violated_field(&refused), "ops");
    let most = (0..1000).map(|i| set(format!("k{i}"))).collect();
    let done = app
        .client
        .transact(transact(most))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.entries.len(), 1000);

    let mut bad_value = vec![set("a".into()), set("b".into())];
    bad_value[1].op = Some(Op::Set(pb::SetOp {
        value_json: "nope".into(),
        ttl_seconds: 0,
    }));
    let refused = app.client.transact(transact(bad_value)).await.unwrap_err();
    assert_eq!(violated_field(&refused), "ops[1].set.value_json");
    let twice = vec![set("a".into()), set("a".into())];
    let refused = app.client.transact(transact(twice)).await.unwrap_err();
    assert_eq!(violated_field(&refused), "ops[1].key");

    // Nothing refused was written.
    assert_eq!(
        app.load(&ada, "s1", "big").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.load(&ada, "s1", "k").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.load(&ada, "s1", "a").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[sqlx::test(migrations = false)]
async fn a_value_whose_numbers_are_written_out_past_the_bound_is_refused(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| config.max_value_bytes = 1024 * 1024).await;
    let ada = app.sign_up().await;

    // 130 bytes of JSON that Postgres would give back as 1.3 MB of digits.
    let digits = ["1e131071"; 10].join(",");
    let refused = app
        .save(&ada, "s1", "big", &format!("[{digits}]"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&refused), "value_json");
    assert_eq!(
        app.load(&ada, "s1", "big").await.unwrap_err().code(),
        Code::NotFound
    );

    // A modest exponent is fine, and comes back written out.
    app.save(&ada, "s1", "small", "[1e3]").await.unwrap();
    assert_eq!(
        app.load(&ada, "s1", "small").await.unwrap().value_json,
        "[1000]"
    );
}

#[sqlx::test(migrations = false)]
async fn a_session_holds_at_most_ten_thousand_keys_and_stays_writable_at_the_bound(
    pool: sqlx::PgPool,
) {
    let mut app = start_with(pool, |_| {}).await;
    let ada = app.sign_up().await;
    let set = |key: &str, value: &str| pb::TransactOp {
        key: key.into(),
        op: Some(Op::Set(pb::SetOp {
            value_json: value.into(),
            ttl_seconds: 0,
        })),
    };
    let transact = |ops| {
        authed(
            pb::TransactRequest {
                session_id: "full".into(),
                ops,
            },
            &ada.token,
        )
    };
    for batch in 0..10 {
        let ops = (0..1000)
            .map(|n| set(&format!("k{:05}", batch * 1000 + n), "1"))
            .collect();
        app.client.transact(transact(ops)).await.unwrap();
    }

    let refused = app.save(&ada, "full", "one-more", "1").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("10000"), "{refused:?}");
    let refused = app
        .client
        .transact(transact(vec![set("k00000", "2"), set("one-more", "1")]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(app.load(&ada, "full", "k00000").await.unwrap().version, 1);
    assert_eq!(
        app.load(&ada, "full", "one-more").await.unwrap_err().code(),
        Code::NotFound
    );

    // At the bound, keys it holds still change, and a deleted key makes room for another.
    assert_eq!(
        app.save(&ada, "full", "k00001", "2").await.unwrap().version,
        2
    );
    let deleted = app
        .client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "full".into(),
                key: "k00002".into(),
                expected_version: None,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    app.save(&ada, "full", "one-more", "1").await.unwrap();
    // The bound is per session.
    app.save(&ada, "another", "k", "1").await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_transaction_carrying_more_bytes_than_the_bound_is_refused_naming_ops(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let big = format!("\"{}\"", "x".repeat(900 * 1024));
    let set = |key: &str| pb::TransactOp {
        key: key.into(),
        op: Some(Op::Set(pb::SetOp {
            value_json: big.clone(),
            ttl_seconds: 0,
        })),
    };
    let transact = |ops| {
        authed(
            pb::TransactRequest {
                session_id: "s1".into(),
                ops,
            },
            &ada.token,
        )
    };

    // 2.7 MB: each value is under its own bound, the three together over the 2 MiB default.
    let refused = app
        .client
        .transact(transact(vec![set("a"), set("b"), set("c")]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert_eq!(violated_field(&refused), "ops");
    assert!(refused.message().contains(&(2 * 1024 * 1024).to_string()));
    assert_eq!(
        app.contents(&ada, "s1").await.unwrap_err().code(),
        Code::NotFound,
        "nothing was written"
    );

    let done = app
        .client
        .transact(transact(vec![set("a"), set("b")]))
        .await
        .unwrap()
        .into_inner();
    assert!(done.committed);
    assert_eq!(done.entries.len(), 2);
}

#[sqlx::test(migrations = false)]
async fn a_value_bound_set_above_four_mib_is_the_one_a_client_meets(pool: sqlx::PgPool) {
    let bound = 4 * 1024 * 1024;
    let mut app = start_with(pool, |config| config.max_value_bytes = bound).await;
    let ada = app.sign_up().await;

    // Over gRPC's default 4 MiB message limit, which would refuse it without naming a field.
    let over = format!("\"{}\"", "x".repeat(bound + 10_000));
    let refused = app.save(&ada, "s1", "k", &over).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert_eq!(violated_field(&refused), "value_json");
}
