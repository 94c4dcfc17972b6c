//! Durable small-file writes, and private files and directories: every file
//! wagate writes is mode 0600 and every directory 0700, whatever the umask and
//! whatever was there before (a mode given at creation only applies to a new
//! file, and the umask can only take bits away: the mode is set explicitly).

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const FILE_MODE: u32 = 0o600;
pub const DIR_MODE: u32 = 0o700;

/// Makes an open file mode 0600 (an existing file kept its old mode on open).
pub fn make_private(file: &File) -> std::io::Result<()> {
    let mode = file.metadata()?.permissions().mode() & 0o7777;
    if mode != FILE_MODE {
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

/// Options that create a file with mode 0600 (call [`make_private`] on what they
/// open when the file may already exist).
pub fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Creates `dir` (and missing parents) mode 0700, or makes an existing directory
/// 0700 when group or other users can reach it.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir() && !m.is_symlink()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "it exists but is not a directory",
        ));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Makes everything under `dir` private (files 0600, directories 0700), for
/// files another library created (sled's, under the umask). At most `depth`
/// levels down.
pub fn make_tree_private(dir: &Path, depth: usize) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_symlink() {
            continue;
        }
        let want = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
        if meta.permissions().mode() & 0o7777 != want {
            std::fs::set_permissions(entry.path(), Permissions::from_mode(want))?;
        }
        if meta.is_dir() && depth > 0 {
            make_tree_private(&entry.path(), depth - 1)?;
        }
    }
    Ok(())
}

/// Makes a directory's entries durable (after a create, rename or remove).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` with mode 0600: temporary name, fsync, rename, fsync dir.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut f = private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        // A temporary file left by a crash keeps its mode otherwise.
        make_private(&f)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_whatever_was_there_before() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        std::fs::set_permissions(&dir, Permissions::from_mode(0o777)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "an open directory is tightened");
        std::fs::write(root.path().join("file"), b"").unwrap();
        let err = private_dir(&root.path().join("file")).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");

        let file = dir.join("f");
        // A leftover temporary file, world-readable.
        std::fs::write(dir.join(".f.tmp"), b"old").unwrap();
        std::fs::set_permissions(dir.join(".f.tmp"), Permissions::from_mode(0o644)).unwrap();
        write_private_atomic(&file, b"new").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"new");

        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/g"), b"").unwrap();
        std::fs::set_permissions(dir.join("sub"), Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("sub/g"), Permissions::from_mode(0o644)).unwrap();
        make_tree_private(&dir, 2).unwrap();
        assert_eq!(mode(&dir.join("sub")), 0o700);
        assert_eq!(mode(&dir.join("sub/g")), 0o600);
    }
}
