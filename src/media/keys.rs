//! Media master keys: 32 random bytes each, named by a short key id (`k1`, `k2`, ...).
//!
//! The key file is plain text, mode 0600, written atomically:
//!
//! ```text
//! # wagate media master keys
//! k1 <64 hex digits>
//! k2 <64 hex digits>
//! primary k2
//! ```
//!
//! New files are encrypted under the primary key; every listed key still decrypts.
//! Key bytes never appear in `Debug` output and are zeroed when dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rand::RngCore;
use zeroize::Zeroize;

/// Longest key id (it is stored length-prefixed in every file header).
pub const MAX_KEY_ID_LEN: usize = 32;

/// A valid key id: 1 to 32 ASCII letters, digits, `.`, `_` or `-`.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One master key. Its bytes are never printed and are zeroed on drop.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    bytes: [u8; 32],
}

impl MasterKey {
    /// A new random key.
    pub fn generate(id: &str) -> Result<MasterKey, KeyError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        MasterKey::from_bytes(id, bytes)
    }

    pub fn from_bytes(id: &str, bytes: [u8; 32]) -> Result<MasterKey, KeyError> {
        if !valid_key_id(id) {
            return Err(KeyError::Format(format!("invalid key id '{id}'")));
        }
        Ok(MasterKey {
            id: id.to_string(),
            bytes,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key material (for the crypto module's key derivation only).
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, ***)", self.id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("media key file: {0}")]
    Format(String),
    #[error("media key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The set of master keys and which one is primary.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: BTreeMap<String, MasterKey>,
    primary: String,
}

impl Keyring {
    /// A keyring with one new random key, `k1`, as primary.
    pub fn generate() -> Keyring {
        let key = MasterKey::generate("k1").expect("k1 is a valid id");
        Keyring::single(key)
    }

    /// A keyring holding just `key`, as primary.
    pub fn single(key: MasterKey) -> Keyring {
        let primary = key.id.clone();
        Keyring {
            keys: BTreeMap::from([(primary.clone(), key)]),
            primary,
        }
    }

    /// The key new files are encrypted under.
    pub fn primary(&self) -> &MasterKey {
        &self.keys[&self.primary]
    }

    /// A key by id, if listed.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.get(id)
    }

    /// Key ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Adds `key` (its id must be new) and makes it primary.
    pub fn add_primary(&mut self, key: MasterKey) -> Result<(), KeyError> {
        if self.keys.contains_key(&key.id) {
            return Err(KeyError::Format(format!(
                "key id '{}' already exists",
                key.id
            )));
        }
        self.primary = key.id.clone();
        self.keys.insert(key.id.clone(), key);
        Ok(())
    }

    /// Rotation: adds a new random key `k<n+1>` (n = the highest `k<n>` listed; the
    /// lowest free `k<n>` when that is `u64::MAX`), makes it primary and keeps the
    /// old ones. Returns the new id.
    pub fn rotate(&mut self) -> String {
        let highest = self
            .keys
            .keys()
            .filter_map(|id| id.strip_prefix('k')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let free = |n: &u64| !self.keys.contains_key(&format!("k{n}"));
        let next = match highest.checked_add(1) {
            Some(n) => n,
            None => (1..).find(free).expect("fewer keys than numbers"),
        };
        let id = format!("k{next}");
        let key = MasterKey::generate(&id).expect("k<n> is a valid id");
        self.add_primary(key).expect("k<max+1> is new");
        id
    }

    /// Parses the key file text.
    pub fn parse(text: &str) -> Result<Keyring, KeyError> {
        let mut keys = BTreeMap::new();
        let mut primary = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |m: &str| KeyError::Format(format!("line {}: {m}", n + 1));
            let mut words = line.split_whitespace();
            let (Some(first), Some(second), None) = (words.next(), words.next(), words.next())
            else {
                return Err(bad(
                    "expected '<key id> <64 hex digits>' or 'primary <key id>'",
                ));
            };
            if first == "primary" {
                if primary.replace(second.to_string()).is_some() {
                    return Err(bad("more than one 'primary' line"));
                }
                continue;
            }
            if !valid_key_id(first) {
                return Err(bad("a key id is 1-32 letters, digits, '.', '_' or '-'"));
            }
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(second, &mut bytes)
                .map_err(|_| bad("a key is 64 hex digits (32 bytes)"))?;
            let key = MasterKey::from_bytes(first, bytes)?;
            bytes.zeroize();
            if keys.insert(first.to_string(), key).is_some() {
                return Err(bad("key id listed twice"));
            }
        }
        let primary = match primary {
            Some(p) => p,
            None if keys.len() == 1 => keys.keys().next().cloned().unwrap_or_default(),
            None => return Err(KeyError::Format("no 'primary <key id>' line".into())),
        };
        if !keys.contains_key(&primary) {
            return Err(KeyError::Format(format!(
                "primary key '{primary}' is not listed"
            )));
        }
        Ok(Keyring { keys, primary })
    }

    /// The key file text (contains the keys: write it only with mode 0600).
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# wagate media master keys: losing this file loses every stored media file.\n",
        );
        for key in self.keys.values() {
            out.push_str(&format!("{} {}\n", key.id, hex::encode(key.bytes)));
        }
        out.push_str(&format!("primary {}\n", self.primary));
        out
    }
}

/// The key file on disk and the keyring read from it; rotation rewrites both.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    ring: RwLock<Arc<Keyring>>,
}

impl KeyStore {
    /// Reads the key file at `path`. If it does not exist and `create` is true, creates
    /// it with one new key (mode 0600, temporary name, fsync, rename); if `create` is
    /// false (an operator-named file) a missing file is an error.
    pub fn open(path: &Path, create: bool) -> Result<KeyStore, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let ring = match std::fs::read_to_string(path) {
            Ok(text) => {
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
                        "media key file is readable by group or others; chmod 600 it");
                }
                let ring = Keyring::parse(&text)?;
                tracing::info!(path = %path.display(), primary = ring.primary().id(),
                    keys = ring.keys.len(), "media keys loaded");
                ring
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let ring = Keyring::generate();
                crate::util::fs::write_private_atomic(path, ring.to_text().as_bytes())
                    .map_err(io)?;
                tracing::info!(path = %path.display(), "generated a media master key (k1)");
                ring
            }
            Err(e) => return Err(io(e)),
        };
        Ok(KeyStore {
            path: path.to_path_buf(),
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keyring in force now.
    pub fn current(&self) -> Arc<Keyring> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Adds a new key, makes it primary, writes the file atomically, then switches to
    /// it (old keys are kept). Returns the new key id.
    pub fn rotate(&self) -> Result<String, KeyError> {
        let mut guard = match self.ring.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut ring = Keyring::clone(&guard);
        let id = ring.rotate();
        crate::util::fs::write_private_atomic(&self.path, ring.to_text().as_bytes()).map_err(
            |source| KeyError::Io {
                path: self.path.display().to_string(),
                source,
            },
        )?;
        *guard = Arc::new(ring);
        tracing::info!(path = %self.path.display(), primary = %id, "media key rotated");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip_and_debug_redacts() {
        let mut ring = Keyring::generate();
        let k1 = hex::encode(ring.primary().expose());
        assert_eq!(ring.rotate(), "k2");
        let text = ring.to_text();
        let back = Keyring::parse(&text).unwrap();
        assert_eq!(back.primary().id(), "k2");
        assert_eq!(hex::encode(back.get("k1").unwrap().expose()), k1);
        assert!(!format!("{back:?}").contains(&k1));
    }

    #[test]
    fn parse_rejects_bad_files() {
        let h = "00".repeat(32);
        for text in [
            String::new(),
            format!("k1 {h}\nk1 {h}\n"),
            format!("k1 {h}\nk2 {h}\n"),
            format!("k1 {h}\nprimary k9\n"),
            format!("k1 {}\n", "00".repeat(31)),
            format!("k/1 {h}\n"),
            format!("k1 {h} extra\n"),
        ] {
            assert!(Keyring::parse(&text).is_err(), "{text}");
        }
        assert_eq!(
            Keyring::parse(&format!("# c\n\nk1 {h}\n"))
                .unwrap()
                .primary()
                .id(),
            "k1"
        );
    }

    #[test]
    fn key_store_creates_0600_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("media-keys");
        assert!(KeyStore::open(&path, false).is_err());
        let store = KeyStore::open(&path, true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.current().primary().id(), "k1");
        assert_eq!(store.rotate().unwrap(), "k2");
        let again = KeyStore::open(&path, false).unwrap();
        let ids: Vec<_> = again.current().ids().map(String::from).collect();
        assert_eq!(ids, ["k1", "k2"]);
        assert_eq!(again.current().primary().id(), "k2");
    }
}
