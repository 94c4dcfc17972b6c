//! The data directory at start. It holds personal data and secrets: a new one is
//! created mode 0700; an existing one that group or other users can reach is
//! tightened to 0700 (with a warning naming it and its old mode), or refused when
//! that is not possible (wagate's user does not own it). One wagate cannot use at
//! all (not a directory, not readable, writable and searchable by wagate's user) is
//! refused naming the path and the real cause, before anything else touches it.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::StartError;
use crate::util::fs::DIR_MODE;

/// What is wrong with a data directory, or what was done to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tighten {
    /// Private already.
    Private,
    /// Group or others could reach it and wagate's user owns it: make it 0700.
    Tighten { old: u32 },
    /// Group or others could reach it, and it is someone else's.
    NotOwner { old: u32, owner: u32 },
}

/// What to do about a directory of `mode` owned by `owner`, as `euid`.
pub fn decide(mode: u32, owner: u32, euid: u32) -> Tighten {
    let old = mode & 0o7777;
    match (old & 0o077 != 0, owner == euid || euid == 0) {
        (false, _) => Tighten::Private,
        (true, true) => Tighten::Tighten { old },
        (true, false) => Tighten::NotOwner { old, owner },
    }
}

/// Creates, checks and (when needed) tightens the data directory `dir`.
pub fn prepare(dir: &Path) -> Result<(), StartError> {
    let err = |source: io::Error| StartError::OpenDataDir {
        path: dir.display().to_string(),
        source,
    };
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), DIR_MODE)
        .create(dir)
        .map_err(err)?;
    let meta = std::fs::metadata(dir).map_err(err)?;
    if !meta.is_dir() {
        return Err(err(io::Error::other("not a directory")));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    match decide(meta.permissions().mode(), meta.uid(), euid) {
        Tighten::Private => {}
        Tighten::Tighten { old } => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE)).map_err(
                |e| StartError::DataDirOpen {
                    path: dir.display().to_string(),
                    mode: old,
                    reason: format!("it cannot be made private: {e}"),
                },
            )?;
            tracing::warn!(path = %dir.display(), old_mode = format!("{old:o}"),
                "the data directory was open to other users: made it private (mode 700)");
        }
        Tighten::NotOwner { old, owner } => {
            return Err(StartError::DataDirOpen {
                path: dir.display().to_string(),
                mode: old,
                reason: format!(
                    "it belongs to uid {owner}, not to wagate's user (uid {euid}), so wagate cannot make it private; chown it to wagate's user or chmod 700 it"
                ),
            });
        }
    }
    accessible(dir, meta.uid(), euid).map_err(err)
}

/// Whether wagate's user may list, read and write in `dir` (its owner may differ).
fn accessible(dir: &Path, owner: u32, euid: u32) -> io::Result<()> {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return Err(io::Error::other("the path holds a NUL byte"));
    };
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call.
    if unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK | libc::X_OK) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err(io::Error::new(
        e.kind(),
        format!(
            "{e}: wagate (uid {euid}) must be able to read and write it; it belongs to uid {owner}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighten_what_is_ours_refuse_what_is_not() {
        // (mode, owner, euid, what to do)
        let table = [
            (0o40700, 1000, 1000, Tighten::Private),
            (0o700, 0, 1000, Tighten::Private),
            (0o755, 1000, 1000, Tighten::Tighten { old: 0o755 }),
            (0o777, 1000, 1000, Tighten::Tighten { old: 0o777 }),
            (0o710, 1000, 1000, Tighten::Tighten { old: 0o710 }),
            (0o755, 0, 0, Tighten::Tighten { old: 0o755 }),
            (0o755, 1000, 0, Tighten::Tighten { old: 0o755 }),
            (
                0o755,
                0,
                1000,
                Tighten::NotOwner {
                    old: 0o755,
                    owner: 0,
                },
            ),
        ];
        for (mode, owner, euid, want) in table {
            assert_eq!(decide(mode, owner, euid), want, "{mode:o} {owner} {euid}");
        }
    }
}
