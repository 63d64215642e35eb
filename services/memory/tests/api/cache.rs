use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::transact_op::Op;
use serde_json::json;
use tonic::Code;

use crate::{Caller, TestMemory, authed, json, save_through, start_with};

/// Every operation, with Redis pointed at a port where nothing listens: all answer, and
/// answer what Postgres holds.
#[sqlx::test(migrations = false)]
async fn without_redis_every_operation_still_answers_correctly(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| {
        config.infra.redis_url = "redis://127.0.0.1:1".into();
    })
    .await;
    let ada = app.sign_up().await;

    assert_eq!(app.save(&ada, "s1", "k", "1").await.unwrap().version, 1);
    assert_eq!(app.save(&ada, "s1", "k", "2").await.unwrap().version, 2);
    let loaded = app.load(&ada, "s1", "k").await.unwrap();
    assert_eq!((json(&loaded.value_json), loaded.version), (json!(2), 2));

    let conflict = app
        .client
        .save(authed(
            pb::SaveRequest {
                session_id: "s1".into(),
                key: "k".into(),
                value_json: "3".into(),
                expected_version: Some(1),
                ttl_seconds: 0,
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::Aborted);

    let done = app
        .client
        .transact(authed(
            pb::TransactRequest {
                session_id: "s1".into(),
                ops: vec![pb::TransactOp {
                    key: "t".into(),
                    op: Some(Op::Set(pb::SetOp {
                        value_json: "true".into(),
                        ttl_seconds: 0,
                    })),
                }],
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(done.committed);

    let backup = app
        .client
        .backup(authed(
            pb::BackupRequest {
                session_id: "s1".into(),
                label: String::new(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let deleted = app
        .client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "s1".into(),
                key: "k".into(),
                expected_version: None,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    assert_eq!(
        app.load(&ada, "s1", "k").await.unwrap_err().code(),
        Code::NotFound
    );

    app.client
        .restore(authed(
            pb::RestoreRequest {
                backup_id: backup.id,
                target_session_id: None,
            },
            &ada.token,
        ))
        .await
        .unwrap();
    assert_eq!(
        app.contents(&ada, "s1").await.unwrap(),
        [("k".to_owned(), json!(2)), ("t".to_owned(), json!(true))]
    );
    assert_eq!(app.load(&ada, "s1", "k").await.unwrap().version, 1);

    let sessions = app
        .client
        .list_sessions(authed(pb::ListSessionsRequest::default(), &ada.token))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(sessions.len(), 1);
    let removed = app
        .client
        .delete_session(authed(
            pb::DeleteSessionRequest {
                session_id: "s1".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.deleted_entries, 2);
    assert_eq!(
        app.load(&ada, "s1", "t").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[sqlx::test(migrations = false)]
async fn a_cached_entry_never_outlives_the_write_that_replaced_it(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |_| {}).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", "1").await.unwrap();
    for round in 2..20 {
        // Load (filling the cache), then write: the next load sees the write.
        app.load(&ada, "s1", "k").await.unwrap();
        app.save(&ada, "s1", "k", &round.to_string()).await.unwrap();
        let loaded = app.load(&ada, "s1", "k").await.unwrap();
        assert_eq!(json(&loaded.value_json), json!(round));
    }
}

/// The same, with the cache's reads and offers going through a pool of two connections and no
/// in-process tier: each load after a write is answered from Redis and is the write.
#[sqlx::test(migrations = false)]
async fn a_pooled_connection_serves_the_cache_as_the_shared_one_does(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| {
        config.infra.redis_pool_size = 2;
        config.near_cache_bytes = 0;
    })
    .await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", "1").await.unwrap();
    let before = redis_hits(&app).await;
    for round in 2..12 {
        app.load(&ada, "s1", "k").await.unwrap();
        app.save(&ada, "s1", "k", &round.to_string()).await.unwrap();
        let loaded = app.load(&ada, "s1", "k").await.unwrap();
        assert_eq!(json(&loaded.value_json), json!(round));
    }
    assert!(
        redis_hits(&app).await >= before + 10,
        "the loads were answered from Redis through the pool"
    );
}

/// How many loads this replica answered from Redis, by its metrics.
async fn redis_hits(app: &TestMemory) -> u64 {
    lookups(app, "hit").await
}

/// How many loads this replica answered from its in-process tier, by its metrics.
async fn near_hits(app: &TestMemory) -> u64 {
    lookups(app, "near").await
}

async fn lookups(app: &TestMemory, result: &str) -> u64 {
    let label = format!(r#"result="{result}""#);
    app.metrics()
        .await
        .lines()
        .find(|line| line.starts_with("memory_cache_lookups_total") && line.contains(&label))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

type TestClient = pb::memory_service_client::MemoryServiceClient<tonic::transport::Channel>;

/// Loads `key` until it reads `expected`, for at most two seconds (the cache's TTL is ten).
async fn loads_soon(app: &mut TestMemory, caller: &Caller, key: &str, expected: serde_json::Value) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let loaded = json(&app.load(caller, "s1", key).await.unwrap().value_json);
        if loaded == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} still reads {loaded}, not {expected}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A replica holding s1/k = 1 in process, after loading it a few times, beside a second one.
struct HeldInProcess {
    app: TestMemory,
    ada: Caller,
    /// The Redis key prefix both replicas share.
    prefix: String,
    /// A client of the second replica: same database, Redis keys and auth.
    other: TestClient,
    _replica: sankalpa_testkit::Running,
}

async fn held_in_process(pool: sqlx::PgPool) -> HeldInProcess {
    let mut prefix = String::new();
    let mut app = start_with(pool, |config| prefix = config.redis_key_prefix.clone()).await;
    let replica = sankalpa_testkit::spawn_memory(
        app.pool.clone(),
        app.infra.clone(),
        &app.auth_url(),
        |config| config.redis_key_prefix = prefix.clone(),
    )
    .await
    .expect("the second replica starts");
    let other = TestClient::connect(replica.grpc_url()).await.unwrap();
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", "1").await.unwrap();

    // The first load reads Redis and keeps the entry; the ones after it are answered here.
    let before = near_hits(&app).await;
    for _ in 0..3 {
        assert_eq!(
            json(&app.load(&ada, "s1", "k").await.unwrap().value_json),
            json!(1)
        );
    }
    assert!(
        near_hits(&app).await >= before + 2,
        "the entry is held in process"
    );
    HeldInProcess {
        app,
        ada,
        prefix,
        other,
        _replica: replica,
    }
}

#[sqlx::test(migrations = false)]
async fn a_load_is_answered_in_process_until_another_replica_writes_the_key(pool: sqlx::PgPool) {
    let HeldInProcess {
        mut app,
        ada,
        mut other,
        _replica,
        ..
    } = held_in_process(pool).await;

    // A write through the other replica reaches this one through Redis's invalidation.
    save_through(&mut other, &ada, "s1", "k", "2")
        .await
        .unwrap();
    loads_soon(&mut app, &ada, "k", json!(2)).await;
    // And a write through this one is read back at once.
    app.save(&ada, "s1", "k", "3").await.unwrap();
    assert_eq!(
        json(&app.load(&ada, "s1", "k").await.unwrap().value_json),
        json!(3)
    );
}

#[sqlx::test(migrations = false)]
async fn a_lost_tracking_connection_empties_the_in_process_tier(pool: sqlx::PgPool) {
    let HeldInProcess {
        mut app,
        ada,
        prefix,
        mut other,
        _replica,
    } = held_in_process(pool).await;

    // This replica's tracking connection goes (the other has read nothing, so has none), and
    // nothing tells this one of the next write but the loss itself.
    let redis = redis::Client::open(app.infra.redis_url.as_str()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut redis)
        .await
        .unwrap();
    let name = format!("name=memory-near:{prefix} ");
    let tracking: Vec<&str> = clients
        .lines()
        .filter(|line| line.contains(&name))
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .collect();
    assert!(
        !tracking.is_empty(),
        "a tracking connection is named {name}: {clients}"
    );
    for id in tracking {
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut redis)
            .await
            .unwrap();
    }

    save_through(&mut other, &ada, "s1", "k", "2")
        .await
        .unwrap();
    loads_soon(&mut app, &ada, "k", json!(2)).await;
}
