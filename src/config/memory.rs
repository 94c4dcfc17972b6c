//! `WAGATE_MEMORY`: one size from which every memory-hungry part is sized, read by
//! `config/mod.rs`. The split is a pure function of the budget, so `wagate check`,
//! the settings page and the running process agree on it.
//!
//! The budget is what the process should stay within at a few million stored
//! messages (the systemd unit's `MemoryHigh` sits above it, for a larger store and
//! for bursts). Of it:
//! - 1/32 is sled's page cache (`cache_capacity`). sled counts its cache in
//!   serialised bytes; the cached nodes take about twice that in memory (measured:
//!   48 MiB more cache, 85 MB more resident at a million messages). A small cache
//!   keeps up: 8 MiB held 2,000 deliveries/s at a million stored messages, since
//!   what misses it is in the kernel's page cache.
//! - 1/32 is the dedup filter: the hashes of recent dedup keys (12 bytes of table
//!   per key at worst, after a resize with both tables held). Past its cap only
//!   items older than the oldest minute kept are looked up in sled.
//! - 1/16 is the journal's queue and its group-commit buffer: records waiting for
//!   the writer (counted at 4 KiB each) and the most one commit gathers.
//! - threads for blocking work: one per 8 MiB, 16 to 512.
//!
//! The rest is for the program itself (about 16 MB idle), its threads' stacks,
//! request bodies in flight (at most `WAGATE_MAX_CONNECTIONS` × `WAGATE_MAX_BODY`,
//! in practice a few at a time) and the allocator's slack.
//!
//! What grows with the store and no setting bounds: sled keeps a record of every
//! page of the store in memory (its page table, with each page's places on disk),
//! cached or not. With the vendored sled's larger leaves (vendor/sled/WAGATE.md)
//! that is about 40 MB at a million stored messages; the default budget leaves
//! room for a few million (docs/performance.md has the table).

use super::{bad, parse_size, ConfigError};

/// The default: fits a 1 GB VPS with room for the system and a reverse proxy.
pub const DEFAULT_MEMORY: u64 = 256 << 20;
const MIN_MEMORY: u64 = 64 << 20;
const MAX_MEMORY: u64 = 1 << 40;
/// Bytes of dedup-filter table one key may take (see the module comment).
const FILTER_BYTES_PER_KEY: u64 = 24;
/// A queued journal record counted at this size.
const QUEUED_RECORD_BYTES: u64 = 4 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// What the whole process should stay within, in bytes.
    pub total: u64,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget {
            total: DEFAULT_MEMORY,
        }
    }
}

impl MemoryBudget {
    /// sled's `cache_capacity` in bytes.
    pub fn store_cache(&self) -> u64 {
        self.total / 32
    }

    /// Dedup keys the applier's filter holds at most.
    pub fn dedup_keys(&self) -> usize {
        (self.total / 32 / FILTER_BYTES_PER_KEY) as usize
    }

    /// Records waiting for the journal writer at most (more wait for a place).
    pub fn journal_queue(&self) -> usize {
        (self.total / 32 / QUEUED_RECORD_BYTES).clamp(256, 16 * 1024) as usize
    }

    /// Bytes one group commit gathers at most (one record may be larger).
    pub fn journal_batch_bytes(&self) -> usize {
        (self.total / 32).clamp(1 << 20, 32 << 20) as usize
    }

    /// Threads for blocking work (store calls, files) at most.
    pub fn blocking_threads(&self) -> usize {
        (self.total / (8 << 20)).clamp(16, 512) as usize
    }

    /// The derived sizes, as the settings page and `wagate check` show them.
    pub fn split(&self) -> Vec<(&'static str, String)> {
        use super::format_size as size;
        vec![
            ("store cache (sled)", size(self.store_cache())),
            (
                "dedup filter",
                format!(
                    "{} keys (about {})",
                    self.dedup_keys(),
                    size_approx(self.dedup_keys() as u64 * FILTER_BYTES_PER_KEY)
                ),
            ),
            (
                "journal queue",
                format!(
                    "{} records, {} per commit",
                    self.journal_queue(),
                    size(self.journal_batch_bytes() as u64)
                ),
            ),
            ("blocking threads", self.blocking_threads().to_string()),
        ]
    }
}

/// A size rounded to whole MiB, for display only.
fn size_approx(bytes: u64) -> String {
    format!("{} MiB", (bytes + (1 << 19)) >> 20)
}

pub(super) fn read_memory(
    get: &impl Fn(&str) -> Option<String>,
    budget: &mut MemoryBudget,
) -> Result<(), ConfigError> {
    const NAME: &str = "WAGATE_MEMORY";
    if let Some(v) = get(NAME) {
        let n = parse_size(&v).map_err(|m| bad(NAME, m))?;
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&n) {
            return Err(bad(NAME, "must be between 64MiB and 1024GiB"));
        }
        budget.total = n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: Option<&str>) -> Result<MemoryBudget, ConfigError> {
        let mut b = MemoryBudget::default();
        read_memory(&|_: &str| v.map(str::to_string), &mut b).map(|()| b)
    }

    #[test]
    fn the_split_of_a_budget() {
        let mib = |n: u64| n << 20;
        for (total, cache, keys, queue, batch, threads) in [
            // The default (a 1 GB VPS).
            (mib(256), mib(8), 349_525, 2048, mib(8), 32),
            (mib(64), mib(2), 87_381, 512, mib(2), 16),
            (mib(128), mib(4), 174_762, 1024, mib(4), 16),
            (mib(1024), mib(32), 1_398_101, 8192, mib(32), 128),
            (mib(8192), mib(256), 11_184_810, 16_384, mib(32), 512),
        ] {
            let b = MemoryBudget { total };
            assert_eq!(b.store_cache(), cache, "{total}");
            assert_eq!(b.dedup_keys(), keys, "{total}");
            assert_eq!(b.journal_queue(), queue, "{total}");
            assert_eq!(b.journal_batch_bytes() as u64, batch, "{total}");
            assert_eq!(b.blocking_threads(), threads, "{total}");
        }
    }

    #[test]
    fn parts_stay_within_the_budget() {
        for total in [64u64 << 20, 256 << 20, 3 << 30, 1 << 40] {
            let b = MemoryBudget { total };
            let parts = b.store_cache() * 2
                + b.dedup_keys() as u64 * FILTER_BYTES_PER_KEY
                + b.journal_queue() as u64 * QUEUED_RECORD_BYTES
                + b.journal_batch_bytes() as u64;
            assert!(parts <= total * 3 / 4, "{total}: {parts}");
        }
    }

    #[test]
    fn read_from_the_environment() {
        assert_eq!(read(None).unwrap().total, DEFAULT_MEMORY);
        assert_eq!(read(Some("1GiB")).unwrap().total, 1 << 30);
        assert_eq!(read(Some("96M")).unwrap().total, 96 << 20);
        for bad in ["32MiB", "lots", "2048GiB"] {
            assert_eq!(read(Some(bad)).unwrap_err().name, "WAGATE_MEMORY", "{bad}");
        }
    }
}
