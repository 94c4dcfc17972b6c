//! Hashes of the dedup keys recorded lately, so that the applier knows a new item
//! (nearly every item) is new without reading sled.
//!
//! Why it pays: once sled has run one transaction, every read takes its global
//! lock, and the committer holds that lock for a whole step. With a read per item,
//! preparing step k+1 waited for step k's commit, so the two never overlapped.
//!
//! Only "absent" is ever trusted, and only when it is certain: once the startup
//! scan of sled has been merged, and for items whose own time is at or after the
//! filter's floor. Every key is filed under a minute no earlier than its item's
//! time, and keys leave only with whole minutes below the floor (expiry after the
//! dedup TTL, or the oldest minutes when over the cap), so an item at or after the
//! floor that sled holds is in the filter. Anything else (a hash match, an older
//! item, a filter still building) reads sled, so every answer is the one sled
//! would give.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::time::Duration;

use crate::events::identity::message_key;
use crate::store::{FilterState, RecordedKey, Store, StoreError};

/// Keys remembered at most by default (`WAGATE_MEMORY` sizes it in a running
/// wagate). Past it the oldest minutes go and the floor rises: new items still
/// need no read, older ones are looked up in sled.
pub fn default_max_keys() -> usize {
    crate::config::MemoryBudget::default().dedup_keys()
}

/// A key is remembered by a 32-bit hash (8 bytes of table with its minute). Two
/// keys may share one: that only makes the filter answer "read sled" for the
/// other (one in 4,000 at a million keys), never "absent" wrongly, since a
/// shared hash stays filed under the later of the two minutes.
type KeyHash = u32;

/// The hashes are random already: spread them over the table without hashing again.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn key_hash(hasher: &RandomState, key: &[u8]) -> KeyHash {
    let h = hasher.hash_one(key);
    (h ^ (h >> 32)) as KeyHash
}
/// How far an item's own time may be ahead of its first-seen time (Meta's clock
/// ahead of ours): keys found in the dedup tree are filed that much later.
const SKEW_SECS: i64 = 86_400;
const MINUTE: i64 = 60;

/// Key hashes filed by minute, with the floor below which nothing is promised.
struct Keys {
    /// Key hash -> minute (unix seconds / 60) it is filed under.
    keys: HashMap<KeyHash, i32, BuildHasherDefault<Spread>>,
    /// Minute -> how many keys are filed under it.
    minutes: BTreeMap<i32, usize>,
    /// Every key filed at or after this time (unix seconds) is here.
    floor_secs: i64,
    max_keys: usize,
}

impl Keys {
    fn new(floor_secs: i64, max_keys: usize) -> Keys {
        Keys {
            keys: HashMap::default(),
            minutes: BTreeMap::new(),
            floor_secs,
            max_keys,
        }
    }

    /// Files `hash` under the minute of `secs` (a later minute wins over an earlier).
    fn insert(&mut self, hash: KeyHash, secs: i64) {
        if secs < self.floor_secs {
            return;
        }
        let minute = secs.div_euclid(MINUTE).clamp(0, i32::MAX as i64) as i32;
        match self.keys.entry(hash) {
            Entry::Occupied(e) if *e.get() >= minute => return,
            Entry::Occupied(mut e) => {
                let old = e.insert(minute);
                self.uncount(old);
            }
            Entry::Vacant(e) => {
                e.insert(minute);
            }
        }
        *self.minutes.entry(minute).or_default() += 1;
        if self.keys.len() > self.max_keys {
            self.evict(self.max_keys * 3 / 4);
        }
    }

    fn uncount(&mut self, minute: i32) {
        if let Some(n) = self.minutes.get_mut(&minute) {
            *n -= 1;
            if *n == 0 {
                self.minutes.remove(&minute);
            }
        }
    }

    /// Drops every key filed before `secs` and raises the floor to it.
    fn drop_before(&mut self, secs: i64) {
        let keep_from = secs.div_euclid(MINUTE).clamp(0, i32::MAX as i64) as i32;
        if self
            .minutes
            .first_key_value()
            .is_some_and(|(m, _)| *m < keep_from)
        {
            self.minutes = self.minutes.split_off(&keep_from);
            self.keys.retain(|_, m| *m >= keep_from);
        }
        self.floor_secs = self.floor_secs.max(keep_from as i64 * MINUTE);
    }

    /// Drops the oldest minutes until at most `target` keys are left.
    fn evict(&mut self, target: usize) {
        let mut left = self.keys.len();
        let mut cut = None;
        for (&minute, &n) in &self.minutes {
            if left <= target {
                break;
            }
            left -= n;
            cut = Some(minute);
        }
        if let Some(minute) = cut {
            self.drop_before((minute as i64 + 1) * MINUTE);
            tracing::debug!(
                keys = self.keys.len(),
                floor = self.floor_secs,
                "dedup filter at its cap: older items are looked up in the store"
            );
        }
    }

    fn absorb(&mut self, other: Keys) {
        self.floor_secs = self.floor_secs.max(other.floor_secs);
        for (hash, minute) in other.keys {
            self.insert(hash, minute as i64 * MINUTE);
        }
        self.drop_before(self.floor_secs);
    }
}

pub struct SeenFilter {
    hasher: RandomState,
    keys: Keys,
    keep_secs: i64,
    state: FilterState,
}

/// What the startup scan found, to merge into the applier's filter.
pub struct ScanResult {
    keys: Keys,
}

impl SeenFilter {
    /// An empty filter covering keys filed from `now_secs - ttl - 2 days` on; it
    /// trusts nothing until the scan from [`SeenFilter::scanner`] is merged.
    pub fn new(dedup_ttl: Duration, now_secs: i64) -> SeenFilter {
        Self::with_max_keys(dedup_ttl, now_secs, default_max_keys())
    }

    /// [`SeenFilter::new`] holding at most `max_keys` keys.
    pub fn with_max_keys(dedup_ttl: Duration, now_secs: i64, max_keys: usize) -> SeenFilter {
        let keep_secs = dedup_ttl.as_secs() as i64 + 2 * SKEW_SECS;
        SeenFilter {
            hasher: RandomState::new(),
            keys: Keys::new(now_secs - keep_secs, max_keys),
            keep_secs,
            state: FilterState::Building,
        }
    }

    pub fn state(&self) -> FilterState {
        self.state
    }

    pub fn len(&self) -> usize {
        self.keys.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.keys.is_empty()
    }

    /// A scanner for another thread: it hashes keys the way this filter does.
    pub fn scanner(&self) -> Scanner {
        Scanner {
            hasher: self.hasher.clone(),
            keys: Keys::new(self.keys.floor_secs, self.keys.max_keys),
        }
    }

    /// Remembers `key`, recorded for an item of time `item_secs` in a delivery
    /// received at `received_secs`.
    pub fn insert(&mut self, key: &[u8], item_secs: i64, received_secs: i64) {
        let hash = key_hash(&self.hasher, key);
        self.keys.insert(hash, item_secs.max(received_secs));
    }

    /// Whether `key` is certainly not in sled (an item of time `item_secs`).
    /// `false` means "read sled".
    pub fn surely_absent(&self, key: &[u8], item_secs: i64) -> bool {
        self.state == FilterState::Ready
            && item_secs >= self.keys.floor_secs
            && !self.keys.keys.contains_key(&key_hash(&self.hasher, key))
    }

    /// Takes in the startup scan: from now on "absent" can be trusted.
    pub fn merge(&mut self, scan: ScanResult) {
        if self.state == FilterState::Building {
            self.keys.absorb(scan.keys);
            self.state = FilterState::Ready;
        }
    }

    /// Forgets the minutes older than the window as of `now_secs` (wall clock).
    pub fn expire(&mut self, now_secs: i64) {
        self.keys.drop_before(now_secs - self.keep_secs);
    }
}

/// Reads the recent dedup keys sled holds into `scanner` (blocking: run it on a
/// thread of its own; the applier reads sled meanwhile). Messages are read newest
/// first and only until the filter is full: the floor then rises above the minute
/// reached, so older messages are looked up in sled, and the scan neither reads
/// nor caches the rest of a large store.
pub fn scan(store: &Store, mut scanner: Scanner) -> Result<ScanResult, StoreError> {
    let since = scanner.keys.floor_secs - SKEW_SECS;
    store.recent_item_keys(since, |key, secs| match key {
        // Filed a day late: the item's own time may be ahead of its first-seen time.
        RecordedKey::Item(k) => {
            scanner.add(k, secs + SKEW_SECS);
            true
        }
        RecordedKey::Message(id) => scanner.add_newest_first(&message_key(id), secs),
    })?;
    Ok(ScanResult { keys: scanner.keys })
}

/// Collects the keys sled holds, on the scanning thread.
pub struct Scanner {
    hasher: RandomState,
    keys: Keys,
}

impl Scanner {
    /// A dedup key found in sled, filed under `secs`.
    pub fn add(&mut self, key: &[u8], secs: i64) {
        let hash = key_hash(&self.hasher, key);
        self.keys.insert(hash, secs);
    }

    /// A key of a scan in time order, newest first: added while the filter has
    /// room and the key is not below the floor. When it is full, every key of this minute and before may be missing,
    /// so the floor rises above it; returns `false` (stop scanning).
    pub fn add_newest_first(&mut self, key: &[u8], secs: i64) -> bool {
        if secs < self.keys.floor_secs {
            return false; // this and every key after it would be left out
        }
        if self.keys.keys.len() >= self.keys.max_keys {
            self.keys
                .drop_before((secs.div_euclid(MINUTE) + 1).saturating_mul(MINUTE));
            return false;
        }
        self.add(key, secs);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;
    const WEEK: Duration = Duration::from_secs(7 * 86_400);

    fn ready(max_keys: usize) -> SeenFilter {
        let mut f = SeenFilter::with_max_keys(WEEK, NOW, max_keys);
        let scan = ScanResult {
            keys: f.scanner().keys,
        };
        f.merge(scan);
        f
    }

    #[test]
    fn trusts_nothing_until_the_scan_is_merged() {
        let mut f = SeenFilter::new(WEEK, NOW);
        assert!(!f.surely_absent(b"m\0a", NOW));
        let mut scan = f.scanner();
        scan.add(b"m\0old", NOW - DAY);
        f.merge(ScanResult { keys: scan.keys });
        assert_eq!(f.state(), FilterState::Ready);
        assert!(f.surely_absent(b"m\0a", NOW));
        assert!(!f.surely_absent(b"m\0old", NOW - DAY));
    }

    #[test]
    fn an_inserted_key_is_never_absent() {
        let mut f = ready(default_max_keys());
        f.insert(b"s\0id\0read", NOW - 3 * DAY, NOW);
        assert!(!f.surely_absent(b"s\0id\0read", NOW - 3 * DAY));
        assert!(f.surely_absent(b"s\0id\0delivered", NOW - 3 * DAY));
    }

    #[test]
    fn items_older_than_the_window_are_read_from_the_store() {
        let f = ready(default_max_keys());
        assert!(f.surely_absent(b"m\0x", NOW - 8 * DAY));
        assert!(!f.surely_absent(b"m\0x", NOW - 9 * DAY - 1));
        assert!(!f.surely_absent(b"m\0x", 0));
    }

    #[test]
    fn expiry_moves_the_floor_with_the_minutes_it_drops() {
        let mut f = ready(default_max_keys());
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
    fn a_key_filed_again_later_stays_until_its_later_minute_goes() {
        let mut f = ready(default_max_keys());
        f.insert(b"k", NOW - 8 * DAY, NOW - 8 * DAY);
        f.insert(b"k", NOW, NOW);
        f.insert(b"k", NOW - 8 * DAY, NOW - 8 * DAY);
        f.expire(NOW + 2 * DAY);
        assert!(!f.surely_absent(b"k", NOW));
    }

    #[test]
    fn the_start_scan_reads_the_newest_messages_until_the_filter_is_full() {
        use crate::store::{Changes, T};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut c = Changes::new();
        // 10 messages a minute for 10 minutes, the newest at NOW.
        let id = |m: i64, i: i64| format!("wamid.{m}.{i}");
        for m in 0..10i64 {
            for i in 0..10 {
                let mut k = ((NOW - m * 60) as u64).to_be_bytes().to_vec();
                k.extend_from_slice(id(m, i).as_bytes());
                c.put(T::MessagesByTime, k, []);
            }
        }
        store.commit(c).unwrap();
        let mut f = SeenFilter::with_max_keys(WEEK, NOW, 35);
        let result = scan(&store, f.scanner()).unwrap();
        f.merge(result);
        // The three newest minutes are all there; the fourth was cut short, so
        // the floor is above it and its messages (and older ones) are read.
        assert_eq!(f.len(), 30);
        for m in 0..3 {
            for i in 0..10 {
                let key = message_key(id(m, i).as_bytes());
                assert!(!f.surely_absent(&key, NOW - m * 60), "{m} {i}");
            }
        }
        let cut = message_key(id(3, 0).as_bytes());
        assert!(!f.surely_absent(&cut, NOW - 3 * 60));
        assert!(!f.surely_absent(b"m\0older", NOW - 5 * 60));
        assert!(f.surely_absent(b"m\0new", NOW));
    }

    #[test]
    fn over_the_cap_the_oldest_minutes_go_and_the_floor_rises() {
        let mut f = ready(1000);
        // 1,000 keys a minute for 3 minutes: the oldest minutes go, the newest stay.
        for minute in 0..3i64 {
            for i in 0..1000u64 {
                let key = (minute as u64 * 1000 + i).to_be_bytes();
                f.insert(&key, NOW + minute * 60, NOW + minute * 60);
            }
        }
        assert!(f.len() <= 1000, "{}", f.len());
        assert_eq!(f.state(), FilterState::Ready);
        // The newest minute is all there; new items still need no read.
        for i in 0..1000u64 {
            let key = (2000 + i).to_be_bytes();
            assert!(!f.surely_absent(&key, NOW + 120));
        }
        assert!(f.surely_absent(b"new", NOW + 180));
        // Items from the evicted minutes are read from the store.
        assert!(!f.surely_absent(b"old", NOW));
    }
}
