use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, json, start};

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
