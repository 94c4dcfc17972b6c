//! sled's snapshot files: one that a killed process left unfinished is removed
//! before sled opens.
//!
//! sled 0.34 writes a snapshot to `snap.<lsn>.generating`, fsyncs it, and renames it
//! to `snap.<lsn>`. A SIGKILL in between leaves the `.generating` file, whose name
//! sorts after the last complete snapshot. On the next open sled reads the snapshot
//! whose name sorts last (that one), finds its checksum wrong and refuses to open
//! ("Read corrupted data"; sled issue #1527): wagate could never start again. A
//! `.generating` file is by construction not a finished snapshot, and a snapshot is
//! only a shortcut over sled's log (sled removes the older ones itself after each
//! successful write): without it sled starts from the last complete snapshot and
//! replays its log from there, to the same state.

use std::path::Path;

/// Removes every `snap.*.generating` in `dir` (best effort: what cannot be removed is
/// left for sled to report); how many were removed.
pub(super) fn remove_unfinished(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("snap.") && name.ends_with(".generating")) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(file = %entry.path().display(), error = %e,
                "cannot remove an unfinished sled snapshot"),
        }
    }
    if removed > 0 {
        tracing::warn!(
            dir = %dir.display(),
            removed,
            "removed unfinished sled snapshots (left by a kill during a snapshot write)"
        );
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unfinished_snapshots_go() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "snap.00000000000000A1",
            "snap.00000000000000B2.generating",
            "db",
            "conf",
            "x.generating",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        assert_eq!(remove_unfinished(dir.path()), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["conf", "db", "snap.00000000000000A1", "x.generating"]
        );
        assert_eq!(remove_unfinished(&dir.path().join("missing")), 0);
    }
}
