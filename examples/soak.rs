//! Soak: the release binary under realistic mixed load for a while, its resident
//! memory, threads and open files sampled every 10 s into a CSV, and a verdict on
//! whether they stay flat after warm-up.
//!
//! ```text
//! cargo build --release --bin wagate --example soak
//! target/release/examples/soak --minutes 30 --csv target/soak.csv     # scripts/soak 30
//! target/release/examples/soak --minutes 0.5                          # the CI slice
//! ```
//!
//! The same in-process fakes as the kill campaign (Graph API, media host,
//! forwarding target, all on 127.0.0.1:0). Load, paced: `--rate` signed webhook
//! deliveries per second (text messages of 1-3 items from 200 contacts, 3 % image
//! messages whose files are downloaded, 10 % statuses, 5 % Meta retries of an earlier
//! body), `--send-rate` sends per second, every item forwarded, and a dashboard
//! reader (logged in, `--read-rate` page or API reads per second). Every 10 s a CSV
//! row: elapsed seconds, RSS and peak RSS (KiB), threads, open files, deliveries
//! acknowledged, journal head, applied, stored media, sends sent, forwards, errors.
//!
//! Verdict: after the warm-up (the first sixth of the run, at least one sample),
//! the rest is cut in thirds; a figure is flat when the last third's maximum is
//! within 10 % (RSS: and 16 MiB; threads: 2; files: 8) of the first third's, and
//! RSS has no spike: no sample after warm-up above 1.5 x the median (and 32 MiB).
//! Exit status: 1 if wagate died or load failed; with `--strict` also when not flat.
//!
//! `--env NAME=value` passes more settings to wagate: with short retention
//! (`--env WAGATE_RAW_TTL=2m --env WAGATE_EVENT_TTL=2m --env WAGATE_DEDUP_TTL=2m`)
//! the store stays at a steady size, so the RSS shows what the store's growth hides.

#[path = "kit/mod.rs"]
mod kit;

#[path = "soak/reader.rs"]
mod reader;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use kit::api::Api;
use kit::fakes::{Delays, Fakes};
use kit::load::{self, Ledger, Mix};
use kit::proc::Sample;

#[derive(Parser, Debug)]
#[command(about = "wagate under mixed load: RSS, threads and open files over time")]
struct Args {
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    #[arg(long, default_value = "target/release/wagate")]
    bin: PathBuf,
    /// Webhook deliveries per second.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// Sends per second.
    #[arg(long, default_value_t = 5.0)]
    send_rate: f64,
    /// Dashboard and API reads per second.
    #[arg(long, default_value_t = 4.0)]
    read_rate: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// Where the samples go (default: soak.csv in the run's temp directory, kept).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Fail (exit 1) when a figure is not flat after warm-up.
    #[arg(long)]
    strict: bool,
    /// An extra variable for wagate, `NAME=value` (repeatable), e.g. short
    /// retention (`WAGATE_EVENT_TTL=2m`) to hold the store at a steady size.
    #[arg(long = "env", value_parser = env_pair)]
    envs: Vec<(String, String)>,
}

fn env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not NAME=value")),
    }
}

struct Row {
    secs: f64,
    s: Sample,
}

/// The samples after the warm-up (the first sixth, at least one, while two remain).
fn after_warm_up(rows: &[Row]) -> &[Row] {
    let n = rows.len();
    &rows[(n / 6).max(1).min(n.saturating_sub(2))..]
}

fn flat(name: &str, rows: &[Row], get: impl Fn(&Sample) -> u64, slack: u64) -> (String, bool) {
    let rest = after_warm_up(rows);
    let third = (rest.len() / 3).max(1);
    let first = rest[..third].iter().map(|r| get(&r.s)).max().unwrap_or(0);
    let last = rest[rest.len() - third..]
        .iter()
        .map(|r| get(&r.s))
        .max()
        .unwrap_or(0);
    let ok = last as f64 <= first as f64 * 1.10 || last <= first + slack;
    let line = format!(
        "{name}: first third after warm-up max {first}, last third max {last} ({:+.1} %): {}",
        (last as f64 / first.max(1) as f64 - 1.0) * 100.0,
        if ok { "flat" } else { "GROWING" }
    );
    (line, ok)
}

/// Whether RSS after warm-up stays within 50 % (or 32 MiB) of its median: a spike
/// in the first third would hide from `flat`.
fn no_spike(rows: &[Row]) -> (String, bool) {
    let mut rss: Vec<u64> = after_warm_up(rows).iter().map(|r| r.s.rss_kb).collect();
    rss.sort_unstable();
    let (median, max) = (rss.get(rss.len() / 2).copied(), rss.last().copied());
    let (median, max) = (median.unwrap_or(0), max.unwrap_or(0));
    let ok = max as f64 <= median as f64 * 1.5 || max <= median + 32 * 1024;
    let line = format!(
        "RSS KiB after warm-up: median {median}, max {max}: {}",
        if ok { "no spike" } else { "SPIKE" }
    );
    (line, ok)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    if !a.bin.exists() {
        eprintln!(
            "soak: {} not found (cargo build --release)",
            a.bin.display()
        );
        return std::process::ExitCode::from(2);
    }
    let dir = tempfile::Builder::new()
        .prefix("wagate-soak-")
        .tempdir()
        .expect("temp dir");
    let csv_path = a.csv.clone().unwrap_or_else(|| dir.path().join("soak.csv"));
    let fakes = Fakes::start(Delays {
        send_ms: 20,
        media_ms: 20,
        target_ms: 5,
    })
    .await;
    let mut env = kit::wagate_env(
        &dir.path().join("data"),
        &fakes.graph,
        &fakes.media,
        &fakes.target,
    );
    env.retain(|(k, _)| !a.envs.iter().any(|(name, _)| name == k));
    env.extend(a.envs.iter().cloned());
    let log = dir.path().join("wagate.log");
    let mut w = match kit::child::spawn(&a.bin, &[], &env, &log, 1, None) {
        Ok(w) => w,
        Err(e) => return fail(dir, &e),
    };
    let base = match w.listening(Duration::from_secs(60)).await {
        Ok(b) => b,
        Err(e) => return fail(dir, &e),
    };
    let api = Api::new(&base);
    let ledger = Arc::new(std::sync::Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mix = Mix {
        media_pct: 3,
        status_pct: 10,
        repost_pct: 5,
        max_items: 3,
        pad: 150,
        contacts: 200,
    };
    let tag = format!("{:06X}", rand::random::<u32>() & 0xff_ffff);
    let mut tasks = load::webhooks(
        &base,
        a.rate,
        16,
        mix,
        &tag,
        &fakes.media,
        &ledger,
        &stop,
        false,
        rand::random(),
    );
    tasks.push(load::sends(&api, a.send_rate, &tag, &ledger, &stop, false));
    let reads = Arc::new(reader::Reads::default());
    tasks.push(reader::spawn(
        &base,
        a.read_rate,
        reads.clone(),
        stop.clone(),
    ));
    let mut csv = std::fs::File::create(&csv_path).expect("csv");
    let _ = writeln!(csv, "secs,rss_kib,hwm_kib,threads,fds,acked,journal_head,applied,media_stored,sends_sent,forwards,errors");
    println!(
        "soak: {} min, {}/s webhooks, {}/s sends, {}/s reads; pid {}; samples in {}",
        a.minutes,
        a.rate,
        a.send_rate,
        a.read_rate,
        w.pid,
        csv_path.display()
    );
    for (k, v) in &a.envs {
        println!("soak: with {k}={v}");
    }
    let (started, total) = (Instant::now(), Duration::from_secs_f64(a.minutes * 60.0));
    let mut rows = Vec::new();
    let mut died = false;
    loop {
        tokio::time::sleep(Duration::from_secs(a.every)).await;
        let Some(s) = kit::proc::sample(w.pid).filter(|_| w.alive()) else {
            died = true;
            break;
        };
        let st = api.stats().await.unwrap_or_default();
        let (acked, errors) = {
            let l = ledger.lock().unwrap();
            (
                l.acked_total,
                l.errors + l.non_200 + l.send_non_202 + reads.errors.load(Ordering::Relaxed),
            )
        };
        let forwards = fakes.lock().forward_requests;
        let secs = started.elapsed().as_secs_f64();
        let line = format!(
            "{secs:.0},{},{},{},{},{acked},{},{},{},{},{forwards},{errors}",
            s.rss_kb,
            s.hwm_kb,
            s.threads,
            s.fds,
            st["journal_head"],
            st["applied"],
            st["media_stored"],
            st["sends_sent"]
        );
        let _ = writeln!(csv, "{line}");
        println!("  {line}");
        rows.push(Row { secs, s });
        if started.elapsed() >= total {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    if died {
        return fail(dir, "wagate died during the soak");
    }
    let caught = api.caught_up(Duration::from_secs(120)).await;
    let clean = w.term(Duration::from_secs(60)).await;
    let (forwards, downloads) = {
        let f = fakes.lock();
        (f.forward_requests, f.downloads_total)
    };
    let l = ledger.lock().unwrap();
    println!(
        "soak: {:.0} s, {} deliveries acknowledged ({:.0}/s), {} sends, {} reads, {} forwards, {} downloads, errors: {} webhook, {} non-200, {} send, {} read; caught up after: {}; clean stop: {clean}",
        rows.last().map_or(0.0, |r| r.secs), l.acked_total, l.acked_total as f64 / started.elapsed().as_secs_f64(),
        l.sends.len(), reads.ok.load(Ordering::Relaxed), forwards, downloads,
        l.errors, l.non_200, l.send_non_202, reads.errors.load(Ordering::Relaxed),
        caught.is_ok()
    );
    let mut all_flat = true;
    for (name, get, slack) in [
        (
            "RSS KiB",
            (|s: &Sample| s.rss_kb) as fn(&Sample) -> u64,
            16 * 1024,
        ),
        ("threads", |s: &Sample| s.threads, 2),
        ("open files", |s: &Sample| s.fds, 8),
    ] {
        let (line, ok) = flat(name, &rows, get, slack);
        println!("soak: {line}");
        all_flat &= ok;
    }
    let (line, ok) = no_spike(&rows);
    println!("soak: {line}");
    all_flat &= ok;
    println!(
        "soak: verdict: {}",
        if all_flat {
            "flat after warm-up"
        } else {
            "NOT flat after warm-up"
        }
    );
    let failed = caught.is_err() || !clean || l.errors + l.non_200 > 0 || (a.strict && !all_flat);
    if a.csv.is_none() {
        println!("soak: kept {}", dir.keep().display());
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

fn fail(dir: tempfile::TempDir, why: &str) -> std::process::ExitCode {
    eprintln!("soak: FAILED: {why}; log kept in {}", dir.keep().display());
    std::process::ExitCode::FAILURE
}
