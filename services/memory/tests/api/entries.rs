use std::time::Duration;

use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::{authed, current_version, json, overwrite, start, start_with, violated_field};

#[sqlx::test(migrations = false)]
async fn a_saved_value_loads_back_and_each_write_adds_one_to_the_version(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let first = app
        .save(&ada, "s1", "plan", r#"{"steps":[1,2]}"#)
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let second = app
        .save(&ada, "s1", "plan", r#"{"steps":[3]}"#)
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.created_at, first.created_at);

    let loaded = app.load(&ada, "s1", "plan").await.unwrap();
    assert_eq!(json(&loaded.value_json), json!({"steps": [3]}));
    assert_eq!(loaded.version, 2);
    let missing = app.load(&ada, "s1", "nothing").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[sqlx::test(migrations = false)]
async fn a_compare_and_set_against_a_stale_version_is_aborted_with_the_current_one(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "counter", "1").await.unwrap();
    app.save(&ada, "s1", "counter", "2").await.unwrap();

    let cas = |expected, value: &str| {
        authed(
            pb::SaveRequest {
                session_id: "s1".into(),
                key: "counter".into(),
                value_json: value.into(),
                expected_version: Some(expected),
                ttl_seconds: 0,
            },
            &ada.token,
        )
    };
    let stale = app.client.save(cas(1, "99")).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(current_version(&stale), 2);
    assert_eq!(
        json(&app.load(&ada, "s1", "counter").await.unwrap().value_json),
        json!(2)
    );

    let won = app.client.save(cas(2, "3")).await.unwrap().into_inner();
    assert_eq!(won.version, 3);

    // 0 means "only if absent".
    let exists = app.client.save(cas(0, "0")).await.unwrap_err();
    assert_eq!(current_version(&exists), 3);
    let created = app
        .client
        .save(authed(
            pb::SaveRequest {
                session_id: "s1".into(),
                key: "fresh".into(),
                value_json: "true".into(),
                expected_version: Some(0),
                ttl_seconds: 0,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.version, 1);
}

#[sqlx::test(migrations = false)]
async fn save_many_writes_each_save_and_answers_a_bad_one_on_its_own(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let grace = app.sign_up().await;
    app.save(&ada, "s2", "plan", "1").await.unwrap();
    let saves = vec![
        overwrite("s1", "a", r#"{"n":1}"#),
        overwrite("s1", "b", "not json"),
        overwrite("s2", "plan", "2"),
    ];
    let results = app
        .client
        .save_many(authed(pb::SaveManyRequest { saves }, &ada.token))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].entry.as_ref().map(|entry| entry.version),
        Some(1)
    );
    assert_eq!(results[1].entry, None);
    assert_eq!(results[1].code, Code::InvalidArgument as i32);
    assert!(
        results[1].message.starts_with("saves[1].value_json:"),
        "{}",
        results[1].message
    );
    assert_eq!(
        results[2].entry.as_ref().map(|entry| entry.version),
        Some(2)
    );
    let loaded = app.load(&ada, "s1", "a").await.unwrap();
    assert_eq!(json(&loaded.value_json), json!({"n": 1}));
    let refused = app.load(&ada, "s1", "b").await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    // Written in the caller's tenant, nowhere else.
    let elsewhere = app.load(&grace, "s1", "a").await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);

    // A call past its bounds is refused whole, and writes nothing.
    let too_many = (0..65)
        .map(|n| overwrite("s3", &format!("k{n}"), "1"))
        .collect();
    let conditional = vec![
        overwrite("s3", "k0", "1"),
        pb::SaveRequest {
            expected_version: Some(1),
            ..overwrite("s3", "k1", "1")
        },
    ];
    for (saves, field) in [
        (vec![], "saves"),
        (too_many, "saves"),
        (conditional, "saves[1].expected_version"),
    ] {
        let refused = app
            .client
            .save_many(authed(pb::SaveManyRequest { saves }, &ada.token))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&refused), field);
    }
    let unwritten = app.load(&ada, "s3", "k0").await.unwrap_err();
    assert_eq!(unwritten.code(), Code::NotFound);
}

#[sqlx::test(migrations = false)]
async fn get_all_pages_through_a_session_in_key_order(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    for key in ["c", "a", "b:1", "b:2", "d"] {
        app.save(&ada, "s1", key, "1").await.unwrap();
    }
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .get_all(authed(
                pb::GetAllRequest {
                    session_id: "s1".into(),
                    key_prefix: String::new(),
                    page: Some(pb::PageRequest {
                        page_size: 2,
                        page_token: token,
                    }),
                },
                &ada.token,
            ))
            .await
            .unwrap()
            .into_inner();
        keys.extend(page.entries.into_iter().map(|entry| entry.key));
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(keys, ["a", "b:1", "b:2", "c", "d"]);

    let prefixed = app
        .client
        .get_all(authed(
            pb::GetAllRequest {
                session_id: "s1".into(),
                key_prefix: "b:".into(),
                page: None,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prefixed.entries.len(), 2);

    let absent = app.contents(&ada, "nope").await.unwrap_err();
    assert_eq!(absent.code(), Code::NotFound);
}

#[sqlx::test(migrations = false)]
async fn deleting_a_key_removes_it_and_says_whether_it_was_there(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", "1").await.unwrap();
    let delete = |expected_version| {
        authed(
            pb::DeleteKeyRequest {
                session_id: "s1".into(),
                key: "k".into(),
                expected_version,
            },
            &ada.token,
        )
    };
    let stale = app.client.delete_key(delete(Some(7))).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(current_version(&stale), 1);
    assert!(
        app.client
            .delete_key(delete(Some(1)))
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    assert!(
        !app.client
            .delete_key(delete(None))
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    assert_eq!(
        app.load(&ada, "s1", "k").await.unwrap_err().code(),
        Code::NotFound
    );
    // Re-created, the key starts over.
    assert_eq!(app.save(&ada, "s1", "k", "2").await.unwrap().version, 1);
}

#[sqlx::test(migrations = false)]
async fn an_expired_entry_is_invisible_and_then_swept_away(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| {
        config.sweep_interval = Duration::from_millis(200);
    })
    .await;
    let ada = app.sign_up().await;
    let saved = app
        .client
        .save(authed(
            pb::SaveRequest {
                session_id: "s1".into(),
                key: "short".into(),
                value_json: r#""soon gone""#.into(),
                expected_version: None,
                ttl_seconds: 1,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(saved.expires_at.is_some());
    app.save(&ada, "s1", "long", "1").await.unwrap();
    // Loaded once, so the cache holds it too.
    app.load(&ada, "s1", "short").await.unwrap();

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        app.load(&ada, "s1", "short").await.unwrap_err().code(),
        Code::NotFound
    );
    let keys: Vec<String> = app
        .contents(&ada, "s1")
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, ["long"]);
    // Saving over an expired key creates it afresh.
    assert_eq!(app.save(&ada, "s1", "short", "2").await.unwrap().version, 1);

    app.client
        .save(authed(
            pb::SaveRequest {
                session_id: "s1".into(),
                key: "gone".into(),
                value_json: "1".into(),
                expected_version: None,
                ttl_seconds: 1,
            },
            &ada.token,
        ))
        .await
        .unwrap();
    let mut rows = 1;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rows =
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM memory.entries WHERE key = 'gone'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if rows == 0 {
            break;
        }
    }
    assert_eq!(rows, 0, "the sweeper deletes expired rows");
}
