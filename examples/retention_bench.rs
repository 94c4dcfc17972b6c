//! What one retention sweep costs when it has a lot to delete: N stored messages
//! (default 300,000, about what 10 minutes at 300 deliveries/s leave to a sweep
//! that runs every 10 minutes) all expire at once.
//!
//! ```text
//! cargo run --release --example retention_bench               # 300,000 messages
//! cargo run --release --example retention_bench -- 1000000
//! ```
//!
//! Fills a temporary data directory through the journal, starts wagate on it with a
//! manual clock and waits until everything is applied; then moves the clock past
//! every TTL and, at once, journals one more delivery. Prints how long the sweep
//! took, how long that delivery waited to be applied (processing stalled behind the
//! sweep), and the process's resident memory before and at most during the sweep.

#[path = "kit/proc.rs"]
#[allow(dead_code)]
mod proc;
#[path = "store_fill/mod.rs"]
mod store_fill;

use std::time::{Duration, Instant};

use store_fill::{accepted, body, fill, wait_applied, PER_DELIVERY};
use wagate::journal::{Kind, Stream};
use wagate::util::clock::Clock;
use wagate::{App, Config};

const TTL: Duration = Duration::from_secs(3600);

/// VmRSS and VmHWM of this process, MiB.
fn memory() -> (u64, u64) {
    let s = proc::sample(std::process::id()).unwrap_or_default();
    (s.rss_kb >> 10, s.hwm_kb >> 10)
}

fn deleted_messages(app: &App) -> u64 {
    app.state.retention.values()[3].1
}

#[tokio::main]
async fn main() {
    let messages: usize = std::env::args()
        .nth(1)
        .map_or(300_000, |a| a.parse().expect("a number"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.app_secrets = vec![wagate::config::Secret::new("bench")];
    (config.raw_ttl, config.event_ttl, config.dedup_ttl) = (TTL, TTL, TTL);
    let clock = Clock::manual_now();
    let now = clock.now_secs();
    fill(&config, messages, now).await;
    let app = App::start_with_clock(config, clock.clone())
        .await
        .expect("app starts");
    wait_applied(&app).await;
    let (rss_before, _) = memory();
    // Resets VmHWM to the current RSS (Linux), so the peak is the sweep's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let t = Instant::now();
    clock.advance(2 * TTL);
    let late = accepted(body(
        messages + PER_DELIVERY,
        now + 2 * TTL.as_secs() as i64,
    ));
    let stamp = clock.now_micros();
    app.state
        .journal
        .append(Stream::Main, Kind::Delivery, stamp, late)
        .await
        .expect("append");
    wait_applied(&app).await;
    let stalled = t.elapsed();
    while deleted_messages(&app) < messages as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let swept = t.elapsed();
    let (rss_after, peak) = memory();
    println!("| messages | sweep | a delivery journaled as it starts is applied after | RSS before | peak during | RSS after |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {messages} | {:.1} s | {:.2} s | {rss_before} MiB | {peak} MiB | {rss_after} MiB |",
        swept.as_secs_f64(),
        stalled.as_secs_f64(),
    );
    let totals: Vec<String> = app
        .state
        .retention
        .values()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("deleted: {}", totals.join(", "));
    app.shutdown().await;
}
