//! Ingest on one core: wagate pinned to one CPU (receiver, journal writer and
//! processing all on it) against a warp server that only checks the HMAC
//! (`examples/hmac_only.rs`) pinned the same way, with the load generator
//! (`examples/loadgen.rs`) pinned to another CPU. One run measures both.
//!
//! ```text
//! cargo build --release --bin wagate --example ingest_bench --example hmac_only --example loadgen
//! target/release/examples/ingest_bench                      # what scripts/ingest-bench runs
//! target/release/examples/ingest_bench --rounds 3 --duration 15 --connections 64
//! ```
//!
//! Each round starts wagate (fresh data directory) under `taskset -c <server-cpu>`,
//! runs loadgen under `taskset -c <load-cpu>` (`--connections` keep-alive
//! connections, one request in flight each, unique signed bodies of `--size` bytes,
//! `--warmup` then `--duration` seconds measured), waits for processing to catch up,
//! stops it; then the same against hmac_only. Rounds alternate the two so that
//! other load on the machine falls on both. Prints each run, the medians, the ratio
//! of wagate's throughput to hmac_only's, and the verdict against the targets
//! (ratio >= 0.3, wagate's p99 <= 10 ms). Exit status 0 when both runs completed
//! (whatever the verdict), 1 otherwise.

#[path = "kit/mod.rs"]
mod kit;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;

use kit::api::Api;
use kit::child::spawn;
use kit::{Res, API_TOKEN, SECRET};

#[derive(Parser, Debug, Clone)]
#[command(about = "wagate vs an HMAC-only server, each pinned to one CPU")]
struct Args {
    #[arg(long, default_value = "target/release/wagate")]
    bin: PathBuf,
    #[arg(long, default_value = "target/release/examples/hmac_only")]
    hmac_only: PathBuf,
    #[arg(long, default_value = "target/release/examples/loadgen")]
    loadgen: PathBuf,
    /// CPU the server runs on (taskset -c).
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// CPU the load generator runs on.
    #[arg(long, default_value = "1")]
    load_cpu: String,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Body size in bytes (a real one-text delivery is about 700).
    #[arg(long, default_value_t = 700)]
    size: usize,
    /// Pairs of runs (wagate, then hmac_only).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
    max: f64,
    non_2xx: u64,
    errors: u64,
    /// Server CPU seconds per 1,000 answers.
    cpu_ms_per_k: f64,
    /// wagate only: seconds from the end of the load until processing caught up.
    catch_up: Option<f64>,
}

/// The row of loadgen's Markdown table for `conns`.
fn parse_row(out: &str, conns: usize) -> Option<Run> {
    let row = out
        .lines()
        .find(|l| l.starts_with(&format!("| {conns} |")))?;
    let f: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
    Some(Run {
        rps: f.get(1)?.parse().ok()?,
        p50: f.get(2)?.parse().ok()?,
        p99: f.get(3)?.parse().ok()?,
        max: f.get(4)?.parse().ok()?,
        non_2xx: f.get(5)?.parse().ok()?,
        errors: f.get(6)?.parse().ok()?,
        cpu_ms_per_k: 0.0,
        catch_up: None,
    })
}

fn loadgen(a: &Args, base: &str) -> Res<Run> {
    let out = Command::new("taskset")
        .args(["-c", &a.load_cpu])
        .arg(&a.loadgen)
        .args(["--url", &format!("{base}/webhook"), "--secret", SECRET])
        .args(["--connections", &a.connections.to_string()])
        .args([
            "--duration",
            &a.duration.to_string(),
            "--warmup",
            &a.warmup.to_string(),
        ])
        .args(["--size", &a.size.to_string()])
        .output()
        .map_err(|e| format!("loadgen: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_row(&text, a.connections).ok_or_else(|| format!("loadgen gave no result: {text}"))
}

async fn one(a: &Args, wagate: bool, dir: &std::path::Path, n: u64) -> Res<Run> {
    let data = dir.join(format!("data-{n}"));
    let mut env = vec![
        (
            "WAGATE_DATA_DIR".to_string(),
            data.to_string_lossy().into_owned(),
        ),
        ("WAGATE_LISTEN".into(), "127.0.0.1:0".into()),
        ("META_APP_SECRET".into(), SECRET.into()),
        ("WAGATE_API_TOKEN".into(), API_TOKEN.into()),
    ];
    env.push(("RUST_LOG".into(), "info".into()));
    let program = if wagate { &a.bin } else { &a.hmac_only };
    let log = dir.join("servers.log");
    let mut server = spawn(program, &[], &env, &log, n, Some(&a.server_cpu))?;
    let base = server.listening(Duration::from_secs(60)).await?;
    let cpu0 = kit::proc::cpu_secs(server.pid).unwrap_or(0.0);
    let (a2, b2) = (a.clone(), base.clone());
    let mut run = tokio::task::spawn_blocking(move || loadgen(&a2, &b2))
        .await
        .map_err(|e| e.to_string())??;
    let cpu = kit::proc::cpu_secs(server.pid).unwrap_or(0.0) - cpu0;
    let answered = run.rps * (a.duration + a.warmup);
    // About: the warm-up's answers are counted at the measured rate.
    run.cpu_ms_per_k = cpu * 1000.0 / (answered / 1000.0).max(1e-9);
    if wagate {
        let t = Instant::now();
        Api::new(&base).caught_up(Duration::from_secs(300)).await?;
        run.catch_up = Some(t.elapsed().as_secs_f64());
    }
    server.term(Duration::from_secs(60)).await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(run)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn print_run(what: &str, r: &Run) {
    let catch = r.catch_up.map_or("-".into(), |s| format!("{s:.1} s"));
    println!(
        "| {what} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {catch} |",
        r.rps, r.p50, r.p99, r.max, r.non_2xx, r.errors, r.cpu_ms_per_k
    );
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    for p in [&a.bin, &a.hmac_only, &a.loadgen] {
        if !p.exists() {
            eprintln!(
                "ingest_bench: {} not found (cargo build --release --examples)",
                p.display()
            );
            return std::process::ExitCode::from(2);
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("wagate-ingest-")
        .tempdir()
        .expect("temp dir");
    println!(
        "ingest bench: servers on CPU {}, loadgen on CPU {}, {} connections, {} B bodies, {} s + {} s warm-up per run, load average {}",
        a.server_cpu, a.load_cpu, a.connections, a.size, a.duration, a.warmup,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("| server | req/s | p50 ms | p99 ms | max ms | non-2xx | errors | server CPU ms per 1,000 | processing caught up after |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (mut w, mut h) = (Vec::new(), Vec::new());
    for i in 0..a.rounds as u64 {
        for wagate in [true, false] {
            match one(&a, wagate, dir.path(), i * 2 + wagate as u64).await {
                Ok(r) => {
                    print_run(if wagate { "wagate" } else { "hmac_only" }, &r);
                    if wagate {
                        w.push(r)
                    } else {
                        h.push(r)
                    }
                }
                Err(e) => {
                    eprintln!(
                        "ingest bench: {e} (log: {})",
                        dir.keep().join("servers.log").display()
                    );
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
    }
    let (wr, hr) = (
        median(w.iter().map(|r| r.rps).collect()),
        median(h.iter().map(|r| r.rps).collect()),
    );
    let wp99 = median(w.iter().map(|r| r.p99).collect());
    let ratio = wr / hr.max(1.0);
    let (wc, hc) = (
        median(w.iter().map(|r| r.cpu_ms_per_k).collect()),
        median(h.iter().map(|r| r.cpu_ms_per_k).collect()),
    );
    println!(
        "CPU per 1,000 answers: wagate {wc:.1} ms, hmac_only {hc:.1} ms: on a core of its own wagate would answer about {:.2} x as many (a figure that holds on a busy machine, where the wall-clock ratio does not)",
        hc / wc.max(1e-9)
    );
    println!(
        "medians: wagate {wr:.0} req/s, p99 {wp99:.2} ms; hmac_only {hr:.0} req/s; ratio {ratio:.2} (target >= 0.3: {}), p99 target <= 10 ms: {}",
        if ratio >= 0.3 { "met" } else { "MISSED" },
        if wp99 <= 10.0 { "met" } else { "MISSED" }
    );
    std::process::ExitCode::SUCCESS
}
