//! How long one contact's erasure takes with N stored messages.
//!
//! ```text
//! cargo run --release --example erase_bench               # 100,000 messages
//! cargo run --release --example erase_bench -- 300000
//! ```
//!
//! Fills a temporary data directory through the journal directly (signed-looking
//! deliveries of 10 text messages from 10 of 1,000 contacts, appended by 64 tasks
//! so group commit batches them), starts wagate on it and waits until everything
//! is applied, then erases one contact (about 1 in 1,000 messages, spread over
//! 1% of the deliveries and so over every segment) and prints how long each part
//! took and the erasure's counts.

#[path = "store_fill/mod.rs"]
mod store_fill;

use std::time::{Duration, Instant};

use store_fill::{contact, fill, wait_applied};
use wagate::journal::Stream;
use wagate::privacy::{request_erasure, EraseState, Requester};
use wagate::{App, Config};

#[tokio::main]
async fn main() {
    let messages: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("a number"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.app_secrets = vec![wagate::config::Secret::new("bench")];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = Instant::now();
    fill(&config, messages, now - 3600).await;
    let filled = t.elapsed();
    let t = Instant::now();
    let app = App::start(config).await.expect("app starts");
    wait_applied(&app).await;
    let applied = t.elapsed();
    let t = Instant::now();
    let e = request_erasure(&app.state.erase_handles(), contact(0), Requester::Cli)
        .await
        .expect("erasure requested");
    let done = loop {
        let s = app.state.erasures.status(&e.erasure_id).unwrap().unwrap();
        if s.state == EraseState::Done {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let erased = t.elapsed();
    let journal_bytes: u64 = app
        .state
        .journal
        .segments(Stream::Main)
        .unwrap()
        .iter()
        .map(|s| s.bytes)
        .sum();
    println!("| messages | journal | fill | apply | erasure |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {messages} | {} MiB | {:.1} s | {:.1} s | {:.1} s |",
        journal_bytes >> 20,
        filled.as_secs_f64(),
        applied.as_secs_f64(),
        erased.as_secs_f64()
    );
    println!("counts: {}", serde_json::to_string(&done.counts).unwrap());
    app.shutdown().await;
}
