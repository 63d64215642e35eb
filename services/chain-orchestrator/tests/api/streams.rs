//! Many event streams of one tenant on one replica, all fed from one reading of JetStream.

use std::collections::HashSet;

use futures::StreamExt;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

use crate::{json, start, start_with};

async fn watch_chains(stack: &mut crate::Stack) -> tonic::Streaming<pb::Event> {
    let mut chains = stack.chains.clone();
    watch_chains_with(stack, &mut chains).await
}

async fn watch_chains_with(
    stack: &crate::Stack,
    chains: &mut ChainServiceClient<Channel>,
) -> tonic::Streaming<pb::Event> {
    chains
        .watch_events(stack.authed(pb::WatchEventsRequest {
            subjects: vec!["chains.>".to_owned()],
            after_sequence: None,
        }))
        .await
        .expect("the tenant's events can be watched")
        .into_inner()
}

/// The run ids of the first `count` run.completed events of `events`, checking that the stream's
/// sequences only ever grow.
async fn completed_runs(events: &mut tonic::Streaming<pb::Event>, count: usize) -> Vec<String> {
    let mut completed = Vec::new();
    let mut last = 0;
    while completed.len() < count {
        let event = events
            .next()
            .await
            .expect("the stream stays open")
            .expect("events arrive");
        assert!(
            event.sequence > last,
            "{} came after {last}",
            event.sequence
        );
        last = event.sequence;
        if event.r#type == "sankalpa.chains.run.completed" {
            completed.push(
                json(&event.data_json)["run_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    completed
}

#[sqlx::test(migrations = false)]
async fn every_one_of_many_watchers_gets_every_event(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    // More than a JetStream consumer per stream ever allowed one tenant (32).
    let mut watchers = Vec::new();
    for _ in 0..150 {
        watchers.push(watch_chains(&mut stack).await);
    }
    let mut runs = Vec::new();
    for n in 0..5 {
        runs.push(
            stack
                .execute(json!({"agents": ["add_one"]}), json!({"n": n}), true)
                .await
                .id,
        );
    }
    let expected: HashSet<String> = runs.into_iter().collect();
    for watcher in &mut watchers {
        let seen: HashSet<String> = completed_runs(watcher, 5).await.into_iter().collect();
        assert_eq!(seen, expected);
    }
}

#[sqlx::test(migrations = false)]
async fn a_watcher_that_falls_behind_the_feed_catches_up_without_a_gap(pool: sqlx::PgPool) {
    // A feed of 4 events, and a client that takes 1 KiB of a stream until it reads: the
    // orchestrator stops taking this stream's events once ~32 KiB wait to be sent (tonic's
    // buffer) and the client's window is full, so the 60 runs' ~100 KiB of events leave it far
    // behind the feed.
    let mut stack = start_with(pool, |config| config.stream_buffer = 4).await;
    let narrow = Endpoint::from_shared(stack.orchestrator.grpc_url())
        .unwrap()
        .initial_stream_window_size(1024)
        .connect()
        .await
        .expect("the orchestrator accepts connections");
    let mut slow = watch_chains_with(&stack, &mut ChainServiceClient::new(narrow)).await;
    let mut runs = Vec::new();
    for n in 0..60 {
        runs.push(
            stack
                .execute(json!({"agents": ["add_one"]}), json!({"n": n}), true)
                .await
                .id,
        );
    }
    assert_eq!(
        completed_runs(&mut slow, 60).await,
        runs,
        "every run, in order"
    );
    let metrics = stack.orchestrator.metrics().await;
    let lagged = metrics
        .lines()
        .find_map(|line| line.strip_prefix("chains_event_streams_lagged_total "))
        .expect("the lag counter is exported");
    assert_ne!(lagged.trim(), "0", "the stream did fall behind the feed");
}
