//! How far the applier has got: what the workers and the stats wait on.

use crate::journal::Heads;

/// How far the applier has got in each stream (last sequence number applied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub main: u64,
    pub quarantine: u64,
    /// The dedup filter: its state and how many keys it holds.
    pub dedup_filter: FilterState,
    pub dedup_filter_keys: usize,
}

impl Applied {
    /// The largest sequence number such that everything up to it is applied.
    pub fn overall(&self, heads: &Heads) -> u64 {
        let lagging = [
            (self.main < heads.main).then_some(self.main),
            (self.quarantine < heads.quarantine).then_some(self.quarantine),
        ];
        lagging
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(heads.last_seq)
    }
}

/// Where the filter stands, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterState {
    /// The startup scan has not finished: every item is read from sled.
    #[default]
    Building,
    Ready,
}
