//! `wagate check`: validates the configuration and the data directory before a
//! start (or in a health probe), and explains what is wrong.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::Config;

pub use crate::util::check::{check, Check, Level};

/// Runs every check (read-only: nothing is created or changed, but for the media
/// store's probe object, written, read back and deleted).
pub fn run(config: &Config) -> Vec<Check> {
    let mut out = vec![secrets(config)];
    if config.verify_token.is_none() {
        out.push(check(
            Level::Warning,
            "WHATSAPP_VERIFY_TOKEN is not set: Meta's handshake will be refused",
        ));
    }
    out.extend(crate::acme::check::run(config));
    out.push(data_dir(&config.data_dir));
    if let Some(c) = data_dir_mode(&config.data_dir) {
        out.push(c);
    }
    if let Some(c) = token_file(&config.data_dir.join("api-token")) {
        out.push(c);
    }
    out.push(free_space(&config.data_dir, config.min_free));
    out.push(memory(&config.memory, crate::util::memory::physical()));
    if let Some(store) = &config.media.store {
        out.push(match crate::media::probe_store(store) {
            Ok(()) => check(
                Level::Ok,
                format!(
                    "media store {}: a probe object was written, read back and deleted",
                    store.url()
                ),
            ),
            Err(e) => check(Level::Problem, format!("WAGATE_MEDIA_STORE: {e}")),
        });
    }
    if let Some(addr) = &config.media.clamd {
        out.push(clamd(addr, config.media.clamd_timeout));
    }
    out
}

fn secrets(config: &Config) -> Check {
    match config.app_secrets.len() {
        0 => check(
            Level::Warning,
            "META_APP_SECRET is not set: every delivery will be kept as rejected",
        ),
        n => check(Level::Ok, format!("{n} app secret(s) configured")),
    }
}

/// The data directory: there and writable, or to be created in a parent that is.
fn data_dir(dir: &Path) -> Check {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => check(
            Level::Problem,
            format!("{} is not a directory", dir.display()),
        ),
        Ok(_) => writable(dir),
        Err(_) if parent_of(dir).exists() => check(
            Level::Ok,
            format!(
                "{} does not exist yet; it will be created on start",
                dir.display()
            ),
        ),
        Err(_) => check(
            Level::Problem,
            format!("neither {} nor its parent exists", dir.display()),
        ),
    }
}

fn parent_of(dir: &Path) -> &Path {
    dir.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A warning when other users can read the data directory.
fn data_dir_mode(dir: &Path) -> Option<Check> {
    let meta = std::fs::metadata(dir).ok().filter(|m| m.is_dir())?;
    let mode = meta.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        check(
            Level::Warning,
            format!(
                "{} is readable by other users (mode {:o}): it holds personal data; chmod 700 it",
                dir.display(),
                mode & 0o777
            ),
        )
    })
}

/// A problem when other users can read the API token file.
fn token_file(token: &Path) -> Option<Check> {
    let mode = std::fs::metadata(token).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        check(
            Level::Problem,
            format!(
                "{} is readable by other users: chmod 600 it",
                token.display()
            ),
        )
    })
}

/// Free space where the data is (or will be), against `WAGATE_MIN_FREE`.
fn free_space(dir: &Path, min_free: u64) -> Check {
    let probe = if dir.exists() { dir } else { parent_of(dir) };
    match crate::util::disk::free_bytes(probe) {
        Ok(free) if free < min_free => check(
            Level::Problem,
            format!(
                "only {} MiB free, below WAGATE_MIN_FREE ({})",
                free >> 20,
                crate::config::format_size(min_free)
            ),
        ),
        Ok(free) => check(Level::Ok, format!("{} MiB free", free >> 20)),
        Err(e) => check(Level::Warning, format!("cannot read free space: {e}")),
    }
}

fn clamd(addr: &crate::config::ClamdAddr, timeout: std::time::Duration) -> Check {
    let scanner = crate::media::scan::Scanner {
        addr: addr.clone(),
        timeout: timeout.min(std::time::Duration::from_secs(5)),
    };
    match scanner.ping() {
        Ok(()) => check(Level::Ok, format!("clamd answers at {addr}")),
        Err(e) => check(
            Level::Problem,
            format!("WAGATE_CLAMD: {e}; media downloads will retry until it answers"),
        ),
    }
}

/// The memory budget and its split; a warning when the machine has less than
/// twice the budget (the system, a proxy and the page cache need room too).
fn memory(budget: &crate::config::MemoryBudget, physical: Option<u64>) -> Check {
    let split: Vec<String> = budget
        .split()
        .into_iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    let text = format!(
        "WAGATE_MEMORY {}: {}",
        crate::config::format_size(budget.total),
        split.join(", ")
    );
    match physical {
        Some(ram) if budget.total > ram / 2 => check(
            Level::Warning,
            format!(
                "{text}; this machine has {} MiB: lower WAGATE_MEMORY",
                ram >> 20
            ),
        ),
        _ => check(Level::Ok, text),
    }
}

fn writable(dir: &Path) -> Check {
    let probe = dir.join(format!(".wagate-check-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            check(Level::Ok, format!("{} is writable", dir.display()))
        }
        Err(e) => check(
            Level::Problem,
            format!("cannot write in {}: {e}", dir.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemoryBudget;

    #[test]
    fn the_memory_budget_is_shown_and_checked_against_the_machine() {
        let budget = MemoryBudget::default();
        let c = memory(&budget, Some(1 << 30));
        assert_eq!(c.level, Level::Ok);
        assert!(
            c.message.starts_with(
                "WAGATE_MEMORY 256MiB: store cache (sled) 8MiB, dedup filter 349525 keys"
            ),
            "{}",
            c.message
        );
        assert_eq!(memory(&budget, None).level, Level::Ok);
        let c = memory(&MemoryBudget { total: 1 << 30 }, Some(1 << 30));
        assert_eq!(c.level, Level::Warning);
        assert!(c
            .message
            .ends_with("this machine has 1024 MiB: lower WAGATE_MEMORY"));
    }
}
