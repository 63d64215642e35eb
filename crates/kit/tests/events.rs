//! The event publisher against the local NATS JetStream.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use sankalpa_kit::events::{CloudEvent, EventBus};

#[tokio::test]
async fn a_published_event_is_stored_as_a_cloudevent_on_its_subject() {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let stream_name = format!("TEST_{}", name.to_uppercase());
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let mut infra = sankalpa_kit::config::Infra::from_env().unwrap();
    infra.events_stream = stream_name.clone();
    infra.subject_prefix = format!("{name}.");
    infra.events_max_bytes = 1024 * 1024;
    let bus = EventBus::connect(client.clone(), &infra, "/sankalpa/test")
        .await
        .unwrap();

    let published = bus
        .publish(
            "memory",
            "tenant-1",
            "session-9",
            "saved",
            serde_json::json!({"key": "plan"}),
        )
        .await
        .unwrap();

    let js = jetstream::new(client);
    let stream = js.get_stream(&stream_name).await.unwrap();
    let consumer = stream
        .create_consumer(consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.fetch().max_messages(1).messages().await.unwrap();
    let message = messages.next().await.unwrap().unwrap();
    assert_eq!(
        message.subject.as_str(),
        format!("{name}.memory.tenant-1.session-9.saved")
    );
    let event: CloudEvent = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event, published);
    assert_eq!(event.specversion, "1.0");
    assert_eq!(event.kind, "sankalpa.memory.saved");
    assert_eq!(event.tenantid, "tenant-1");
    assert_eq!(event.source, format!("/sankalpa/test/{}", infra.instance));
    assert_eq!(event.data["key"], "plan");

    js.delete_stream(&stream_name).await.unwrap();
}

#[tokio::test]
async fn a_stream_made_before_a_channel_existed_gets_its_subjects() {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let stream_name = format!("TEST_{}", name.to_uppercase());
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let js = jetstream::new(client.clone());
    // As an older release made it: without the `webhooks` channel.
    js.create_stream(jetstream::stream::Config {
        name: stream_name.clone(),
        subjects: ["agents", "chains", "memory", "market"]
            .iter()
            .map(|channel| format!("{name}.{channel}.>"))
            .collect(),
        max_bytes: 1024 * 1024,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut infra = sankalpa_kit::config::Infra::from_env().unwrap();
    infra.events_stream = stream_name.clone();
    infra.subject_prefix = format!("{name}.");
    infra.events_max_bytes = 1024 * 1024;
    let bus = EventBus::connect(client, &infra, "/sankalpa/test")
        .await
        .unwrap();

    bus.publish(
        "webhooks",
        "tenant-1",
        "endpoint-1",
        "delivered",
        serde_json::json!({}),
    )
    .await
    .expect("the stream takes the new channel's events");
    let mut stream = js.get_stream(&stream_name).await.unwrap();
    let info = stream.info().await.unwrap();
    assert!(info.config.subjects.contains(&format!("{name}.webhooks.>")));
    assert_eq!(
        info.config.max_bytes,
        1024 * 1024,
        "the other settings are kept"
    );
    assert_eq!(info.state.messages, 1);

    js.delete_stream(&stream_name).await.unwrap();
}
