//! Erasure requests and their record, under `<data>/erasures/` (0700, files 0600):
//! - `key`: 32 random bytes, the key of every hash kept here;
//! - `<id>.pending`: a request not done yet (the contact id and who asked), written
//!   (fsynced, renamed) before `202`, removed once the erasure is done: what makes
//!   an erasure survive a crash;
//! - `<id>.json`: its state and counts (no personal data);
//! - `log.jsonl`: one line per finished erasure: id, times, who asked, counts, the
//!   keyed hash of the contact id;
//! - `erased-items`: keyed hashes of the dedup keys of erased items, one per line
//!   (hex), so that a retry from Meta is not applied again, by this applier or by
//!   any rebuild.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::util::fs::{private_dir, private_options, write_private_atomic};

/// Who asked for an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requester {
    Api,
    Dashboard,
    Cli,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseCounts {
    pub deliveries_redacted: u64,
    pub items_removed: u64,
    pub records_redacted: u64,
    pub segments_rewritten: u64,
    pub media_files_deleted: u64,
    pub messages_before: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EraseState {
    Pending,
    Done,
}

/// An erasure's record: what `GET /api/erasures/{id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub erasure_id: String,
    pub state: EraseState,
    pub requested_by: Requester,
    pub requested_at: String,
    pub done_at: Option<String>,
    /// HMAC-SHA256 of the contact id under `key`, hex.
    pub contact_hash: String,
    pub counts: Option<EraseCounts>,
}

/// A request waiting to be carried out (the only file here with personal data).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub erasure: Erasure,
    pub contact_id: String,
}

/// The erasure files. Cheap to clone.
#[derive(Clone)]
pub struct Erasures {
    dir: PathBuf,
    key: Arc<[u8; 32]>,
    erased: Arc<Mutex<HashSet<[u8; 32]>>>,
    wake: Arc<tokio::sync::Notify>,
    /// Set by a request (and at open): the applier looks at the requests.
    requested: Arc<AtomicBool>,
}

impl Erasures {
    /// Opens (or creates) `<data>/erasures` (blocking).
    pub fn open(data_dir: &Path) -> std::io::Result<Erasures> {
        let dir = data_dir.join("erasures");
        private_dir(&dir)?;
        let key_path = dir.join("key");
        let key = match std::fs::read(&key_path) {
            Ok(k) if k.len() == 32 => k.try_into().expect("32 bytes"),
            Ok(_) => return Err(std::io::Error::other("erasures/key is not 32 bytes")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                write_private_atomic(&key_path, &k)?;
                k
            }
            Err(e) => return Err(e),
        };
        let mut erased = HashSet::new();
        if let Ok(text) = std::fs::read_to_string(dir.join("erased-items")) {
            for line in text.lines() {
                if let Some(h) = hex::decode(line.trim())
                    .ok()
                    .and_then(|v| v.try_into().ok())
                {
                    erased.insert(h);
                }
            }
        }
        let erasures = Erasures {
            dir,
            key: Arc::new(key),
            erased: Arc::new(Mutex::new(erased)),
            wake: Arc::default(),
            requested: Arc::new(AtomicBool::new(true)),
        };
        erasures.settle_from_log()?;
        Ok(erasures)
    }

    /// The keyed hash of `bytes`.
    pub fn hash(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key[..]).expect("any key length");
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// Whether no item was ever erased (nothing to check items against).
    pub fn none_erased(&self) -> bool {
        self.erased
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Whether the item with this dedup key was erased.
    pub fn is_erased(&self, dedup_key: &[u8]) -> bool {
        let h = self.hash(dedup_key);
        self.erased
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&h)
    }

    /// Remembers erased items' dedup keys (as keyed hashes), fsynced (blocking).
    pub fn remember_erased(&self, keys: &[Vec<u8>]) -> std::io::Result<()> {
        let mut set = self.erased.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines = String::new();
        for k in keys {
            let h = self.hash(k);
            if set.insert(h) {
                lines.push_str(&hex::encode(h));
                lines.push('\n');
            }
        }
        append_synced(&self.dir.join("erased-items"), lines.as_bytes())
    }

    /// Records a request (fsynced) and wakes the applier; its record (blocking).
    pub fn request(
        &self,
        contact_id: &str,
        by: Requester,
        now: String,
    ) -> std::io::Result<Erasure> {
        let mut raw = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let erasure = Erasure {
            erasure_id: hex::encode(raw),
            state: EraseState::Pending,
            requested_by: by,
            requested_at: now,
            done_at: None,
            contact_hash: hex::encode(self.hash(contact_id.as_bytes())),
            counts: None,
        };
        self.write_status(&erasure)?;
        let req = Request {
            erasure: erasure.clone(),
            contact_id: contact_id.to_string(),
        };
        let path = self.dir.join(format!("{}.pending", erasure.erasure_id));
        write_private_atomic(&path, &serde_json::to_vec(&req).expect("serialisable"))?;
        self.request_again();
        Ok(erasure)
    }

    /// Requests not done yet, oldest first (blocking).
    pub fn pending(&self) -> std::io::Result<Vec<Request>> {
        let mut out: Vec<Request> = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "pending") {
                let bytes = std::fs::read(&path)?;
                match serde_json::from_slice(&bytes) {
                    Ok(r) => out.push(r),
                    Err(e) => tracing::error!(error = %e, "unreadable erasure request"),
                }
            }
        }
        out.sort_by(|a, b| a.erasure.requested_at.cmp(&b.erasure.requested_at));
        Ok(out)
    }

    /// The erasure is done: its record and log line written, its request removed.
    pub fn finish(
        &self,
        mut erasure: Erasure,
        counts: EraseCounts,
        now: String,
    ) -> std::io::Result<()> {
        erasure.state = EraseState::Done;
        erasure.done_at = Some(now);
        erasure.counts = Some(counts);
        let mut line = serde_json::to_vec(&erasure).expect("serialisable");
        line.push(b'\n');
        append_synced(&self.dir.join("log.jsonl"), &line)?;
        // The request (with the contact id) goes before the record says `done`; a
        // crash in between is mended at open from the log (`settle_from_log`).
        std::fs::remove_file(self.dir.join(format!("{}.pending", erasure.erasure_id)))?;
        crate::util::fs::sync_dir(&self.dir)?;
        self.write_status(&erasure)
    }

    /// Records still `pending` whose request is gone were finished: their state is
    /// taken from the log (blocking; at open).
    fn settle_from_log(&self) -> std::io::Result<()> {
        let log = match std::fs::read_to_string(self.dir.join("log.jsonl")) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for line in log.lines() {
            let Ok(done) = serde_json::from_str::<Erasure>(line) else {
                continue;
            };
            let id = &done.erasure_id;
            let waiting = self.dir.join(format!("{id}.pending")).exists();
            if !waiting
                && self
                    .status(id)?
                    .is_some_and(|e| e.state == EraseState::Pending)
            {
                self.write_status(&done)?;
            }
        }
        Ok(())
    }

    /// An erasure's record (blocking).
    pub fn status(&self, id: &str) -> std::io::Result<Option<Erasure>> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        match std::fs::read(self.dir.join(format!("{id}.json"))) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_status(&self, e: &Erasure) -> std::io::Result<()> {
        let path = self.dir.join(format!("{}.json", e.erasure_id));
        write_private_atomic(&path, &serde_json::to_vec(e).expect("serialisable"))
    }

    /// Whether requests may be waiting (and forgets it).
    pub fn take_requested(&self) -> bool {
        self.requested.swap(false, Ordering::SeqCst)
    }

    /// Makes the applier look at the requests (again).
    pub fn request_again(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Resolves when a request was made since the last call.
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}

fn append_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_options().create(true).append(true).open(path)?;
    crate::util::fs::make_private(&f)?;
    f.write_all(bytes)?;
    f.sync_all()
}
