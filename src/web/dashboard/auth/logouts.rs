//! Logged-out sessions, kept in `<data>/dashboard-logouts` so that a logout
//! survives a restart (a session lives in its cookie, so without this list an old
//! cookie would work again). Only a hash of each session id is kept, with the time
//! the session would have ended anyway; expired entries are dropped on load and on
//! every logout. One line per entry: `<sha256 hex> <until, unix seconds>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

/// Entries kept at most (the soonest to expire go first).
const MAX_ENTRIES: usize = 10_000;

pub struct Logouts {
    path: PathBuf,
    /// SHA-256 of a session id -> when that session would have ended.
    entries: Mutex<HashMap<[u8; 32], i64>>,
}

fn hash(id: &[u8]) -> [u8; 32] {
    Sha256::digest(id).into()
}

fn parse(text: &str, now: i64) -> HashMap<[u8; 32], i64> {
    text.lines()
        .filter_map(|line| {
            let (h, until) = line.trim().split_once(' ')?;
            let h: [u8; 32] = hex::decode(h).ok()?.try_into().ok()?;
            let until: i64 = until.trim().parse().ok()?;
            (until > now).then_some((h, until))
        })
        .collect()
}

impl Logouts {
    /// Reads `path` (none yet: an empty list), dropping what expired by `now`.
    pub fn load(path: &Path, now: i64) -> std::io::Result<Logouts> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        Ok(Logouts {
            path: path.to_path_buf(),
            entries: Mutex::new(parse(&text, now)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], i64>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, id: &[u8]) -> bool {
        self.lock().contains_key(&hash(id))
    }

    /// Records a logout and writes the list (temporary file, fsync, rename, mode
    /// 0600). Blocking. In memory even if the write fails (the error says so).
    pub fn add(&self, id: &[u8], until: i64, now: i64) -> std::io::Result<()> {
        let mut entries = self.lock();
        entries.retain(|_, u| *u > now);
        entries.insert(hash(id), until);
        if entries.len() > MAX_ENTRIES {
            let mut by_end: Vec<i64> = entries.values().copied().collect();
            by_end.sort_unstable();
            let cut = by_end[entries.len() - MAX_ENTRIES];
            entries.retain(|_, u| *u >= cut);
        }
        let mut text = String::with_capacity(entries.len() * 80);
        for (h, until) in entries.iter() {
            text.push_str(&format!("{} {until}\n", hex::encode(h)));
        }
        // Written under the lock: concurrent logouts never write an older list last.
        crate::util::fs::write_private_atomic(&self.path, text.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survive_a_reload_until_they_expire() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dashboard-logouts");
        let l = Logouts::load(&path, 100).unwrap();
        assert!(!l.contains(b"a"));
        l.add(b"a", 200, 100).unwrap();
        l.add(b"b", 150, 100).unwrap();
        assert!(l.contains(b"a") && l.contains(b"b"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(b"a")), "ids are hashed: {text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Logouts::load(&path, 160).unwrap();
        assert!(again.contains(b"a"));
        assert!(!again.contains(b"b"), "expired: dropped on load");
        // A logout later drops expired entries from the file too.
        again.add(b"c", 300, 210).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        std::fs::write(&path, "junk\nzz 1\n").unwrap();
        assert!(Logouts::load(&path, 0).is_ok(), "bad lines are skipped");
    }
}
