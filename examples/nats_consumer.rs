//! Reads wagate's events from NATS JetStream with a durable pull consumer, and acks
//! each once handled (see docs/forwarding.md, "The event bus").
//!
//! ```text
//! cargo run --example nats_consumer -- nats://127.0.0.1:4222          # every event
//! cargo run --example nats_consumer -- nats://127.0.0.1:4222 'wagate.messages.>'
//! ```
//!
//! The consumer is durable (`my-app`): stopped and started again, it goes on after
//! the last event it acked. An event not acked within 30 s comes again.

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let filter = args.next().unwrap_or_default(); // e.g. wagate.messages.> (empty: all)
    let js = jetstream::new(async_nats::connect(url).await?);
    let stream = js.get_stream("WAGATE").await?;
    let consumer = stream
        .get_or_create_consumer(
            "my-app",
            pull::Config {
                durable_name: Some("my-app".into()),
                filter_subject: filter,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(msg) = messages.next().await {
        let msg = msg?;
        let event: serde_json::Value = serde_json::from_slice(&msg.payload)?;
        // Handle it (idempotently: `data.id` is the same on every delivery of it).
        println!("{} {} {}", msg.subject, event["type"], event["data"]["id"]);
        msg.ack().await?;
    }
    Ok(())
}
