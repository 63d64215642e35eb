use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{TestMemory, authed, json, start, violated_field};

const WRITERS: usize = 8;
const ATTEMPTS: usize = 25;

#[sqlx::test(migrations = false)]
async fn concurrent_writers_to_one_key_never_lose_an_update(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "counter", "0").await.unwrap();

    // Each writer reads the counter and tries to store it plus one against the version it read:
    // every save either wins with the next version or is told it lost.
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let mut client = app.client.clone();
        let token = ada.token.clone();
        writers.spawn(async move {
            let mut wins = 0u64;
            for _ in 0..ATTEMPTS {
                let current = client
                    .load(authed(
                        pb::LoadRequest {
                            session_id: "s1".into(),
                            key: "counter".into(),
                        },
                        &token,
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                let next = json(&current.value_json).as_u64().unwrap() + 1;
                let saved = client
                    .save(authed(
                        pb::SaveRequest {
                            session_id: "s1".into(),
                            key: "counter".into(),
                            value_json: next.to_string(),
                            expected_version: Some(current.version),
                            ttl_seconds: 0,
                        },
                        &token,
                    ))
                    .await;
                match saved {
                    Ok(entry) => {
                        assert_eq!(entry.into_inner().version, current.version + 1);
                        wins += 1;
                    }
                    Err(status) => assert_eq!(status.code(), Code::Aborted),
                }
            }
            wins
        });
    }
    let wins: u64 = writers.join_all().await.into_iter().sum();
    assert!(wins > 0);
    let last = app.load(&ada, "s1", "counter").await.unwrap();
    assert_eq!(json(&last.value_json).as_u64().unwrap(), wins);
    assert_eq!(last.version, wins + 1);
}

#[sqlx::test(migrations = false)]
async fn concurrent_unconditional_saves_each_get_their_own_version(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let mut client = app.client.clone();
        let token = ada.token.clone();
        writers.spawn(async move {
            let mut versions = Vec::new();
            for attempt in 0..ATTEMPTS {
                let saved = client
                    .save(authed(
                        pb::SaveRequest {
                            session_id: "s1".into(),
                            key: "shared".into(),
                            value_json: format!("[{writer},{attempt}]"),
                            expected_version: None,
                            ttl_seconds: 0,
                        },
                        &token,
                    ))
                    .await
                    .unwrap();
                versions.push(saved.into_inner().version);
            }
            versions
        });
    }
    let mut versions: Vec<u64> = writers.join_all().await.into_iter().flatten().collect();
    versions.sort_unstable();
    let expected: Vec<u64> = (1..=(WRITERS * ATTEMPTS) as u64).collect();
    assert_eq!(versions, expected, "no two writes got the same version");
}

/// Saves `value` under `key` of session s1, all at once, one task each.
async fn save_all_at_once(
    app: &TestMemory,
    token: &str,
    saves: Vec<(String, String)>,
) -> Vec<Result<pb::Entry, tonic::Status>> {
    let mut writers = tokio::task::JoinSet::new();
    for (index, (key, value)) in saves.into_iter().enumerate() {
        let mut client = app.client.clone();
        let token = token.to_owned();
        writers.spawn(async move {
            let saved = client
                .save(authed(
                    pb::SaveRequest {
                        session_id: "s1".into(),
                        key,
                        value_json: value,
                        expected_version: None,
                        ttl_seconds: 0,
                    },
                    &token,
                ))
                .await;
            (index, saved.map(tonic::Response::into_inner))
        });
    }
    let mut results = writers.join_all().await;
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, saved)| saved).collect()
}

#[sqlx::test(migrations = false)]
async fn concurrent_saves_of_different_keys_commit_together(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let saves = (0..64)
        .map(|n| (format!("k{n}"), format!("{{\"n\":{n}}}")))
        .collect();

    for saved in save_all_at_once(&app, &ada.token, saves).await {
        assert_eq!(saved.unwrap().version, 1);
    }

    // Rows written by one statement share its transaction id.
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM memory.entries WHERE session_id = 's1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        transactions < 64,
        "64 concurrent saves took {transactions} transactions"
    );
    for n in [0, 31, 63] {
        let loaded = app.load(&ada, "s1", &format!("k{n}")).await.unwrap();
        assert_eq!(json(&loaded.value_json), serde_json::json!({ "n": n }));
    }
}

#[sqlx::test(migrations = false)]
async fn a_value_postgres_cannot_store_fails_alone_and_the_saves_beside_it_land(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    // Valid JSON, but past the range of Postgres's numeric.
    let unstorable = 20;
    let saves = (0..40)
        .map(|n| {
            let value = if n == unstorable {
                "{\"n\": 1e1000000}".to_owned()
            } else {
                n.to_string()
            };
            (format!("k{n}"), value)
        })
        .collect();

    let results = save_all_at_once(&app, &ada.token, saves).await;

    for (n, saved) in results.into_iter().enumerate() {
        if n == unstorable {
            let refused = saved.unwrap_err();
            assert_eq!(refused.code(), Code::InvalidArgument);
            assert_eq!(violated_field(&refused), "value_json");
        } else {
            assert_eq!(saved.unwrap().version, 1, "k{n}");
        }
    }
    assert_eq!(
        app.load(&ada, "s1", &format!("k{unstorable}"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        json(&app.load(&ada, "s1", "k39").await.unwrap().value_json),
        serde_json::json!(39)
    );
}
