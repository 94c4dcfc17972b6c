//! What the applier is built with (`pipeline::Options`): one struct, so that a new
//! setting is a field, not one more constructor parameter.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::retention::RetentionOptions;
use super::running::ApplyHealth;

/// How much one step (one sled transaction) may hold: a step ends once it reaches
/// any of these, so its memory is bounded by them plus one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepBounds {
    pub records: usize,
    /// Items applied.
    pub items: usize,
    /// Journal record bytes read (delivery bodies, mostly).
    pub bytes: usize,
}

impl Default for StepBounds {
    fn default() -> Self {
        StepBounds {
            records: 256,
            items: 20_000,
            bytes: 16 << 20,
        }
    }
}

pub struct Options {
    /// How long an item's dedup key is kept (`WAGATE_DEDUP_TTL`).
    pub dedup_ttl: Duration,
    /// Dedup keys the in-memory filter holds at most (sized by `WAGATE_MEMORY`).
    pub dedup_keys: usize,
    /// Items applied per delivery at most (`WAGATE_MAX_ITEMS`).
    pub max_items: usize,
    pub step: StepBounds,
    /// Failing or behind this long without success counts as stuck (`WAGATE_STUCK_AFTER`).
    pub stuck_after: Duration,
    /// Where the data is, and the free space there that means "the disk has room"
    /// (`WAGATE_MIN_FREE`): a store still failing then will not heal by itself.
    pub data_dir: PathBuf,
    pub min_free: u64,
    pub retention: RetentionOptions,
    /// Where the applier reports how it is doing.
    pub health: Arc<ApplyHealth>,
    /// What erasures need (none in tools that only read).
    pub erase: Option<Arc<super::erase::EraseContext>>,
}
