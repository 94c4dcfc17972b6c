//! Hashes of the dedup keys recorded lately, so that the applier knows a new item
//! (nearly every item) is new without reading sled.
//!
//! Why it pays: once sled has run one transaction, every read takes its global
//! lock, and the committer holds that lock for a whole step. With a read per item,
//! preparing step k+1 waited for step k's commit, so the two never overlapped.
//!
//! Only "absent" is ever trusted, and only when it is certain: once the startup
//! scan of sled has been merged, for items whose time is inside the window the
//! filter covers, and while the filter is under its memory cap. Anything else (a
//! hash match, an old item, a filter still building or over its cap) reads sled,
//! so every answer is the one sled would give.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use super::identity::message_key;
use crate::store::{RecordedKey, Store, StoreError};

/// Keys remembered at most (10-21 bytes each, so at most about 40 MB): past it the
/// filter turns itself off and every item is looked up in sled, as before.
pub const MAX_KEYS: usize = 2_000_000;
/// How far an item's own time may be ahead of the time it was filed under (Meta's
/// clock ahead of ours, a key filed by its first-seen time).
const SKEW_SECS: i64 = 86_400;
const HOUR: i64 = 3600;

/// Where the filter stands, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterState {
    /// The startup scan has not finished: every item is read from sled.
    #[default]
    Building,
    Ready,
    /// Over [`MAX_KEYS`]: every item is read from sled until the next start.
    Off,
}

pub struct SeenFilter {
    hasher: RandomState,
    /// Hour (unix seconds / 3600) -> hashes of keys filed under that hour.
    hours: BTreeMap<i64, HashSet<u64>>,
    len: usize,
    /// Every key filed at or after this time (unix seconds) is in the filter.
    floor_secs: i64,
    keep_secs: i64,
    state: FilterState,
    max_keys: usize,
}

/// What the startup scan found, to merge into the applier's filter.
pub struct ScanResult {
    hours: BTreeMap<i64, HashSet<u64>>,
    len: usize,
    /// More keys than the cap: the result is incomplete.
    over_cap: bool,
}

impl SeenFilter {
    /// An empty filter covering keys filed from `now_secs - ttl - 2 days` on; it
    /// trusts nothing until a scan from [`SeenFilter::floor_secs`] is merged.
    pub fn new(dedup_ttl: Duration, now_secs: i64) -> SeenFilter {
        let keep_secs = dedup_ttl.as_secs() as i64 + 2 * SKEW_SECS;
        SeenFilter {
            hasher: RandomState::new(),
            hours: BTreeMap::new(),
            len: 0,
            floor_secs: now_secs - keep_secs,
            keep_secs,
            state: FilterState::Building,
            max_keys: MAX_KEYS,
        }
    }

    pub fn state(&self) -> FilterState {
        self.state
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A scanner for another thread: it hashes keys the way this filter does.
    pub fn scanner(&self) -> Scanner {
        Scanner {
            hasher: self.hasher.clone(),
            floor_secs: self.floor_secs,
            out: ScanResult {
                hours: BTreeMap::new(),
                len: 0,
                over_cap: false,
            },
        }
    }

    /// Remembers `key`, recorded for an item of time `item_secs` in a delivery
    /// received at `received_secs`.
    pub fn insert(&mut self, key: &[u8], item_secs: i64, received_secs: i64) {
        if self.state == FilterState::Off {
            return;
        }
        let hash = self.hasher.hash_one(key);
        if self
            .hours
            .entry(item_secs.max(received_secs).div_euclid(HOUR))
            .or_default()
            .insert(hash)
        {
            self.len += 1;
            self.check_cap();
        }
    }

    /// Whether `key` is certainly not in sled (an item of time `item_secs`).
    /// `false` means "read sled".
    pub fn surely_absent(&self, key: &[u8], item_secs: i64) -> bool {
        if self.state != FilterState::Ready || item_secs < self.floor_secs + SKEW_SECS {
            return false;
        }
        let hash = self.hasher.hash_one(key);
        !self.hours.values().any(|h| h.contains(&hash))
    }

    /// Takes in the startup scan: from now on "absent" can be trusted.
    pub fn merge(&mut self, scan: ScanResult) {
        if self.state != FilterState::Building {
            return;
        }
        if scan.over_cap {
            self.turn_off(self.len + scan.len);
            return;
        }
        for (hour, hashes) in scan.hours {
            let into = self.hours.entry(hour).or_default();
            let before = into.len();
            into.extend(hashes);
            self.len += into.len() - before;
        }
        self.state = FilterState::Ready;
        self.check_cap();
    }

    /// Forgets the hours older than the window as of `now_secs` (wall clock).
    pub fn expire(&mut self, now_secs: i64) {
        let keep_from = (now_secs - self.keep_secs).div_euclid(HOUR);
        while let Some(entry) = self.hours.first_entry() {
            if *entry.key() >= keep_from {
                break;
            }
            self.len -= entry.remove().len();
        }
        self.floor_secs = self.floor_secs.max(keep_from * HOUR);
    }

    fn check_cap(&mut self) {
        if self.len > self.max_keys {
            self.turn_off(self.len);
        }
    }

    fn turn_off(&mut self, keys: usize) {
        tracing::warn!(
            keys,
            "over {} recent item keys: the dedup filter is off until the next start \
             (every item is looked up in the store)",
            self.max_keys
        );
        self.state = FilterState::Off;
        self.hours.clear();
        self.len = 0;
    }
}

/// Reads every recent dedup key sled holds into `scanner` (blocking: run it on a
/// thread of its own; the applier reads sled meanwhile).
pub fn scan(store: &Store, mut scanner: Scanner) -> Result<ScanResult, StoreError> {
    store.recent_item_keys(scanner.floor_secs, |key, secs| match key {
        RecordedKey::Item(k) => scanner.add(k, secs),
        RecordedKey::Message(id) => scanner.add(&message_key(id), secs),
    })?;
    Ok(scanner.finish())
}

/// Collects the keys sled holds, on the scanning thread.
pub struct Scanner {
    hasher: RandomState,
    floor_secs: i64,
    out: ScanResult,
}

impl Scanner {
    /// A dedup key found in sled, filed under `secs` (first seen, or the message's
    /// timestamp).
    pub fn add(&mut self, key: &[u8], secs: i64) {
        if secs < self.floor_secs || self.out.over_cap {
            return;
        }
        if self.out.len >= MAX_KEYS {
            self.out.over_cap = true;
            self.out.hours.clear();
            return;
        }
        let hash = self.hasher.hash_one(key);
        if self
            .out
            .hours
            .entry(secs.div_euclid(HOUR))
            .or_default()
            .insert(hash)
        {
            self.out.len += 1;
        }
    }

    pub fn finish(self) -> ScanResult {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn ready(ttl_days: u64) -> SeenFilter {
        let mut f = SeenFilter::new(Duration::from_secs(ttl_days * DAY as u64), NOW);
        let scan = f.scanner().finish();
        f.merge(scan);
        f
    }

    #[test]
    fn trusts_nothing_until_the_scan_is_merged() {
        let mut f = SeenFilter::new(Duration::from_secs(7 * DAY as u64), NOW);
        assert!(!f.surely_absent(b"m\0a", NOW));
        let mut scan = f.scanner();
        scan.add(b"m\0old", NOW - DAY);
        f.merge(scan.finish());
        assert_eq!(f.state(), FilterState::Ready);
        assert!(f.surely_absent(b"m\0a", NOW));
        assert!(!f.surely_absent(b"m\0old", NOW - DAY));
    }

    #[test]
    fn an_inserted_key_is_never_absent() {
        let mut f = ready(7);
        f.insert(b"s\0id\0read", NOW - 3 * DAY, NOW);
        assert!(!f.surely_absent(b"s\0id\0read", NOW - 3 * DAY));
        assert!(f.surely_absent(b"s\0id\0delivered", NOW - 3 * DAY));
    }

    #[test]
    fn items_older_than_the_window_are_read_from_the_store() {
        let f = ready(7);
        assert!(f.surely_absent(b"m\0x", NOW - 7 * DAY - DAY / 2));
        assert!(!f.surely_absent(b"m\0x", NOW - 9 * DAY - 1));
        assert!(!f.surely_absent(b"m\0x", 0));
    }

    #[test]
    fn expiry_moves_the_floor_with_the_hours_it_drops() {
        let mut f = ready(7);
        f.insert(b"m\0a", NOW - 8 * DAY, NOW - 8 * DAY);
        f.insert(b"m\0b", NOW, NOW);
        assert_eq!(f.len(), 2);
        f.expire(NOW + 2 * DAY);
        assert_eq!(f.len(), 1);
        // Keys filed before the new floor may be gone: items that old are read.
        assert!(!f.surely_absent(b"m\0a", NOW - 8 * DAY));
        assert!(!f.surely_absent(b"m\0b", NOW));
        assert!(f.surely_absent(b"m\0c", NOW));
    }

    #[test]
    fn over_the_cap_it_turns_off() {
        let mut f = ready(7);
        f.max_keys = 1000;
        for i in 0..=1000u64 {
            f.insert(&i.to_be_bytes(), NOW, NOW);
        }
        assert_eq!(f.state(), FilterState::Off);
        assert!(f.is_empty());
        assert!(!f.surely_absent(b"m\0new", NOW));
    }
}
