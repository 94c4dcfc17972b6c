//! Runs a target for a time: seeds first, then seeds with 1-8 stacked mutations, each
//! input under `catch_unwind`. Input `i` of a run depends only on the run's seed, the
//! target and `i`, so a run can be repeated; a panicking input is also saved to
//! `<crash dir>/<target>-<hash>` for `examples/fuzz.rs -- run <target> <file>`.
//! Panics are told apart by where they happen; known ones (a defect fixed elsewhere,
//! listed in `fuzz/known-crashes`) are counted and saved but do not fail the run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::mutate::mutate;
use super::Target;

pub struct Options {
    pub duration: Duration,
    /// Stop after this many inputs, whatever the time.
    pub max_execs: Option<u64>,
    pub seed: u64,
    pub crash_dir: PathBuf,
    /// `pattern` or `pattern | why`: a panic whose text contains a pattern is known.
    pub known: Vec<(String, String)>,
    /// Extra seed inputs (a corpus directory's files).
    pub corpus: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct Crash {
    /// `message @ file:line:col`.
    pub what: String,
    pub count: u64,
    pub first_exec: u64,
    pub saved: Option<PathBuf>,
    /// Why it is known (listed in the known-crashes file).
    pub known: Option<String>,
}

#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub execs: u64,
    pub elapsed: Duration,
    pub slowest: Duration,
    /// By where they panicked.
    pub crashes: BTreeMap<String, Crash>,
}

impl Report {
    pub fn new_crashes(&self) -> impl Iterator<Item = &Crash> {
        self.crashes.values().filter(|c| c.known.is_none())
    }

    pub fn per_sec(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Replaces the panic hook with one that records the message and place quietly.
pub fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let place = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some((msg, place)));
        }));
    });
}

/// Runs `input` through `target`: `Some((message, place))` when it panicked.
pub fn run_one(target: &Target, input: &[u8]) -> Option<(String, String)> {
    quiet_panics();
    match panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input))) {
        Ok(()) => None,
        Err(_) => Some(
            LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default(),
        ),
    }
}

pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The input number `i` of a run (seeds first, unchanged).
pub fn input(target: &Target, pool: &[Vec<u8>], seed: u64, i: u64) -> Vec<u8> {
    if let Some(s) = pool.get(i as usize) {
        return s.clone();
    }
    let mut rng = StdRng::seed_from_u64(seed ^ hash(target.name.as_bytes()) ^ i.rotate_left(32));
    let mut data = if pool.is_empty() {
        Vec::new()
    } else {
        pool[rng.gen_range(0..pool.len())].clone()
    };
    for _ in 0..1usize << rng.gen_range(0..4) {
        mutate(
            &mut rng,
            &mut data,
            target.shape,
            pool,
            target.dict,
            target.max_len,
        );
    }
    data
}

pub fn fuzz(target: &'static Target, opts: &Options) -> Report {
    let mut pool = (target.seeds)();
    pool.extend(opts.corpus.iter().cloned());
    let mut report = Report {
        target: target.name,
        execs: 0,
        elapsed: Duration::ZERO,
        slowest: Duration::ZERO,
        crashes: BTreeMap::new(),
    };
    let start = Instant::now();
    loop {
        let i = report.execs;
        if opts.max_execs.is_some_and(|m| i >= m) || start.elapsed() >= opts.duration {
            break;
        }
        let data = input(target, &pool, opts.seed, i);
        let t = Instant::now();
        let outcome = run_one(target, &data);
        report.slowest = report.slowest.max(t.elapsed());
        report.execs += 1;
        if let Some((msg, place)) = outcome {
            record(&mut report, opts, target, &data, i, msg, place);
        }
    }
    report.elapsed = start.elapsed();
    report
}

fn record(
    report: &mut Report,
    opts: &Options,
    target: &Target,
    data: &[u8],
    exec: u64,
    msg: String,
    place: String,
) {
    let what = format!("{} @ {place}", msg.lines().next().unwrap_or(""));
    let crash = report.crashes.entry(place).or_insert_with(|| {
        let file = opts
            .crash_dir
            .join(format!("{}-{:016x}", target.name, hash(data)));
        let saved = std::fs::create_dir_all(&opts.crash_dir)
            .and_then(|_| std::fs::write(&file, data))
            .ok()
            .map(|_| file);
        let known = opts
            .known
            .iter()
            .find(|(pattern, _)| format!("{msg} @ {what}").contains(pattern.as_str()))
            .map(|(_, why)| why.clone());
        Crash {
            what,
            count: 0,
            first_exec: exec,
            saved,
            known,
        }
    });
    crash.count += 1;
}

/// `pattern | why` lines (`#` comments and blank lines skipped).
pub fn parse_known(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(" | ") {
            Some((p, why)) => (p.trim().to_string(), why.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}
