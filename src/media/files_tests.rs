//! Unit tests of the file store that need its test-only disk-full hook.

use super::*;

fn store_in(dir: &Path) -> MediaFiles {
    let keys = KeyStore::open(&dir.join("media-keys"), true).unwrap();
    MediaFiles::open(&dir.join("media"), Arc::new(keys)).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn disk_full_is_a_clean_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = store_in(tmp.path());
    for budget in [0, 10, 100_000] {
        files.disk_budget = Some(budget);
        let data = vec![7u8; 300_000];
        match files.store(&data[..], None, 1 << 20) {
            Err(FileError::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(28), "budget {budget}")
            }
            other => panic!("budget {budget}: {other:?}"),
        }
        assert!(names(files.dir()).is_empty(), "budget {budget}");
    }
    files.disk_budget = None;
    let stored = files.store(&b"fine"[..], None, 10).unwrap();
    assert_eq!(names(files.dir()), [stored.name]);
}

#[test]
fn source_error_is_distinct_and_leaves_nothing() {
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut"));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let files = store_in(tmp.path());
    assert!(matches!(
        files.store(Broken(200_000), None, 1 << 20),
        Err(FileError::Source(_))
    ));
    assert!(names(files.dir()).is_empty());
}

#[test]
fn names_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let files = store_in(tmp.path());
    for bad in [
        "../media-keys",
        "",
        "ABCDEF0123456789ABCDEF0123456789",
        "x.tmp",
    ] {
        assert!(matches!(
            files.open_verified(bad),
            Err(FileError::BadName(_))
        ));
        assert!(matches!(files.delete(bad), Err(FileError::BadName(_))));
    }
    let missing = "0123456789abcdef0123456789abcdef";
    assert!(matches!(
        files.open_verified(missing),
        Err(FileError::NotFound(_))
    ));
    assert!(!files.delete(missing).unwrap());
}
