//! Which directory holds the state in use: `<data>/state`, or after an erasure
//! rebuilt it, the one named in `<data>/state.current` (written to a temporary
//! name, fsynced, renamed: the switch is atomic). Any other `state.*` directory is
//! a state an erasure replaced or a rebuild a crash left unfinished: both are
//! deleted at open (they may hold erased data).

use std::path::{Path, PathBuf};

use rand::RngCore;

const POINTER: &str = "state.current";

/// The state directory in use under `data`.
pub fn current_dir(data: &Path) -> PathBuf {
    match std::fs::read_to_string(data.join(POINTER)) {
        Ok(name) if valid(name.trim()) => data.join(name.trim()),
        _ => data.join("state"),
    }
}

fn valid(name: &str) -> bool {
    name.strip_prefix("state.g")
        .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A name for a new state directory.
pub fn new_state_name() -> String {
    let mut raw = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("state.g{}", hex::encode(raw))
}

/// Makes `name` the state in use (blocking).
pub fn set_current(data: &Path, name: &str) -> std::io::Result<()> {
    crate::util::fs::write_private_atomic(&data.join(POINTER), name.as_bytes())
}

/// Deletes a state directory no longer in use (blocking).
pub fn remove_state_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match dir.parent() {
        Some(p) => crate::util::fs::sync_dir(p),
        None => Ok(()),
    }
}

/// Deletes the state directories that are not in use (blocking; at start).
pub fn remove_stale(data: &Path) -> std::io::Result<()> {
    let current = current_dir(data);
    for e in std::fs::read_dir(data)? {
        let path = e?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stale = (valid(name) || name == "state") && path != current;
        if stale && path.is_dir() {
            tracing::info!(dir = name, "removed a state directory no longer in use");
            remove_state_dir(&path)?;
        }
    }
    Ok(())
}
