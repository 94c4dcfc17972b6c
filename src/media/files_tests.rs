//! Unit tests of the file store that need its test-only disk-full hook.

use super::*;
use object_store::ObjectStore;
use std::time::Duration;

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

/// The bucket backend over `object_store`'s in-memory store (the real S3 server,
/// Garage, is in `tests/it/media_garage.rs`).
fn in_memory(dir: &Path) -> (MediaFiles, Arc<object_store::memory::InMemory>) {
    let keys = KeyStore::open(&dir.join("media-keys"), true).unwrap();
    let mem = Arc::new(object_store::memory::InMemory::new());
    let objects = Objects::with_store(mem.clone(), "mem://test/p".into(), "p").unwrap();
    (MediaFiles::in_bucket(dir, objects, Arc::new(keys)), mem)
}

fn object_names(files: &MediaFiles) -> Vec<String> {
    let mut v: Vec<_> = files.objects().unwrap().list().unwrap();
    v.sort();
    v.into_iter().map(|(n, _)| n).collect()
}

#[test]
fn bucket_round_trip_ciphertext_only_and_nothing_local() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, _mem) = in_memory(tmp.path());
    // Larger than one upload part: a multipart upload.
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 251) as u8).collect();
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let stored = files.store(&data[..], Some(sha), 10 << 20).unwrap();
    assert_eq!((stored.size, stored.sha256), (data.len() as u64, sha));
    assert_eq!(object_names(&files), std::slice::from_ref(&stored.name));
    let mut raw = Vec::new();
    let objects = files.objects().unwrap();
    objects
        .read(&stored.name)
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    assert!(raw.starts_with(b"WAGM"));
    assert!(raw.len() > data.len());
    let mut back = Vec::new();
    let mut r = files.open_verified(&stored.name).unwrap();
    assert_eq!(r.info.sha256, sha);
    r.read_to_end(&mut back).unwrap();
    assert!(back == data);
    assert!(!tmp.path().join("media").exists());
    assert!(files.delete(&stored.name).unwrap());
    // A bucket's DELETE succeeds whether or not the object was there.
    files.delete(&stored.name).unwrap();
    assert!(matches!(
        files.open_verified(&stored.name),
        Err(FileError::NotFound(_))
    ));
}

#[test]
fn bucket_checks_leave_no_object() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, _mem) = in_memory(tmp.path());
    let data = vec![3u8; 300_000];
    assert!(matches!(
        files.store(&data[..], Some([0; 32]), 1 << 20),
        Err(FileError::DigestMismatch { .. })
    ));
    assert!(matches!(
        files.store(&data[..], None, 1000),
        Err(FileError::TooLarge { .. })
    ));
    assert!(object_names(&files).is_empty());
}

#[test]
fn bucket_sweep_removes_orphans_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, mem) = in_memory(tmp.path());
    let known = files.store(&b"known"[..], None, 100).unwrap().name;
    let orphan = files.store(&b"orphan"[..], None, 100).unwrap().name;
    // Not ours: another name, and an object deeper under the prefix.
    let rt = tokio::runtime::Runtime::new().unwrap();
    for other in ["p/notes.txt", "p/sub/x"] {
        let path = object_store::path::Path::from(other);
        rt.block_on(mem.put(&path, b"x".to_vec().into())).unwrap();
    }
    let spared = files
        .sweep_temp_and_orphans(|n| n == known, Duration::from_secs(3600))
        .unwrap();
    assert_eq!((spared.skipped_recent, spared.kept), (1, 1));
    let report = files
        .sweep_temp_and_orphans(|n| n == known, Duration::ZERO)
        .unwrap();
    assert_eq!(report.orphans_removed, [orphan]);
    assert_eq!(report.ignored, ["notes.txt"]);
    assert_eq!(object_names(&files), [known, "notes.txt".to_string()]);
}
