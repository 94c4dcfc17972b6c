//! Free space on the data directory's filesystem.

use std::path::Path;

/// Bytes available to an unprivileged user on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    fs2::available_space(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_filesystem_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        let missing = free_bytes(&dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
