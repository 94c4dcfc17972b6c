//! Kill campaign: the release binary killed with SIGKILL at random moments under
//! mixed load, restarted, and checked after the last round.
//!
//! ```text
//! cargo build --release --bin wagate --example kill_campaign
//! target/release/examples/kill_campaign --rounds 20          # what .ci/run does (scripts/kill-campaign)
//! target/release/examples/kill_campaign --rounds 1000 --seed 7
//! ```
//!
//! In-process fakes on 127.0.0.1:0 stand in for Meta's Graph API (sends, media
//! lookups), Meta's media host (half the file, a pause, the rest) and a forwarding
//! target; wagate runs on a temporary data directory on a free port. Each round
//! starts wagate (in some rounds it is first killed within 100 ms of being started,
//! i.e. while it opens its store and replays its journal), drives signed webhooks
//! (text messages, image messages that trigger downloads, statuses, Meta's retries of
//! bodies already acknowledged), sends with idempotency keys, and forwarding, and
//! kills it with SIGKILL after a random time (in some rounds within 100 ms of it
//! listening, while it recovers). After the last round a clean start checks:
//!
//! - every acknowledged (`200`) delivery is stored byte for byte (raw bytes read back
//!   through `/api/deliveries/{id}/raw`), and a sample of its messages is readable;
//! - the model counted each distinct message and status once (`/api/stats` against
//!   the distinct items of the stored bodies);
//! - every send answered `202` is final; the fake Graph got no send twice (sends are
//!   never repeated after a crash: a call in flight is `unknown`), `sent` ones exactly
//!   once, and a key posted again after a lost answer got the same id;
//! - every stored item was forwarded; no more entries came twice than the documented
//!   bound, `WAGATE_FORWARD_CONCURRENCY + 16` per kill;
//! - every media file is stored and served back byte for byte; no process downloaded
//!   one media id twice;
//! - after a graceful stop and another start nothing is sent, downloaded or forwarded
//!   again, and the log has no panic.
//!
//! Exit status 0 only if every check held.

#[path = "kit/mod.rs"]
mod kit;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};

use kit::api::Api;
use kit::child::{spawn, Wagate};
use kit::fakes::{Delays, Fakes};
use kit::load::{self, Ledger, Mix, Shared};
use kit::Res;

#[path = "kill_campaign/checks.rs"]
mod checks;

#[derive(Parser, Debug, Clone)]
#[command(
    about = "SIGKILL wagate at random moments under mixed load; check nothing acknowledged is lost"
)]
pub struct Args {
    /// Kill rounds.
    #[arg(long, default_value_t = 20)]
    rounds: u64,
    /// The wagate binary.
    #[arg(long, default_value = "target/release/wagate")]
    bin: PathBuf,
    /// Webhook deliveries per second offered while a round runs.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// Sends per second offered while a round runs.
    #[arg(long, default_value_t = 20.0)]
    send_rate: f64,
    /// Longest load before the kill, ms (a round is this plus a start).
    #[arg(long, default_value_t = 1500)]
    max_load_ms: u64,
    /// Percent of rounds with an extra kill within 100 ms of the start.
    #[arg(long, default_value_t = 25)]
    startup_kill_pct: u32,
    /// Percent of rounds killed within 100 ms of listening (during recovery).
    #[arg(long, default_value_t = 20)]
    early_kill_pct: u32,
    /// WAGATE_FORWARD_CONCURRENCY.
    #[arg(long, default_value_t = 4)]
    forward_concurrency: usize,
    /// Random seed (default: from the clock); printed, so a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the data directory and log even when every check held.
    #[arg(long)]
    keep: bool,
}

/// The campaign's state across rounds.
pub struct Campaign {
    pub args: Args,
    pub fakes: Fakes,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
    pub ledger: Shared,
    pub rng: rand::rngs::StdRng,
    pub tag: String,
    pub generation: u64,
    pub kills: u64,
    pub startup_kills: u64,
    pub early_kills: u64,
    /// Kills within 100 ms of the start that landed before wagate listened.
    pub killed_before_listening: u64,
    /// Start to listening, per start that got there (ms).
    pub start_ms: Vec<f64>,
}

impl Campaign {
    pub fn start_wagate(&mut self) -> Res<Wagate> {
        self.generation += 1;
        self.fakes
            .generation
            .store(self.generation, Ordering::SeqCst);
        spawn(
            &self.args.bin,
            &[],
            &self.env,
            &self.log,
            self.generation,
            None,
        )
    }

    pub async fn listening(&mut self) -> Res<(Wagate, Api)> {
        let mut w = self.start_wagate()?;
        let t = Instant::now();
        let base = w.listening(Duration::from_secs(60)).await?;
        self.start_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        Ok((w, Api::new(&base)))
    }

    fn mix(&self) -> Mix {
        Mix {
            media_pct: 8,
            status_pct: 10,
            repost_pct: 7,
            max_items: 3,
            pad: 200,
            contacts: 40,
        }
    }

    async fn round(&mut self, round: u64) -> Res<()> {
        if self.rng.gen_range(0..100) < self.args.startup_kill_pct {
            let mut w = self.start_wagate()?;
            tokio::time::sleep(Duration::from_millis(self.rng.gen_range(0..=100))).await;
            if !w.said_listening() {
                self.killed_before_listening += 1;
            }
            w.kill();
            self.kills += 1;
            self.startup_kills += 1;
        }
        let (w, api) = self.listening().await?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = load::webhooks(
            &api.base,
            self.args.rate,
            8,
            self.mix(),
            &self.tag,
            &self.fakes.media,
            &self.ledger,
            &stop,
            true,
            self.rng.gen(),
        );
        tasks.push(load::sends(
            &api,
            self.args.send_rate,
            &self.tag,
            &self.ledger,
            &stop,
            true,
        ));
        let load_ms = if self.rng.gen_range(0..100) < self.args.early_kill_pct {
            self.early_kills += 1;
            self.rng.gen_range(0..=100)
        } else {
            self.rng.gen_range(100..=self.args.max_load_ms.max(101))
        };
        tokio::time::sleep(Duration::from_millis(load_ms)).await;
        w.kill();
        self.kills += 1;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .map_err(|_| format!("round {round}: a load task did not end"))?
                .map_err(|e| format!("round {round}: {e}"))?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.bin.exists() {
        eprintln!(
            "kill_campaign: {} not found (cargo build --release)",
            args.bin.display()
        );
        return std::process::ExitCode::from(2);
    }
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let fakes = Fakes::start(Delays {
        send_ms: 20,
        media_ms: 40,
        target_ms: 5,
    })
    .await;
    let dir = tempfile::Builder::new()
        .prefix("wagate-kill-")
        .tempdir()
        .expect("temp dir");
    let data = dir.path().join("data");
    let mut env = kit::wagate_env(&data, &fakes.graph, &fakes.media, &fakes.target);
    env.push((
        "WAGATE_FORWARD_CONCURRENCY".into(),
        args.forward_concurrency.to_string(),
    ));
    let mut c = Campaign {
        log: dir.path().join("wagate.log"),
        tag: format!("{:06X}", seed & 0xff_ffff),
        rng: rand::rngs::StdRng::seed_from_u64(seed),
        args,
        fakes,
        dir,
        env,
        ledger: Arc::new(std::sync::Mutex::new(Ledger::default())),
        generation: 0,
        kills: 0,
        startup_kills: 0,
        early_kills: 0,
        killed_before_listening: 0,
        start_ms: Vec::new(),
    };
    println!(
        "kill campaign: {} rounds, seed {seed}, data and log in {}",
        c.args.rounds,
        c.dir.path().display()
    );
    let started = Instant::now();
    for r in 1..=c.args.rounds {
        if let Err(e) = c.round(r).await {
            return fail(c, &[format!("round {r}: {e}")]);
        }
        if r % 50 == 0 || r == c.args.rounds {
            let l = c.ledger.lock().unwrap();
            println!(
                "  round {r}: {} kills, {} deliveries and {} sends acknowledged, {:.0} s",
                c.kills,
                l.acked_total,
                l.sends.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let report = checks::run(&mut c).await;
    let secs = started.elapsed().as_secs_f64();
    match report {
        Ok(r) => {
            println!("{}", r.summary(&c, secs));
            if r.violations.is_empty() {
                if c.args.keep {
                    let _ = c.dir.keep();
                }
                std::process::ExitCode::SUCCESS
            } else {
                fail(c, &r.violations)
            }
        }
        Err(e) => fail(c, &[e]),
    }
}

fn fail(c: Campaign, why: &[String]) -> std::process::ExitCode {
    for w in why.iter().take(50) {
        eprintln!("kill campaign: FAILED: {w}");
    }
    let log = std::fs::read_to_string(&c.log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    eprintln!("kill campaign: the log's last lines:");
    for l in &lines[lines.len().saturating_sub(15)..] {
        eprintln!("  {l}");
    }
    let kept = c.dir.keep();
    eprintln!("kill campaign: data and log kept in {}", kept.display());
    std::process::ExitCode::FAILURE
}
