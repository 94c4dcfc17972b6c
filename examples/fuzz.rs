//! The fuzz targets of `src/fuzz` under structured-random mutation (stable Rust).
//!
//! ```text
//! cargo run --features fuzzing --example fuzz -- [--seconds N] [--seed S] [--execs N] [TARGET...]
//! cargo run --features fuzzing --example fuzz -- list
//! cargo run --features fuzzing --example fuzz -- run TARGET FILE...   # reproduce, panics in full
//! cargo run --features fuzzing --example fuzz -- seeds DIR            # write the seed corpus
//! ```
//!
//! Crashing inputs go to `fuzz/crashes/`; panics listed in `fuzz/known-crashes` are
//! reported but do not fail the run. Exits 1 on any other crash.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use wagate::fuzz::driver::{self, Options, Report};
use wagate::fuzz::{target, Target, TARGETS};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for t in TARGETS {
                println!("{:28} {}", t.name, t.what);
            }
            ExitCode::SUCCESS
        }
        Some("run") if args.len() >= 3 => reproduce(&args[1], &args[2..]),
        Some("seeds") if args.len() == 2 => write_seeds(Path::new(&args[1])),
        _ => run(&args),
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn run(args: &[String]) -> ExitCode {
    let mut opts = Options {
        duration: Duration::from_secs(20),
        max_execs: None,
        seed: wagate::util::clock::now_micros() as u64,
        crash_dir: root().join("crashes"),
        known: driver::parse_known(
            &std::fs::read_to_string(root().join("known-crashes")).unwrap_or_default(),
        ),
        corpus: Vec::new(),
    };
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<f64>().ok());
        match a.as_str() {
            "--seconds" => opts.duration = Duration::from_secs_f64(value().unwrap_or(20.0)),
            "--seed" => opts.seed = value().map_or(opts.seed, |v| v as u64),
            "--execs" => opts.max_execs = value().map(|v| v as u64),
            name => names.push(name.to_string()),
        }
    }
    let targets: Vec<&'static Target> = if names.is_empty() {
        TARGETS.iter().collect()
    } else {
        match names.iter().map(|n| target(n).ok_or(n)).collect() {
            Ok(t) => t,
            Err(n) => {
                eprintln!("no target '{n}' (see `list`)");
                return ExitCode::FAILURE;
            }
        }
    };
    println!("fuzz: seed {}, {:?} per target", opts.seed, opts.duration);
    let mut failed = false;
    let mut total = 0;
    for t in targets {
        opts.corpus = corpus(&root().join("corpus").join(t.name));
        let report = driver::fuzz(t, &opts);
        print_report(&report);
        total += report.execs;
        failed |= report.new_crashes().next().is_some();
    }
    println!(
        "fuzz: {total} inputs in all; {}",
        if failed { "CRASHES" } else { "no new crash" }
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_report(r: &Report) {
    println!(
        "{:28} {:>10} inputs {:>7.1} s {:>8.0}/s  slowest {:>7.1} ms  {} crash(es)",
        r.target,
        r.execs,
        r.elapsed.as_secs_f64(),
        r.per_sec(),
        r.slowest.as_secs_f64() * 1e3,
        r.crashes.len(),
    );
    for c in r.crashes.values() {
        let tag = match &c.known {
            Some(why) => format!("known ({why})"),
            None => "NEW".into(),
        };
        println!(
            "    {tag}: {} x{} (first at input {}), saved {}",
            c.what,
            c.count,
            c.first_exec,
            c.saved
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string())
        );
    }
}

/// Files of a corpus directory, if there is one.
fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Each file through the target with the default panic hook: the panic in full.
fn reproduce(name: &str, files: &[String]) -> ExitCode {
    let Some(t) = target(name) else {
        eprintln!("no target '{name}'");
        return ExitCode::FAILURE;
    };
    for f in files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        println!("{f}: {} bytes", data.len());
        (t.run)(&data);
        println!("{f}: ok");
    }
    ExitCode::SUCCESS
}

fn write_seeds(dir: &Path) -> ExitCode {
    for t in TARGETS {
        let d = dir.join(t.name);
        std::fs::create_dir_all(&d).expect("creating the corpus directory");
        for s in (t.seeds)() {
            let file = d.join(format!("seed-{:016x}", driver::hash(&s)));
            std::fs::write(&file, &s).expect("writing a seed");
        }
    }
    println!("seeds written under {}", dir.display());
    ExitCode::SUCCESS
}
