//! The shared Redis connection and the pool against the local Redis: both carry concurrent
//! commands, both give up within their timeouts when Redis cannot be reached, and a pool past the bound is
//! refused.

use std::time::{Duration, Instant};

use sankalpa_kit::cache::{MAX_POOL_SIZE, Redis};
use sankalpa_kit::config::Infra;

fn redis_url() -> String {
    Infra::from_env().expect("valid settings").redis_url
}

async fn concurrent_increments_all_count(pool_size: usize) {
    let prefix = format!("test-cache-{}:", uuid::Uuid::new_v4().simple());
    let redis = Redis::new(&redis_url(), &prefix, pool_size).unwrap();
    assert!(redis.ping().await, "Redis answers (pool size {pool_size})");
    let key = redis.key("counter");
    let increments = (0..64).map(|_| {
        let redis = redis.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut connection = redis.connection().await.unwrap();
            redis::cmd("INCR")
                .arg(&key)
                .query_async::<i64>(&mut connection)
                .await
                .unwrap()
        })
    });
    let mut seen: Vec<i64> = futures::future::join_all(increments)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=64).collect::<Vec<_>>(), "pool size {pool_size}");
    let mut connection = redis.connection().await.unwrap();
    redis::cmd("DEL")
        .arg(&key)
        .query_async::<i64>(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_shared_connection_carries_concurrent_commands() {
    concurrent_increments_all_count(0).await;
}

#[tokio::test]
async fn a_pool_smaller_than_the_callers_carries_concurrent_commands() {
    concurrent_increments_all_count(3).await;
}

#[tokio::test]
async fn an_unreachable_redis_is_reported_without_hanging() {
    for pool_size in [0, 2] {
        let redis = Redis::new("redis://127.0.0.1:1", "test-cache:", pool_size).unwrap();
        let started = Instant::now();
        assert!(!redis.ping().await, "pool size {pool_size}");
        if pool_size > 0 {
            assert!(redis.connection().await.is_err());
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "pool size {pool_size}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_pool_past_the_bound_is_refused() {
    let refused = Redis::new(&redis_url(), "test-cache:", MAX_POOL_SIZE + 1)
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("SANKALPA_REDIS_POOL_SIZE"),
        "{refused}"
    );
}
