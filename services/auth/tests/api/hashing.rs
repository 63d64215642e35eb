//! Password hashing is bounded: argon2id holds 19 MiB per hash, so logins at once share a few
//! permits instead of each taking its own.

use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{register_and_login, start_with};

/// The most this process has held resident so far (VmHWM), in bytes.
fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux has /proc");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM is reported");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM is a number of kB");
    kib * 1024
}

fn login() -> pb::LoginRequest {
    pb::LoginRequest {
        email: "ada@example.com".into(),
        password: "correct horse battery".into(),
    }
}

#[sqlx::test(migrations = false)]
async fn twenty_logins_at_once_hold_the_memory_of_two(pool: sqlx::PgPool) {
    let mut auth = start_with(pool, |config| config.hash_concurrency = 2).await;
    register_and_login(&mut auth.client, "ada@example.com").await;
    let before = peak_resident_bytes();

    let logins = (0..20).map(|_| {
        let mut client = auth.client.clone();
        async move { client.login(login()).await }
    });
    for answer in futures::future::join_all(logins).await {
        answer.expect("every login waits its turn and succeeds");
    }

    let grown = peak_resident_bytes().saturating_sub(before);
    // Two hashes at a time hold about 40 MiB; twenty at once held 400 MB before the bound.
    assert!(
        grown < 96 * 1024 * 1024,
        "the peak grew by {} MiB",
        grown / 1024 / 1024
    );
}

#[sqlx::test(migrations = false)]
async fn a_login_that_waits_too_long_for_its_turn_is_told_to_retry(pool: sqlx::PgPool) {
    let mut auth = start_with(pool, |config| {
        config.hash_concurrency = 1;
        config.hash_queue_timeout = std::time::Duration::from_millis(1);
    })
    .await;
    register_and_login(&mut auth.client, "ada@example.com").await;
    let logins = (0..4).map(|_| {
        let mut client = auth.client.clone();
        async move { client.login(login()).await }
    });
    let answers = futures::future::join_all(logins).await;
    assert!(answers.iter().any(Result::is_ok));
    let refused: Vec<_> = answers
        .iter()
        .filter_map(|answer| answer.as_ref().err())
        .collect();
    assert!(!refused.is_empty());
    for status in refused {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
}
